//! Hostile input: malformed requests, malformed and abusive HTTP/2, floods and idle
//! sockets. Each case names the exact answer the spec (or RFC 9113) gives, whether a gRPC
//! status, an HTTP status, an RST_STREAM or a GOAWAY code, and then proves the server
//! still serves a normal call, with the memory of the process bounded.
//!
//! Requests a well-behaved client could still send go through the `h2` crate's client;
//! what it refuses to send (streams past the limit, floods, resets by the thousand,
//! garbage) is written as raw frames on a TCP socket (the kit's `raw` module).
//!
//! Memory: the test process is the server and the client at once, so the resident set
//! size (`VmRSS` in `/proc/self/status`) read before and after an attack bounds both.
//! Freed memory is not always returned to the OS, so "after" also covers the peak. The
//! bound is generous (`h2grpc_test_support::memory::MEMORY_BOUND`): what it catches is a server that buffers in
//! proportion to the attack (a stream of hundreds of MiB, a queue of a million pongs),
//! not a few MiB of socket buffers. The tests of this file run one at a time
//! ([`SERIAL`]) so that one test's allocations do not show up in another's figures.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use h2grpc::compression::{Encoding, compress};
use h2grpc::server::DEFAULT_HANDSHAKE_TIMEOUT;
use h2grpc::{Code, Request, Server};
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::lpm;
use h2grpc_test_support::memory::{assert_memory_bounded, rss_bytes};
use h2grpc_test_support::raw::*;
use h2grpc_test_support::relay::Relay;
use h2grpc_test_support::service::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const UNARY: &str = "/demo.GRPCDemo/SimpleMethod";
const CLIENT_STREAMING: &str = "/demo.GRPCDemo/ClientStreamingMethod";
const SERVER_STREAMING: &str = "/demo.GRPCDemo/ServerStreamingMethod";

/// One test at a time, so that the memory figures are each test's own.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------
// Malformed gRPC requests, through the h2 client.

/// What a request must get back.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    /// A plain HTTP response with this status and no gRPC status.
    Http(u16),
    /// HTTP 200 with this `grpc-status`; errors as Trailers-Only (no message was sent).
    Grpc(Code),
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    /// Headers set on (replacing) or, with an empty value, removed from the well-formed head.
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    answer: Answer,
}

fn case(name: &'static str, body: Vec<u8>, answer: Answer) -> Case {
    Case {
        name,
        method: "POST",
        path: UNARY,
        headers: vec![],
        body,
        answer,
    }
}

/// `payload` gzip-compressed, as one message with the compressed flag.
fn gzip_message(payload: &[u8]) -> Vec<u8> {
    let mut compressed = BytesMut::new();
    compress(Encoding::Gzip, payload, &mut compressed).unwrap();
    lpm::compressed(&compressed)
}

