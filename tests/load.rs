//! Load: 1,000 client connections (one `Channel` each) to one server and 10,000 calls of
//! all four kinds open on them at once, every one completing OK with the right answer.
//!
//! Not timed: nothing here asserts a speed, only that everything completes within a
//! generous bound. The server holds every call until all 10,000 have reached their
//! handlers (a barrier), so the 10,000 streams are provably concurrent.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::stream;
use h2grpc::{Channel, Server, Status};
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::service::{ClientStreamReply, Gate, TestServer, req};
use tokio::task::JoinSet;

/// Client connections, one `Channel` each.
const CONNECTIONS: usize = 1_000;
/// Calls open at once on each connection.
const CALLS_PER_CONNECTION: usize = 10;
const TOTAL_CALLS: usize = CONNECTIONS * CALLS_PER_CONNECTION;
/// Connections opened at a time, to stay well inside the listen backlog.
const CONNECT_BATCH: usize = 100;
/// Descriptors the test needs: both ends of every connection, plus slack.
const NEEDED_FDS: libc::rlim_t = 2 * CONNECTIONS as libc::rlim_t + 512;
/// A bound on the whole test, far above what it takes: it only catches a hang.
const OVERALL_TIMEOUT: Duration = Duration::from_secs(300);

/// Raises the soft open-file limit to at least `needed` (up to the hard limit) and
/// returns the soft limit in force.
fn raise_fd_limit(needed: libc::rlim_t) -> libc::rlim_t {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        assert_eq!(
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit),
            0,
            "getrlimit(RLIMIT_NOFILE) failed"
        );
        if limit.rlim_cur < needed {
            let raised = libc::rlimit {
                rlim_cur: needed.min(limit.rlim_max),
                rlim_max: limit.rlim_max,
            };
            assert_eq!(
                libc::setrlimit(libc::RLIMIT_NOFILE, &raised),
                0,
                "setrlimit(RLIMIT_NOFILE) failed"
            );
            limit = raised;
        }
    }
    limit.rlim_cur
}

/// Established TCP connections whose local port is `port`, from /proc/net/tcp (the
/// server's ends of the client connections); `None` where that file is not readable.
fn established_on_port(port: u16) -> Option<usize> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port_hex = format!(":{port:04X}");
    Some(
        table
            .lines()
            .skip(1)
            .filter(|line| {
                let mut fields = line.split_whitespace();
                let local = fields.nth(1).unwrap_or("");
                let state = fields.nth(1).unwrap_or("");
                local.ends_with(&port_hex) && state == "01"
            })
            .count(),
    )
}

/// The kinds of call, by position on a connection: 4 unary, 3 server streaming,
/// 2 client streaming, 1 bidirectional.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Unary,
    ServerStreaming,
    ClientStreaming,
    Bidi,
}

fn kind_of(slot: usize) -> Kind {
    match slot {
        0..=3 => Kind::Unary,
        4..=6 => Kind::ServerStreaming,
        7..=8 => Kind::ClientStreaming,
        _ => Kind::Bidi,
    }
}

/// One call of kind `kind_of(slot)`, its answer checked; `Err` names what was wrong.
async fn one_call(client: GrpcDemoClient, conn: usize, slot: usize) -> Result<Kind, String> {
    let id = format!("c{conn}s{slot}");
    let kind = kind_of(slot);
    let fail = |what: &str, status: Status| format!("{id} {kind:?} {what}: {status:?}");
    match kind {
        Kind::Unary => {
            let answer = client
                .simple_method(req(format!("echo:{id}")))
                .await
                .map_err(|s| fail("call", s))?;
            let got = &answer.message().response_data;
            if *got != id {
                return Err(format!("{id} unary: wrong answer {got:?}"));
            }
        }
        Kind::ServerStreaming => {
            let n = 1 + (conn + slot) % 5;
            let mut responses = client
                .server_streaming_method(req(format!("count:{n}:{id}")))
                .await
                .map_err(|s| fail("call", s))?
                .into_message();
            let mut got = Vec::new();
            while let Some(r) = responses.message().await.map_err(|s| fail("message", s))? {
                got.push(r.response_data);
            }
            let want: Vec<String> = (0..n).map(|i| format!("{id}:{i}")).collect();
            if got != want {
                return Err(format!("{id} server streaming: got {got:?}, want {want:?}"));
            }
        }
        Kind::ClientStreaming => {
            let n = 1 + (conn + slot) % 4;
            let texts: Vec<String> = (0..n).map(|i| format!("{id}-{i}")).collect();
            let answer = client
                .client_streaming_method(stream::iter(texts.clone().into_iter().map(req)))
                .await
                .map_err(|s| fail("call", s))?;
            let got = &answer.message().response_data;
            let want = format!("{n} messages: {}", texts.join(","));
            if *got != want {
                return Err(format!("{id} client streaming: got {got:?}, want {want:?}"));
            }
        }
        Kind::Bidi => {
            let texts: Vec<String> = (0..3).map(|i| format!("{id}-{i}")).collect();
            let mut responses = client
                .bidirectional_streaming_method(stream::iter(texts.clone().into_iter().map(req)))
                .await
                .map_err(|s| fail("call", s))?
                .into_message();
            let mut got = Vec::new();
            while let Some(r) = responses.message().await.map_err(|s| fail("message", s))? {
                got.push(r.response_data);
            }
            let want: Vec<String> = texts.iter().map(|t| format!("echo {t}")).collect();
            if got != want {
                return Err(format!("{id} bidi: got {got:?}, want {want:?}"));
            }
        }
    }
    Ok(kind)
}

