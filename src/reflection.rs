//! Server reflection, `grpc.reflection.v1` and `grpc.reflection.v1alpha` (grpc/grpc
//! doc/server-reflection.md): which services a server has, and the descriptors of their
//! files, from the `FILE_DESCRIPTOR_SET` our generator embeds in each package's module.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use h2grpc::reflection::ReflectionService;
//! let health = h2grpc::health::HealthReporter::new();
//! let reflection = ReflectionService::builder()
//!     // your packages' descriptors: .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
//!     .build()?;
//! h2grpc::Server::new()
//!     .add_service(health.service())
//!     .add_service(reflection) // both versions, v1 and v1alpha
//!     .serve("127.0.0.1:50051")
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! `list_services` names every service of the registered descriptor sets, and every
//! service the server serves whose descriptors it knows: health's are built in, so a
//! server with health and reflection lists health without registering anything for it.
//! [`Reflection::v1`] and [`Reflection::v1alpha`] give one version each.
//!
//! Both versions answer alike (their messages are the same on the wire) from one index.
//! A file is sent with its transitive imports, breadth first; on one stream each import is
//! sent once, while the file asked for is always sent (grpc-go does the same). An unknown
//! file, symbol, type or extension is an `ErrorResponse` with NOT_FOUND on the open stream;
//! a request naming no question ends the call with INVALID_ARGUMENT.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;

/// The descriptor types [`Builder::register_file_descriptor_set`] takes.
pub use prost_types;

use prost::Message;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    FileDescriptorSet,
};

use crate::server::{Call, CallFuture, Service};
use crate::{Code, Request, Response, ResponseStream, Status, Streaming};

/// The messages and the generated server and client of `grpc.reflection.v1`.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/grpc.reflection.v1.rs"));
}

/// The messages and the generated server and client of `grpc.reflection.v1alpha`.
#[allow(missing_docs, clippy::all)]
pub mod v1alpha {
    include!(concat!(env!("OUT_DIR"), "/grpc.reflection.v1alpha.rs"));
}

use v1::server_reflection_request::MessageRequest;
use v1::server_reflection_response::MessageResponse;

/// A descriptor set given to the [`Builder`] did not decode.
#[derive(Debug)]
pub struct DescriptorError {
    /// Which registration (counting from 0) failed.
    pub index: usize,
    /// What protobuf said.
    pub error: prost::DecodeError,
}

impl fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "file descriptor set #{} does not decode: {}",
            self.index, self.error
        )
    }
}

impl std::error::Error for DescriptorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Collects the descriptor sets to serve; [`Builder::build`] indexes them.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    encoded: Vec<Vec<u8>>,
    decoded: Vec<FileDescriptorSet>,
    /// When set, the services `list_services` names (with reflection's own two).
    listed: Option<BTreeSet<String>>,
}

impl Builder {
    /// Serve the files of an encoded `google.protobuf.FileDescriptorSet`, such as a
    /// generated package's `FILE_DESCRIPTOR_SET`. A file name seen before keeps its first
    /// descriptor.
    pub fn register_encoded_file_descriptor_set(mut self, encoded: &[u8]) -> Builder {
        self.encoded.push(encoded.to_vec());
        self
    }

    /// Serve the files of a decoded descriptor set.
    pub fn register_file_descriptor_set(mut self, set: FileDescriptorSet) -> Builder {
        self.decoded.push(set);
        self
    }

    /// List `service` (fully qualified) in `list_services` answers. Once this is called,
    /// only the services so named are listed, with reflection's own two: for a server
    /// that serves some services of a package, not all (grpc-go lists the services
    /// registered on the server). Without it, every service of every registered file is
    /// listed. Descriptors are served whatever is listed.
    pub fn with_service_name(mut self, service: impl Into<String>) -> Builder {
        self.listed
            .get_or_insert_with(BTreeSet::new)
            .insert(service.into());
        self
    }

