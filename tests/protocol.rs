//! The wire, both ways: hand-made requests (many malformed on purpose) get the exact
//! answer the spec gives and leave the server serving; a scripted h2 server (the kit's
//! `scripted`) checks the client's mapping of HTTP statuses, missing trailers and resets
//! into statuses. (A refused stream sent again is in `transparent_retry.rs`.)

use bytes::Bytes;
use h2grpc::Code;
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::lpm;
use h2grpc_test_support::scripted::*;
use h2grpc_test_support::service::*;

const UNARY: &str = "/demo.GRPCDemo/SimpleMethod";

#[tokio::test]
async fn non_grpc_requests_get_http_errors() {
    bounded(async {
        let server = TestServer::start().await;
        let get = grpc_head(server.addr, UNARY)
            .method("GET")
            .body(())
            .unwrap();
        assert_eq!(raw_request(server.addr, get, b"").await.status, 405);
        let plain = http::Request::builder()
            .method("POST")
            .uri(format!("http://{}{UNARY}", server.addr))
            .header("content-type", "text/plain")
            .body(())
            .unwrap();
        assert_eq!(raw_request(server.addr, plain, b"").await.status, 415);
        let none = http::Request::builder()
            .method("POST")
            .uri(format!("http://{}{UNARY}", server.addr))
            .body(())
            .unwrap();
        assert_eq!(raw_request(server.addr, none, b"").await.status, 415);
        assert_serves(server.addr).await;
    })
    .await
}

#[tokio::test]
async fn errors_before_any_message_are_trailers_only() {
    bounded(async {
        let server = TestServer::start().await;
        let head = grpc_head(server.addr, "/demo.GRPCDemo/Nope")
            .body(())
            .unwrap();
        let response = raw_request(server.addr, head, &lpm::encode(&req("x"))).await;
        assert_eq!(response.status, 200);
        assert_eq!(
            response.headers.get("content-type").unwrap(),
            "application/grpc"
        );
        assert_eq!(response.headers.get("grpc-status").unwrap(), "12");
        assert!(response.body.is_empty());
        assert!(
            response.trailers.is_none(),
            "one HEADERS frame with END_STREAM"
        );
    })
    .await
}

/// A malformed request: what it is, extra headers, its body, and the status it must get.
type Case = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<u8>,
    Code,
);

/// Each malformed request, and the status it must get.
#[tokio::test]
async fn malformed_requests_get_precise_statuses_and_the_server_keeps_serving() {
    bounded(async {
        let server = TestServer::start().await;
        let ok = lpm::encode(&req("echo:x"));
        let cases: Vec<Case> = vec![
            (
                "declared length of 4 GiB",
                vec![],
                lpm::prefixed(0, u32::MAX, b"abc"),
                Code::ResourceExhausted,
            ),
            (
                "over the 4 MiB limit",
                vec![],
                lpm::prefixed(0, 4 * 1024 * 1024 + 1, b""),
                Code::ResourceExhausted,
            ),
            (
                "truncated message",
                vec![],
                ok[..ok.len() - 2].to_vec(),
                Code::Internal,
            ),
            ("truncated prefix", vec![], vec![0, 0, 0], Code::Internal),
            (
                "compressed flag, no encoding",
                vec![],
                lpm::prefixed(1, 3, b"abc"),
                Code::Internal,
            ),
            (
                "flag 2",
                vec![],
                lpm::prefixed(2, 3, b"abc"),
                Code::Internal,
            ),
            (
                "invalid protobuf",
                vec![],
                lpm::prefixed(0, 3, b"\xff\xff\xff"),
                Code::Internal,
            ),
            (
                "no message for a unary method",
                vec![],
                vec![],
                Code::Unimplemented,
            ),
            (
                "two messages for a unary method",
                vec![],
                [ok.clone(), ok.clone()].concat(),
                Code::Unimplemented,
            ),
            (
                "malformed grpc-timeout",
                vec![("grpc-timeout", "123456789S")],
                ok.clone(),
                Code::Internal,
            ),
            (
                "unit-less grpc-timeout",
                vec![("grpc-timeout", "10")],
                ok.clone(),
                Code::Internal,
            ),
            (
                "bad base64 in a -bin header",
                vec![("x-data-bin", "!!not base64!!")],
                ok.clone(),
                Code::Internal,
            ),
            (
                "unknown encoding",
                vec![("grpc-encoding", "snappy")],
                ok.clone(),
                Code::Unimplemented,
            ),
        ];
        for (name, headers, body, code) in cases {
            let mut head = grpc_head(server.addr, UNARY);
            for (k, v) in &headers {
                head = head.header(*k, *v);
            }
            let response = raw_request(server.addr, head.body(()).unwrap(), &body).await;
            assert_eq!(response.status, 200, "{name}");
            assert_eq!(
                response.grpc_status(),
                Some(code),
                "{name}: {}",
                response.grpc_message()
            );
            assert!(
                !response.grpc_message().is_empty(),
                "{name}: a message names the condition"
            );
            if name == "unknown encoding" {
                assert_eq!(
                    response.headers.get("grpc-accept-encoding").unwrap(),
                    "identity,deflate,gzip"
                );
            }
            assert_serves(server.addr).await;
        }
    })
    .await
}