/// Each malformed request, through the h2 client, gets the exact answer named in its row
/// (statuscodes.md, PROTOCOL-HTTP2.md, grpc-go where the spec leaves a choice), and a
/// normal call is served right after it. All rows are tried before the test fails, so one
/// run lists every wrong answer.
#[tokio::test]
async fn malformed_requests_get_exact_answers_and_the_server_keeps_serving() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let server = TestServer::start().await;
        let before = rss_bytes();
        let ok = lpm::encode(&req("echo:x"));
        let cases = vec![
            Case {
                headers: vec![("content-type", "text/plain")],
                ..case("wrong content-type", ok.clone(), Answer::Http(415))
            },
            Case {
                headers: vec![("content-type", "application/xml")],
                ..case("xml content-type", ok.clone(), Answer::Http(415))
            },
            Case {
                // Connect's JSON unary content type: read as Connect, and a gRPC body is
                // no JSON (Connect's invalid_argument is HTTP 400).
                headers: vec![("content-type", "application/json")],
                ..case(
                    "a gRPC body sent as Connect JSON",
                    ok.clone(),
                    Answer::Http(400),
                )
            },
            Case {
                headers: vec![("content-type", "")],
                ..case("no content-type", ok.clone(), Answer::Http(415))
            },
            Case {
                method: "GET",
                ..case("method GET", vec![], Answer::Http(405))
            },
            Case {
                method: "PUT",
                ..case("method PUT", ok.clone(), Answer::Http(405))
            },
            // `te: trailers` is there to detect proxies that drop trailers; a request that
            // reached the server over HTTP/2 without it is served, as grpc-go and tonic do
            // (grpcio answers INTERNAL instead: the spec leaves it to the server).
            Case {
                headers: vec![("te", "")],
                ..case("no te", ok.clone(), Answer::Grpc(Code::Ok))
            },
            Case {
                path: "/demo.GRPCDemo/Nope",
                ..case(
                    "unknown method",
                    ok.clone(),
                    Answer::Grpc(Code::Unimplemented),
                )
            },
            Case {
                path: "/no.Such/Service",
                ..case(
                    "unknown service",
                    ok.clone(),
                    Answer::Grpc(Code::Unimplemented),
                )
            },
            Case {
                path: "/demo.GRPCDemo",
                ..case(
                    "path without a method",
                    ok.clone(),
                    Answer::Grpc(Code::Unimplemented),
                )
            },
            Case {
                path: "/",
                ..case("root path", ok.clone(), Answer::Grpc(Code::Unimplemented))
            },
            case(
                "length prefix of 4 GiB",
                lpm::prefixed(0, u32::MAX, b"abc"),
                Answer::Grpc(Code::ResourceExhausted),
            ),
            case(
                "truncated message",
                ok[..ok.len() - 2].to_vec(),
                Answer::Grpc(Code::Internal),
            ),
            case("truncated prefix", vec![0, 0], Answer::Grpc(Code::Internal)),
            case(
                "compressed flag without grpc-encoding",
                lpm::prefixed(1, 3, b"abc"),
                Answer::Grpc(Code::Internal),
            ),
            Case {
                headers: vec![("grpc-encoding", "identity")],
                ..case(
                    "compressed flag with grpc-encoding identity",
                    lpm::prefixed(1, 3, b"abc"),
                    Answer::Grpc(Code::Internal),
                )
            },
            case(
                "compressed flag 2",
                lpm::prefixed(2, 3, b"abc"),
                Answer::Grpc(Code::Internal),
            ),
            case(
                "compressed flag 0xff",
                lpm::prefixed(0xff, 3, b"abc"),
                Answer::Grpc(Code::Internal),
            ),
            Case {
                headers: vec![("grpc-encoding", "snappy")],
                ..case(
                    "unknown encoding",
                    ok.clone(),
                    Answer::Grpc(Code::Unimplemented),
                )
            },
            // checklist 11: the decompressed size is held to the limit too.
            Case {
                headers: vec![("grpc-encoding", "gzip")],
                ..case(
                    "gzip bomb: 5 MiB of zeros in a few KiB",
                    gzip_message(&vec![0; 5 * 1024 * 1024]),
                    Answer::Grpc(Code::ResourceExhausted),
                )
            },
            // statuscodes.md: "Could not decompress, but compression algorithm supported".
            Case {
                headers: vec![("grpc-encoding", "gzip")],
                ..case(
                    "corrupt gzip",
                    lpm::prefixed(1, 8, b"\x1f\x8b\x08\x00junk"),
                    Answer::Grpc(Code::Internal),
                )
            },
            Case {
                headers: vec![("grpc-encoding", "gzip")],
                ..case(
                    "gzip, well formed",
                    gzip_message(&prost::Message::encode_to_vec(&req("echo:x"))),
                    Answer::Grpc(Code::Ok),
                )
            },
            case(
                "invalid protobuf",
                lpm::prefixed(0, 3, b"\xff\xff\xff"),
                Answer::Grpc(Code::Internal),
            ),
            // statuscodes.md: "Request cardinality violation (method requires exactly one
            // request but client sent some other number of requests): UNIMPLEMENTED".
            case(
                "no message for a unary method",
                vec![],
                Answer::Grpc(Code::Unimplemented),
            ),
            case(
                "two messages for a unary method",
                [ok.clone(), ok.clone()].concat(),
                Answer::Grpc(Code::Unimplemented),
            ),
            Case {
                path: SERVER_STREAMING,
                ..case(
                    "two messages for a server-streaming method",
                    [lpm::encode(&req("count:1")), lpm::encode(&req("count:1"))].concat(),
                    Answer::Grpc(Code::Unimplemented),
                )
            },
            // grpc-go: INTERNAL "malformed grpc-timeout".
            Case {
                headers: vec![("grpc-timeout", "123456789S")],
                ..case(
                    "grpc-timeout of 9 digits",
                    ok.clone(),
                    Answer::Grpc(Code::Internal),
                )
            },
            Case {
                headers: vec![("grpc-timeout", "10x")],
                ..case(
                    "grpc-timeout with an unknown unit",
                    ok.clone(),
                    Answer::Grpc(Code::Internal),
                )
            },
            Case {
                headers: vec![("grpc-timeout", "-1S")],
                ..case(
                    "negative grpc-timeout",
                    ok.clone(),
                    Answer::Grpc(Code::Internal),
                )
            },
            // grpc-go: INTERNAL "malformed binary metadata ... in header ...", before the
            // handler runs.
            Case {
                headers: vec![("x-req-bin", "!!not base64!!")],
                ..case(
                    "bad base64 in a -bin header",
                    lpm::encode(&req("metadata")),
                    Answer::Grpc(Code::Internal),
                )
            },
        ];
        let mut failures = Vec::new();
        for c in cases {
            let mut head = grpc_head(server.addr, c.path).method(c.method);
            let headers = head.headers_mut().unwrap();
            for (name, value) in &c.headers {
                match *value {
                    "" => headers.remove(*name),
                    value => headers.insert(*name, value.parse().unwrap()),
                };
            }
            let response = raw_request(server.addr, head.body(()).unwrap(), &c.body).await;
            let got = match response.grpc_status() {
                Some(code) if response.status == 200 => Answer::Grpc(code),
                _ => Answer::Http(response.status.as_u16()),
            };
            if got != c.answer {
                failures.push(format!(
                    "{}: expected {:?}, got {got:?} (HTTP {}, grpc-message {:?})",
                    c.name,
                    c.answer,
                    response.status,
                    response.grpc_message()
                ));
            } else if let Answer::Grpc(code) = c.answer
                && code != Code::Ok
            {
                assert!(
                    response.trailers.is_none() && response.body.is_empty(),
                    "{}: an error before any message is Trailers-Only",
                    c.name
                );
                assert!(
                    !response.grpc_message().is_empty(),
                    "{}: a message names the condition",
                    c.name
                );
                if c.name == "unknown encoding" {
                    let accept = response
                        .headers
                        .get("grpc-accept-encoding")
                        .expect("grpc-accept-encoding lists what the server reads");
                    let accept = accept.to_str().unwrap();
                    assert!(
                        accept.split(',').any(|e| e.trim() == "identity"),
                        "{accept}"
                    );
                    assert!(!accept.contains("snappy"), "{accept}");
                }
            } else if let Answer::Http(_) = c.answer {
                assert!(response.headers.get("grpc-status").is_none(), "{}", c.name);
            }
            assert_serves(server.addr).await;
        }
        assert_memory_bounded(before, "malformed requests");
        assert!(
            failures.is_empty(),
            "wrong answers:\n{}",
            failures.join("\n")
        );
    })
    .await
}

