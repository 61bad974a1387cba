//! Rust client against Rust server over real sockets: the four call kinds, statuses
//! with codes and messages, and metadata both ways.

use futures_util::{StreamExt, stream};
use h2grpc::{Code, Request, Server};
use h2grpc_test_support::service::*;

#[tokio::test]
async fn unary_call_returns_the_handlers_reply() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        let response = client.simple_method(req("echo:hello")).await.unwrap();
        assert_eq!(response.message().server_id, 7);
        assert_eq!(response.message().response_data, "hello");
        server.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn client_streaming_call_delivers_every_request() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        let requests = stream::iter((0..100).map(|i| req(format!("m{i:03}"))));
        let response = client.client_streaming_method(requests).await.unwrap();
        assert_eq!(response.message().response_data, "count=100 bytes=400");
        let empty = client
            .client_streaming_method(stream::iter(Vec::new()))
            .await
            .unwrap();
        assert_eq!(empty.message().response_data, "count=0 bytes=0");
    })
    .await
}

#[tokio::test]
async fn server_streaming_call_yields_every_response_then_trailers() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        let mut responses = client
            .server_streaming_method(req("count:25"))
            .await
            .unwrap()
            .into_message();
        let mut got = Vec::new();
        while let Some(r) = responses.message().await.unwrap() {
            got.push(r.response_data);
        }
        assert_eq!(got, (0..25).map(|i| i.to_string()).collect::<Vec<_>>());
        assert_eq!(responses.trailers().unwrap().get("x-count"), Some("25"));
        let mut none = client
            .server_streaming_method(req("count:0"))
            .await
            .unwrap()
            .into_message();
        assert!(none.message().await.unwrap().is_none());
    })
    .await
}

#[tokio::test]
async fn bidi_call_answers_each_request_before_the_next_is_sent() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let requests = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
        let mut responses = client
            .bidirectional_streaming_method(requests)
            .await
            .unwrap()
            .into_message();
        for i in 0..10 {
            tx.send(req(format!("ping {i}"))).await.unwrap();
            let answer = responses
                .message()
                .await
                .unwrap()
                .expect("an answer per request");
            assert_eq!(answer.response_data, format!("echo ping {i}"));
        }
        drop(tx);
        assert!(responses.message().await.unwrap().is_none());
    })
    .await
}

#[tokio::test]
async fn handler_error_reaches_the_client_with_code_and_message() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        let message = "not here: ünïcödé ☺ 100% \t tab";
        let err = client
            .simple_method(req(format!("fail:5:{message}")))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        assert_eq!(err.message(), message);
        let err = client
            .server_streaming_method(req("fail:9:precondition"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        let requests = stream::iter(vec![req("a"), req("fail:16:who are you")]);
        let err = client.client_streaming_method(requests).await.unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (Code::Unauthenticated, "who are you")
        );
    })
    .await
}

#[tokio::test]
async fn every_code_survives_the_round_trip() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        for n in 1..=16 {
            let err = client
                .simple_method(req(format!("fail:{n}:code {n}")))
                .await
                .unwrap_err();
            assert_eq!(err.code().as_i32(), n);
            assert_eq!(err.message(), format!("code {n}"));
        }
    })
    .await
}

#[tokio::test]
async fn stream_failing_midway_delivers_messages_then_the_status() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        let mut responses = client
            .server_streaming_method(req("count-then-fail:3"))
            .await
            .unwrap()
            .into_message();
        for i in 0..3 {
            assert_eq!(
                responses.message().await.unwrap().unwrap().response_data,
                i.to_string()
            );
        }
        let err = responses.message().await.unwrap_err();
        assert_eq!(err.code(), Code::Aborted);
        assert_eq!(err.message(), "stopped after the requested messages");
    })
    .await
}

#[tokio::test]
async fn metadata_travels_both_ways() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        let mut request = Request::new(req("metadata"));
        request
            .metadata_mut()
            .insert("x-req", "text value")
            .unwrap();
        request
            .metadata_mut()
            .insert_bin("x-req-bin", b"\x00\xffbinary\n")
            .unwrap();
        request.set_timeout(std::time::Duration::from_secs(30));
        let response = client.simple_method(request).await.unwrap();
        let (text, timeout) = response.message().response_data.split_once('|').unwrap();
        assert_eq!(text, "text value");
        let timeout: u128 = timeout.parse().unwrap();
        assert!(
            (29_000..=30_000).contains(&timeout),
            "server saw timeout {timeout} ms"
        );
        assert_eq!(response.metadata().get("x-resp-header"), Some("text value"));
        assert_eq!(
            response
                .trailers()
                .get_bin("x-resp-trailer-bin")
                .unwrap()
                .unwrap(),
            b"\x00\xffbinary\n"
        );
        // Reserved names never reach the application's view of the metadata.
        assert!(
            response
                .metadata()
                .iter()
                .all(|(k, _)| !k.starts_with("grpc-"))
        );
    })
    .await
}

