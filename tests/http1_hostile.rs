//! Hostile input over HTTP/1.1: request smuggling shapes (both framings, conflicting
//! lengths, folded headers, bad chunks, unknown codings), oversized heads, a body over the
//! receive limit, a slowloris head, pipelining, gRPC where HTTP/2 is needed, garbage, and
//! a crowd of connections that never finish their heads.
//!
//! Every case is raw bytes on a `TcpStream` to a real [`Server`] and names the exact
//! status line it must get (RFC 9112 and RFC 9110 for the framing, Connect's code table
//! for a call's error), or that the connection closes without one. After each, the
//! server must still serve a gRPC call over HTTP/2 and a Connect JSON call over HTTP/1.1:
//! a refused request costs its own connection at most, never the server.
//!
//! Each test prints its rows, `case | expected | got`, so a run with `--nocapture` lists
//! what the server answered. Memory is measured as in `tests/hostile.rs`: the resident set
//! of this process (server and client both), before and after, with a generous bound
//! that only a server buffering in proportion to the attack would break.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use h2grpc::Server;
use h2grpc_test_support::memory::{assert_memory_bounded, rss_bytes};
use h2grpc_test_support::service::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const UNARY: &str = "/demo.GRPCDemo/SimpleMethod";

/// The receive limit of the table's server: small, so a body crosses it cheaply.
const RECEIVE_LIMIT: usize = 1024;

/// The head read timeout of the table's server: short, so a slowloris case is quick.
const HEAD_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a read waits before the test calls the server hung.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// One test at a time, so that the memory figures are each test's own.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One response as read off the wire.
#[derive(Debug)]
struct Response {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn status(&self) -> u16 {
        self.status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status code in the status line")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What a connection got: a response, or the close with none.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// This exact status line.
    Status(String),
    /// The connection closed (or was reset) before any response byte.
    Closed,
}

impl Answer {
    /// The status line HTTP/1.1 writes for `code`: `HTTP/1.1 400 Bad Request`.
    fn status(code: u16) -> Answer {
        let reason = http::StatusCode::from_u16(code)
            .unwrap()
            .canonical_reason()
            .unwrap_or("");
        Answer::Status(format!("HTTP/1.1 {code} {reason}"))
    }

    fn of(response: &Option<Response>) -> Answer {
        match response {
            Some(r) => Answer::Status(r.status_line.clone()),
            None => Answer::Closed,
        }
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Status(line) => f.write_str(line),
            Answer::Closed => f.write_str("closed, no response"),
        }
    }
}

/// Print one row of the table.
fn row(case: &str, expected: &str, got: &str) {
    eprintln!("| {case} | {expected} | {got} |");
}

