//! The HTTP/1.1 transport over an in-memory pipe: every test checks the bytes on the wire.
//! The clock is paused (a wait of virtual time is instant), so timeouts are tested as is.

use std::future::{pending, poll_fn};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

use super::server::Call;
use super::*;

/// A connection served with `handler`; the sender stops it (shutdown) when used.
struct Client {
    io: DuplexStream,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

fn start<F>(limits: Limits, pipe: usize, handler: F) -> Client
where
    F: FnMut(http::Request<RecvBody>, Respond) -> Option<Call> + Send + 'static,
{
    let (io, server) = duplex(pipe);
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        if stopped.await.is_err() {
            pending::<()>().await;
        }
    };
    let task = tokio::spawn(serve(server, limits, shutdown, handler));
    Client {
        io,
        stop: Some(stop),
        task,
    }
}

impl Client {
    async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// All the server sends until it is quiet for a (virtual) second, with the `date`
    /// lines taken out; and whether the server closed.
    async fn read(&mut self) -> (String, bool) {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let closed = loop {
            match timeout(Duration::from_secs(1), self.io.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Err(_) => break false,
            }
        };
        (strip_date(&String::from_utf8_lossy(&got)), closed)
    }

    /// Everything until the server closes.
    async fn read_to_close(&mut self) -> String {
        let mut got = Vec::new();
        let _ = timeout(Duration::from_secs(1000), self.io.read_to_end(&mut got)).await;
        strip_date(&String::from_utf8_lossy(&got))
    }
}

fn strip_date(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("date: ") {
        let line_end = rest[at..].find("\r\n").map_or(rest.len(), |e| at + e + 2);
        // Only a header line (at the start of a line) is a date.
        if at == 0 || rest[..at].ends_with("\r\n") {
            out.push_str(&rest[..at]);
        } else {
            out.push_str(&rest[..line_end]);
        }
        rest = &rest[line_end..];
    }
    out.push_str(rest);
    out
}

async fn read_body(body: &mut RecvBody) -> Result<Vec<u8>, Error> {
    let mut all = Vec::new();
    while let Some(data) = poll_fn(|cx| body.poll_data(cx)).await {
        all.extend_from_slice(&data?);
    }
    assert!(body.is_end_stream());
    Ok(all)
}

/// Reads the whole body and answers `METHOD URI BODY` in one piece (content-length).
fn echo(request: http::Request<RecvBody>, mut respond: Respond) -> Option<Call> {
    Some(Box::pin(async move {
        let (parts, mut body) = request.into_parts();
        let Ok(data) = read_body(&mut body).await else {
            return;
        };
        let text = format!(
            "{} {} {}",
            parts.method,
            parts.uri,
            String::from_utf8_lossy(&data)
        );
        let mut send = respond
            .send_response(http::Response::new(()), false)
            .unwrap();
        send.send_data(Bytes::from(text), true).unwrap();
    }))
}

/// Answers at once, in two pieces with a pause between: a chunked response.
fn streaming(_request: http::Request<RecvBody>, mut respond: Respond) -> Option<Call> {
    let mut send = respond
        .send_response(
            http::Response::builder()
                .header("content-type", "text/plain")
                .body(())
                .unwrap(),
            false,
        )
        .unwrap();
    Some(Box::pin(async move {
        tokio::task::yield_now().await;
        send.send_data(Bytes::from_static(b"hello"), false).unwrap();
        tokio::task::yield_now().await;
        send.send_data(Bytes::from_static(b" world"), true).unwrap();
    }))
}

const OK_GET: &str = "HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nGET /a ";