// ---------------------------------------------------------------------------------------
// Oversized headers.

/// A request whose header list is over the server's limit (16 KiB) but under h2's abuse
/// threshold (4 times the limit) gets HTTP 431 (RFC 9113 §10.5.1, RFC 6585), which a gRPC
/// client reads as INTERNAL; the connection stays up.
#[tokio::test]
async fn a_20_kib_header_gets_http_431_and_the_connection_survives() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let server = TestServer::start().await;
        let big = "a".repeat(20 * 1024);
        let head = grpc_head(server.addr, UNARY)
            .header("x-big", big.as_str())
            .body(())
            .unwrap();
        let response = raw_request(server.addr, head, &lpm::encode(&req("echo:x"))).await;
        assert_eq!(response.status, 431);
        assert!(response.headers.get("grpc-status").is_none());

        // Our own client: an error it can read, not a hang.
        let client = server.client().await;
        let mut request = Request::new(req("echo:x"));
        request.metadata_mut().insert("x-big", &big).unwrap();
        let err = client.simple_method(request).await.unwrap_err();
        assert_eq!(err.code(), Code::Internal, "{err}");
        // The same connection still serves.
        let ok = client.simple_method(req("echo:after")).await.unwrap();
        assert_eq!(ok.message().response_data, "after");
        assert_serves(server.addr).await;
    })
    .await
}

/// A 1 MiB header is far past the limit: h2 stops decoding and closes the connection with
/// GOAWAY(ENHANCE_YOUR_CALM) rather than hold it; a new connection serves. (Raw frames:
/// the h2 client would still be writing the header block when the server closes.)
#[tokio::test]
async fn a_1_mib_header_gets_goaway_enhance_your_calm() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let server = TestServer::start().await;
        let before = rss_bytes();
        let (mut conn, _) = RawConn::handshake(server.addr).await;
        let huge = "a".repeat(1024 * 1024);
        let block = hpack(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", UNARY),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("x-huge", &huge),
        ]);
        // HEADERS then CONTINUATION frames of 16 KiB, the last with END_HEADERS.
        let pieces: Vec<&[u8]> = block.chunks(16 * 1024).collect();
        let mut wire = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let kind = if i == 0 { HEADERS } else { CONTINUATION };
            let flags = if i + 1 == pieces.len() {
                END_HEADERS
            } else {
                0
            };
            wire.extend(frame(kind, flags, 1, piece));
        }
        let len = wire.len();
        let (_, writer) = flood(conn.take_writer(), wire, len);
        let goaway = conn.expect_frame("GOAWAY", |f| f.kind == GOAWAY).await;
        assert_eq!(goaway.error_code(), h2::Reason::ENHANCE_YOUR_CALM);
        assert_eq!(goaway.debug_data(), "too_many_continuations");
        assert!(conn.frames_until_closed().await.is_empty());
        writer.abort();
        assert_memory_bounded(before, "1 MiB header");
        assert_serves(server.addr).await;
    })
    .await
}