/// A raw HTTP/1.1 client connection: writes whatever it is given, reads responses.
struct Conn {
    read: OwnedReadHalf,
    write: Option<OwnedWriteHalf>,
    buf: Vec<u8>,
    eof: bool,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        let (read, write) = stream.into_split();
        Conn {
            read,
            write: Some(write),
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Write `bytes`; a failure (the server closed first) is not the test's concern here:
    /// what it answered is.
    async fn send(&mut self, bytes: &[u8]) {
        let write = self.write.as_mut().expect("the writing half");
        let _ = write.write_all(bytes).await;
    }

    /// The writing half, for a task that writes while the test reads.
    fn take_writer(&mut self) -> OwnedWriteHalf {
        self.write.take().expect("the writing half")
    }

    /// Read more bytes into the buffer: false at end of input (a reset counts as one).
    async fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        let mut chunk = [0u8; 8192];
        let read = tokio::time::timeout(READ_TIMEOUT, self.read.read(&mut chunk))
            .await
            .expect("the server neither answered nor closed in time");
        match read {
            Ok(0) | Err(_) => {
                self.eof = true;
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Read until `n` bytes are buffered; false if the input ended first.
    async fn want(&mut self, n: usize) -> bool {
        while self.buf.len() < n {
            if !self.fill().await {
                return false;
            }
        }
        true
    }

    /// The next response; None when the connection ends before a whole head.
    async fn response(&mut self) -> Option<Response> {
        let end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if !self.fill().await {
                assert!(
                    self.buf.is_empty(),
                    "the connection ended inside a response head: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
                return None;
            }
        };
        let head: Vec<u8> = self.buf.drain(..end).collect();
        let head = String::from_utf8(head).expect("a UTF-8 response head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (name, value) = l.split_once(':').expect("a header line");
                (name.to_owned(), value.trim().to_owned())
            })
            .collect();
        let mut response = Response {
            status_line,
            headers,
            body: Vec::new(),
        };
        if let Some(length) = response.header("content-length") {
            let length: usize = length.parse().expect("a content-length");
            assert!(self.want(length).await, "the body ended early");
            response.body = self.buf.drain(..length).collect();
        } else if response.header("transfer-encoding") == Some("chunked") {
            loop {
                let line_end = loop {
                    if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break at;
                    }
                    assert!(self.fill().await, "the chunked body ended early");
                };
                let size = std::str::from_utf8(&self.buf[..line_end]).unwrap();
                let size = usize::from_str_radix(size.split(';').next().unwrap(), 16).unwrap();
                self.buf.drain(..line_end + 2);
                assert!(self.want(size + 2).await, "the chunked body ended early");
                response.body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
        } else if response.status() >= 200 && response.status() != 204 {
            // Delimited by the close.
            while self.fill().await {}
            response.body = std::mem::take(&mut self.buf);
        }
        Some(response)
    }

    /// Whether the server closes the connection (end of input with nothing more sent).
    async fn closes(&mut self) -> bool {
        while self.fill().await {}
        self.buf.is_empty()
    }

    /// Whether the connection is still open after `wait`: nothing arrives and no end.
    async fn open_after(&mut self, wait: Duration) -> bool {
        let mut chunk = [0u8; 64];
        tokio::time::timeout(wait, self.read.read(&mut chunk))
            .await
            .is_err()
    }
}

/// A Connect JSON unary request for `SimpleMethod` with `text` as its `requestData`.
fn connect_json(text: &str) -> Vec<u8> {
    let body = format!(r#"{{"clientId":"1","requestData":"{text}"}}"#);
    format!(
        "POST {UNARY} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Asserts `response` is the demo service's answer to `echo:TEXT`: 200 and JSON whose
/// `responseData` is TEXT (the test service replies with server id 7).
#[track_caller]
fn assert_echo(response: &Option<Response>, text: &str) {
    let response = response.as_ref().expect("a response");
    assert_eq!(response.status_line, "HTTP/1.1 200 OK", "{response:?}");
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        response.body_text(),
        format!(r#"{{"serverId":"7","responseData":"{text}"}}"#)
    );
}

/// The server answers a gRPC call over HTTP/2 and a Connect JSON call over HTTP/1.1, each
/// on a new connection.
async fn assert_serves_both(addr: SocketAddr) {
    assert_serves(addr).await;
    let mut conn = Conn::open(addr).await;
    conn.send(&connect_json("echo:still here")).await;
    assert_echo(&conn.response().await, "still here");
}

/// One row of the raw-bytes table.
struct Case {
    name: &'static str,
    /// Everything the client sends, in one write.
    send: Vec<u8>,
    answer: Answer,
    /// The server closes the connection after answering.
    closes: bool,
}

/// A request head for `SimpleMethod` with `extra` header lines (each ending in CRLF)
/// after `host` and a Connect JSON content type, then `body`.
fn request(extra: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {UNARY} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n{extra}\r\n{body}"
    )
    .into_bytes()
}

const JSON: &str = r#"{"clientId":"1","requestData":"echo:x"}"#;

/// The server of the table: the test service with a 1 KiB receive limit and a 1 s head
/// read timeout.
async fn table_server() -> TestServer {
    TestServer::start_with(
        Server::new()
            .max_receive_message_size(RECEIVE_LIMIT)
            .http1_header_read_timeout(HEAD_TIMEOUT),
    )
    .await
}

/// Each malformed or oversized request gets the exact status line of its row (and the
/// connection closes after it: the server cannot know where the next request would
/// start), and both protocols are served right after. All rows run before the test fails.
#[tokio::test]
async fn malformed_http1_requests_get_exact_status_lines_and_the_server_keeps_serving() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let server = table_server().await;
        let before = rss_bytes();
        let json_len = JSON.len();
        let many_headers: String = (0..101).map(|i| format!("x-h{i}: v\r\n")).collect();
        let cases = vec![
            Case {
                // RFC 9112 6.3: a request with both is a smuggling attempt; 400 and close.
                name: "Content-Length and Transfer-Encoding: chunked",
                send: request(
                    &format!("content-length: {json_len}\r\ntransfer-encoding: chunked\r\n"),
                    JSON,
                ),
                answer: Answer::status(400),
                closes: true,
            },
            Case {
                // RFC 9112 6.3: differing lengths are unrecoverable.
                name: "two different Content-Length",
                send: request(
                    &format!("content-length: {json_len}\r\ncontent-length: 5\r\n"),
                    JSON,
                ),
                answer: Answer::status(400),
                closes: true,
            },
            Case {
                name: "Content-Length: 1,2 (a list that disagrees)",
                send: request("content-length: 1,2\r\n", JSON),
                answer: Answer::status(400),
                closes: true,
            },
            Case {
                name: "Content-Length: -1",
                send: request("content-length: -1\r\n", JSON),
                answer: Answer::status(400),
                closes: true,
            },
            Case {
                // RFC 9112 5.2: a server must reject obs-fold (or replace it; we reject).
                name: "obs-fold header",
                send: request(
                    &format!("x-folded: a\r\n  b\r\ncontent-length: {json_len}\r\n"),
                    JSON,
                ),
                answer: Answer::status(400),
                closes: true,
            },
            Case {
                name: "bad chunk size",
                send: request(
                    "transfer-encoding: chunked\r\n",
                    &format!("zz\r\n{JSON}\r\n0\r\n\r\n"),
                ),
                answer: Answer::status(400),
                closes: true,
            },
            Case {
                name: "chunk size over 64 bits",
                send: request(
                    "transfer-encoding: chunked\r\n",
                    "1ffffffffffffffff\r\nx\r\n0\r\n\r\n",
                ),
                answer: Answer::status(400),
                closes: true,
            },
            Case {
                // RFC 9112 6.1: an unknown transfer coding is 501.
                name: "Transfer-Encoding: gzip",
                send: request("transfer-encoding: gzip\r\n", JSON),
                answer: Answer::status(501),
                closes: true,
            },
            Case {
                // RFC 9112 6.3: chunked must be the final coding.
                name: "Transfer-Encoding: chunked, gzip",
                send: request("transfer-encoding: chunked, gzip\r\n", JSON),
                answer: Answer::status(501),
                closes: true,
            },
            Case {
                // RFC 9112 3: 414 for a request line over what the server parses (8 KiB).
                name: "request line over 8 KiB",
                send: format!(
                    "GET /{} HTTP/1.1\r\nhost: test\r\n\r\n",
                    "a".repeat(9 * 1024)
                )
                .into_bytes(),
                answer: Answer::status(414),
                closes: true,
            },
            Case {
                // RFC 6585 5: header fields too large.
                name: "headers over 16 KiB",
                send: request(&format!("x-big: {}\r\n", "b".repeat(17 * 1024)), ""),
                answer: Answer::status(431),
                closes: true,
            },
            Case {
                name: "more than 100 header fields",
                send: request(&many_headers, ""),
                answer: Answer::status(431),
                closes: true,
            },
            Case {
                name: "no Host header",
                send: format!(
                    "POST {UNARY} HTTP/1.1\r\ncontent-type: application/json\r\n\
                     content-length: {json_len}\r\n\r\n{JSON}"
                )
                .into_bytes(),
                answer: Answer::status(400),
                closes: true,
            },
            Case {
                name: "HTTP/2.0 in an HTTP/1 request line",
                send: b"GET / HTTP/2.0\r\nhost: test\r\n\r\n".to_vec(),
                answer: Answer::status(505),
                closes: true,
            },
            Case {
                // gRPC needs HTTP/2's trailers; the request was well-formed, so the
                // connection stays usable.
                name: "gRPC (application/grpc) over HTTP/1.1",
                send: format!(
                    "POST {UNARY} HTTP/1.1\r\nhost: test\r\ncontent-type: application/grpc\r\n\
                     te: trailers\r\ncontent-length: 0\r\n\r\n"
                )
                .into_bytes(),
                answer: Answer::status(505),
                closes: false,
            },
            Case {
                name: "garbage bytes (not HTTP)",
                send: b"\x16\x03\x01\x02\x00\x01\xff\xfe garbage \x00\r\n\r\n".to_vec(),
                answer: Answer::status(400),
                closes: true,
            },
            Case {
                name: "a TLS ClientHello's first bytes, then a blank line",
                send: b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n".to_vec(),
                answer: Answer::status(400),
                closes: true,
            },
        ];
        let mut failures = Vec::new();
        for case in cases {
            let mut conn = Conn::open(server.addr).await;
            conn.send(&case.send).await;
            let response = conn.response().await;
            let got = Answer::of(&response);
            let closed = match &response {
                Some(_) if case.closes => conn.closes().await,
                Some(_) => !conn.open_after(Duration::from_millis(200)).await,
                None => true,
            };
            let how = if closed { "closed" } else { "kept open" };
            row(
                case.name,
                &format!(
                    "{}, {}",
                    case.answer,
                    if case.closes { "closed" } else { "kept open" }
                ),
                &format!("{got}, {how}"),
            );
            if got != case.answer || closed != case.closes {
                failures.push(format!(
                    "{}: expected {} ({}), got {got} ({how}): {:?}",
                    case.name,
                    case.answer,
                    if case.closes { "closed" } else { "kept open" },
                    response.map(|r| r.body_text())
                ));
            }
            assert_serves_both(server.addr).await;
        }
        assert_memory_bounded(before, "malformed HTTP/1.1 requests");
        assert!(
            failures.is_empty(),
            "wrong answers:\n{}",
            failures.join("\n")
        );
    })
    .await
}

/// A Connect unary body over the receive limit is Connect's `resource_exhausted`, which
/// its code table makes HTTP 429, with the JSON error body; a body of many MiB is not
/// held whole, so memory stays bounded. Tried with a `Content-Length` body and a chunked
/// one (whose size is not known up front).
#[tokio::test]
async fn a_connect_body_over_the_receive_limit_is_429_with_a_json_error() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let server = table_server().await;
        let before = rss_bytes();
        // The JSON is valid up to the limit and far past it: only the size is wrong.
        let padding = "p".repeat(8 * 1024 * 1024);
        let body = format!(r#"{{"clientId":"1","requestData":"echo:{padding}"}}"#);
        for chunked in [false, true] {
            let name = if chunked {
                "Connect unary, 8 MiB chunked body over a 1 KiB limit"
            } else {
                "Connect unary, 8 MiB Content-Length body over a 1 KiB limit"
            };
            let framing = if chunked {
                "transfer-encoding: chunked\r\n".to_owned()
            } else {
                format!("content-length: {}\r\n", body.len())
            };
            let mut conn = Conn::open(server.addr).await;
            let mut write = conn.take_writer();
            let head = request(&framing, "");
            let payload = body.clone().into_bytes();
            // The body goes out from its own task: the server answers before it has all
            // of it, and may stop reading.
            let writer = tokio::spawn(async move {
                write.write_all(&head).await?;
                for piece in payload.chunks(64 * 1024) {
                    if chunked {
                        write
                            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                            .await?;
                        write.write_all(piece).await?;
                        write.write_all(b"\r\n").await?;
                    } else {
                        write.write_all(piece).await?;
                    }
                }
                if chunked {
                    write.write_all(b"0\r\n\r\n").await?;
                }
                Ok::<_, std::io::Error>(write)
            });
            let response = conn.response().await;
            writer.abort();
            let got = Answer::of(&response);
            row(name, &Answer::status(429).to_string(), &got.to_string());
            assert_eq!(got, Answer::status(429), "{response:?}");
            let response = response.unwrap();
            assert_eq!(response.header("content-type"), Some("application/json"));
            let error: serde_json::Value =
                serde_json::from_slice(&response.body).expect("a JSON error body");
            assert_eq!(error["code"], "resource_exhausted", "{error}");
            assert!(
                error["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("1024")),
                "the message names the limit: {error}"
            );
            assert_serves_both(server.addr).await;
        }
        assert_memory_bounded(before, "Connect bodies over the receive limit");
    })
    .await
}

