//! Load balancing over real servers: three `demo-server` processes on 127.0.0.1,
//! 127.0.0.2 and 127.0.0.3 behind one `ipv4:` target. round_robin spreads calls evenly,
//! loses at most the one call that meets a killed backend, and gives the backend calls
//! again once it is back; pick_first stays on the first address and moves to the next when
//! it dies. The figures are printed and written to `target/tmp/balancing-figures.txt`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use h2grpc::client::{ConnectivityState, LoadBalancing};
use h2grpc::{Channel, Code, Status};
use h2grpc_demo::pb::Request as DemoRequest;
use h2grpc_demo::pb::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::demo_process::DemoServer;
use h2grpc_test_support::ports::free_port;

const DEMO_SERVER: &str = env!("CARGO_BIN_EXE_demo-server");
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Calls per measured round.
const ROUND: usize = 300;

async fn bounded<T>(body: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, body)
        .await
        .expect("test timed out")
}

fn addr(host: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, host], port))
}

/// Servers with ids 1, 2, 3 on 127.0.0.1, .2, .3, all on `port`.
async fn three_servers(port: u16) -> Vec<DemoServer> {
    let mut servers = Vec::new();
    for id in 1..=3u8 {
        servers.push(DemoServer::start_at(DEMO_SERVER, addr(id, port), id.into()).await);
    }
    servers
}

fn target(port: u16) -> String {
    format!("ipv4:127.0.0.1:{port},127.0.0.2:{port},127.0.0.3:{port}")
}

async fn channel(port: u16, policy: LoadBalancing) -> (Channel, GrpcDemoClient) {
    let channel = Channel::builder(target(port))
        .load_balancing(policy)
        .connect()
        .await
        .expect("connect");
    (channel.clone(), GrpcDemoClient::new(channel))
}

/// One unary call: the id of the server that answered.
async fn call(client: &GrpcDemoClient) -> Result<i64, Status> {
    let request = DemoRequest {
        client_id: 1,
        request_data: "balance".into(),
    };
    match tokio::time::timeout(CALL_TIMEOUT, client.simple_method(request)).await {
        Ok(answer) => answer.map(|r| r.message().server_id),
        Err(_) => panic!("a call hung for {CALL_TIMEOUT:?}"),
    }
}

/// What `n` sequential calls got: answers by server id, and the failures with their index.
#[derive(Debug, Default)]
struct Round {
    by_server: BTreeMap<i64, usize>,
    failures: Vec<(usize, Status)>,
}

async fn round(client: &GrpcDemoClient, n: usize) -> Round {
    let mut round = Round::default();
    for i in 0..n {
        match call(client).await {
            Ok(id) => *round.by_server.entry(id).or_default() += 1,
            Err(status) => round.failures.push((i, status)),
        }
    }
    round
}