// ---------------------------------------------------------------------------------------
// Stream limits and resets.

/// RFC 9113 §5.1.2: a HEADERS frame past the advertised SETTINGS_MAX_CONCURRENT_STREAMS is
/// refused with RST_STREAM(REFUSED_STREAM) (a status of UNAVAILABLE, safe to retry); the
/// streams already open carry on and a freed slot takes a new stream.
#[tokio::test]
async fn streams_past_max_concurrent_streams_get_refused_stream() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let server = TestServer::start_with(Server::new().max_concurrent_streams(4)).await;
        let (mut conn, settings) = RawConn::handshake(server.addr).await;
        assert!(
            settings.contains(&(SETTINGS_MAX_CONCURRENT_STREAMS, 4)),
            "{settings:?}"
        );
        // Four client-streaming calls that wait for their messages.
        for stream in [1, 3, 5, 7] {
            conn.send(&request_headers(stream, CLIENT_STREAMING, false))
                .await;
        }
        conn.send(&request_headers(9, CLIENT_STREAMING, false))
            .await;
        let refused = conn
            .expect_frame("RST_STREAM on stream 9", |f| f.kind == RST_STREAM)
            .await;
        assert_eq!(refused.stream, 9);
        assert_eq!(refused.error_code(), h2::Reason::REFUSED_STREAM);
        // Stream 1 finishes normally: HEADERS, DATA, trailers.
        let message = lpm::encode(&req("one"));
        conn.send(&frame(DATA, END_STREAM, 1, &message)).await;
        conn.expect_frame("stream 1's trailers", |f| {
            f.stream == 1 && f.kind == HEADERS && f.flags & END_STREAM != 0
        })
        .await;
        // Its slot takes a unary call.
        conn.send(&request_headers(11, UNARY, false)).await;
        conn.send(&frame(DATA, END_STREAM, 11, &lpm::encode(&req("echo:x"))))
            .await;
        let mut got_message = false;
        loop {
            let f = conn
                .expect_frame("stream 11's answer", |f| f.stream == 11)
                .await;
            assert_ne!(
                f.kind,
                RST_STREAM,
                "stream 11 refused: {:?}",
                f.error_code()
            );
            got_message |= f.kind == DATA && !f.payload.is_empty();
            if f.kind == HEADERS && f.flags & END_STREAM != 0 {
                break;
            }
        }
        assert!(got_message, "stream 11 got a message before its trailers");
        assert_serves(server.addr).await;
    })
    .await
}

/// Once our client knows the server's limit, calls beyond it wait for a slot: it never
/// goes past SETTINGS_MAX_CONCURRENT_STREAMS. A relay between them counts the server's
/// RST_STREAMs: not one REFUSED_STREAM (a transparent retry would hide an overshoot from
/// the answers, not from the wire).
#[tokio::test]
async fn a_channel_waits_for_a_stream_slot_once_it_knows_the_limit() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let server = TestServer::start_with(Server::new().max_concurrent_streams(4)).await;
        let relay = Relay::start(server.addr).await;
        let client = GrpcDemoClient::connect(relay.addr.to_string())
            .await
            .unwrap();
        // A first call: by its end the server's SETTINGS have arrived.
        client.simple_method(req("echo:first")).await.unwrap();
        for answer in concurrent_calls(&client, 10, "sleep:200").await {
            assert_eq!(answer.expect("every call is served"), "slept");
        }
        assert_eq!(relay.accepted(), 1);
        assert_eq!(
            relay.resets_from_backend(h2::Reason::REFUSED_STREAM),
            0,
            "streams refused: the client went past the server's limit"
        );
    })
    .await
}

/// Rapid reset (CVE-2023-44487): thousands of HEADERS each followed by RST_STREAM. Past
/// `DEFAULT_MAX_PENDING_ACCEPT_RESET_STREAMS` (64) streams reset before the server took
/// them, the connection gets GOAWAY(ENHANCE_YOUR_CALM, "too_many_resets") and is closed.
#[tokio::test]
async fn rapid_reset_gets_goaway_enhance_your_calm() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let server = TestServer::start().await;
        let before = rss_bytes();
        let (mut conn, _) = RawConn::handshake(server.addr).await;
        let mut attack = Vec::new();
        for i in 0..5000u32 {
            let stream = 2 * i + 1;
            attack.extend(request_headers(stream, UNARY, false));
            attack.extend(rst_stream(stream, h2::Reason::CANCEL));
        }
        let write = conn.take_writer();
        let (_, writer) = flood(write, attack.clone(), attack.len());
        let goaway = conn.expect_frame("GOAWAY", |f| f.kind == GOAWAY).await;
        assert_eq!(goaway.error_code(), h2::Reason::ENHANCE_YOUR_CALM);
        assert_eq!(goaway.debug_data(), "too_many_resets");
        let rest = conn.frames_until_closed().await;
        assert!(
            rest.iter().all(|f| f.kind != HEADERS && f.kind != DATA),
            "nothing more after GOAWAY: {rest:?}"
        );
        writer.abort();
        assert_memory_bounded(before, "rapid reset");
        assert_serves(server.addr).await;
    })
    .await
}