/// Slowloris: a head sent one byte every 100 ms is cut off with 408 once the head read
/// timeout (1 s here) has passed since its first byte, however steadily bytes arrive;
/// the connection closes and the server serves on.
#[tokio::test]
async fn a_head_sent_a_byte_at_a_time_gets_408_after_the_head_read_timeout() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let server = table_server().await;
        let mut conn = Conn::open(server.addr).await;
        let mut write = conn.take_writer();
        // 15 s worth of bytes at this pace: far past the timeout.
        let head = request(&format!("x-slow: {}\r\n", "s".repeat(100)), "");
        let started = Instant::now();
        let writer = tokio::spawn(async move {
            for byte in head {
                if write.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let response = conn.response().await;
        let took = started.elapsed();
        let got = Answer::of(&response);
        row(
            "slowloris: a head at one byte per 100 ms, 1 s head timeout",
            &Answer::status(408).to_string(),
            &format!("{got} after {} ms", took.as_millis()),
        );
        assert_eq!(got, Answer::status(408));
        assert!(
            took >= HEAD_TIMEOUT && took < HEAD_TIMEOUT + Duration::from_secs(2),
            "408 after {took:?}, the timeout is {HEAD_TIMEOUT:?}"
        );
        assert!(conn.closes().await, "the connection closes after the 408");
        writer.abort();
        assert_serves_both(server.addr).await;
    })
    .await
}

