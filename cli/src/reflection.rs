//! The server-reflection client: one `ServerReflectionInfo` stream per command,
//! `grpc.reflection.v1` first and `grpc.reflection.v1alpha` when the server answers
//! UNIMPLEMENTED. The clients are the library's (`h2grpc::reflection::{v1, v1alpha}`,
//! generated from the official protos by h2grpc's own generator); the two versions'
//! messages are the same on the wire.

use std::time::Duration;

use futures_util::stream;
use h2grpc::reflection::{v1, v1alpha};
use h2grpc::{Channel, Code, Metadata, Request, Status, Streaming};
use prost::Message;
use prost_types::FileDescriptorProto;
use tokio::sync::mpsc;

use crate::failure::Failure;

use v1::server_reflection_request::MessageRequest;
use v1::server_reflection_response::MessageResponse;
use v1::{ServerReflectionRequest, ServerReflectionResponse};

/// Which reflection service answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V1Alpha,
}

impl Version {
    pub fn service(self) -> &'static str {
        match self {
            Version::V1 => "grpc.reflection.v1.ServerReflection",
            Version::V1Alpha => "grpc.reflection.v1alpha.ServerReflection",
        }
    }
}

enum Responses {
    V1(Streaming<ServerReflectionResponse>),
    V1Alpha(Streaming<v1alpha::ServerReflectionResponse>),
}

/// An open reflection stream: each question is one request and one response.
pub struct Reflection {
    version: Version,
    requests: RequestSender,
    responses: Responses,
    /// The answer to the request that opened the stream, not yet taken.
    first: Option<ServerReflectionResponse>,
}

enum RequestSender {
    V1(mpsc::UnboundedSender<ServerReflectionRequest>),
    V1Alpha(mpsc::UnboundedSender<v1alpha::ServerReflectionRequest>),
}

impl Reflection {
    /// Opens the stream with a `list_services` request (v1, else v1alpha).
    pub async fn open(
        channel: &Channel,
        metadata: &Metadata,
        timeout: Option<Duration>,
    ) -> Result<Reflection, Failure> {
        let first = request(MessageRequest::ListServices(String::new()));
        match Reflection::open_v1(channel, metadata, timeout, first.clone()).await {
            Err(status) if status.code() == Code::Unimplemented => {}
            Err(status) => return Err(reflection_failed(status)),
            Ok(session) => return Ok(session),
        }
        Reflection::open_v1alpha(channel, metadata, timeout, first)
            .await
            .map_err(|status| {
                if status.code() == Code::Unimplemented {
                    Failure::Other(format!(
                        "Server does not support the reflection API (neither {} nor {}): {}; \
                         give --proto or --protoset",
                        Version::V1.service(),
                        Version::V1Alpha.service(),
                        status.message()
                    ))
                } else {
                    reflection_failed(status)
                }
            })
    }

    async fn open_v1(
        channel: &Channel,
        metadata: &Metadata,
        timeout: Option<Duration>,
        first: ServerReflectionRequest,
    ) -> Result<Reflection, Status> {
        let (tx, rx) = mpsc::unbounded_channel();
        // Queued before the call: a server may send its headers only with its first answer.
        let _ = tx.send(first);
        let client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
        let response = client
            .server_reflection_info(streaming_request(metadata, timeout, rx))
            .await?;
        let mut responses = response.into_message();
        let first = responses
            .message()
            .await?
            .ok_or_else(|| Status::unknown("the reflection stream ended without an answer"))?;
        Ok(Reflection {
            version: Version::V1,
            requests: RequestSender::V1(tx),
            responses: Responses::V1(responses),
            first: Some(first),
        })
    }

    async fn open_v1alpha(
        channel: &Channel,
        metadata: &Metadata,
        timeout: Option<Duration>,
        first: ServerReflectionRequest,
    ) -> Result<Reflection, Status> {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(transcode(&first)?);
        let client =
            v1alpha::server_reflection_client::ServerReflectionClient::new(channel.clone());
        let response = client
            .server_reflection_info(streaming_request(metadata, timeout, rx))
            .await?;
        let mut responses = response.into_message();
        let first = responses
            .message()
            .await?
            .ok_or_else(|| Status::unknown("the reflection stream ended without an answer"))?;
        Ok(Reflection {
            version: Version::V1Alpha,
            requests: RequestSender::V1Alpha(tx),
            responses: Responses::V1Alpha(responses),
            first: Some(transcode(&first)?),
        })
    }

