//! What one call sends and expects: the service and method for each call kind, the request
//! messages encoded once and shared by every call, and a response type that checks the wire
//! form and counts bytes without building the message.

use bytes::{Buf, BufMut, Bytes};
use h2grpc::http::uri::PathAndQuery;
use h2grpc::prost::encoding::{DecodeContext, WireType, key_len, skip_field};
use h2grpc::prost::{DecodeError, Message};
use h2grpc_demo::pb as demo;
use h2grpc_interop::pb as testing;

/// The `request_data` of the official Python client (and of tonic-demo-client and the h2load
/// request file), so that every load generator sends the same 27-byte request.
const OFFICIAL_REQUEST_DATA: &str = "called by Python client";

/// The four call kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// One request, one response.
    Unary,
    /// `--messages` requests on one call, one response.
    ClientStream,
    /// One request, a stream of responses.
    ServerStream,
    /// Requests and responses on one call.
    Bidi,
}

impl Kind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Unary => "unary",
            Kind::ClientStream => "client-stream",
            Kind::ServerStream => "server-stream",
            Kind::Bidi => "bidi",
        }
    }
}

/// The service the calls go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    /// `demo.GRPCDemo` (proto/demo.proto): served by our demo-server, the tonic peer and, for
    /// unary, the bare-h2 ceiling. The response sizes are the server's own; `--payload` sizes
    /// `request_data`; the server-streaming and bidi methods answer five messages per call.
    Demo,
    /// `grpc.testing.TestService` (the interop suite): `--payload` bytes each way, and
    /// `--messages` responses per server-streaming call.
    Test,
}

impl Service {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Service::Demo => "demo.GRPCDemo",
            Service::Test => "grpc.testing.TestService",
        }
    }
}

/// A message encoded once; encoding it again copies nothing (cloning it bumps a count).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Encoded(pub Bytes);

impl Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}

/// A response whose fields are checked (valid protobuf wire form) and skipped, not stored;
/// it keeps only its encoded length.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Skipped {
    /// Bytes of the encoded message.
    pub len: usize,
}

impl Message for Skipped {
    fn encode_raw(&self, _buf: &mut impl BufMut) {}

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let before = buf.remaining();
        skip_field(wire_type, tag, buf, ctx)?;
        self.len += key_len(tag) + before - buf.remaining();
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        0
    }

    fn clear(&mut self) {
        self.len = 0;
    }
}

/// Everything a call needs, built once before the run.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The service called.
    pub service: Service,
    /// The call kind.
    pub kind: Kind,
    /// The method's path.
    pub path: PathAndQuery,
    /// The request message (for streaming kinds, each of them).
    pub request: Encoded,
    /// Requests per client-streaming or bidi call; 0: until the run ends.
    pub messages: u64,
    /// Pause between two requests of a streaming call.
    pub interval: std::time::Duration,
}

impl Workload {
    /// The workload of `kind` on `service`, requests of `payload` bytes (demo, by default:
    /// the official client's request).
    pub fn new(service: Service, kind: Kind, payload: Option<usize>, messages: u64) -> Workload {
        let path = match (service, kind) {
            (Service::Demo, Kind::Unary) => "/demo.GRPCDemo/SimpleMethod",
            (Service::Demo, Kind::ClientStream) => "/demo.GRPCDemo/ClientStreamingMethod",
            (Service::Demo, Kind::ServerStream) => "/demo.GRPCDemo/ServerStreamingMethod",
            (Service::Demo, Kind::Bidi) => "/demo.GRPCDemo/BidirectionalStreamingMethod",
            (Service::Test, Kind::Unary) => "/grpc.testing.TestService/UnaryCall",
            (Service::Test, Kind::ClientStream) => "/grpc.testing.TestService/StreamingInputCall",
            (Service::Test, Kind::ServerStream) => "/grpc.testing.TestService/StreamingOutputCall",
            (Service::Test, Kind::Bidi) => "/grpc.testing.TestService/FullDuplexCall",
        };
        let request_data =
            payload.map_or_else(|| OFFICIAL_REQUEST_DATA.to_string(), |n| "x".repeat(n));
        let payload = payload.unwrap_or(0);
        let size = i32::try_from(payload).unwrap_or(i32::MAX);
        let body = vec![0u8; payload];
        let bytes = match (service, kind) {
            (Service::Demo, _) => demo::Request {
                client_id: 1,
                request_data,
            }
            .encode_to_vec(),
            (Service::Test, Kind::Unary) => testing::SimpleRequest {
                response_size: size,
                payload: Some(testing::Payload {
                    body,
                    ..Default::default()
                }),
                ..Default::default()
            }
            .encode_to_vec(),
            (Service::Test, Kind::ClientStream) => testing::StreamingInputCallRequest {
                payload: Some(testing::Payload {
                    body,
                    ..Default::default()
                }),
                ..Default::default()
            }
            .encode_to_vec(),
            (Service::Test, Kind::ServerStream) => {
                // One small request asking for `messages` responses of `payload` bytes.
                let count = usize::try_from(messages.max(1)).unwrap_or(usize::MAX);
                testing::StreamingOutputCallRequest {
                    response_parameters: vec![
                        testing::ResponseParameters {
                            size,
                            ..Default::default()
                        };
                        count
                    ],
                    ..Default::default()
                }
                .encode_to_vec()
            }
            (Service::Test, Kind::Bidi) => testing::StreamingOutputCallRequest {
                response_parameters: vec![testing::ResponseParameters {
                    size,
                    ..Default::default()
                }],
                payload: Some(testing::Payload {
                    body,
                    ..Default::default()
                }),
                ..Default::default()
            }
            .encode_to_vec(),
        };
        Workload {
            service,
            kind,
            path: PathAndQuery::from_static(path),
            request: Encoded(Bytes::from(bytes)),
            messages,
            interval: std::time::Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_message_round_trips_through_prost() {
        let work = Workload::new(Service::Demo, Kind::Unary, Some(10), 1);
        let wire = work.request.encode_to_vec();
        let back = demo::Request::decode(wire.as_slice()).expect("valid");
        assert_eq!(back.request_data, "x".repeat(10));
        assert_eq!(back.client_id, 1);
    }

    #[test]
    fn default_demo_request_is_the_official_clients() {
        // shared/peers/demo-request.grpc: a 5-byte prefix and these 27 bytes.
        let work = Workload::new(Service::Demo, Kind::Unary, None, 1);
        let mut expected = vec![0x08, 0x01, 0x12, 23];
        expected.extend_from_slice(b"called by Python client");
        assert_eq!(work.request.0.as_ref(), expected.as_slice());
    }

    #[test]
    fn skipped_rejects_a_truncated_field() {
        // Field 2, length-delimited, claims 5 bytes but carries 2.
        let bad = [0x12u8, 5, b'a', b'b'];
        assert!(Skipped::decode(&bad[..]).is_err());
        let good = demo::Response {
            server_id: 1,
            response_data: "ok".into(),
        }
        .encode_to_vec();
        let skipped = Skipped::decode(good.as_slice()).expect("valid");
        assert_eq!(skipped.len, good.len());
    }

    #[test]
    fn server_stream_request_asks_for_messages_responses() {
        let work = Workload::new(Service::Test, Kind::ServerStream, Some(64), 7);
        let req =
            testing::StreamingOutputCallRequest::decode(work.request.0.as_ref()).expect("valid");
        assert_eq!(req.response_parameters.len(), 7);
        assert!(req.response_parameters.iter().all(|p| p.size == 64));
    }
}