/// Two requests in one write (pipelining, RFC 9112 9.3.2) get their two responses in
/// order on the same connection; three requests one after the other (keep-alive) each get
/// theirs, and the connection stays open between them.
#[tokio::test]
async fn pipelined_and_kept_alive_requests_are_answered_in_order() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let server = table_server().await;

        let mut conn = Conn::open(server.addr).await;
        conn.send(&[connect_json("echo:first"), connect_json("echo:second")].concat())
            .await;
        let first = conn.response().await;
        let second = conn.response().await;
        row(
            "two pipelined Connect requests in one write",
            "HTTP/1.1 200 OK (first), HTTP/1.1 200 OK (second)",
            &format!(
                "{} ({}), {} ({})",
                Answer::of(&first),
                first.as_ref().map(Response::body_text).unwrap_or_default(),
                Answer::of(&second),
                second.as_ref().map(Response::body_text).unwrap_or_default(),
            ),
        );
        assert_echo(&first, "first");
        assert_echo(&second, "second");
        assert!(conn.open_after(Duration::from_millis(200)).await);

        let mut conn = Conn::open(server.addr).await;
        let mut got = Vec::new();
        for i in 0..3 {
            let text = format!("keep-alive {i}");
            conn.send(&connect_json(&format!("echo:{text}"))).await;
            let response = conn.response().await;
            got.push(Answer::of(&response).to_string());
            assert_echo(&response, &text);
            assert!(
                conn.open_after(Duration::from_millis(100)).await,
                "the connection stays open after request {i}"
            );
        }
        row(
            "three requests one after the other on one connection",
            "3 x HTTP/1.1 200 OK, kept open",
            &format!("{}, kept open", got.join("; ")),
        );
        assert_serves_both(server.addr).await;
    })
    .await
}

