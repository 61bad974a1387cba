//! Keepalive (gRFC A8) against a peer that goes silent without closing: a relay stops
//! forwarding and never sends FIN or RST, as behind a NAT that dropped the mapping.
//! With keepalive, a waiting call ends UNAVAILABLE within keepalive time + timeout (on
//! the client), and the server drops the call (on the server); without it, the call
//! hangs. A healthy idle connection answers the pings and keeps serving.

use std::time::{Duration, Instant};

use h2grpc::{Channel, Code, Server};
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::relay::Relay;
use h2grpc_test_support::service::{TestServer, bounded, req};

const TIME: Duration = Duration::from_millis(200);
const TIMEOUT: Duration = Duration::from_millis(300);
/// Scheduling slack on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(1500);

async fn client(relay: &Relay, keepalive: bool) -> GrpcDemoClient {
    let mut builder = Channel::builder(relay.addr.to_string());
    if keepalive {
        builder = builder.keepalive(TIME, TIMEOUT);
    }
    GrpcDemoClient::new(builder.connect().await.unwrap())
}

/// A channel over one TCP connection to `addr` that cannot make another (its target
/// refuses): a connection closed by keepalive fails the next call instead of being
/// replaced unseen.
async fn single_connection(
    addr: std::net::SocketAddr,
    time: Duration,
    timeout: Duration,
) -> Channel {
    let socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    Channel::builder("127.0.0.1:1")
        .keepalive(time, timeout)
        .connect_with(socket)
        .await
        .unwrap()
}