/// The slow form of rapid reset: each stream reset after the server took it and its
/// handler started (a server stream that never ends). Every handler is dropped, the
/// connection stays good for a normal call, memory bounded.
#[tokio::test]
async fn streams_reset_after_acceptance_are_cancelled_and_forgotten() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let mut server = TestServer::start().await;
        let before = rss_bytes();
        let socket = TcpStream::connect(server.addr).await.unwrap();
        let (mut send, conn) = h2::client::handshake(socket).await.unwrap();
        let conn = tokio::spawn(conn);
        const STREAMS: usize = 1000;
        for _ in 0..STREAMS {
            send = send.ready().await.unwrap();
            let head = grpc_head(server.addr, SERVER_STREAMING).body(()).unwrap();
            let (response, mut stream) = send.send_request(head, false).unwrap();
            stream
                .send_data(Bytes::from(lpm::encode(&req("forever"))), true)
                .unwrap();
            // Response headers: the handler has run and its stream is being served.
            let response = response.await.expect("response headers");
            assert_eq!(response.status(), 200);
            stream.send_reset(h2::Reason::CANCEL);
        }
        for _ in 0..STREAMS {
            assert_eq!(server.event().await, "stream dropped");
        }
        // The connection is still good for a normal call.
        let mut send = send.ready().await.unwrap();
        let head = grpc_head(server.addr, UNARY).body(()).unwrap();
        let (response, mut stream) = send.send_request(head, false).unwrap();
        stream
            .send_data(Bytes::from(lpm::encode(&req("echo:x"))), true)
            .unwrap();
        let response = response.await.expect("answered after the resets");
        assert_eq!(response.status(), 200);
        assert!(!conn.is_finished());
        assert_memory_bounded(before, "accepted-then-reset streams");
        assert_serves(server.addr).await;
    })
    .await
}

// ---------------------------------------------------------------------------------------
// Floods.

/// A PING flood from a client that never reads its socket: the server answers each PING
/// before it reads the next frame, so once the client stops reading the server stops
/// too. Nothing queues: the flood is held by TCP back-pressure, memory stays bounded, and
/// the flooder cannot even write its whole flood.
#[tokio::test]
async fn ping_flood_from_a_client_that_never_reads_is_held_by_back_pressure() {
    unread_flood_is_held_by_back_pressure("PING", frame(PING, 0, 0, b"flooding")).await;
}

/// Write `one` over and over on a connection whose answers are never read: the server
/// must stop reading once its answers back up (TCP back-pressure), stay within its
/// memory bound, and keep serving others.
async fn unread_flood_is_held_by_back_pressure(what: &str, one: Vec<u8>) {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let server = TestServer::start().await;
        let before = rss_bytes();
        let (mut conn, _) = RawConn::handshake(server.addr).await;
        const TOTAL: usize = 256 * 1024 * 1024;
        let (written, writer) = flood(conn.take_writer(), one, TOTAL);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let written = written.load(Ordering::Relaxed);
        eprintln!(
            "{what} flood: {} KiB written before back-pressure",
            written >> 10
        );
        assert!(
            written < TOTAL,
            "the server read all {written} bytes of {what}s whose answers nobody collected"
        );
        assert_memory_bounded(before, &format!("{what} flood"));
        assert_serves(server.addr).await;
        writer.abort();
    })
    .await
}

/// RFC 9113 §6.7: every PING gets a PING with ACK and the same payload; a flood that is
/// read gets every one of them, in order, and the connection stays usable.
#[tokio::test]
async fn ping_flood_that_is_read_gets_every_ack_in_order() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        // Without enforcement (on by default, it sends such a client away after its
        // third PING: tests/transport_defaults.rs), h2 answers every PING.
        let server = TestServer::start_with(Server::new().disable_keepalive_enforcement()).await;
        let before = rss_bytes();
        let (mut conn, _) = RawConn::handshake(server.addr).await;
        const PINGS: u64 = 50_000;
        let mut pings = Vec::new();
        for i in 0..PINGS {
            pings.extend(frame(PING, 0, 0, &i.to_be_bytes()));
        }
        let len = pings.len();
        let (_, writer) = flood(conn.take_writer(), pings, len);
        let mut next = 0u64;
        while next < PINGS {
            let ack = conn.expect_frame("a PING ACK", |f| f.kind == PING).await;
            assert_eq!(ack.flags & ACK, ACK);
            assert_eq!(ack.payload.clone().get_u64(), next, "ACKs in order");
            next += 1;
        }
        writer.await.unwrap();
        assert_memory_bounded(before, "PING flood, read");
        assert_serves(server.addr).await;
    })
    .await
}

