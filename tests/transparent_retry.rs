//! Transparent retry (gRFC A6, "Transparent Retries"): a stream the server never
//! processed (refused with REFUSED_STREAM) is sent again without counting as an attempt
//! of the retry policy, a few times at most. Every such test of the root package is here.
//! (Through nginx, streams past a GOAWAY's last-stream-id: `demo/tests/nginx.rs`.)

use std::sync::Arc;

use bytes::Bytes;
use h2grpc::{Code, Server};
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::lpm;
use h2grpc_test_support::relay::Relay;
use h2grpc_test_support::scripted::*;
use h2grpc_test_support::service::*;

/// The first stream is refused unprocessed (REFUSED_STREAM); the same call's next stream
/// is answered.
#[tokio::test]
async fn a_refused_stream_is_sent_again_transparently() {
    bounded(async {
        let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = refused.clone();
        // The first stream is refused unprocessed (REFUSED_STREAM); the next one answered.
        let addr = scripted(move |mut respond| {
            if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                respond.send_reset(h2::Reason::REFUSED_STREAM);
                return;
            }
            let mut send = respond.send_response(grpc_response(), false).unwrap();
            let _ = send.send_data(Bytes::from(lpm::encode(&reply("second try"))), false);
            let _ = send.send_trailers(trailers(&[("grpc-status", "0")]));
        })
        .await;
        let response = simple_call(addr).await.unwrap();
        assert_eq!(response.message().response_data, "second try");
        assert_eq!(refused.load(std::sync::atomic::Ordering::SeqCst), 2);
    })
    .await
}

/// A server that refuses every stream: the call ends UNAVAILABLE after three streams.
#[tokio::test]
async fn a_stream_always_refused_ends_unavailable_after_a_few_attempts() {
    bounded(async {
        let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = attempts.clone();
        let addr = scripted(move |mut respond| {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            respond.send_reset(h2::Reason::REFUSED_STREAM);
        })
        .await;
        assert_eq!(
            simple_call(addr).await.unwrap_err().code(),
            Code::Unavailable
        );
        assert_eq!(
            attempts.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "bounded retries"
        );
    })
    .await
}

/// A client that does not know the server's stream limit opens more streams than the
/// server allows, and the server refuses the extra ones with REFUSED_STREAM, which
/// guarantees no application logic ran: gRFC A6 (and checklist 32) has the client send them
/// again transparently, so every call is served. Our channel learns the limit before its
/// first call, so a relay hides SETTINGS_MAX_CONCURRENT_STREAMS from it, and counts the
/// refusals: the test sees that streams were refused, and that no call failed for it.
#[tokio::test]
async fn calls_refused_past_a_limit_the_client_does_not_know_are_retried_transparently() {
    bounded(async {
        let server = TestServer::start_with(Server::new().max_concurrent_streams(4)).await;
        let relay = Relay::start_hiding_stream_limit(server.addr).await;
        let client = GrpcDemoClient::connect(relay.addr.to_string())
            .await
            .unwrap();
        let answers = concurrent_calls(&client, 10, "echo:served").await;
        let failed: Vec<_> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{} of 10 calls failed: {failed:?}",
            failed.len()
        );
        let refused = relay.resets_from_backend(h2::Reason::REFUSED_STREAM);
        assert!(refused > 0, "no stream was refused: nothing was retried");
    })
    .await
}