/// Calls until every one of `ids` has answered (the channel has connected to all).
async fn until_all_answer(client: &GrpcDemoClient, ids: &[i64]) -> Duration {
    let started = Instant::now();
    let mut seen = std::collections::BTreeSet::new();
    while !ids.iter().all(|id| seen.contains(id)) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "servers {ids:?} did not all answer within 20 s (seen {seen:?})"
        );
        if let Ok(id) = call(client).await {
            seen.insert(id);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

fn record(figures: &str) {
    eprintln!("{figures}");
    let dir = h2grpc_test_support::target_tmp();
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("balancing-figures.txt");
    let mut all = std::fs::read_to_string(&path).unwrap_or_default();
    all.push_str(figures);
    let _ = std::fs::write(path, all);
}

fn assert_even(round: &Round, ids: &[i64], what: &str) {
    let share = ROUND / ids.len();
    for id in ids {
        let got = round.by_server.get(id).copied().unwrap_or(0);
        assert!(
            got.abs_diff(share) <= 2,
            "{what}: server {id} got {got} of {ROUND} calls, want {share}±2: {round:?}"
        );
    }
    assert_eq!(
        round.by_server.keys().copied().collect::<Vec<_>>(),
        ids,
        "{what}: {round:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_calls_evenly_survives_a_killed_backend_and_rejoins_it() {
    bounded(async {
        let port = free_port();
        let mut servers = three_servers(port).await;
        let (channel, client) = channel(port, LoadBalancing::RoundRobin).await;
        until_all_answer(&client, &[1, 2, 3]).await;

        let even = round(&client, ROUND).await;
        assert!(even.failures.is_empty(), "{even:?}");
        assert_even(&even, &[1, 2, 3], "three backends");

        // Kill backend 2: at most the one call that meets its dead connection fails,
        // and every call after that succeeds on 1 and 3.
        servers[1].kill();
        let killed = round(&client, ROUND).await;
        assert!(
            killed.failures.len() <= 1,
            "more than one call failed after the kill: {killed:?}"
        );
        for (_, status) in &killed.failures {
            assert_eq!(status.code(), Code::Unavailable, "{killed:?}");
        }
        assert_eq!(killed.by_server.get(&2), None, "{killed:?}");
        assert_eq!(channel.state(false), ConnectivityState::Ready);
        let (one, three) = (killed.by_server[&1], killed.by_server[&3]);
        assert!(one.abs_diff(three) <= 2, "uneven over the two left: {killed:?}");

        // Restart it: it gets calls again once its subchannel's backoff lets it reconnect;
        // no call fails meanwhile.
        servers[1] = DemoServer::start_at(DEMO_SERVER, addr(2, port), 2).await;
        let restarted = Instant::now();
        let mut during = Round::default();
        loop {
            match call(&client).await {
                Ok(2) => break,
                Ok(id) => *during.by_server.entry(id).or_default() += 1,
                Err(status) => during.failures.push((0, status)),
            }
            assert!(
                restarted.elapsed() < Duration::from_secs(20),
                "the restarted backend got no call within 20 s: {during:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let recovery = restarted.elapsed();
        assert!(during.failures.is_empty(), "{during:?}");
        let rejoined = round(&client, ROUND).await;
        assert!(rejoined.failures.is_empty(), "{rejoined:?}");
        assert_even(&rejoined, &[1, 2, 3], "after the restart");

        let mut figures = String::new();
        let _ = writeln!(
            figures,
            "round_robin, 3 backends, {ROUND} sequential calls: {:?}",
            even.by_server
        );
        let _ = writeln!(
            figures,
            "round_robin, backend 2 killed: {} failed call(s) {:?}, then {:?}",
            killed.failures.len(),
            killed.failures.iter().map(|(i, s)| (i, s.code())).collect::<Vec<_>>(),
            killed.by_server
        );
        let _ = writeln!(
            figures,
            "round_robin, backend 2 restarted: first call on it {recovery:.2?} after it listened ({} calls meanwhile on 1 and 3, none failed); then {:?}",
            during.by_server.values().sum::<usize>(),
            rejoined.by_server
        );
        record(&figures);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pick_first_stays_on_the_first_backend_and_moves_on_when_it_dies() {
    bounded(async {
        let port = free_port();
        let mut servers = three_servers(port).await;
        let (channel, client) = channel(port, LoadBalancing::PICK_FIRST).await;
        let first = round(&client, ROUND).await;
        assert!(first.failures.is_empty(), "{first:?}");
        assert_eq!(first.by_server, BTreeMap::from([(1, ROUND)]), "{first:?}");

        servers[0].kill();
        let moved = round(&client, ROUND).await;
        assert!(moved.failures.len() <= 1, "{moved:?}");
        for (_, status) in &moved.failures {
            assert_eq!(status.code(), Code::Unavailable, "{moved:?}");
        }
        // The next address in order takes over, alone.
        assert_eq!(
            moved.by_server.keys().copied().collect::<Vec<_>>(),
            [2],
            "{moved:?}"
        );
        assert_eq!(channel.state(false), ConnectivityState::Ready);
        record(&format!(
            "pick_first, 3 backends: {:?}; backend 1 killed: {} failed call(s), then {:?}\n",
            first.by_server,
            moved.failures.len(),
            moved.by_server
        ));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_client_spreads_repeated_calls_over_an_ipv4_target_with_round_robin() {
    bounded(async {
        let port = free_port();
        let _servers = three_servers(port).await;
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_demo-client"))
            .args([
                "--addr",
                &target(port),
                "--lb",
                "round_robin",
                "--repeat",
                "30",
            ])
            .args(["--interval-ms", "0"])
            .output()
            .await
            .expect("run demo-client");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "demo-client failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let replies = stdout
            .lines()
            .filter(|l| l.starts_with("resp from server(") && l.contains("SimpleMethod"))
            .count();
        assert_eq!(replies, 30, "{stdout}");
        let counts = stdout
            .lines()
            .find_map(|l| l.strip_prefix("calls per server: "))
            .unwrap_or_else(|| panic!("no count line: {stdout}"));
        // Every server answered; the first to be READY may take a few more.
        for id in 1..=3 {
            assert!(counts.contains(&format!("server({id}): ")), "{counts}");
        }
        record(&format!(
            "demo-client --lb round_robin --repeat 30 over three servers: {counts}\n"
        ));
    })
    .await
}
