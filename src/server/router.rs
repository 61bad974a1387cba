//! The dispatcher: checks that a request is gRPC, reads its deadline, and routes
//! `:path` `/package.Service/Method` to the service that owns it.

use std::sync::Arc;

use bytes::Bytes;
use h2::RecvStream;
use h2::server::SendResponse;
use http::{Method, StatusCode};

use super::call::{
    Call, CallFuture, Negotiation, Settings, send_http_error, send_trailers_only,
    send_trailers_only_with,
};
use crate::compression::{self, AcceptEncodings, Encoding, UnsupportedEncoding};
use crate::metadata;
use crate::status::Status;

/// A gRPC service as the server sees it: a name and a way to start each of its methods.
/// Generated code implements it (`GrpcDemoServer<T>` for a trait `GrpcDemo`).
pub trait Service: Send + Sync + 'static {
    /// The fully qualified service name, e.g. `demo.GRPCDemo`.
    fn name(&self) -> &'static str;

    /// Start `method` (the part of the path after the service name) for `call`, or hand
    /// the call back when the service has no such method.
    #[allow(clippy::result_large_err)] // moved once per call, on the error path only
    fn call(&self, method: &str, call: Call) -> Result<CallFuture, Call>;
}

/// The services of a server, looked up by name.
#[derive(Clone, Default)]
pub(crate) struct Router {
    services: Vec<Arc<dyn Service>>,
}

impl Router {
    pub(crate) fn add(&mut self, service: Arc<dyn Service>) {
        self.services.retain(|s| s.name() != service.name());
        self.services.push(service);
    }

    /// Check and route one request. Requests answered at once (not gRPC, malformed, no
    /// such method) give `None`; others give the call to run.
    pub(crate) fn dispatch(
        &self,
        request: http::Request<RecvStream>,
        respond: SendResponse<Bytes>,
        settings: Settings,
    ) -> Option<CallFuture> {
        let (head, body) = request.into_parts();
        if head.method != Method::POST {
            send_http_error(respond, StatusCode::METHOD_NOT_ALLOWED);
            return None;
        }
        let is_grpc = head
            .headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        if !is_grpc {
            send_http_error(respond, StatusCode::UNSUPPORTED_MEDIA_TYPE);
            return None;
        }
        let request_encoding = match head.headers.get("grpc-encoding") {
            None => None,
            Some(name) => match Encoding::parse(name.as_bytes()) {
                Ok(encoding) => encoding,
                Err(UnsupportedEncoding) => {
                    let status = Status::unimplemented(format!(
                        "message encoding {:?} is not supported",
                        String::from_utf8_lossy(name.as_bytes())
                    ));
                    // Tell the client what we can read.
                    let accept = [("grpc-accept-encoding", compression::ACCEPT_ENCODING)];
                    send_trailers_only_with(respond, status, &accept);
                    return None;
                }
            },
        };
        let accept = head
            .headers
            .get("grpc-accept-encoding")
            .map_or(AcceptEncodings::NONE, |v| {
                AcceptEncodings::parse(v.as_bytes())
            });
        let timeout = match head.headers.get("grpc-timeout") {
            None => None,
            Some(value) => match metadata::parse_timeout(value.as_bytes()) {
                Some(t) => Some(t),
                None => {
                    let status = Status::internal(format!(
                        "malformed grpc-timeout header {:?}",
                        String::from_utf8_lossy(value.as_bytes())
                    ));
                    send_trailers_only(respond, status);
                    return None;
                }
            },
        };
        if let Some(name) = metadata::invalid_bin(&head.headers) {
            let status = Status::internal(format!("invalid base64 in binary metadata {name}"));
            send_trailers_only(respond, status);
            return None;
        }
        let path = head.uri.path();
        let (service_name, method) = match path.strip_prefix('/').and_then(|p| p.split_once('/')) {
            Some(parts) => parts,
            None => {
                send_trailers_only(
                    respond,
                    Status::unimplemented(format!("malformed method path {path:?}")),
                );
                return None;
            }
        };
        let Some(service) = self.services.iter().find(|s| s.name() == service_name) else {
            let status = Status::unimplemented(format!("unknown service {service_name}"));
            send_trailers_only(respond, status);
            return None;
        };
        let negotiation = Negotiation {
            request_encoding,
            accept,
        };
        let call = Call::new(head.headers, body, respond, timeout, settings, negotiation);
        match service.call(method, call) {
            Ok(future) => Some(future),
            Err(call) => {
                call.reject(Status::unimplemented(format!(
                    "unknown method {method} for service {service_name}"
                )));
                None
            }
        }
    }
}