/// Opens [`CONNECTIONS`] channels to `addr`, [`CONNECT_BATCH`] at a time.
async fn connect_all(addr: SocketAddr) -> Vec<GrpcDemoClient> {
    let mut clients = Vec::with_capacity(CONNECTIONS);
    while clients.len() < CONNECTIONS {
        let batch = CONNECT_BATCH.min(CONNECTIONS - clients.len());
        let mut connecting = JoinSet::new();
        for i in 0..batch {
            connecting.spawn(async move { (i, Channel::connect(addr.to_string()).await) });
        }
        let mut batch_channels = Vec::with_capacity(batch);
        while let Some(joined) = connecting.join_next().await {
            let (i, channel) = joined.expect("connect task");
            let channel =
                channel.unwrap_or_else(|e| panic!("connection {} failed: {e}", clients.len() + i));
            batch_channels.push(GrpcDemoClient::new(channel));
        }
        clients.extend(batch_channels);
    }
    clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_carry_ten_thousand_concurrent_calls() {
    let fd_limit = raise_fd_limit(NEEDED_FDS);
    assert!(
        fd_limit >= NEEDED_FDS,
        "the open-file limit is {fd_limit} (hard limit too low to raise) but the test needs \
         {NEEDED_FDS}: raise it (ulimit -n) before running"
    );
    let started = Instant::now();
    // Every handler, once it has its request, waits until all the calls are in theirs.
    let gate = Gate::new(TOTAL_CALLS);
    let server = TestServer::start_service(Server::new(), |service| {
        service
            .gated(gate.clone())
            .client_streams(ClientStreamReply::Texts)
    })
    .await;
    let addr = server.addr;

    let body = async {
        let clients = connect_all(addr).await;
        let connected_in = started.elapsed();
        if let Some(n) = established_on_port(addr.port()) {
            assert!(
                n >= CONNECTIONS,
                "only {n} connections established to the server, want {CONNECTIONS}"
            );
        }

        let mut calls = JoinSet::new();
        for (conn, client) in clients.iter().enumerate() {
            for slot in 0..CALLS_PER_CONNECTION {
                calls.spawn(one_call(client.clone(), conn, slot));
            }
        }
        let mut done: BTreeMap<Kind, usize> = BTreeMap::new();
        while let Some(joined) = calls.join_next().await {
            match joined.expect("call task panicked") {
                Ok(kind) => *done.entry(kind).or_default() += 1,
                // Dropping the JoinSet aborts the other calls.
                Err(e) => panic!(
                    "a call failed ({} of {TOTAL_CALLS} had reached the server): {e}",
                    gate.arrived()
                ),
            }
        }
        assert_eq!(done.values().sum::<usize>(), TOTAL_CALLS, "{done:?}");
        assert_eq!(gate.arrived(), TOTAL_CALLS);
        eprintln!(
            "{CONNECTIONS} connections in {connected_in:.1?}; {TOTAL_CALLS} concurrent calls OK \
             ({done:?}); {:.1?} in all; open-file limit {fd_limit}",
            started.elapsed()
        );
        drop(clients);
    };
    if tokio::time::timeout(OVERALL_TIMEOUT, body).await.is_err() {
        panic!(
            "not done within {OVERALL_TIMEOUT:?}: {} of {TOTAL_CALLS} calls had reached the server",
            gate.arrived()
        );
    }
    tokio::time::timeout(Duration::from_secs(30), server.shutdown())
        .await
        .expect("server did not shut down");
}