    /// The version that answered.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The fully qualified names of the services the server lists.
    pub async fn list_services(&mut self) -> Result<Vec<String>, Failure> {
        let answer = match self.first.take() {
            Some(answer) => answer,
            None => {
                self.ask(MessageRequest::ListServices(String::new()))
                    .await?
            }
        };
        match answer.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                Ok(list.service.into_iter().map(|s| s.name).collect())
            }
            other => Err(unexpected("list_services", other)),
        }
    }

    /// The file that defines `symbol` (and whichever of its dependencies the server adds).
    pub async fn file_containing_symbol(
        &mut self,
        symbol: &str,
    ) -> Result<Vec<FileDescriptorProto>, Failure> {
        let answer = self
            .ask(MessageRequest::FileContainingSymbol(symbol.to_string()))
            .await?;
        files(answer, &format!("symbol {symbol:?}"))
    }

    /// The file named `name` (and whichever of its dependencies the server adds).
    pub async fn file_by_filename(
        &mut self,
        name: &str,
    ) -> Result<Vec<FileDescriptorProto>, Failure> {
        let answer = self
            .ask(MessageRequest::FileByFilename(name.to_string()))
            .await?;
        files(answer, &format!("file {name:?}"))
    }

    async fn ask(&mut self, question: MessageRequest) -> Result<ServerReflectionResponse, Failure> {
        // A list_services answer left over from opening is dropped: each ask reads its own.
        self.first = None;
        let message = request(question);
        let sent = match &self.requests {
            RequestSender::V1(tx) => tx.send(message).is_ok(),
            RequestSender::V1Alpha(tx) => tx
                .send(transcode(&message).map_err(reflection_failed)?)
                .is_ok(),
        };
        if !sent {
            return Err(Failure::Other(
                "the reflection stream is closed".to_string(),
            ));
        }
        let answer = match &mut self.responses {
            Responses::V1(s) => s.message().await,
            Responses::V1Alpha(s) => match s.message().await {
                Ok(Some(m)) => transcode(&m).map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            },
        };
        match answer {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => Err(Failure::Other(
                "the reflection stream ended before its answer".to_string(),
            )),
            Err(status) => Err(reflection_failed(status)),
        }
    }
}

fn request(question: MessageRequest) -> ServerReflectionRequest {
    ServerReflectionRequest {
        host: String::new(),
        message_request: Some(question),
    }
}

fn streaming_request<M: Send + 'static>(
    metadata: &Metadata,
    timeout: Option<Duration>,
    rx: mpsc::UnboundedReceiver<M>,
) -> Request<impl futures_util::Stream<Item = M> + Send + 'static> {
    let requests = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    Request::from_parts(metadata.clone(), requests, timeout)
}

/// The same message in the other version's type: the two protos agree field for field.
fn transcode<A: Message, B: Message + Default>(message: &A) -> Result<B, Status> {
    B::decode(message.encode_to_vec().as_slice())
        .map_err(|e| Status::internal(format!("reflection message does not transcode: {e}")))
}

fn files(
    answer: ServerReflectionResponse,
    what: &str,
) -> Result<Vec<FileDescriptorProto>, Failure> {
    match answer.message_response {
        Some(MessageResponse::FileDescriptorResponse(found)) => found
            .file_descriptor_proto
            .iter()
            .map(|bytes| {
                FileDescriptorProto::decode(bytes.as_slice()).map_err(|e| {
                    Failure::Other(format!(
                        "the server's descriptor for {what} does not decode: {e}"
                    ))
                })
            })
            .collect(),
        Some(MessageResponse::ErrorResponse(e)) => Err(Failure::NotFound(format!(
            "{}: {}",
            h2grpc::Code::from_i32(e.error_code),
            e.error_message
        ))),
        other => Err(unexpected(what, other)),
    }
}

fn unexpected(what: &str, answer: Option<MessageResponse>) -> Failure {
    let got = match answer {
        None => "nothing".to_string(),
        Some(MessageResponse::ErrorResponse(e)) => format!(
            "error {}: {}",
            h2grpc::Code::from_i32(e.error_code),
            e.error_message
        ),
        Some(MessageResponse::FileDescriptorResponse(_)) => "file descriptors".to_string(),
        Some(MessageResponse::ListServicesResponse(_)) => "a service list".to_string(),
        Some(MessageResponse::AllExtensionNumbersResponse(_)) => "extension numbers".to_string(),
    };
    Failure::Other(format!("reflection answered {what} with {got}"))
}

fn reflection_failed(status: Status) -> Failure {
    Failure::Other(format!(
        "Failed to query server reflection: {}",
        crate::failure::go_error(&status)
    ))
}
