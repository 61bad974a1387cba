//! The connection-level budget for small received DATA frames (h2's
//! `data_frame_budget`, exposed as `ChannelBuilder::data_frame_budget` and
//! `Server::data_frame_budget`).
//!
//! A hand-made h2 server answers a server-streaming call with one gRPC message per
//! DATA frame (our own senders coalesce ready messages; a peer need not), and our
//! `Channel` is a slow reader that lets all the frames arrive before reading any.
//!
//! h2 0.4.20's accounting (src/proto/streams/counts.rs `record_data_frame` /
//! `release_data_frame`, called from streams.rs `recv_data` and `poll_data`): every
//! received DATA frame that does not end its stream and whose payload length `L`
//! satisfies `0 < L < 256` (`DEFAULT_DATA_FRAME_OVERHEAD_THRESHOLD`) consumes
//! `256 - L` bytes of the budget; a frame with `L >= 256` gives back `L - 256`; an
//! empty frame is counted apart (at most 100 per connection). The charge of a small
//! frame is given back when the application reads it (`poll_data`) or the stream's
//! buffer is dropped. When a frame would take the amount spent past the budget, the
//! connection is closed with `GOAWAY ENHANCE_YOUR_CALM` ("too_many_data_frames").
//!
//! Here each DATA frame holds one Length-Prefixed-Message of a prost `String`
//! `"m00000"`..: 5 bytes of prefix + 1 byte tag + 1 byte length + 6 bytes = 13 bytes,
//! so each unread frame costs `256 - 13 = 243` bytes of the budget.

use std::time::Duration;

use bytes::Bytes;
use h2grpc::client::DEFAULT_DATA_FRAME_BUDGET_BYTES;
use h2grpc::http::uri::PathAndQuery;
use h2grpc::{Channel, Code, Request, Status};
use h2grpc_test_support::lpm;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Every async test body runs under this.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// How long the slow reader waits, once the server has queued every frame, before it
/// reads (time for the frames to cross the loopback and be received by h2).
const SLOW_READER_DELAY: Duration = Duration::from_millis(500);

/// h2's threshold below which a DATA frame's payload counts as "small".
const OVERHEAD_THRESHOLD: usize = 256;

/// The message in frame `i`: always 6 characters, so every frame has the same size.
fn message(i: usize) -> String {
    format!("m{i:05}")
}

/// One Length-Prefixed-Message holding `msg`.
fn lpm(msg: &String) -> Bytes {
    Bytes::from(lpm::encode(msg))
}

/// The DATA frame payload length of each message, and what each unread one costs.
fn frame_len() -> usize {
    lpm(&message(0)).len()
}

fn frame_cost() -> usize {
    OVERHEAD_THRESHOLD - frame_len()
}

/// A hand-made h2 server on 127.0.0.1:0. For any request it sends the response
/// headers, waits for `go` (the client holds the response headers: the flood then
/// cannot race the call's opening), sends `frames` messages each in its own DATA
/// frame, then the trailers `grpc-status: 0`, and reports on `queued`. It sends
/// regardless of the reader: the client's windows (1 MiB stream, 2 MiB connection)
/// hold thousands of these frames. Errors (the client closing the connection) are
/// ignored.
async fn flooding_server(
    frames: usize,
    go: oneshot::Receiver<()>,
    queued: oneshot::Sender<()>,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let mut conn = match h2::server::handshake(tcp).await {
            Ok(c) => c,
            Err(_) => return,
        };
        let mut go = Some(go);
        let mut queued = Some(queued);
        // Driving `accept` drives the connection (the frames out, the GOAWAY in).
        while let Some(accepted) = conn.accept().await {
            let Ok((_request, mut respond)) = accepted else {
                break;
            };
            let (Some(go), Some(queued)) = (go.take(), queued.take()) else {
                continue;
            };
            tokio::spawn(async move {
                let response = http::Response::builder()
                    .status(200)
                    .header("content-type", "application/grpc")
                    .body(())
                    .unwrap();
                let Ok(mut send) = respond.send_response(response, false) else {
                    return;
                };
                if go.await.is_err() {
                    return;
                }
                for i in 0..frames {
                    // One `send_data` is one DATA frame: h2 never merges them.
                    if send.send_data(lpm(&message(i)), false).is_err() {
                        let _ = queued.send(());
                        return;
                    }
                }
                let mut trailers = http::HeaderMap::new();
                trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                let _ = send.send_trailers(trailers);
                let _ = queued.send(());
            });
        }
    });
    addr.to_string()
}