#[tokio::test]
async fn a_message_may_span_data_frames_and_frames_may_hold_several() {
    bounded(async {
        let server = TestServer::start().await;
        let socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let (send, conn) = h2::client::handshake(socket).await.unwrap();
        tokio::spawn(conn);
        let mut send = send.ready().await.unwrap();
        let head = grpc_head(server.addr, "/demo.GRPCDemo/ClientStreamingMethod")
            .body(())
            .unwrap();
        let (response, mut stream) = send.send_request(head, false).unwrap();
        let wire: Vec<u8> = (0..10)
            .flat_map(|i| lpm::encode(&req(format!("msg{i}"))))
            .collect();
        // Odd-sized DATA frames: messages split across frames and several per frame.
        for chunk in wire.chunks(7) {
            stream
                .send_data(Bytes::copy_from_slice(chunk), false)
                .unwrap();
        }
        stream
            .send_data(Bytes::from(lpm::encode(&req(""))), false)
            .unwrap();
        stream.send_data(Bytes::new(), true).unwrap();
        let response = response.await.unwrap();
        let mut body = response.into_body();
        let data = body.data().await.unwrap().unwrap();
        let reply: h2grpc_test_support::demo::Response =
            prost::Message::decode(lpm::payload(&data)).unwrap();
        assert_eq!(reply.response_data, "count=11 bytes=40");
    })
    .await
}

#[tokio::test]
async fn http_statuses_without_grpc_status_map_per_the_table() {
    bounded(async {
        for (http_status, code) in [
            (400, Code::Internal),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (429, Code::Unavailable),
            (431, Code::Internal),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
            (500, Code::Unknown),
        ] {
            let addr = scripted(move |mut respond| {
                let response = http::Response::builder()
                    .status(http_status)
                    .body(())
                    .unwrap();
                let _ = respond.send_response(response, true);
            })
            .await;
            assert_eq!(
                simple_call(addr).await.unwrap_err().code(),
                code,
                "HTTP {http_status}"
            );
        }
    })
    .await
}

#[tokio::test]
async fn missing_grpc_status_is_unknown() {
    bounded(async {
        let addr = scripted(|mut respond| {
            let mut send = respond.send_response(grpc_response(), false).unwrap();
            let _ = send.send_data(Bytes::from(lpm::encode(&reply("x"))), false);
            let _ = send.send_trailers(trailers(&[("x-other", "1")]));
        })
        .await;
        assert_eq!(simple_call(addr).await.unwrap_err().code(), Code::Unknown);
        let addr = scripted(|mut respond| {
            let mut send = respond.send_response(grpc_response(), false).unwrap();
            let _ = send.send_data(Bytes::from(lpm::encode(&reply("x"))), true);
        })
        .await;
        assert_eq!(simple_call(addr).await.unwrap_err().code(), Code::Unknown);
    })
    .await
}