    /// Index every registered file, and reflection's own two.
    pub fn build(self) -> Result<Reflection, DescriptorError> {
        let mut index = Index::default();
        let own = [v1::FILE_DESCRIPTOR_SET, v1alpha::FILE_DESCRIPTOR_SET];
        let encoded = self
            .encoded
            .iter()
            .map(Vec::as_slice)
            .chain(own)
            .enumerate();
        for (i, bytes) in encoded {
            let set = FileDescriptorSet::decode(bytes)
                .map_err(|error| DescriptorError { index: i, error })?;
            index.add_set(&set);
        }
        for set in &self.decoded {
            index.add_set(set);
        }
        // Health's descriptors are built in: listed once the server serves health (see
        // `Index::listed`), described whenever asked.
        let listed_before = index.services.clone();
        let health = FileDescriptorSet::decode(crate::health::FILE_DESCRIPTOR_SET)
            .expect("the crate's own health descriptors decode");
        index.add_set(&health);
        index.services = listed_before;
        if let Some(mut listed) = self.listed {
            listed.insert(v1::server_reflection_server::SERVICE_NAME.to_owned());
            listed.insert(v1alpha::server_reflection_server::SERVICE_NAME.to_owned());
            index.services = listed;
            index.explicit = true;
        }
        Ok(Reflection {
            index: Arc::new(index),
        })
    }
}

/// The indexed descriptors; [`Reflection::v1`] and [`Reflection::v1alpha`] are the two
/// services to add to a server, sharing them.
#[derive(Clone)]
pub struct Reflection {
    index: Arc<Index>,
}

impl fmt::Debug for Reflection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reflection")
            .field("services", &self.services())
            .field("files", &self.index.files.len())
            .finish()
    }
}

impl Reflection {
    /// `grpc.reflection.v1.ServerReflection`.
    pub fn v1(&self) -> ReflectionService {
        let handler = Handler {
            index: self.index.clone(),
        };
        ReflectionService {
            index: self.index.clone(),
            inner: Inner::V1(v1::server_reflection_server::ServerReflectionServer::new(
                handler,
            )),
        }
    }

    /// `grpc.reflection.v1alpha.ServerReflection`, the version older clients ask for.
    pub fn v1alpha(&self) -> ReflectionService {
        let handler = Handler {
            index: self.index.clone(),
        };
        ReflectionService {
            index: self.index.clone(),
            inner: Inner::V1alpha(
                v1alpha::server_reflection_server::ServerReflectionServer::new(handler),
            ),
        }
    }

    /// The services a `list_services` request names, sorted: every service of the
    /// registered files, and every service the server serves whose descriptors are known
    /// (health's are built in); only the named ones after [`Builder::with_service_name`].
    pub fn services(&self) -> Vec<String> {
        self.index.listed().into_iter().collect()
    }
}

/// The built reflection is one service for `Server::add_service`: it adds both
/// versions, v1 and v1alpha.
impl Service for Reflection {
    fn name(&self) -> &'static str {
        v1::server_reflection_server::SERVICE_NAME
    }

    fn call(&self, method: &str, call: Call) -> Result<CallFuture, Call> {
        self.v1().call(method, call)
    }

    fn on_serve(&self, services: &[&'static str]) {
        self.index.set_served(services);
    }

    fn into_services(self) -> Vec<Arc<dyn Service>> {
        vec![Arc::new(self.v1()), Arc::new(self.v1alpha())]
    }
}

/// One version of the reflection service, ready for `Server::add_service`.
#[derive(Clone)]
pub struct ReflectionService {
    inner: Inner,
    /// The index the handler answers from, for `on_serve`.
    index: Arc<Index>,
}

#[derive(Clone)]
enum Inner {
    V1(v1::server_reflection_server::ServerReflectionServer<Handler>),
    V1alpha(v1alpha::server_reflection_server::ServerReflectionServer<Handler>),
}

impl fmt::Debug for ReflectionService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReflectionService")
            .field(&self.name())
            .finish()
    }
}

impl ReflectionService {
    /// Start collecting descriptor sets.
    pub fn builder() -> Builder {
        Builder::default()
    }
}