/// Wait (up to `within`) until a server's GOAWAY ENHANCE_YOUR_CALM has doubled the
/// channel's keepalive time from `from`; `what` names the failure.
async fn wait_doubled(channel: &Channel, from: Duration, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while channel.keepalive().unwrap().time == from {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(channel.keepalive().unwrap().time, from * 2);
}

#[tokio::test]
async fn a_call_on_a_silent_connection_ends_unavailable_with_client_keepalive() {
    bounded(async {
        let server = TestServer::start().await;
        let relay = Relay::start(server.addr).await;
        let client = client(&relay, true).await;
        client.simple_method(req("echo:warm")).await.unwrap();
        let call = tokio::spawn({
            let client = client.clone();
            async move { client.simple_method(req("sleep:30000")).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        relay.stall_all();
        let stalled = Instant::now();
        let result = call.await.unwrap();
        let took = stalled.elapsed();
        let err = result.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert!(took < TIME + TIMEOUT + SLACK, "detected after {took:?}");
        // Not at once: the PING had its timeout to be answered (less a little, for a
        // PING sent just before the link went silent).
        assert!(
            took >= TIMEOUT / 2,
            "closed before the ping could time out: {took:?}"
        );
        relay.cut_all();
        // The next call reconnects (through the relay, carrying again).
        client.simple_method(req("echo:again")).await.unwrap();
    })
    .await
}

#[tokio::test]
async fn without_keepalive_a_call_on_a_silent_connection_hangs() {
    bounded(async {
        let server = TestServer::start().await;
        let relay = Relay::start(server.addr).await;
        let client = client(&relay, false).await;
        client.simple_method(req("echo:warm")).await.unwrap();
        let call = client.simple_method(req("sleep:30000"));
        let mut call = std::pin::pin!(call);
        // Let the request through, then stall.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), call.as_mut())
                .await
                .is_err()
        );
        relay.stall_all();
        let waited = TIME + TIMEOUT + SLACK;
        assert!(
            tokio::time::timeout(waited, call).await.is_err(),
            "without keepalive the call should still be waiting after {waited:?}"
        );
        relay.cut_all();
    })
    .await
}

#[tokio::test]
async fn server_keepalive_drops_the_calls_of_a_silent_client() {
    bounded(async {
        let mut server = TestServer::start_with(Server::new().keepalive(TIME, TIMEOUT)).await;
        let relay = Relay::start(server.addr).await;
        let client = client(&relay, false).await;
        let call = tokio::spawn({
            let client = client.clone();
            async move { client.simple_method(req("sleep:30000")).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        relay.stall_all();
        let stalled = Instant::now();
        assert_eq!(server.event().await, "sleep dropped");
        let took = stalled.elapsed();
        assert!(took < TIME + TIMEOUT + SLACK, "detected after {took:?}");
        call.abort();
        relay.cut_all();
    })
    .await
}

#[tokio::test]
async fn an_idle_connection_answers_the_pings_and_keeps_serving() {
    bounded(async {
        let server = TestServer::start_with(
            Server::new().keepalive(Duration::from_millis(50), Duration::from_millis(500)),
        )
        .await;
        let channel = single_connection(
            server.addr,
            Duration::from_millis(50),
            Duration::from_millis(500),
        )
        .await;
        let client = GrpcDemoClient::new(channel);
        for round in 0..3 {
            // Many keepalive periods of silence, pings both ways.
            tokio::time::sleep(Duration::from_millis(400)).await;
            let reply = client
                .simple_method(req(format!("echo:{round}")))
                .await
                .unwrap();
            assert_eq!(reply.message().response_data, round.to_string());
        }
        // A call longer than many periods is not cut either.
        let reply = client.simple_method(req("sleep:600")).await.unwrap();
        assert_eq!(reply.message().response_data, "slept");
    })
    .await
}

#[tokio::test]
async fn a_client_pinging_too_often_is_sent_away_and_slows_down() {
    bounded(async {
        let server = TestServer::start_with(
            Server::new().keepalive_enforcement(Duration::from_secs(5), true),
        )
        .await;
        let channel = Channel::builder(server.addr.to_string())
            .keepalive(Duration::from_millis(50), Duration::from_secs(1))
            .connect()
            .await
            .unwrap();
        assert_eq!(channel.keepalive().unwrap().time, Duration::from_millis(50));
        let client = GrpcDemoClient::new(channel.clone());
        // A long call: no reads for a while, so the client pings every 50 ms: strikes.
        let started = Instant::now();
        let err = client.simple_method(req("sleep:5000")).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        // The GOAWAY covers the call (the server had taken it), so it ends with the
        // connection the server then closes: UNAVAILABLE, as in grpc-go.
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        // The channel heard ENHANCE_YOUR_CALM: its next connections ping half as often.
        let from = Duration::from_millis(50);
        let within = Duration::from_secs(2);
        wait_doubled(&channel, from, within, "the keepalive time was not doubled").await;
        client.simple_method(req("echo:after")).await.unwrap();
    })
    .await
}

#[tokio::test]
async fn pings_without_calls_are_refused_unless_permitted_and_polite_pings_are_fine() {
    bounded(async {
        let strict =
            TestServer::start_with(Server::new().keepalive_enforcement(Duration::ZERO, false))
                .await;
        // Our client's default: no pings without calls, so an idle connection is left alone.
        let quiet = Channel::builder(strict.addr.to_string())
            .keepalive(Duration::from_millis(50), Duration::from_secs(1))
            .connect()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(quiet.keepalive().unwrap().time, Duration::from_millis(50));
        GrpcDemoClient::new(quiet)
            .simple_method(req("echo:quiet"))
            .await
            .unwrap();
        // Pinging while idle, where the server does not permit it: sent away.
        let channel = Channel::builder(strict.addr.to_string())
            .keepalive(Duration::from_millis(50), Duration::from_secs(1))
            .keepalive_permit_without_calls(true)
            .connect()
            .await
            .unwrap();
        let from = Duration::from_millis(50);
        wait_doubled(
            &channel,
            from,
            Duration::from_secs(3),
            "idle pings were tolerated",
        )
        .await;
        // Permitted, and no sooner than the minimum: a long call and idle time are fine.
        let lenient = TestServer::start_with(
            Server::new().keepalive_enforcement(Duration::from_millis(100), true),
        )
        .await;
        let channel = single_connection(
            lenient.addr,
            Duration::from_millis(250),
            Duration::from_secs(1),
        )
        .await;
        let client = GrpcDemoClient::new(channel.clone());
        let reply = client.simple_method(req("sleep:1500")).await.unwrap();
        assert_eq!(reply.message().response_data, "slept");
        tokio::time::sleep(Duration::from_millis(800)).await;
        client.simple_method(req("echo:still")).await.unwrap();
        assert_eq!(
            channel.keepalive().unwrap().time,
            Duration::from_millis(250)
        );
    })
    .await
}

#[tokio::test]
async fn pings_answering_the_servers_data_are_no_strikes() {
    // A client that pings each time it receives DATA (grpc-go's BDP estimator does), in
    // one long call: far more often than the enforced minimum interval, yet never sent
    // away, since the server wrote DATA before each PING (grpc-go's `resetPingStrikes`).
    bounded(async {
        let server = TestServer::start().await;
        let socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let (send, mut conn) = h2::client::handshake(socket).await.unwrap();
        let mut pings = conn.ping_pong().unwrap();
        tokio::spawn(conn);
        let mut send = send.ready().await.unwrap();
        let head = h2grpc_test_support::service::grpc_head(
            server.addr,
            "/demo.GRPCDemo/ServerStreamingMethod",
        )
        .body(())
        .unwrap();
        let (response, mut stream) = send.send_request(head, false).unwrap();
        let body = h2grpc_test_support::lpm::encode(&req("forever"));
        stream.send_data(body.into(), true).unwrap();
        let mut body = response.await.unwrap().into_body();
        // Well past the two strikes the policy allows.
        for i in 0..8 {
            let data = body
                .data()
                .await
                .unwrap_or_else(|| panic!("stream ended at {i}"));
            let data = data.unwrap_or_else(|e| panic!("DATA {i}: {e}"));
            let _ = body.flow_control().release_capacity(data.len());
            pings
                .ping(h2::Ping::opaque())
                .await
                .unwrap_or_else(|e| panic!("PING {i}: {e}"));
        }
    })
    .await
}