/// What the slow reader saw: the messages read in order, then how the call ended.
struct Outcome {
    received: Vec<String>,
    end: Result<(), Status>,
}

/// Opens a server-streaming call on a channel with `budget` (or the default), lets
/// the flood of `frames` one-message DATA frames arrive unread, then reads it all.
async fn slow_read(frames: usize, budget: Option<usize>) -> Outcome {
    let (go_tx, go_rx) = oneshot::channel();
    let (queued_tx, queued_rx) = oneshot::channel();
    let target = flooding_server(frames, go_rx, queued_tx).await;

    let mut builder = Channel::builder(target);
    if let Some(budget) = budget {
        builder = builder.data_frame_budget(budget);
    }
    let channel = builder.connect().await.expect("connect");

    let response = channel
        .server_streaming::<String, String>(
            PathAndQuery::from_static("/t.T/M"),
            Request::new(String::new()),
        )
        .await
        .expect("the response headers come before any message");
    let mut messages = response.into_message();

    // The slow reader: nothing is read until every frame is queued and has had time
    // to arrive.
    go_tx.send(()).expect("the server waits for go");
    queued_rx
        .await
        .expect("the server reports the flood queued");
    tokio::time::sleep(SLOW_READER_DELAY).await;

    let mut received = Vec::new();
    let end = loop {
        match messages.message().await {
            Ok(Some(m)) => received.push(m),
            Ok(None) => break Ok(()),
            Err(status) => break Err(status),
        }
    };
    Outcome { received, end }
}

fn expected(n: usize) -> Vec<String> {
    (0..n).map(message).collect()
}

#[tokio::test]
async fn a_slow_reader_receives_every_small_message_within_the_budget() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        // 3000 frames of 13 bytes cost 3000 * 243 = 729,000 bytes held unread, within
        // the default 1 MiB (1,048,576) budget (which holds 4,315 of them).
        const N: usize = 3000;
        assert_eq!(frame_len(), 13);
        assert!(N * frame_cost() <= DEFAULT_DATA_FRAME_BUDGET_BYTES);
        // ... and far past h2's own fixed default (25,600 bytes: 105 such frames).
        assert!(N * frame_cost() > 256 * 100);

        let outcome = slow_read(N, None).await;
        if let Err(status) = &outcome.end {
            panic!(
                "the call failed after {} messages: {status:?}",
                outcome.received.len()
            );
        }
        assert_eq!(outcome.received, expected(N), "every message, in order");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_smaller_budget_closes_the_connection_when_unread_small_frames_exceed_it() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        // The same flood of 3000 frames against a 4 KiB budget: 16 frames cost 3,888
        // bytes, the 17th would make 4,131 > 4,096, so h2 closes the connection with
        // GOAWAY ENHANCE_YOUR_CALM on receiving it.
        const N: usize = 3000;
        const BUDGET: usize = 4 * 1024;
        let fit = BUDGET / frame_cost();
        assert_eq!(fit, 16);

        let outcome = slow_read(N, Some(BUDGET)).await;
        let status = outcome
            .end
            .expect_err("the call must fail once the unread small frames exceed the budget");
        // The GOAWAY is our client's own (h2 sends it, the error is local): a failure of
        // the connection, UNAVAILABLE, as grpc-go reports its own transport's errors.
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            status.message().contains("too_many_data_frames"),
            "{status:?}"
        );
        // h2 buffers a DATA frame before charging it (streams.rs `recv_data`), so the
        // frame that overflows the budget is still delivered; nothing after it is read.
        assert_eq!(
            outcome.received,
            expected(fit + 1),
            "the first {} messages",
            fit + 1
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn the_budget_is_charged_256_minus_the_payload_per_unread_small_frame() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        // A budget of exactly K frames' charge holds K unread frames, not K + 1.
        const K: usize = 40;
        let budget = K * frame_cost();

        let fits = slow_read(K, Some(budget)).await;
        if let Err(status) = &fits.end {
            panic!(
                "{K} frames in a budget of {budget}: failed after {}: {status:?}",
                fits.received.len()
            );
        }
        assert_eq!(fits.received, expected(K));

        let over = slow_read(K + 1, Some(budget)).await;
        let status = over
            .end
            .expect_err("one frame more than the budget holds closes the connection");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            status.message().contains("too_many_data_frames"),
            "{status:?}"
        );
        // The overflowing frame itself is buffered before it is charged: the last
        // message arrives too, and the trailers never do.
        assert_eq!(over.received, expected(K + 1));
    })
    .await
    .expect("test timed out");
}