/// A SETTINGS flood (CVE-2019-9515) from a client that never reads: the server
/// acknowledges each SETTINGS before it reads on, so TCP back-pressure holds the flood.
#[tokio::test]
async fn settings_flood_from_a_client_that_never_reads_is_held_by_back_pressure() {
    // A setting the server accepts and must apply each time: SETTINGS_ENABLE_PUSH = 0.
    unread_flood_is_held_by_back_pressure("SETTINGS", frame(SETTINGS, 0, 0, &[0, 2, 0, 0, 0, 0]))
        .await;
}

/// RFC 9113 §6.5.3: every SETTINGS gets an empty SETTINGS with ACK.
#[tokio::test]
async fn settings_flood_that_is_read_gets_every_ack() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let server = TestServer::start().await;
        let before = rss_bytes();
        let (mut conn, _) = RawConn::handshake(server.addr).await;
        const FLOOD: usize = 50_000;
        let settings = frame(SETTINGS, 0, 0, &[0, 2, 0, 0, 0, 0]).repeat(FLOOD);
        let len = settings.len();
        let (_, writer) = flood(conn.take_writer(), settings, len);
        for _ in 0..FLOOD {
            let ack = conn
                .expect_frame("a SETTINGS ACK", |f| f.kind == SETTINGS)
                .await;
            assert_eq!(ack.flags & ACK, ACK);
            assert!(ack.payload.is_empty());
        }
        writer.await.unwrap();
        assert_memory_bounded(before, "SETTINGS flood, read");
        assert_serves(server.addr).await;
    })
    .await
}

// ---------------------------------------------------------------------------------------
// Broken connections.

/// RFC 9113 §3.4: an invalid preface is a connection error of type PROTOCOL_ERROR, and
/// "a GOAWAY frame MAY be omitted". The server sends its own SETTINGS (written before it
/// reads anything), then closes the connection without a GOAWAY.
#[tokio::test]
async fn garbage_instead_of_the_preface_closes_the_connection() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        // gRPC only (the web protocols off): what is not the HTTP/2 preface is refused.
        let server = TestServer::start_with(Server::new().web_protocols(false)).await;
        let garbage: [(&str, Vec<u8>); 4] = [
            (
                "HTTP/1.1 request",
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            ),
            ("bytes 0xff", vec![0xff; 64]),
            ("a preface with one wrong byte", {
                let mut p = PREFACE.to_vec();
                p[20] = b'X';
                p
            }),
            (
                "a SETTINGS frame with no preface",
                frame(SETTINGS, 0, 0, &[]),
            ),
        ];
        for (name, bytes) in garbage {
            let mut conn = RawConn::connect(server.addr, &bytes).await;
            let frames = tokio::time::timeout(Duration::from_secs(5), conn.frames_until_closed())
                .await
                .unwrap_or_else(|_| panic!("{name}: the connection is still open after 5 s"));
            let kinds: Vec<_> = frames.iter().map(|f| (f.kind, f.flags)).collect();
            assert_eq!(
                kinds,
                [(SETTINGS, 0)],
                "{name}: the server's SETTINGS, then close"
            );
            assert_serves(server.addr).await;
        }
    })
    .await
}

#[tokio::test]
async fn with_the_web_protocols_what_is_not_http2_is_read_as_http1() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        // The default server: the first bytes that are not the HTTP/2 preface are read as
        // HTTP/1.1 (gRPC-Web and Connect), and answered as HTTP/1.1 does.
        let server = TestServer::start().await;
        let cases: [(&str, Vec<u8>, &str, bool); 4] = [
            (
                "an HTTP/1.1 request for a path no service owns",
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
                "HTTP/1.1 404 ",
                false,
            ),
            ("bytes 0xff", vec![0xff; 64], "HTTP/1.1 400 ", true),
            (
                "a preface with one wrong byte",
                {
                    let mut p = PREFACE.to_vec();
                    p[20] = b'X';
                    p
                },
                "HTTP/1.1 505 ",
                true,
            ),
            (
                "a SETTINGS frame with no preface",
                frame(SETTINGS, 0, 0, &[]),
                "HTTP/1.1 400 ",
                true,
            ),
        ];
        for (name, bytes, status_line, closes) in cases {
            let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
            socket.write_all(&bytes).await.unwrap();
            let mut answer = Vec::new();
            let mut buf = [0u8; 4096];
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return true,
                        Ok(n) => answer.extend_from_slice(&buf[..n]),
                    }
                    if !closes && answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        return false;
                    }
                }
            })
            .await;
            let text = String::from_utf8_lossy(&answer);
            assert!(text.starts_with(status_line), "{name}: {text:?}");
            if closes {
                assert_eq!(
                    read,
                    Ok(true),
                    "{name}: the connection is closed after the answer"
                );
            }
            assert_serves(server.addr).await;
        }
    })
    .await
}

