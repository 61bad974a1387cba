//! PLACEHOLDER (the json branch replaces it): the API the protocol layer calls.
#![allow(dead_code)]
use std::sync::Arc;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

use crate::status::Status;

#[derive(Clone, Default)]
pub(crate) struct Descriptors {
    pool: Option<Arc<DescriptorPool>>,
}

impl Descriptors {
    pub fn new() -> Descriptors {
        Descriptors::default()
    }
    pub fn add_encoded_set(&mut self, encoded: &[u8]) -> Result<(), String> {
        let mut pool = self
            .pool
            .as_deref()
            .cloned()
            .unwrap_or_else(DescriptorPool::new);
        let set = prost_types::FileDescriptorSet::decode(encoded).map_err(|e| e.to_string())?;
        for file in set.file {
            if pool.get_file_by_name(file.name()).is_some() {
                continue;
            }
            pool.add_file_descriptor_proto(file)
                .map_err(|e| e.to_string())?;
        }
        self.pool = Some(Arc::new(pool));
        Ok(())
    }
    pub fn method(&self, path: &str) -> Option<MethodJson> {
        let pool = self.pool.as_ref()?;
        let (service, method) = path.trim_start_matches('/').split_once('/')?;
        let service = pool.get_service_by_name(service)?;
        let method = service.methods().find(|m| m.name() == method)?;
        Some(MethodJson {
            input: MessageJson(method.input()),
            output: MessageJson(method.output()),
            no_side_effects: false,
        })
    }
    pub fn message(&self, full_name: &str) -> Option<MessageJson> {
        self.pool
            .as_ref()?
            .get_message_by_name(full_name)
            .map(MessageJson)
    }
}

#[derive(Clone)]
pub(crate) struct MethodJson {
    pub input: MessageJson,
    pub output: MessageJson,
    pub no_side_effects: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct MessageJson(MessageDescriptor);

impl MessageJson {
    pub fn to_proto(&self, json: &[u8], out: &mut Vec<u8>) -> Result<(), Status> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let message = DynamicMessage::deserialize(self.0.clone(), &mut de)
            .map_err(|e| Status::invalid_argument(format!("invalid JSON: {e}")))?;
        message
            .encode(out)
            .map_err(|e| Status::internal(e.to_string()))
    }
    pub fn to_json(&self, proto: &[u8], out: &mut Vec<u8>) -> Result<(), Status> {
        let message = DynamicMessage::decode(self.0.clone(), proto)
            .map_err(|e| Status::internal(e.to_string()))?;
        let mut ser = serde_json::Serializer::new(out);
        message
            .serialize_with_options(&mut ser, &Default::default())
            .map_err(|e| Status::internal(e.to_string()))
    }
    pub fn full_name(&self) -> &str {
        self.0.full_name()
    }
}