#[tokio::test(start_paused = true)]
async fn keep_alive_serves_two_requests_on_one_connection() {
    let mut client = start(Limits::default(), 1 << 16, echo);
    client.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(client.read().await, (OK_GET.to_string(), false));
    client
        .send(b"POST /b?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        .await;
    let expected = "HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\nPOST /b?q=1 abc";
    assert_eq!(client.read().await, (expected.to_string(), false));
}

#[tokio::test(start_paused = true)]
async fn pipelined_requests_are_answered_in_order() {
    let mut client = start(Limits::default(), 1 << 16, echo);
    client
        .send(
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
              POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi\
              GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
    let expected = format!(
        "{OK_GET}HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nPOST /b hi\
         HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nGET /c "
    );
    assert_eq!(client.read().await, (expected, true));
}

#[tokio::test(start_paused = true)]
async fn chunked_request_body_is_dechunked() {
    let mut client = start(Limits::default(), 1 << 16, echo);
    client
        .send(
            b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;name=value\r\nhello\r\n1\r\n \r\nA \r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n",
        )
        .await;
    let expected = "HTTP/1.1 200 OK\r\ncontent-length: 25\r\n\r\nPOST /up hello 0123456789";
    assert_eq!(client.read().await, (expected.to_string(), false));
    // The connection is still in step: the next request is read.
    client.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(client.read().await, (OK_GET.to_string(), false));
}

#[tokio::test(start_paused = true)]
async fn streamed_response_is_chunked() {
    let mut client = start(Limits::default(), 1 << 16, streaming);
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let expected = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n\
                    5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    assert_eq!(client.read().await, (expected.to_string(), false));
}

#[tokio::test(start_paused = true)]
async fn head_only_response_has_content_length_zero() {
    let mut client = start(Limits::default(), 1 << 16, |_, mut respond: Respond| {
        let head = http::Response::builder()
            .status(404)
            .header("content-length", "99")
            .header("connection", "upgrade")
            .body(())
            .unwrap();
        respond.send_response(head, true).unwrap();
        None
    });
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let expected = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
    assert_eq!(client.read().await, (expected.to_string(), false));
}

#[tokio::test(start_paused = true)]
async fn head_request_and_204_have_no_body() {
    let mut client = start(
        Limits::default(),
        1 << 16,
        |request: http::Request<RecvBody>, mut respond: Respond| {
            let status = if request.method() == http::Method::HEAD {
                200
            } else {
                204
            };
            let head = http::Response::builder().status(status).body(()).unwrap();
            let mut send = respond.send_response(head, false).unwrap();
            send.send_data(Bytes::from_static(b"dropped"), true)
                .unwrap();
            None
        },
    );
    client
        .send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nDELETE / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let expected = "HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
    assert_eq!(client.read().await, (expected.to_string(), false));
}

#[tokio::test(start_paused = true)]
async fn expect_100_continue_is_answered_when_the_body_is_read() {
    let mut client = start(Limits::default(), 1 << 16, echo);
    client
        .send(b"PUT /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        .await;
    assert_eq!(
        client.read().await,
        ("HTTP/1.1 100 Continue\r\n\r\n".to_string(), false)
    );
    client.send(b"data").await;
    let expected = "HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nPUT /p data";
    assert_eq!(client.read().await, (expected.to_string(), false));
}

#[tokio::test(start_paused = true)]
async fn no_100_continue_after_a_final_response() {
    let mut client = start(
        Limits::default(),
        1 << 16,
        |request: http::Request<RecvBody>, mut respond: Respond| {
            let head = http::Response::builder().status(413).body(()).unwrap();
            respond.send_response(head, true).unwrap();
            let mut body = request.into_body();
            Some(Box::pin(async move {
                // Polled after the response: no 100 (Continue).
                let _ = poll_fn(|cx| Poll::Ready(body.poll_data(cx))).await;
            }))
        },
    );
    client
        .send(b"PUT /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        .await;
    let expected =
        "HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    assert_eq!(client.read().await, (expected.to_string(), true));
}

#[tokio::test(start_paused = true)]
async fn http10_closes_after_the_response() {
    let mut client = start(Limits::default(), 1 << 16, echo);
    client.send(b"GET /a HTTP/1.0\r\n\r\n").await;
    let expected = "HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nGET /a ";
    assert_eq!(client.read().await, (expected.to_string(), true));
}

#[tokio::test(start_paused = true)]
async fn http10_keep_alive_is_kept_and_streaming_is_close_delimited() {
    let mut client = start(
        Limits::default(),
        1 << 16,
        |request: http::Request<RecvBody>, respond| {
            if request.uri().path() == "/stream" {
                streaming(request, respond)
            } else {
                echo(request, respond)
            }
        },
    );
    client
        .send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let expected = "HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: keep-alive\r\n\r\nGET /a ";
    assert_eq!(client.read().await, (expected.to_string(), false));
    client
        .send(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let expected =
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nhello world";
    assert_eq!(client.read().await, (expected.to_string(), true));
}

/// What the server answers to one hostile request (with small limits), and whether it then
/// closed.
async fn answer(request: &[u8]) -> (String, bool) {
    let limits = Limits {
        max_head_bytes: 1024,
        max_request_line: 256,
        max_headers: 8,
        ..Limits::default()
    };
    let mut client = start(limits, 1 << 16, echo);
    client.send(request).await;
    client.read().await
}

fn refused(status: &str, reason: &str) -> (String, bool) {
    (
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{reason}\n",
            reason.len() + 1
        ),
        true,
    )
}

#[tokio::test(start_paused = true)]
async fn hostile_requests_get_precise_statuses() {
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(300));
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nx-big: {}\r\n\r\n",
        "b".repeat(1100)
    );
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..9).map(|i| format!("x-{i}: v\r\n")).collect::<String>()
    );
    let table: &[(&[u8], &str, &str)] = &[
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "400 Bad Request",
            "both Content-Length and Transfer-Encoding",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            "400 Bad Request",
            "conflicting Content-Length values",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\nabcd",
            "400 Bad Request",
            "conflicting Content-Length values",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
            "400 Bad Request",
            "bad Content-Length",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
            "400 Bad Request",
            "obsolete line folding in a header",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "501 Not Implemented",
            "unsupported transfer coding",
        ),
        (
            b"GET / HTTP/1.1\r\n\r\n",
            "400 Bad Request",
            "a request needs exactly one Host header",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "400 Bad Request",
            "bad chunk size",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
            "400 Bad Request",
            "missing CRLF after chunk data",
        ),
        (b"GET / HTTP/1.1 junk\r\nHost: x\r\n\r\n", "400 Bad Request", "malformed request head"),
        (long_target.as_bytes(), "414 URI Too Long", "request line too long"),
        (
            big_header.as_bytes(),
            "431 Request Header Fields Too Large",
            "request header fields too large",
        ),
        (
            many_headers.as_bytes(),
            "431 Request Header Fields Too Large",
            "too many header fields",
        ),
    ];
    for (request, status, reason) in table {
        assert_eq!(
            answer(request).await,
            refused(status, reason),
            "for {:?}",
            String::from_utf8_lossy(request)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_nobody_reads_stops_the_reading() {
    let limits = Limits {
        body_buffer: 1024,
        ..Limits::default()
    };
    // The handler holds the body and never reads it nor answers.
    let mut client = start(limits, 4096, |request: http::Request<RecvBody>, respond| {
        Some(Box::pin(async move {
            let _held = (request, respond);
            pending::<()>().await;
        }))
    });
    client
        .send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n")
        .await;
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let (_reader, mut writer) = tokio::io::split(client.io);
    let feeder = tokio::spawn(async move {
        let piece = [b'z'; 1024];
        for _ in 0..1024 {
            writer.write_all(&piece).await.unwrap();
            counter.fetch_add(piece.len(), Ordering::Relaxed);
        }
    });
    sleep(Duration::from_secs(30)).await;
    let accepted = written.load(Ordering::Relaxed);
    // The pipe (4 KiB), one socket read (8 KiB) and the body buffer (1 KiB), no more.
    assert!(accepted <= 4096 + 8192 + 1024, "{accepted} bytes accepted");
    assert!(!feeder.is_finished());
    feeder.abort();
}

#[tokio::test(start_paused = true)]
async fn a_slow_head_gets_408_after_the_header_timeout() {
    let mut client = start(Limits::default(), 1 << 16, echo);
    let began = Instant::now();
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    sleep(Duration::from_secs(5)).await;
    client.send(b"X-Slow: 1\r\n").await;
    let got = client.read_to_close().await;
    assert_eq!(
        (got, true),
        refused("408 Request Timeout", "request head timed out")
    );
    assert_eq!(began.elapsed().as_secs(), 10);
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_closes_silently() {
    let mut client = start(Limits::default(), 1 << 16, echo);
    client.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(client.read().await, (OK_GET.to_string(), false));
    let idle = Instant::now();
    assert_eq!(client.read_to_close().await, "");
    assert_eq!(idle.elapsed().as_secs(), 59); // 60 s from the response, less read()'s 1 s.
}

#[tokio::test(start_paused = true)]
async fn a_vanishing_client_resets_the_call() {
    let (reset_tx, reset_rx) = oneshot::channel::<()>();
    let mut reset_tx = Some(reset_tx);
    let mut client = start(
        Limits::default(),
        1 << 16,
        move |_, mut respond: Respond| {
            let reset_tx = reset_tx.take();
            let mut send = respond
                .send_response(http::Response::new(()), false)
                .unwrap();
            Some(Box::pin(async move {
                send.send_data(Bytes::from_static(b"first"), false).unwrap();
                poll_fn(|cx| send.poll_reset(cx)).await;
                assert!(send.send_data(Bytes::from_static(b"late"), false).is_err());
                let _ = reset_tx.unwrap().send(());
            }))
        },
    );
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let expected = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n";
    assert_eq!(client.read().await, (expected.to_string(), false));
    drop(client.io);
    timeout(Duration::from_secs(1), reset_rx)
        .await
        .expect("poll_reset fired")
        .unwrap();
    client.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_dropped_respond_is_a_500() {
    let mut client = start(Limits::default(), 1 << 16, |_, _| None);
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(
        client.read().await,
        refused("500 Internal Server Error", "the server did not answer")
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_send_body_cuts_the_response() {
    let mut client = start(Limits::default(), 1 << 16, |_, mut respond: Respond| {
        let mut send = respond
            .send_response(http::Response::new(()), false)
            .unwrap();
        Some(Box::pin(async move {
            tokio::task::yield_now().await;
            send.send_data(Bytes::from_static(b"part"), false).unwrap();
        }))
    });
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let expected = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\npart\r\n";
    assert_eq!(client.read().await, (expected.to_string(), true));
}

#[tokio::test(start_paused = true)]
async fn an_unread_small_body_is_drained_and_a_large_one_closes() {
    let mut client = start(Limits::default(), 1 << 16, |_, mut respond: Respond| {
        let head = http::Response::builder().status(403).body(()).unwrap();
        respond.send_response(head, true).unwrap();
        None
    });
    client
        .send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    let forbidden = "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n";
    assert_eq!(client.read().await, (forbidden.to_string(), false));
    client
        .send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        .await;
    let expected = "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    assert_eq!(client.read().await, (expected.to_string(), true));
}

#[tokio::test]
async fn an_early_answer_to_a_chunked_body_still_coming_says_close() {
    // A chunked body whose end has not been read may be of any size: an answer given
    // before it does not promise the connection for reuse (a client that finished its
    // request would otherwise reuse a connection closed at the drain limit).
    let mut client = start(Limits::default(), 1 << 16, |_, mut respond: Respond| {
        let head = http::Response::builder().status(403).body(()).unwrap();
        respond.send_response(head, true).unwrap();
        None
    });
    client
        .send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        .await;
    let closed = "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    assert_eq!(client.read().await, (closed.to_string(), true));
    // Read to its end first (as a call does), the same body keeps the connection.
    let mut client = start(Limits::default(), 1 << 16, echo);
    client
        .send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        .await;
    let (answer, closed) = client.read().await;
    assert!(answer.ends_with("POST / hello"), "{answer}");
    assert!(!answer.contains("connection: close"), "{answer}");
    assert!(!closed);
}

#[tokio::test(start_paused = true)]
async fn shutdown_closes_idle_connections_and_finishes_the_exchange() {
    let mut idle = start(Limits::default(), 1 << 16, echo);
    let _ = idle.stop.take().unwrap().send(());
    assert_eq!(idle.read_to_close().await, "");

    let (go_tx, go_rx) = oneshot::channel::<()>();
    let mut go_rx = Some(go_rx);
    let mut client = start(
        Limits::default(),
        1 << 16,
        move |_, mut respond: Respond| {
            let go = go_rx.take().unwrap();
            Some(Box::pin(async move {
                let _ = go.await;
                let mut send = respond
                    .send_response(http::Response::new(()), false)
                    .unwrap();
                send.send_data(Bytes::from_static(b"done"), true).unwrap();
            }))
        },
    );
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(client.read().await, (String::new(), false));
    let _ = client.stop.take().unwrap().send(());
    assert_eq!(client.read().await, (String::new(), false));
    let _ = go_tx.send(());
    let expected = "HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\ndone";
    assert_eq!(client.read().await, (expected.to_string(), true));
}

#[tokio::test(start_paused = true)]
async fn upgrade_h2c_is_served_as_http11() {
    let mut client = start(Limits::default(), 1 << 16, echo);
    client
        .send(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
        .await;
    assert_eq!(client.read().await, (OK_GET.to_string(), false));
}

#[tokio::test]
async fn sniff_tells_the_preface_from_http1_and_rewind_gives_the_bytes_back() {
    let (mut a, mut b) = duplex(1024);
    a.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0")
        .await
        .unwrap();
    let (sniffed, prefix) = sniff(&mut b).await.unwrap();
    assert_eq!((sniffed, &prefix[..]), (Sniffed::Http2, &PREFACE[..]));

    let (mut a, mut b) = duplex(1024);
    a.write_all(b"PRX").await.unwrap();
    let (sniffed, prefix) = sniff(&mut b).await.unwrap();
    assert_eq!((sniffed, &prefix[..]), (Sniffed::Http1, &b"PRX"[..]));
    a.write_all(b" rest").await.unwrap();
    drop(a);
    let mut rewound = Rewind::new(prefix, b);
    let mut all = String::new();
    rewound.read_to_string(&mut all).await.unwrap();
    assert_eq!(all, "PRX rest");

    // A decision at the first differing byte, without waiting for 24.
    let (mut a, mut b) = duplex(1024);
    a.write_all(b"G").await.unwrap();
    let (sniffed, prefix) = sniff(&mut b).await.unwrap();
    assert_eq!((sniffed, &prefix[..]), (Sniffed::Http1, &b"G"[..]));

    // End of input before a decision: HTTP/1 with what came.
    let (mut a, mut b) = duplex(1024);
    a.write_all(b"PRI *").await.unwrap();
    drop(a);
    let (sniffed, prefix) = sniff(&mut b).await.unwrap();
    assert_eq!((sniffed, &prefix[..]), (Sniffed::Http1, &b"PRI *"[..]));
}

#[test]
fn http_dates_are_imf_fixdates() {
    let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    assert_eq!(http_date(at(784_111_777)), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(http_date(at(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(http_date(at(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
}

#[test]
fn the_fuzz_entry_agrees_with_itself_on_samples() {
    let samples: &[&[u8]] = &[
        b"\x13POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\nGET",
        b"\x00POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcdef",
        b"\xff\r\n\r\nGET / HTTP/1.0\r\n\r\n",
        b"\x07GET / HTTP/1.1\r\nHost: x\r\n\r",
        b"\x21POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
        b"",
    ];
    for sample in samples {
        fuzz_request(sample);
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_larger_than_the_buffer_flows_through_a_reading_handler() {
    let limits = Limits {
        body_buffer: 1000,
        ..Limits::default()
    };
    let client = start(
        limits,
        4096,
        |request: http::Request<RecvBody>, mut respond: Respond| {
            Some(Box::pin(async move {
                let mut body = request.into_body();
                let (mut total, mut largest, mut sum) = (0usize, 0usize, 0u64);
                while let Some(data) = poll_fn(|cx| body.poll_data(cx)).await {
                    let data = data.unwrap();
                    largest = largest.max(data.len());
                    total += data.len();
                    sum += data.iter().map(|&b| u64::from(b)).sum::<u64>();
                    tokio::task::yield_now().await;
                }
                let text = format!("{total} {sum} {}", largest <= 1000);
                let mut send = respond
                    .send_response(http::Response::new(()), false)
                    .unwrap();
                send.send_data(Bytes::from(text), true).unwrap();
            }))
        },
    );
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
    let (mut reader, mut writer) = tokio::io::split(client.io);
    let feeder = tokio::spawn(async move {
        writer
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
            .await
            .unwrap();
        writer.write_all(&body).await.unwrap();
        writer
    });
    let _writer = feeder.await.unwrap();
    let mut got = vec![0u8; 4096];
    let n = reader.read(&mut got).await.unwrap();
    let text = format!("100000 {sum} true");
    let expected = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{text}",
        text.len()
    );
    assert_eq!(strip_date(&String::from_utf8_lossy(&got[..n])), expected);
}

#[tokio::test(start_paused = true)]
async fn capacity_paces_a_large_response() {
    let limits = Limits {
        response_buffer: 1000,
        ..Limits::default()
    };
    let mut client = start(limits, 512, |_, mut respond: Respond| {
        Some(Box::pin(async move {
            let mut send = respond
                .send_response(http::Response::new(()), false)
                .unwrap();
            let mut data = Bytes::from(vec![b'x'; 10_000]);
            // The pattern of the h2 path (`send_windowed`): reserve, wait, send what fits.
            while !data.is_empty() {
                send.reserve_capacity(data.len());
                let mut capacity = send.capacity();
                while capacity == 0 {
                    capacity = poll_fn(|cx| send.poll_capacity(cx)).await.unwrap().unwrap();
                }
                assert!(capacity <= 1000);
                let piece = data.split_to(capacity.min(data.len()));
                send.send_data(piece, false).unwrap();
            }
            send.send_data(Bytes::new(), true).unwrap();
        }))
    });
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (text, closed) = client.read().await;
    assert!(!closed);
    let (head, mut body) = text.split_once("\r\n\r\n").unwrap();
    assert_eq!(head, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked");
    let mut total = 0;
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size, 16).unwrap();
        if size == 0 {
            assert_eq!(rest, "\r\n");
            break;
        }
        assert!(size <= 1000);
        assert!(rest[..size].bytes().all(|b| b == b'x'));
        total += size;
        body = &rest[size + 2..];
    }
    assert_eq!(total, 10_000);
}