impl Service for ReflectionService {
    fn name(&self) -> &'static str {
        match &self.inner {
            Inner::V1(s) => s.name(),
            Inner::V1alpha(s) => s.name(),
        }
    }

    fn call(&self, method: &str, call: Call) -> Result<CallFuture, Call> {
        match &self.inner {
            Inner::V1(s) => s.call(method, call),
            Inner::V1alpha(s) => s.call(method, call),
        }
    }

    fn file_descriptor_set(&self) -> Option<&'static [u8]> {
        match &self.inner {
            Inner::V1(_) => Some(v1::FILE_DESCRIPTOR_SET),
            Inner::V1alpha(_) => Some(v1alpha::FILE_DESCRIPTOR_SET),
        }
    }

    fn on_serve(&self, services: &[&'static str]) {
        self.index.set_served(services);
    }
}

/// Every file and name the registered sets define.
#[derive(Default)]
struct Index {
    /// File name -> the file.
    files: HashMap<String, File>,
    /// Fully qualified name (no leading dot) of every message, field, oneof, enum, enum
    /// value, service, method and extension -> the file defining it.
    symbols: HashMap<String, String>,
    /// Message type names (extensions can only extend these).
    messages: HashSet<String>,
    /// (extended type, field number) -> the file defining the extension.
    extensions: HashMap<(String, i32), String>,
    /// Extended type -> its extensions' field numbers.
    extension_numbers: HashMap<String, Vec<i32>>,
    /// The services listed, fully qualified.
    services: BTreeSet<String>,
    /// Whether `services` was named by the user (`with_service_name`): then it is the list.
    explicit: bool,
    /// The services the server serving reflection serves (`Service::on_serve`).
    served: std::sync::RwLock<BTreeSet<String>>,
}

struct File {
    encoded: Vec<u8>,
    dependencies: Vec<String>,
}

/// `scope.name`, or `name` at the top of an unnamed package.
fn qualify(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_owned()
    } else {
        format!("{scope}.{name}")
    }
}

impl Index {
    /// What `list_services` answers: the listed services, and the served ones whose
    /// descriptors are known (unless the list was named by the user).
    fn listed(&self) -> BTreeSet<String> {
        let mut listed = self.services.clone();
        if !self.explicit {
            let served = self.served.read().unwrap_or_else(|p| p.into_inner());
            listed.extend(
                served
                    .iter()
                    .filter(|name| self.symbols.contains_key(*name))
                    .cloned(),
            );
        }
        listed
    }