/// A server with the web protocols off speaks gRPC over HTTP/2 only and does not look at
/// the first bytes: it starts HTTP/2 at once (its SETTINGS frame goes out first), and an
/// HTTP/1.1 request, which is no HTTP/2 preface, ends the connection. The client gets
/// that frame and the close, never an HTTP/1.1 response, and nothing is served: what
/// grpc-go and hyper's HTTP/2-only servers do too.
#[tokio::test]
async fn an_http1_request_to_an_h2_only_server_is_closed_unanswered() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let mut server = TestServer::start_with(Server::new().web_protocols(false)).await;
        let mut conn = Conn::open(server.addr).await;
        conn.send(&connect_json("ran")).await;
        while conn.fill().await {}
        let got = if conn.buf.starts_with(b"HTTP/") {
            String::from_utf8_lossy(&conn.buf)
                .lines()
                .next()
                .unwrap()
                .to_owned()
        } else {
            format!(
                "closed after {} bytes (HTTP/2 frame type {:?}), no HTTP/1.1 response",
                conn.buf.len(),
                conn.buf.get(3)
            )
        };
        row(
            "HTTP/1.1 to a server built with .web_protocols(false)",
            "closed after the server's HTTP/2 SETTINGS, no HTTP/1.1 response",
            &got,
        );
        assert!(!conn.buf.starts_with(b"HTTP/"), "{got}");
        // All that came is the server's SETTINGS frame (type 4, stream 0).
        assert!(
            conn.buf.len() >= 9 && conn.buf[3] == 4 && conn.buf[5..9] == [0; 4],
            "{got}: {:?}",
            conn.buf
        );
        let settings_len = usize::from(conn.buf[1]) << 8 | usize::from(conn.buf[2]);
        assert_eq!(conn.buf.len(), 9 + settings_len, "only the SETTINGS frame");
        assert_eq!(server.event_now(), None, "the handler never ran");
        assert_serves(server.addr).await;
    })
    .await
}