#[tokio::test]
async fn unknown_method_and_service_are_unimplemented() {
    bounded(async {
        let server = TestServer::start().await;
        let channel = h2grpc::Channel::connect(server.addr.to_string())
            .await
            .unwrap();
        for path in ["/demo.GRPCDemo/NoSuchMethod", "/no.Such/SimpleMethod"] {
            let err = channel
                .unary::<_, h2grpc_test_support::demo::Response>(
                    http::uri::PathAndQuery::from_static(path),
                    Request::new(req("x")),
                )
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::Unimplemented, "{path}");
        }
    })
    .await
}

#[tokio::test]
async fn handler_panic_is_unknown_and_the_server_keeps_serving() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        let err = client.simple_method(req("panic")).await.unwrap_err();
        assert_eq!(err.code(), Code::Unknown);
        assert_serves(server.addr).await;
    })
    .await
}

/// 500 calls at once from one client ride one connection: the server, which accepts the
/// TCP sockets itself, counts exactly one.
#[tokio::test]
async fn many_concurrent_calls_share_one_connection() {
    bounded(async {
        let server = TestServer::start_counting(Server::new()).await;
        let client = server.client().await;
        let calls = (0..500).map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.simple_method(req(format!("echo:{i}"))).await })
        });
        for (i, call) in calls.enumerate() {
            assert_eq!(
                call.await.unwrap().unwrap().message().response_data,
                i.to_string()
            );
        }
        assert_eq!(server.accepted(), 1, "connections accepted for 500 calls");
    })
    .await
}

#[tokio::test]
async fn a_slow_call_does_not_hold_up_others_on_its_connection() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        let slow = {
            let client = client.clone();
            tokio::spawn(async move { client.simple_method(req("sleep:3000")).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        for i in 0..20 {
            client
                .simple_method(req(format!("echo:{i}")))
                .await
                .unwrap();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(!slow.is_finished());
        assert_eq!(
            slow.await.unwrap().unwrap().message().response_data,
            "slept"
        );
    })
    .await
}

#[tokio::test]
async fn large_streams_flow_past_the_windows_both_ways() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        // 200 x 64 KiB = 12.5 MiB each way, several times every flow-control window.
        let chunk = "y".repeat(64 * 1024);
        let requests = stream::iter((0..200).map(move |_| req(chunk.clone())));
        let response = client.client_streaming_method(requests).await.unwrap();
        assert_eq!(
            response.message().response_data,
            format!("count=200 bytes={}", 200 * 64 * 1024)
        );
        let mut responses = client
            .server_streaming_method(req(format!("big:{}:200", 64 * 1024)))
            .await
            .unwrap()
            .into_message();
        let mut n = 0;
        while let Some(r) = responses.message().await.unwrap() {
            assert_eq!(r.response_data.len(), 64 * 1024);
            n += 1;
        }
        assert_eq!(n, 200);
    })
    .await
}

#[tokio::test]
async fn receive_limits_are_resource_exhausted_on_both_sides() {
    bounded(async {
        let server =
            TestServer::start_with(h2grpc::Server::new().max_receive_message_size(1000)).await;
        let client = server.client().await;
        let err = client
            .simple_method(req(format!("echo:{}", "z".repeat(2000))))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        assert_serves(server.addr).await;

        let server = TestServer::start().await;
        let channel = h2grpc::Channel::builder(server.addr.to_string())
            .max_receive_message_size(1000)
            .connect()
            .await
            .unwrap();
        let client = h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient::new(channel);
        let err = client
            .simple_method(req(format!("echo:{}", "z".repeat(2000))))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        let ok = client.simple_method(req("echo:small")).await.unwrap();
        assert_eq!(ok.message().response_data, "small");
    })
    .await
}

#[tokio::test]
async fn a_server_answering_before_the_client_finished_sending_stops_the_sender() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        // An endless request stream whose second message makes the handler fail: the
        // server answers at once and resets the stream (NO_ERROR), so the client's call
        // ends with the server's status instead of sending forever.
        let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = taken.clone();
        let requests = stream::iter(0..).map(move |i| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            req(if i == 1 {
                "fail:9:enough".to_owned()
            } else {
                format!("m{i}")
            })
        });
        let err = client.client_streaming_method(requests).await.unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (Code::FailedPrecondition, "enough")
        );
        let sent = taken.load(std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(
            taken.load(std::sync::atomic::Ordering::Relaxed),
            sent,
            "the request stream is no longer pulled once the call ended"
        );
        assert_serves(server.addr).await;
    })
    .await
}

#[tokio::test]
async fn many_small_streamed_messages_reach_a_slow_reader() {
    bounded(async {
        let server = TestServer::start().await;
        let client = server.client().await;
        // 20,000 tiny messages, all ready at once, while the client reads nothing for a
        // while: sent one per DATA frame they would pile up as thousands of small unread
        // frames, which h2 answers by closing the connection. Coalesced, they arrive.
        let mut responses = client
            .server_streaming_method(req("count:20000"))
            .await
            .unwrap()
            .into_message();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut n = 0;
        while let Some(r) = responses.message().await.unwrap() {
            assert_eq!(r.response_data, n.to_string());
            n += 1;
        }
        assert_eq!(n, 20_000);
        assert_serves(server.addr).await;
    })
    .await
}
