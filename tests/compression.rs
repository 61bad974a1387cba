//! Compression: gzip and deflate both ways, per call and per server default,
//! `grpc-encoding` / `grpc-accept-encoding` negotiation, the per-message flag, and
//! decompression held to the receive limit.

use futures_util::stream;
use h2grpc::{Code, CompressionSwitch, Encoding, Request, Server};
use h2grpc_test_support::lpm;
use h2grpc_test_support::service::{
    ClientStreamReply, TestServer, bounded, grpc_head, raw_request, req,
};

const UNARY: &str = "/demo.GRPCDemo/SimpleMethod";

/// The test service on `server`, its client-streaming calls answering with the
/// compressed flag of each request (`cucc`).
async fn start(server: Server) -> TestServer {
    TestServer::start_service(server, |service| {
        service.client_streams(ClientStreamReply::Flags)
    })
    .await
}

#[tokio::test]
async fn compressed_requests_and_responses_round_trip_with_both_encodings() {
    bounded(async {
        let server = start(Server::new()).await;
        let client = server.client().await;
        for encoding in [Encoding::Gzip, Encoding::Deflate] {
            let request = Request::new(req(format!("compression:{}", encoding.as_str())))
                .with_compression(encoding);
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
        let plain = client.simple_method(req("compression")).await.unwrap();
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
        let server = start(Server::new()).await;
        let addr = server.addr;
        let gzip = lpm::encode(&req("compression:gzip"));
        // A raw client with no grpc-accept-encoding asks for a gzip reply.
        let head = grpc_head(addr, UNARY).body(()).unwrap();
        let response = raw_request(addr, head, &gzip).await;
        assert_eq!(response.grpc_status(), Some(Code::Ok));
        assert!(response.headers.get("grpc-encoding").is_none());
        assert_eq!(response.body[0], 0, "message flag: not compressed");
        // The same with grpc-accept-encoding: deflate only.
        let head = grpc_head(addr, UNARY)
            .header("grpc-accept-encoding", "deflate")
            .body(())
            .unwrap();
        let response = raw_request(addr, head, &gzip).await;
        assert_eq!(response.body[0], 0);
        let head = grpc_head(addr, UNARY)
            .header("grpc-accept-encoding", "gzip")
            .body(())
            .unwrap();
        let response = raw_request(addr, head, &gzip).await;
        assert_eq!(response.headers.get("grpc-encoding").unwrap(), "gzip");
        assert_eq!(response.body[0], 1);
    })
    .await
}

#[tokio::test]
async fn a_server_default_compresses_replies_the_client_accepts() {
    bounded(async {
        let server = start(Server::new().send_compression(Some(Encoding::Deflate))).await;
        let response = server
            .client()
            .await
            .simple_method(req("compression"))
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
        let server = start(Server::new()).await;
        let client = server.client().await;
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
        let server = start(Server::new().max_receive_message_size(64 * 1024)).await;
        let addr = server.addr;
        // 1 MiB of zeros in a request field compresses to about a kilobyte.
        let bomb = req("\0".repeat(1024 * 1024));
        let wire = h2grpc::framing::encode_with(&bomb, usize::MAX, Some(Encoding::Gzip)).unwrap();
        assert!(wire.len() < 64 * 1024, "{} bytes on the wire", wire.len());
        let head = grpc_head(addr, UNARY)
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
        assert!(
            server
                .client()
                .await
                .simple_method(req("compression"))
                .await
                .is_ok()
        );
    })
    .await
}

#[tokio::test]
async fn a_compressed_flag_without_a_negotiated_encoding_is_internal() {
    bounded(async {
        let server = start(Server::new()).await;
        let addr = server.addr;
        let wire =
            h2grpc::framing::encode_with(&req("x"), usize::MAX, Some(Encoding::Gzip)).unwrap();
        let head = grpc_head(addr, UNARY).body(()).unwrap();
        let response = raw_request(addr, head, &wire).await;
        assert_eq!(response.grpc_status(), Some(Code::Internal));
        // With grpc-encoding: identity the flag is just as wrong.
        let head = grpc_head(addr, UNARY)
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