#[tokio::test]
async fn wrong_response_counts_for_a_unary_call_are_errors() {
    bounded(async {
        let addr = scripted(|mut respond| {
            let mut send = respond.send_response(grpc_response(), false).unwrap();
            let _ = send.send_trailers(trailers(&[("grpc-status", "0")]));
        })
        .await;
        assert_eq!(
            simple_call(addr).await.unwrap_err().code(),
            Code::Unimplemented
        );
        let addr = scripted(|mut respond| {
            let mut send = respond.send_response(grpc_response(), false).unwrap();
            let two = [lpm::encode(&reply("a")), lpm::encode(&reply("b"))].concat();
            let _ = send.send_data(Bytes::from(two), false);
            let _ = send.send_trailers(trailers(&[("grpc-status", "0")]));
        })
        .await;
        assert_eq!(
            simple_call(addr).await.unwrap_err().code(),
            Code::Unimplemented
        );
    })
    .await
}

#[tokio::test]
async fn resets_map_per_the_table() {
    bounded(async {
        for (reason, code) in [
            (h2::Reason::REFUSED_STREAM, Code::Unavailable),
            (h2::Reason::CANCEL, Code::Cancelled),
            (h2::Reason::ENHANCE_YOUR_CALM, Code::ResourceExhausted),
            (h2::Reason::INADEQUATE_SECURITY, Code::PermissionDenied),
            (h2::Reason::PROTOCOL_ERROR, Code::Internal),
            (h2::Reason::INTERNAL_ERROR, Code::Internal),
        ] {
            let addr = scripted(move |mut respond| respond.send_reset(reason)).await;
            assert_eq!(
                simple_call(addr).await.unwrap_err().code(),
                code,
                "{reason:?}"
            );
        }
    })
    .await
}

#[tokio::test]
async fn a_long_grpc_message_arrives_intact() {
    bounded(async {
        let long: String = "ünïcödé ☺ 100% ".repeat(200);
        let encoded = h2grpc::status::encode_message(&long);
        assert!(encoded.len() > 8 * 1024);
        let addr = scripted(move |mut respond| {
            let mut response = grpc_response();
            response
                .headers_mut()
                .insert("grpc-status", "3".parse().unwrap());
            response
                .headers_mut()
                .insert("grpc-message", encoded.parse().unwrap());
            let _ = respond.send_response(response, true);
        })
        .await;
        let err = simple_call(addr).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(err.message(), long);
    })
    .await
}

#[tokio::test]
async fn a_cancel_seen_after_the_deadline_is_deadline_exceeded() {
    bounded(async {
        // The server resets with CANCEL 10 ms in. The call is started, then left unpolled
        // until its 50 ms deadline has passed: the first thing it sees is that CANCEL, with
        // the deadline already gone, which the spec says to report as DEADLINE_EXCEEDED.
        let addr = scripted(|mut respond| {
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                respond.send_reset(h2::Reason::CANCEL);
            });
        })
        .await;
        let client = GrpcDemoClient::connect(addr.to_string()).await.unwrap();
        let request =
            h2grpc::Request::new(req("x")).with_timeout(std::time::Duration::from_millis(50));
        let mut call = Box::pin(client.simple_method(request));
        for _ in 0..20 {
            let polled =
                std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx))).await;
            assert!(
                polled.is_pending(),
                "the call ended early: {:?}",
                polled.map(|r| r.map(drop))
            );
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let err = call.await.unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        // A CANCEL seen before the deadline stays CANCELLED.
        let request =
            h2grpc::Request::new(req("x")).with_timeout(std::time::Duration::from_secs(5));
        let err = client.simple_method(request).await.unwrap_err();
        assert_eq!(err.code(), Code::Cancelled, "{err:?}");
    })
    .await
}

