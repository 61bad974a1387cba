//! The transport's defaults and its connection-level behaviour, read off the wire: the
//! SETTINGS and the defaults the README's table gives, ping enforcement on by default with
//! grpc-go's GOAWAY (`ENHANCE_YOUR_CALM`, debug data `too_many_pings`, the right last
//! stream id), the debug data of the other GOAWAYs (`max_age`, `max_idle`,
//! `graceful_stop`), keepalive PINGs after the idle time, our client doubling its
//! keepalive time only when told `too_many_pings`, and every failure of a connection seen
//! by a client as UNAVAILABLE with a message that says what happened.

use std::net::SocketAddr;
use std::time::Duration;

use h2grpc::server::{
    DEFAULT_ENFORCEMENT, DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_HEADER_LIST_BYTES,
    DEFAULT_SERVER_KEEPALIVE_TIME, DEFAULT_STREAM_WINDOW_BYTES,
};
use h2grpc::{Channel, ClientTls, Code, Server, ServerTls};
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::lpm;
use h2grpc_test_support::raw::*;
use h2grpc_test_support::service::{TestServer, bounded, req};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// A frame as the bytes it was on the wire, in hex (printed for the record).
fn wire_hex(f: &Frame) -> String {
    let bytes = frame(f.kind, f.flags, f.stream, &f.payload);
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A GOAWAY's last stream id.
fn last_stream(f: &Frame) -> u32 {
    u32::from_be_bytes([f.payload[0], f.payload[1], f.payload[2], f.payload[3]]) & 0x7fff_ffff
}

/// A whole unary call on stream `id` of a raw connection: request, then every frame of
/// the response up to its trailers.
async fn unary_call(conn: &mut RawConn, id: u32, command: &str) {
    conn.send(&request_headers(id, "/demo.GRPCDemo/SimpleMethod", false))
        .await;
    conn.send(&frame(DATA, END_STREAM, id, &lpm::encode(&req(command))))
        .await;
    conn.expect_frame("the call's trailers", |f| {
        f.stream == id && f.kind == HEADERS && f.flags & END_STREAM != 0
    })
    .await;
}

/// The README's table of defaults, the row whose first cell starts with `row`: our cell.
fn readme_default(row: &str) -> String {
    let readme = std::fs::read_to_string(h2grpc_test_support::repo_root().join("README.md"))
        .expect("README.md");
    let line = readme
        .lines()
        .find(|l| l.starts_with(&format!("| {row}")))
        .unwrap_or_else(|| panic!("README's table of defaults has no row {row:?}"));
    line.split('|').nth(2).unwrap().trim().to_owned()
}

#[tokio::test]
async fn the_settings_a_default_server_sends_are_the_readmes() {
    bounded(async {
        let server = TestServer::start().await;
        let (_conn, settings) = RawConn::handshake(server.addr).await;
        let get = |id| settings.iter().find(|(k, _)| *k == id).map(|(_, v)| *v);
        assert_eq!(
            get(SETTINGS_MAX_CONCURRENT_STREAMS),
            Some(DEFAULT_MAX_CONCURRENT_STREAMS)
        );
        assert_eq!(
            get(SETTINGS_INITIAL_WINDOW_SIZE),
            Some(DEFAULT_STREAM_WINDOW_BYTES)
        );
        assert_eq!(
            get(SETTINGS_MAX_HEADER_LIST_SIZE),
            Some(DEFAULT_MAX_HEADER_LIST_BYTES)
        );
        assert_eq!(
            get(SETTINGS_HEADER_TABLE_SIZE),
            None,
            "HPACK's 4 KiB default"
        );
        // And the README says the same.
        assert_eq!(
            readme_default("max concurrent streams per connection"),
            DEFAULT_MAX_CONCURRENT_STREAMS.to_string()
        );
        assert_eq!(
            readme_default("stream / connection flow-control window"),
            format!("{} MiB / 2 MiB", DEFAULT_STREAM_WINDOW_BYTES >> 20)
        );
        assert!(
            readme_default("max header list size")
                .starts_with(&format!("{} KiB", DEFAULT_MAX_HEADER_LIST_BYTES >> 10))
        );
        assert_eq!(
            readme_default("server keepalive time / timeout"),
            format!(
                "{} h / 20 s",
                DEFAULT_SERVER_KEEPALIVE_TIME.as_secs() / 3600
            )
        );
        assert_eq!(
            readme_default("keepalive enforcement"),
            format!(
                "{} min, no pings without calls",
                DEFAULT_ENFORCEMENT.min_time.as_secs() / 60
            )
        );
    })
    .await
}

#[tokio::test]
async fn a_default_server_sends_a_client_pinging_without_calls_away_with_too_many_pings() {
    bounded(async {
        let server = TestServer::start().await;
        let (mut conn, _) = RawConn::handshake(server.addr).await;
        // One call, finished, so the GOAWAY's last stream id has something to name.
        unary_call(&mut conn, 1, "echo:before").await;
        // Then PINGs with no call in flight: each is a strike; the third is one too many.
        for i in 0u64..3 {
            conn.send(&frame(PING, 0, 0, &i.to_be_bytes())).await;
        }
        let goaway = conn.expect_frame("GOAWAY", |f| f.kind == GOAWAY).await;
        eprintln!("enforcement GOAWAY on the wire: {}", wire_hex(&goaway));
        assert_eq!(goaway.error_code(), h2::Reason::ENHANCE_YOUR_CALM);
        assert_eq!(u32::from(goaway.error_code()), 11);
        assert_eq!(&goaway.payload[8..], b"too_many_pings");
        assert_eq!(last_stream(&goaway), 1, "the last stream the server took");
        // Then the connection ends; nothing more comes.
        let after = conn.frames_until_closed().await;
        assert!(
            after.iter().all(|f| f.kind == PING),
            "after GOAWAY only PING acks may come: {after:?}"
        );
        // The server serves everyone else.
        let client = server.client().await;
        client.simple_method(req("echo:still")).await.unwrap();
    })
    .await
}

#[tokio::test]
async fn a_call_in_flight_is_allowed_one_ping_and_more_are_strikes() {
    bounded(async {
        let server = TestServer::start().await;
        let (mut conn, _) = RawConn::handshake(server.addr).await;
        conn.send(&request_headers(1, "/demo.GRPCDemo/SimpleMethod", false))
            .await;
        conn.send(&frame(
            DATA,
            END_STREAM,
            1,
            &lpm::encode(&req("sleep:1500")),
        ))
        .await;
        // A first PING during a call is fine, and so are two strikes after it.
        for i in 0u64..3 {
            conn.send(&frame(PING, 0, 0, &i.to_be_bytes())).await;
            conn.expect_frame("a PING ACK", |f| f.kind == PING && f.flags & ACK != 0)
                .await;
        }
        // The third strike: GOAWAY, naming stream 1 as processed.
        conn.send(&frame(PING, 0, 0, &[9; 8])).await;
        let goaway = conn.expect_frame("GOAWAY", |f| f.kind == GOAWAY).await;
        assert_eq!(goaway.error_code(), h2::Reason::ENHANCE_YOUR_CALM);
        assert_eq!(&goaway.payload[8..], b"too_many_pings");
        assert_eq!(last_stream(&goaway), 1);
    })
    .await
}

#[tokio::test]
async fn max_age_goaways_carry_max_age_and_the_call_below_them_finishes() {
    bounded(async {
        let server =
            TestServer::start_with(Server::new().max_connection_age(Duration::from_millis(300)))
                .await;
        let (mut conn, _) = RawConn::handshake(server.addr).await;
        conn.send(&request_headers(1, "/demo.GRPCDemo/SimpleMethod", false))
            .await;
        conn.send(&frame(DATA, END_STREAM, 1, &lpm::encode(&req("sleep:800"))))
            .await;
        let first = conn
            .expect_frame("the first GOAWAY", |f| f.kind == GOAWAY)
            .await;
        assert_eq!(first.error_code(), h2::Reason::NO_ERROR);
        assert_eq!(last_stream(&first), 0x7fff_ffff);
        assert_eq!(&first.payload[8..], b"max_age");
        let ping = conn
            .expect_frame("the drain PING", |f| f.kind == PING && f.flags & ACK == 0)
            .await;
        conn.send(&frame(PING, ACK, 0, &ping.payload)).await;
        let second = conn
            .expect_frame("the second GOAWAY", |f| f.kind == GOAWAY)
            .await;
        eprintln!("max-age GOAWAYs on the wire: {}", wire_hex(&first));
        eprintln!("                             {}", wire_hex(&second));
        assert_eq!(second.error_code(), h2::Reason::NO_ERROR);
        assert_eq!(last_stream(&second), 1);
        assert_eq!(&second.payload[8..], b"max_age");
        let rest = conn.frames_until_closed().await;
        let trailers = rest
            .iter()
            .rfind(|f| f.stream == 1 && f.kind == HEADERS)
            .expect("the call's trailers");
        assert!(trailers.flags & END_STREAM != 0, "{rest:?}");
    })
    .await
}

#[tokio::test]
async fn idle_and_shutdown_goaways_carry_max_idle_and_graceful_stop() {
    bounded(async {
        let server =
            TestServer::start_with(Server::new().max_connection_idle(Duration::from_millis(200)))
                .await;
        let (mut conn, _) = RawConn::handshake(server.addr).await;
        let goaway = conn
            .expect_frame("the idle GOAWAY", |f| f.kind == GOAWAY)
            .await;
        assert_eq!(&goaway.payload[8..], b"max_idle");

        let server = TestServer::start().await;
        let (mut conn, _) = RawConn::handshake(server.addr).await;
        let stopping = tokio::spawn(server.shutdown());
        let goaway = conn
            .expect_frame("the shutdown GOAWAY", |f| f.kind == GOAWAY)
            .await;
        assert_eq!(goaway.error_code(), h2::Reason::NO_ERROR);
        assert_eq!(&goaway.payload[8..], b"graceful_stop");
        drop(conn);
        stopping.await.unwrap();
    })
    .await
}

#[tokio::test]
async fn the_server_pings_after_its_keepalive_time_and_drops_a_client_that_never_answers() {
    bounded(async {
        let server = TestServer::start_with(
            Server::new().keepalive(Duration::from_millis(300), Duration::from_millis(400)),
        )
        .await;
        let (mut conn, _) = RawConn::handshake(server.addr).await;
        let started = std::time::Instant::now();
        let ping = conn
            .expect_frame("a keepalive PING", |f| f.kind == PING && f.flags & ACK == 0)
            .await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_millis(1500),
            "PING after {waited:?}"
        );
        // Answered: the connection stays, and the next PING comes a keepalive time later.
        conn.send(&frame(PING, ACK, 0, &ping.payload)).await;
        conn.expect_frame("the next PING", |f| f.kind == PING && f.flags & ACK == 0)
            .await;
        // Not answered: dropped about the timeout later.
        let unanswered = std::time::Instant::now();
        let rest = conn.frames_until_closed().await;
        let lasted = unanswered.elapsed();
        assert!(
            lasted >= Duration::from_millis(300) && lasted < Duration::from_secs(3),
            "closed {lasted:?} after the unanswered PING; frames {rest:?}"
        );
    })
    .await
}