/// 200 connections that each send part of a head and never finish it hold the server's
/// memory to what their parts are (a connection's head buffer grows with what arrived,
/// never up front), and a normal call on a new connection is served at once beside them.
#[tokio::test]
async fn many_unfinished_heads_do_not_stop_a_normal_call() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        // The default head read timeout (10 s): the connections are all still open when
        // the normal calls are made.
        let server = TestServer::start().await;
        let before = rss_bytes();
        let mut held = Vec::new();
        for i in 0..200 {
            let mut conn = Conn::open(server.addr).await;
            conn.send(format!("POST {UNARY} HTTP/1.1\r\nhost: test\r\nx-partial-{i}: ").as_bytes())
                .await;
            held.push(conn);
        }
        // Let the server read every partial head.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        assert_serves_both(server.addr).await;
        let took = started.elapsed();
        row(
            "200 connections with unfinished heads, then a gRPC and a Connect call",
            "both served at once",
            &format!("both served in {} ms", took.as_millis()),
        );
        assert!(
            took < Duration::from_secs(1),
            "the calls beside 200 unfinished heads took {took:?}"
        );
        for conn in &mut held {
            assert!(
                conn.open_after(Duration::ZERO).await,
                "an unfinished head is waited for, not answered early"
            );
        }
        assert_memory_bounded(before, "200 unfinished heads");
    })
    .await
}
