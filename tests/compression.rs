//! Compression: gzip and deflate both ways, per call and per server default,
//! `grpc-encoding` / `grpc-accept-encoding` negotiation, the per-message flag, and
//! decompression held to the receive limit.

mod common;

use std::net::SocketAddr;

use common::{bounded, grpc_head, raw_request, req};
use futures_util::stream;
use common::demo::grpc_demo_client::GrpcDemoClient;
use common::demo::grpc_demo_server::{GrpcDemo, GrpcDemoServer};
use common::demo::{Request as DemoRequest, Response as DemoResponse};
use h2grpc::{
    Code, CompressionSwitch, Encoding, Request, Response, ResponseStream, Server, Status, Streaming,
};

/// Replies say whether each request arrived compressed; `gzip`/`deflate` in the request
/// text ask for a compressed reply; `alternate:N` streams N replies, compressing every other one.
struct Compressing;

fn encoding_in(text: &str) -> Option<Encoding> {
    if text.contains("gzip") {
        Some(Encoding::Gzip)
    } else if text.contains("deflate") {
        Some(Encoding::Deflate)
    } else {
        None
    }
}

fn reply(text: String) -> DemoResponse {
    DemoResponse {
        server_id: 1,
        response_data: text,
    }
}

impl GrpcDemo for Compressing {
    async fn simple_method(
        &self,
        request: Request<DemoRequest>,
    ) -> Result<Response<DemoResponse>, Status> {
        let compressed = request.message_compressed();
        let text = request.message().request_data.clone();
        let mut response = Response::new(reply(format!(
            "compressed={compressed} {}",
            "x".repeat(1000)
        )));
        response.set_compression(encoding_in(&text));
        Ok(response)
    }

    async fn client_streaming_method(
        &self,
        request: Request<Streaming<DemoRequest>>,
    ) -> Result<Response<DemoResponse>, Status> {
        let mut requests = request.into_message();
        let mut flags = Vec::new();
        while requests.message().await?.is_some() {
            flags.push(if requests.last_message_compressed() {
                "c"
            } else {
                "u"
            });
        }
        Ok(Response::new(reply(flags.concat())))
    }

    async fn server_streaming_method(
        &self,
        request: Request<DemoRequest>,
    ) -> Result<Response<ResponseStream<DemoResponse>>, Status> {
        let text = request.message().request_data.clone();
        let n: usize = text.trim_start_matches("alternate:").parse().unwrap_or(0);
        let switch = CompressionSwitch::new(true);
        let toggle = switch.clone();
        let replies = stream::iter((0..n).map(move |i| {
            // Decided just before each message goes out: compress the even ones.
            toggle.set(i % 2 == 0);
            Ok(reply(format!("{i} {}", "y".repeat(500))))
        }));
        let mut response = Response::new(Box::pin(replies) as ResponseStream<_>);
        response.set_compression(Some(Encoding::Gzip));
        response.set_compression_switch(switch);
        Ok(response)
    }

    async fn bidirectional_streaming_method(
        &self,
        _request: Request<Streaming<DemoRequest>>,
    ) -> Result<Response<ResponseStream<DemoResponse>>, Status> {
        Err(Status::unimplemented("not used here"))
    }
}

async fn start(server: Server) -> SocketAddr {
    let listening = server
        .add_service(GrpcDemoServer::new(Compressing))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listening.local_addrs()[0];
    tokio::spawn(listening.serve_with_shutdown(std::future::pending()));
    addr
}

async fn client(addr: SocketAddr) -> GrpcDemoClient {
    GrpcDemoClient::connect(addr.to_string()).await.unwrap()
}

#[tokio::test]
async fn compressed_requests_and_responses_round_trip_with_both_encodings() {
    bounded(async {
        let addr = start(Server::new()).await;
        let client = client(addr).await;
        for encoding in [Encoding::Gzip, Encoding::Deflate] {
            let request = Request::new(req(encoding.as_str())).with_compression(encoding);
            let response = client.simple_method(request).await.unwrap();
            assert!(
                response
                    .message()
                    .response_data
                    .starts_with("compressed=true"),
                "{encoding:?}"
            );
            assert!(
                response.message_compressed(),
                "reply compressed with {encoding:?}"
            );
            assert_eq!(
                response.metadata().get("grpc-encoding"),
                Some(encoding.as_str())
            );
        }
        let plain = client.simple_method(req("plain")).await.unwrap();
        assert!(
            plain
                .message()
                .response_data
                .starts_with("compressed=false")
        );
        assert!(!plain.message_compressed());
    })
    .await
}