/// An HTTP/2 server written by hand: answers the client's SETTINGS and its first PING,
/// then sends GOAWAY `ENHANCE_YOUR_CALM` with `debug` and closes.
async fn calm_server(debug: &'static [u8]) -> SocketAddr {
    goaway_server(debug, false).await
}

/// [`calm_server`], or (`on_request`) one that answers the PING and waits for a request's
/// HEADERS: then GOAWAY `NO_ERROR` with last stream id 0 (the request not processed).
async fn goaway_server(debug: &'static [u8], on_request: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut preface = [0u8; 24];
                if socket.read_exact(&mut preface).await.is_err() {
                    return;
                }
                let _ = socket.write_all(&frame(SETTINGS, 0, 0, &[])).await;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while buf.len() >= 9 {
                        let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
                        if buf.len() < 9 + len {
                            break;
                        }
                        let (kind, flags) = (buf[3], buf[4]);
                        let payload = buf[9..9 + len].to_vec();
                        buf.drain(..9 + len);
                        if kind == SETTINGS && flags & ACK == 0 {
                            let _ = socket.write_all(&frame(SETTINGS, ACK, 0, &[])).await;
                        }
                        if kind == PING && flags & ACK == 0 && on_request {
                            let _ = socket.write_all(&frame(PING, ACK, 0, &payload)).await;
                        }
                        if kind == HEADERS && on_request {
                            let mut goaway = 0u32.to_be_bytes().to_vec();
                            goaway.extend(0u32.to_be_bytes());
                            goaway.extend_from_slice(debug);
                            let _ = socket.write_all(&frame(GOAWAY, 0, 0, &goaway)).await;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            return;
                        }
                        if kind == PING && flags & ACK == 0 && !on_request {
                            let mut out = frame(PING, ACK, 0, &payload);
                            let mut goaway = 0u32.to_be_bytes().to_vec();
                            goaway.extend(11u32.to_be_bytes());
                            goaway.extend_from_slice(debug);
                            out.extend(frame(GOAWAY, 0, 0, &goaway));
                            let _ = socket.write_all(&out).await;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn our_client_doubles_its_keepalive_time_only_when_told_too_many_pings() {
    bounded(async {
        let time = Duration::from_millis(100);
        for (debug, doubled) in [
            (&b"too_many_pings"[..], true),
            (b"", false),
            (b"other", false),
        ] {
            let addr = calm_server(debug).await;
            let channel = Channel::builder(addr.to_string())
                .keepalive(time, Duration::from_secs(1))
                .lazy()
                .unwrap();
            // Connect: the server answers the probe PING, then sends its GOAWAY and
            // closes; give the channel a moment to hear it.
            let _ = channel.state(true);
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = channel.keepalive().unwrap().time;
            let expected = if doubled { time * 2 } else { time };
            assert_eq!(now, expected, "debug data {debug:?}");
        }
    })
    .await
}

#[tokio::test]
async fn connection_failures_are_unavailable_and_say_what_happened() {
    bounded(async {
        // Refused: nothing listens.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let target = format!("127.0.0.1:{port}");
        let err = Channel::builder(target.clone())
            .connect()
            .await
            .expect_err("nothing listens");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("cannot reach {target}: ")),
            "{text}"
        );
        assert!(text.contains("refused"), "{text}");
        assert_eq!(
            text.matches("error").count(),
            text.matches("os error").count(),
            "{text}"
        );
        let client = GrpcDemoClient::new(Channel::builder(target).lazy().unwrap());
        let status = client.simple_method(req("echo:x")).await.unwrap_err();
        eprintln!("refused: Channel::connect: {text}\nrefused: call: {status}");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(status.message().contains("refused"), "{status:?}");

        // A peer that sends GOAWAY before the call was processed (last stream id 0).
        let addr = goaway_server(b"going away", true).await;
        let client = GrpcDemoClient::new(Channel::builder(addr.to_string()).lazy().unwrap());
        let status = client.simple_method(req("echo:x")).await.unwrap_err();
        eprintln!("GOAWAY before the call was processed: {status}");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            status.message().contains("closed by the peer"),
            "{status:?}"
        );

        // A plaintext client on a TLS port.
        let certs = h2grpc_test_support::tls::TestCerts::generate();
        let server_tls = ServerTls::from_pem_files(&certs.server_cert, &certs.server_key).unwrap();
        let server = TestServer::start_with(Server::new().tls(server_tls)).await;
        let client = GrpcDemoClient::new(Channel::builder(server.addr.to_string()).lazy().unwrap());
        let status = client.simple_method(req("echo:x")).await.unwrap_err();
        eprintln!("plaintext client on a TLS port: {status}");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(!status.message().is_empty(), "{status:?}");

        // A TLS client that does not trust the server's certificate.
        let untrusting = ClientTls::with_ca_file(&certs.other_ca_cert).unwrap();
        let channel = Channel::builder(server.addr.to_string())
            .tls(untrusting)
            .lazy()
            .unwrap();
        let status = GrpcDemoClient::new(channel)
            .simple_method(req("echo:x"))
            .await
            .unwrap_err();
        eprintln!("TLS handshake refused: {status}");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(status.message().contains("TLS"), "{status:?}");
    })
    .await
}