#[tokio::test]
async fn only_protobuf_grpc_content_types_are_served() {
    bounded(async {
        let server = TestServer::start().await;
        let body = lpm::encode(&req("echo:hi"));
        let with = |content_type: &'static str| {
            http::Request::builder()
                .method("POST")
                .uri(format!("http://{}{UNARY}", server.addr))
                .header("content-type", content_type)
                .header("te", "trailers")
                .body(())
                .unwrap()
        };
        for served in ["application/grpc", "application/grpc+proto"] {
            let response = raw_request(server.addr, with(served), &body).await;
            assert_eq!(response.grpc_status(), Some(Code::Ok), "{served}");
        }
        // JSON is a codec we have: a protobuf body sent as `+json` is read as JSON, and is
        // not JSON (INVALID_ARGUMENT), never read as protobuf.
        let response = raw_request(server.addr, with("application/grpc+json"), &body).await;
        assert_eq!(response.grpc_status(), Some(Code::InvalidArgument));
        // Not gRPC at all (grpc-go: 415); another codec (connect-go: 415 for a codec it
        // has not registered).
        for refused in ["application/grpcfoo", "application/grpc+thrift"] {
            let response = raw_request(server.addr, with(refused), &body).await;
            assert_eq!(response.status, 415, "{refused}");
            assert_eq!(response.grpc_status(), None, "{refused}");
        }
        assert_serves(server.addr).await;
    })
    .await
}

/// The response headers (no `grpc-status`, no END_STREAM) then the trailers.
fn assert_headers_then_trailers(response: &RawResponse, code: &str) {
    assert_eq!(response.status, 200);
    assert_eq!(response.headers.get("x-resp-header").unwrap(), "head");
    assert!(
        response.headers.get("grpc-status").is_none(),
        "{response:?}"
    );
    assert!(response.body.is_empty());
    let trailers = response
        .trailers
        .as_ref()
        .expect("trailers after the headers");
    assert_eq!(trailers.get("grpc-status").unwrap(), code);
    assert_eq!(trailers.get("x-resp-trailer").unwrap(), "tail");
    assert!(trailers.get("x-resp-header").is_none(), "{trailers:?}");
}

#[tokio::test]
async fn a_failing_unary_handler_sends_its_header_metadata_as_headers() {
    bounded(async {
        let server = TestServer::start().await;
        let head = grpc_head(server.addr, UNARY).body(()).unwrap();
        let body = lpm::encode(&req("fail-with-headers"));
        let response = raw_request(server.addr, head, &body).await;
        assert_headers_then_trailers(&response, "10");
        // Through our client: the header metadata is the failed call's, apart from the
        // status' trailers.
        let err = server
            .client()
            .await
            .simple_method(req("fail-with-headers"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Aborted);
        assert_eq!(err.metadata().get("x-resp-trailer"), Some("tail"));
    })
    .await
}

#[tokio::test]
async fn header_metadata_is_never_folded_into_trailers_only() {
    bounded(async {
        let server = TestServer::start().await;
        let path = "/demo.GRPCDemo/ServerStreamingMethod";
        for (cmd, code) in [("headers-then-fail", "10"), ("headers-then-end", "0")] {
            let head = grpc_head(server.addr, path).body(()).unwrap();
            let response = raw_request(server.addr, head, &lpm::encode(&req(cmd))).await;
            assert_headers_then_trailers(&response, code);
        }
        // Without header metadata, a stream that ends first is still Trailers-Only.
        let head = grpc_head(server.addr, path).body(()).unwrap();
        let response = raw_request(server.addr, head, &lpm::encode(&req("fail:5:gone"))).await;
        assert_eq!(response.headers.get("grpc-status").unwrap(), "5");
        assert!(
            response.trailers.is_none(),
            "one HEADERS frame with END_STREAM"
        );
    })
    .await
}
