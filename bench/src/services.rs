//! The two services `h2grpc-bench` knows without descriptors: `demo.GRPCDemo` and
//! `grpc.testing.TestService`, each call kind mapped to its method and its request encoded
//! once from the generated messages (the engine itself only sees bytes).

use bytes::Bytes;
use h2grpc::http::uri::PathAndQuery;
use h2grpc::prost::Message;
use h2grpc_bench::{Kind, RawMessage, Workload};
use h2grpc_demo::pb as demo;
use h2grpc_interop::pb as testing;

/// The `request_data` of the official Python client (and of tonic-demo-client and the h2load
/// request file), so that every load generator sends the same 27-byte request.
const OFFICIAL_REQUEST_DATA: &str = "called by Python client";

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

/// The workload of `kind` on `service`, requests of `payload` bytes (demo, by default: the
/// official client's request).
pub fn workload(service: Service, kind: Kind, payload: Option<usize>, messages: u64) -> Workload {
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
    let request_data = payload.map_or_else(|| OFFICIAL_REQUEST_DATA.to_string(), |n| "x".repeat(n));
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
    Workload::new(
        service.name(),
        kind,
        PathAndQuery::from_static(path),
        vec![RawMessage(Bytes::from(bytes))],
        messages,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_request_carries_the_payload_asked_for() {
        let work = workload(Service::Demo, Kind::Unary, Some(10), 1);
        let back = demo::Request::decode(work.first().0.as_ref()).expect("valid");
        assert_eq!(back.request_data, "x".repeat(10));
        assert_eq!(back.client_id, 1);
    }

    #[test]
    fn default_demo_request_is_the_official_clients() {
        // shared/peers/demo-request.grpc: a 5-byte prefix and these 27 bytes.
        let work = workload(Service::Demo, Kind::Unary, None, 1);
        let mut expected = vec![0x08, 0x01, 0x12, 23];
        expected.extend_from_slice(b"called by Python client");
        assert_eq!(work.first().0.as_ref(), expected.as_slice());
    }

    #[test]
    fn a_demo_response_passes_as_skipped() {
        let good = demo::Response {
            server_id: 1,
            response_data: "ok".into(),
        }
        .encode_to_vec();
        let skipped = h2grpc_bench::Skipped::decode(good.as_slice()).expect("valid");
        assert_eq!(skipped.len, good.len());
    }

    #[test]
    fn server_stream_request_asks_for_messages_responses() {
        let work = workload(Service::Test, Kind::ServerStream, Some(64), 7);
        let req =
            testing::StreamingOutputCallRequest::decode(work.first().0.as_ref()).expect("valid");
        assert_eq!(req.response_parameters.len(), 7);
        assert!(req.response_parameters.iter().all(|p| p.size == 64));
    }
}