/// A broken frame after a valid preface, the code RFC 9113 gives it, and whether h2
/// 0.4.20 sends another code (upstream; the connection still ends with a GOAWAY).
struct BrokenFrame {
    name: &'static str,
    bytes: Vec<u8>,
    rfc: h2::Reason,
    h2_deviates: bool,
}

fn broken_frames() -> Vec<BrokenFrame> {
    let broken = |name, bytes, rfc, h2_deviates| BrokenFrame {
        name,
        bytes,
        rfc,
        h2_deviates,
    };
    vec![
        // §6.1: DATA on stream 0.
        broken(
            "DATA on stream 0",
            frame(DATA, 0, 0, b"x"),
            h2::Reason::PROTOCOL_ERROR,
            false,
        ),
        // §4.2: a frame longer than SETTINGS_MAX_FRAME_SIZE (16 KiB by default).
        broken(
            "a 20 KiB PING",
            frame(PING, 0, 0, &[0; 20 * 1024]),
            h2::Reason::FRAME_SIZE_ERROR,
            false,
        ),
        // §6.7: "a length field value other than 8 ... FRAME_SIZE_ERROR"; h2 says PROTOCOL_ERROR.
        broken(
            "a 7-byte PING",
            frame(PING, 0, 0, &[0; 7]),
            h2::Reason::FRAME_SIZE_ERROR,
            true,
        ),
        // §6.9: a WINDOW_UPDATE of 0 on the connection.
        broken(
            "WINDOW_UPDATE of 0 on the connection",
            frame(WINDOW_UPDATE, 0, 0, &[0, 0, 0, 0]),
            h2::Reason::PROTOCOL_ERROR,
            false,
        ),
        // §4.3: a header block that does not decode is COMPRESSION_ERROR (index 70 is in
        // no table); h2 says PROTOCOL_ERROR.
        broken(
            "undecodable HPACK",
            frame(HEADERS, END_HEADERS | END_STREAM, 1, &[0x80 | 70]),
            h2::Reason::COMPRESSION_ERROR,
            true,
        ),
        // §6.10: CONTINUATION with no HEADERS before it.
        broken(
            "CONTINUATION out of place",
            frame(CONTINUATION, END_HEADERS, 1, &hpack(&[(":method", "POST")])),
            h2::Reason::PROTOCOL_ERROR,
            false,
        ),
    ]
}

/// Send each broken frame on a fresh connection; the GOAWAY codes that differ from the
/// RFC's, for the cases `check` selects.
async fn goaway_mismatches(addr: SocketAddr) -> Vec<String> {
    let mut wrong = Vec::new();
    for case in broken_frames() {
        let (mut conn, _) = RawConn::handshake(addr).await;
        conn.send(&case.bytes).await;
        let frames = conn.frames_until_closed().await;
        let goaway = frames
            .iter()
            .find(|f| f.kind == GOAWAY)
            .unwrap_or_else(|| panic!("{}: no GOAWAY in {frames:?}", case.name));
        // Where h2 0.4.20 deviates from RFC 9113 (a bad PING length, undecodable HPACK)
        // it answers PROTOCOL_ERROR: that is the exact answer we give, and assert.
        let expected = if case.h2_deviates {
            h2::Reason::PROTOCOL_ERROR
        } else {
            case.rfc
        };
        if goaway.error_code() != expected {
            wrong.push(format!(
                "{}: expected GOAWAY({:?}) (RFC 9113: {:?}), got GOAWAY({:?}, {:?})",
                case.name,
                expected,
                case.rfc,
                goaway.error_code(),
                goaway.debug_data()
            ));
        }
        assert_serves(addr).await;
    }
    wrong
}

/// Broken frames after a valid preface: each is a connection error, answered with GOAWAY
/// and the code RFC 9113 names (PROTOCOL_ERROR in the two cases where h2 0.4.20 deviates),
/// then the connection is closed; the server serves on.
#[tokio::test]
async fn broken_frames_get_goaway_with_the_rfc_code() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let server = TestServer::start().await;
        let wrong = goaway_mismatches(server.addr).await;
        assert!(wrong.is_empty(), "wrong codes:\n{}", wrong.join("\n"));
    })
    .await
}