    fn set_served(&self, services: &[&'static str]) {
        let mut served = self.served.write().unwrap_or_else(|p| p.into_inner());
        *served = services.iter().map(|s| s.to_string()).collect();
    }

    fn add_set(&mut self, set: &FileDescriptorSet) {
        for file in &set.file {
            self.add_file(file);
        }
    }

    fn add_file(&mut self, file: &FileDescriptorProto) {
        let name = file.name();
        if self.files.contains_key(name) {
            return;
        }
        let package = file.package();
        for message in &file.message_type {
            self.add_message(name, package, message);
        }
        for e in &file.enum_type {
            self.add_enum(name, package, e);
        }
        for extension in &file.extension {
            self.add_extension(name, package, extension);
        }
        for service in &file.service {
            let full = qualify(package, service.name());
            for method in &service.method {
                self.add_symbol(qualify(&full, method.name()), name);
            }
            self.add_symbol(full.clone(), name);
            self.services.insert(full);
        }
        self.files.insert(
            name.to_owned(),
            File {
                encoded: file.encode_to_vec(),
                dependencies: file.dependency.clone(),
            },
        );
    }

    fn add_symbol(&mut self, symbol: String, file: &str) {
        self.symbols
            .entry(symbol)
            .or_insert_with(|| file.to_owned());
    }

    fn add_message(&mut self, file: &str, scope: &str, message: &DescriptorProto) {
        let full = qualify(scope, message.name());
        for field in &message.field {
            self.add_symbol(qualify(&full, field.name()), file);
        }
        for oneof in &message.oneof_decl {
            self.add_symbol(qualify(&full, oneof.name()), file);
        }
        for nested in &message.nested_type {
            self.add_message(file, &full, nested);
        }
        for e in &message.enum_type {
            self.add_enum(file, &full, e);
        }
        for extension in &message.extension {
            self.add_extension(file, &full, extension);
        }
        self.messages.insert(full.clone());
        self.add_symbol(full, file);
    }

    /// An enum's values are named in the enum's own scope's parent, as protobuf scopes them.
    fn add_enum(&mut self, file: &str, scope: &str, e: &EnumDescriptorProto) {
        for value in &e.value {
            self.add_symbol(qualify(scope, value.name()), file);
        }
        self.add_symbol(qualify(scope, e.name()), file);
    }

    fn add_extension(&mut self, file: &str, scope: &str, extension: &FieldDescriptorProto) {
        self.add_symbol(qualify(scope, extension.name()), file);
        let extended = extension.extendee().trim_start_matches('.').to_owned();
        let key = (extended.clone(), extension.number());
        if let std::collections::hash_map::Entry::Vacant(entry) = self.extensions.entry(key) {
            entry.insert(file.to_owned());
            self.extension_numbers
                .entry(extended)
                .or_default()
                .push(extension.number());
        }
    }

    /// `name` and then, breadth first, each file it imports that this stream has not been
    /// sent yet.
    fn file_with_dependencies(&self, name: &str, sent: &mut HashSet<String>) -> MessageResponse {
        let mut out = Vec::new();
        let mut queue = VecDeque::from([name]);
        while let Some(current) = queue.pop_front() {
            let Some(file) = self.files.get(current) else {
                continue; // an import nobody registered: the client asks for it by name
            };
            if out.is_empty() || !sent.contains(current) {
                sent.insert(current.to_owned());
                out.push(file.encoded.clone());
                queue.extend(file.dependencies.iter().map(String::as_str));
            }
        }
        MessageResponse::FileDescriptorResponse(v1::FileDescriptorResponse {
            file_descriptor_proto: out,
        })
    }

    /// The answer to one request.
    fn answer(
        &self,
        request: &MessageRequest,
        sent: &mut HashSet<String>,
    ) -> Result<MessageResponse, String> {
        match request {
            MessageRequest::FileByFilename(name) => {
                if !self.files.contains_key(name) {
                    return Err(format!("file {name:?} not found"));
                }
                Ok(self.file_with_dependencies(name, sent))
            }
            MessageRequest::FileContainingSymbol(symbol) => match self.symbols.get(symbol) {
                Some(file) => Ok(self.file_with_dependencies(file, sent)),
                None => Err(format!("symbol {symbol:?} not found")),
            },
            MessageRequest::FileContainingExtension(request) => {
                let key = (request.containing_type.clone(), request.extension_number);
                match self.extensions.get(&key) {
                    Some(file) => Ok(self.file_with_dependencies(file, sent)),
                    None => Err(format!(
                        "extension {} of type {:?} not found",
                        request.extension_number, request.containing_type
                    )),
                }
            }
            MessageRequest::AllExtensionNumbersOfType(name) => {
                if !self.messages.contains(name) {
                    return Err(format!("message type {name:?} not found"));
                }
                let mut numbers = self
                    .extension_numbers
                    .get(name)
                    .cloned()
                    .unwrap_or_default();
                numbers.sort_unstable();
                Ok(MessageResponse::AllExtensionNumbersResponse(
                    v1::ExtensionNumberResponse {
                        base_type_name: name.clone(),
                        extension_number: numbers,
                    },
                ))
            }
            MessageRequest::ListServices(_) => {
                let service = self
                    .listed()
                    .into_iter()
                    .map(|name| v1::ServiceResponse { name })
                    .collect();
                Ok(MessageResponse::ListServicesResponse(
                    v1::ListServiceResponse { service },
                ))
            }
        }
    }

    /// The response to `request` on a stream that has been sent `sent`.
    fn respond(
        &self,
        request: v1::ServerReflectionRequest,
        sent: &mut HashSet<String>,
    ) -> Result<v1::ServerReflectionResponse, Status> {
        let Some(question) = &request.message_request else {
            return Err(Status::invalid_argument(
                "reflection request names no question (message_request is unset)",
            ));
        };
        let message_response = match self.answer(question, sent) {
            Ok(answer) => answer,
            Err(error_message) => MessageResponse::ErrorResponse(v1::ErrorResponse {
                error_code: Code::NotFound as i32,
                error_message,
            }),
        };
        Ok(v1::ServerReflectionResponse {
            valid_host: request.host.clone(),
            original_request: Some(request),
            message_response: Some(message_response),
        })
    }
}

/// Serves one version; `M` names the messages of that version.
#[derive(Clone)]
struct Handler {
    index: Arc<Index>,
}

/// A message of one version as the same message of the other (same fields, same numbers:
/// the bytes are the same).
fn transcode<A: Message, B: Message + Default>(message: &A) -> Result<B, Status> {
    B::decode(message.encode_to_vec().as_slice())
        .map_err(|e| Status::internal(format!("reflection versions disagree: {e}")))
}

/// The response stream of one call: each request read is answered in turn; the stream
/// ends when the requests do, or with the first error.
fn answer_stream<Req, Resp>(index: Arc<Index>, requests: Streaming<Req>) -> ResponseStream<Resp>
where
    Req: Message + Default + Send + 'static,
    Resp: Message + Default + Send + 'static,
{
    struct State<Req> {
        index: Arc<Index>,
        requests: Streaming<Req>,
        sent: HashSet<String>,
        done: bool,
    }
    let state = State {
        index,
        requests,
        sent: HashSet::new(),
        done: false,
    };
    Box::pin(futures_util::stream::unfold(
        state,
        |mut state| async move {
            if state.done {
                return None;
            }
            let response = match state.requests.message().await {
                Ok(None) => return None,
                Ok(Some(request)) => transcode(&request)
                    .and_then(|request| state.index.respond(request, &mut state.sent))
                    .and_then(|response| transcode(&response)),
                Err(status) => Err(status),
            };
            state.done = response.is_err();
            Some((response, state))
        },
    ))
}

impl v1::server_reflection_server::ServerReflection for Handler {
    async fn server_reflection_info(
        &self,
        request: Request<Streaming<v1::ServerReflectionRequest>>,
    ) -> Result<Response<ResponseStream<v1::ServerReflectionResponse>>, Status> {
        Ok(Response::new(answer_stream(
            self.index.clone(),
            request.into_message(),
        )))
    }
}

impl v1alpha::server_reflection_server::ServerReflection for Handler {
    async fn server_reflection_info(
        &self,
        request: Request<Streaming<v1alpha::ServerReflectionRequest>>,
    ) -> Result<Response<ResponseStream<v1alpha::ServerReflectionResponse>>, Status> {
        Ok(Response::new(answer_stream(
            self.index.clone(),
            request.into_message(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        let reflection = ReflectionService::builder()
            .register_encoded_file_descriptor_set(crate::health::FILE_DESCRIPTOR_SET)
            .build()
            .unwrap();
        Arc::try_unwrap(reflection.index).ok().unwrap()
    }

    fn files(response: MessageResponse) -> Vec<String> {
        let MessageResponse::FileDescriptorResponse(files) = response else {
            panic!("not files: {response:?}");
        };
        files
            .file_descriptor_proto
            .iter()
            .map(|f| {
                FileDescriptorProto::decode(f.as_slice())
                    .unwrap()
                    .name()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn every_kind_of_symbol_finds_its_file() {
        let index = index();
        let health = "grpc/health/v1/health.proto";
        for symbol in [
            "grpc.health.v1.Health",
            "grpc.health.v1.Health.Watch",
            "grpc.health.v1.HealthCheckRequest",
            "grpc.health.v1.HealthCheckRequest.service",
            "grpc.health.v1.HealthCheckResponse.ServingStatus",
            "grpc.health.v1.HealthCheckResponse.SERVING",
            "grpc.health.v1.HealthListResponse.StatusesEntry",
        ] {
            assert_eq!(index.symbols.get(symbol).map(String::as_str), Some(health));
        }
        let services: Vec<&str> = index.services.iter().map(String::as_str).collect();
        assert_eq!(
            services,
            [
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ]
        );
    }

    #[test]
    fn a_file_is_sent_again_when_asked_for_but_an_import_only_once() {
        let mut index = Index::default();
        let file = |name: &str, deps: &[&str]| FileDescriptorProto {
            name: Some(name.to_owned()),
            package: Some("p".to_owned()),
            dependency: deps.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        };
        index.add_set(&FileDescriptorSet {
            file: vec![
                file("base.proto", &[]),
                file("mid.proto", &["base.proto"]),
                file("top.proto", &["mid.proto", "base.proto", "missing.proto"]),
            ],
        });
        let mut sent = HashSet::new();
        let first = index.file_with_dependencies("top.proto", &mut sent);
        assert_eq!(files(first), ["top.proto", "mid.proto", "base.proto"]);
        let again = index.file_with_dependencies("mid.proto", &mut sent);
        assert_eq!(files(again), ["mid.proto"]);
    }

    #[test]
    fn unknown_names_are_not_found_and_an_empty_request_is_invalid() {
        let index = index();
        let mut sent = HashSet::new();
        let request = |q: MessageRequest| v1::ServerReflectionRequest {
            host: "h".to_owned(),
            message_request: Some(q),
        };
        for question in [
            MessageRequest::FileByFilename("nope.proto".to_owned()),
            MessageRequest::FileContainingSymbol("no.Such".to_owned()),
            MessageRequest::AllExtensionNumbersOfType("no.Such".to_owned()),
            MessageRequest::FileContainingExtension(v1::ExtensionRequest {
                containing_type: "grpc.health.v1.HealthCheckRequest".to_owned(),
                extension_number: 100,
            }),
        ] {
            let response = index.respond(request(question), &mut sent).unwrap();
            assert_eq!(response.valid_host, "h");
            let Some(MessageResponse::ErrorResponse(e)) = response.message_response else {
                panic!("not an error: {response:?}");
            };
            assert_eq!(e.error_code, Code::NotFound as i32);
            assert!(e.error_message.contains("not found"), "{}", e.error_message);
        }
        let empty = v1::ServerReflectionRequest::default();
        let status = index.respond(empty, &mut sent).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    }

    #[test]
    fn named_services_restrict_the_list_to_them_and_reflection() {
        let reflection = ReflectionService::builder()
            .register_encoded_file_descriptor_set(crate::health::FILE_DESCRIPTOR_SET)
            .with_service_name("some.Other")
            .build()
            .unwrap();
        assert_eq!(
            reflection.services(),
            [
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
                "some.Other",
            ]
        );
        // Descriptors are still served.
        assert!(
            reflection
                .index
                .symbols
                .contains_key("grpc.health.v1.Health")
        );
    }

    #[test]
    fn health_is_listed_once_the_server_serves_it_without_registering_its_descriptors() {
        let reflection = ReflectionService::builder().build().unwrap();
        let own = [
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ];
        assert_eq!(reflection.services(), own);
        // Health is described even before it is listed.
        assert!(
            reflection
                .index
                .symbols
                .contains_key("grpc.health.v1.Health")
        );
        let services = reflection.clone().into_services();
        let names: Vec<&'static str> = services.iter().map(|s| s.name()).collect();
        assert_eq!(names, own);
        services[1].on_serve(&["grpc.health.v1.Health", own[0], own[1], "no.Descriptors"]);
        assert_eq!(
            reflection.services(),
            [
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ]
        );
    }

    #[test]
    fn a_bad_descriptor_set_is_an_error_naming_it() {
        let error = ReflectionService::builder()
            .register_encoded_file_descriptor_set(crate::health::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(&[0x0a, 0xff])
            .build()
            .unwrap_err();
        assert_eq!(error.index, 1);
    }
}