#[tokio::test]
async fn the_server_never_compresses_for_a_client_that_did_not_advertise_the_encoding() {
    bounded(async {
        let addr = start(Server::new()).await;
        // A raw client with no grpc-accept-encoding asks for a gzip reply.
        let head = grpc_head(addr, "/demo.GRPCDemo/SimpleMethod")
            .body(())
            .unwrap();
        let response = raw_request(addr, head, &common::lpm(&req("gzip"))).await;
        assert_eq!(response.grpc_status(), Some(Code::Ok));
        assert!(response.headers.get("grpc-encoding").is_none());
        assert_eq!(response.body[0], 0, "message flag: not compressed");
        // The same with grpc-accept-encoding: deflate only.
        let head = grpc_head(addr, "/demo.GRPCDemo/SimpleMethod")
            .header("grpc-accept-encoding", "deflate")
            .body(())
            .unwrap();
        let response = raw_request(addr, head, &common::lpm(&req("gzip"))).await;
        assert_eq!(response.body[0], 0);
        let head = grpc_head(addr, "/demo.GRPCDemo/SimpleMethod")
            .header("grpc-accept-encoding", "gzip")
            .body(())
            .unwrap();
        let response = raw_request(addr, head, &common::lpm(&req("gzip"))).await;
        assert_eq!(response.headers.get("grpc-encoding").unwrap(), "gzip");
        assert_eq!(response.body[0], 1);
    })
    .await
}

#[tokio::test]
async fn a_server_default_compresses_replies_the_client_accepts() {
    bounded(async {
        let addr = start(Server::new().send_compression(Some(Encoding::Deflate))).await;
        let response = client(addr)
            .await
            .simple_method(req("plain"))
            .await
            .unwrap();
        assert!(response.message_compressed());
        assert_eq!(response.metadata().get("grpc-encoding"), Some("deflate"));
    })
    .await
}

#[tokio::test]
async fn the_compressed_flag_is_per_message_both_ways() {
    bounded(async {
        let addr = start(Server::new()).await;
        let client = client(addr).await;
        let switch = CompressionSwitch::new(true);
        let toggle = switch.clone();
        let requests = stream::iter((0..4).map(move |i| {
            toggle.set(i != 1);
            req(format!("{i}"))
        }));
        let mut request = Request::new(requests).with_compression(Encoding::Gzip);
        request.set_compression_switch(switch);
        let response = client.client_streaming_method(request).await.unwrap();
        assert_eq!(response.message().response_data, "cucc");

        let mut replies = client
            .server_streaming_method(req("alternate:4"))
            .await
            .unwrap()
            .into_message();
        let mut flags = Vec::new();
        while replies.message().await.unwrap().is_some() {
            flags.push(replies.last_message_compressed());
        }
        assert_eq!(flags, [true, false, true, false]);
    })
    .await
}

#[tokio::test]
async fn a_small_compressed_message_inflating_past_the_limit_is_resource_exhausted() {
    bounded(async {
        let addr = start(Server::new().max_receive_message_size(64 * 1024)).await;
        // 1 MiB of zeros in a request field compresses to about a kilobyte.
        let bomb = DemoRequest {
            client_id: 1,
            request_data: "\0".repeat(1024 * 1024),
        };
        let wire = h2grpc::framing::encode_with(&bomb, usize::MAX, Some(Encoding::Gzip)).unwrap();
        assert!(wire.len() < 64 * 1024, "{} bytes on the wire", wire.len());
        let head = grpc_head(addr, "/demo.GRPCDemo/SimpleMethod")
            .header("grpc-encoding", "gzip")
            .body(())
            .unwrap();
        let response = raw_request(addr, head, &wire).await;
        assert_eq!(
            response.grpc_status(),
            Some(Code::ResourceExhausted),
            "{}",
            response.grpc_message()
        );
        // And the server still serves.
        assert!(client(addr).await.simple_method(req("plain")).await.is_ok());
    })
    .await
}

#[tokio::test]
async fn a_compressed_flag_without_a_negotiated_encoding_is_internal() {
    bounded(async {
        let addr = start(Server::new()).await;
        let wire =
            h2grpc::framing::encode_with(&req("x"), usize::MAX, Some(Encoding::Gzip)).unwrap();
        let head = grpc_head(addr, "/demo.GRPCDemo/SimpleMethod")
            .body(())
            .unwrap();
        let response = raw_request(addr, head, &wire).await;
        assert_eq!(response.grpc_status(), Some(Code::Internal));
        // With grpc-encoding: identity the flag is just as wrong.
        let head = grpc_head(addr, "/demo.GRPCDemo/SimpleMethod")
            .header("grpc-encoding", "identity")
            .body(())
            .unwrap();
        assert_eq!(
            raw_request(addr, head, &wire).await.grpc_status(),
            Some(Code::Internal)
        );
    })
    .await
}