/// Hundreds of TCP connections that never send the preface (or send half of it) do not
/// stop a normal call, and the server closes each of them when its handshake timeout
/// (`DEFAULT_HANDSHAKE_TIMEOUT`, 10 s) runs out.
#[tokio::test]
async fn hundreds_of_idle_connections_do_not_stop_a_normal_call() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let server = TestServer::start().await;
        let before = rss_bytes();
        let opened = Instant::now();
        let mut idle = Vec::new();
        for i in 0..400 {
            // Three in four say nothing; the others send half a preface.
            let first: &[u8] = if i % 4 == 0 { &PREFACE[..12] } else { b"" };
            idle.push(RawConn::connect(server.addr, first).await);
        }
        let start = Instant::now();
        assert_serves(server.addr).await;
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "a normal call took {:?} beside 400 idle connections",
            start.elapsed()
        );
        assert_memory_bounded(before, "400 idle connections");
        let mut closed = tokio::task::JoinSet::new();
        for mut conn in idle {
            closed.spawn(async move {
                let frames = conn.frames_until_closed().await;
                (frames.len(), Instant::now())
            });
        }
        while let Some(done) = closed.join_next().await {
            let (frames, at) = done.unwrap();
            let after = at - opened;
            assert!(frames <= 1, "only the server's SETTINGS before the close");
            assert!(
                after >= DEFAULT_HANDSHAKE_TIMEOUT - Duration::from_millis(100)
                    && after <= DEFAULT_HANDSHAKE_TIMEOUT + Duration::from_secs(3),
                "closed {after:?} after opening; the handshake timeout is {DEFAULT_HANDSHAKE_TIMEOUT:?}"
            );
        }
        assert_serves(server.addr).await;
    })
    .await
}

/// A client that never reads a server stream, with a 1-byte stream window: the server
/// hands h2 only what the window admits, so it holds about one message, not the 256 MiB
/// stream; other calls, on that connection and on others, are served meanwhile.
#[tokio::test]
async fn a_client_that_never_reads_does_not_make_the_server_buffer_its_stream() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let server = TestServer::start().await;
        let before = rss_bytes();
        let socket = TcpStream::connect(server.addr).await.unwrap();
        let (send, conn) = h2::client::Builder::new()
            .initial_window_size(1)
            .handshake::<_, Bytes>(socket)
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut send = send.ready().await.unwrap();
        // 256 messages of 1 MiB, never read.
        let head = grpc_head(server.addr, SERVER_STREAMING).body(()).unwrap();
        let (big, mut stream) = send.send_request(head, false).unwrap();
        stream
            .send_data(Bytes::from(lpm::encode(&req("big:1048576:256"))), true)
            .unwrap();
        let big = big.await.expect("response headers");
        assert_eq!(big.status(), 200);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_memory_bounded(before, "a 256 MiB stream nobody reads");

        // A unary call on the same connection, read 1 byte of window at a time.
        let mut send = send.ready().await.unwrap();
        let head = grpc_head(server.addr, UNARY).body(()).unwrap();
        let (response, mut stream) = send.send_request(head, false).unwrap();
        stream
            .send_data(Bytes::from(lpm::encode(&req("echo:beside"))), true)
            .unwrap();
        let mut body = response.await.unwrap().into_body();
        let mut data = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            body.flow_control().release_capacity(chunk.len()).unwrap();
            data.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.unwrap().expect("trailers");
        assert_eq!(trailers.get("grpc-status").unwrap(), "0");
        let reply: h2grpc_test_support::demo::Response =
            prost::Message::decode(lpm::payload(&data)).unwrap();
        assert_eq!(reply.response_data, "beside");

        assert_serves(server.addr).await;
        assert_memory_bounded(before, "a 256 MiB stream nobody reads, later");
        drop(big);
    })
    .await
}

/// The same through our own channel: a server stream that is not read does not stop
/// other calls on the channel.
#[tokio::test]
async fn an_unread_server_stream_does_not_block_the_channel() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let server = TestServer::start().await;
        let before = rss_bytes();
        let client = GrpcDemoClient::connect(server.addr.to_string())
            .await
            .unwrap();
        let unread = client
            .server_streaming_method(req("big:1048576:256"))
            .await
            .expect("stream starts");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let ok = client.simple_method(req("echo:beside")).await.unwrap();
        assert_eq!(ok.message().response_data, "beside");
        assert_memory_bounded(before, "an unread 256 MiB stream on a channel");
        drop(unread);
    })
    .await
}
