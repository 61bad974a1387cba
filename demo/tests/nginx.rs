//! Behind a real proxy: nginx with `grpc_pass` in front of two `demo-server` instances
//! (server ids 1 and 2). Our demo-client and the official example's client.py work
//! through it, calls are spread over both backends, the streaming kinds work, and with
//! one backend killed mid-run the other keeps serving.
//!
//! Needs nginx (Debian package `nginx`); without it the tests fail, unless
//! H2GRPC_SKIP_MISSING_PEERS=1 lets them print NOT RUN (see the kit's `missing`). The
//! client.py test also needs $GRPC_PYTHON_EXAMPLE_DIR and python3, and since client.py
//! hard-codes localhost:23333, it puts nginx on 127.0.0.1:23333 under [`lock_port`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::stream;
use h2grpc::{Channel, Code, Status};
use h2grpc_demo::pb::Request as DemoRequest;
use h2grpc_demo::pb::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::demo_process::DemoServer;
use h2grpc_test_support::nginx::{self, Nginx};
use h2grpc_test_support::ports::{EXAMPLE_PORT, assert_port_free, free_port, local, lock_port};
use h2grpc_test_support::process::{self, LineMatch};
use h2grpc_test_support::python;
use tokio::sync::{Mutex, oneshot};

/// The demo server binary under test.
const DEMO_SERVER: &str = env!("CARGO_BIN_EXE_demo-server");

/// client.py's bidirectional call alone takes about 5 s.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// A bound on each call made by the tests' own loops.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A bound on each async part of a test.
const PART_TIMEOUT: Duration = Duration::from_secs(60);
/// Unary calls made to see them spread over the backends.
const SPREAD_CALLS: usize = 200;

fn req(text: impl Into<String>) -> DemoRequest {
    DemoRequest {
        client_id: 1,
        request_data: text.into(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `text` with the backend ids in `server(1)` / `server(2)` replaced by `server(N)`.
fn any_backend(text: &str) -> String {
    text.replace("server(1)", "server(N)")
        .replace("server(2)", "server(N)")
}

/// What client.py and our demo-client print against our demo-server, whichever backend
/// answered (`server(N)`).
fn client_lines() -> Vec<String> {
    let mut lines = vec![
        "--------------Call SimpleMethod Begin--------------".to_string(),
        "resp from server(N), the message=Rust server SimpleMethod Ok!!!!".to_string(),
        "--------------Call SimpleMethod Over---------------".to_string(),
        "--------------Call ClientStreamingMethod Begin--------------".to_string(),
        "resp from server(N), the message=Rust server ClientStreamingMethod ok".to_string(),
        "--------------Call ClientStreamingMethod Over---------------".to_string(),
        "--------------Call ServerStreamingMethod Begin--------------".to_string(),
    ];
    lines.extend(
        (0..5).map(|i| format!("recv from server(N), message=send by Rust server, message={i}")),
    );
    lines.push("--------------Call ServerStreamingMethod Over---------------".to_string());
    lines.push("--------------Call BidirectionalStreamingMethod Begin---------------".to_string());
    lines.extend(
        (0..5).map(|i| format!("recv from server(N), message=send by Rust server, message= {i}")),
    );
    lines.push("--------------Call BidirectionalStreamingMethod Over---------------".to_string());
    lines
}

/// Runs `client` to completion and checks it exited 0 and printed [`client_lines`].
fn check_client_run(name: &str, client: Command, proxy: &Nginx) {
    let run = process::run_named(name, client, CLIENT_TIMEOUT)
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let context = format!("{}{}", run.dump(), proxy.dump());
    assert!(run.success(), "{name} failed through nginx\n{context}");
    process::assert_lines_in_order(
        &format!("{name} stdout"),
        &any_backend(&run.stdout),
        &client_lines(),
        LineMatch::Exact,
        &context,
    );
    eprintln!("{name} through nginx: ok in {:.1?}", run.elapsed);
}

/// The server ids that answered each of `SPREAD_CALLS` unary calls over one channel.
async fn spread(client: &GrpcDemoClient) -> BTreeMap<i64, usize> {
    let mut by_backend = BTreeMap::new();
    for i in 0..SPREAD_CALLS {
        let answer = tokio::time::timeout(CALL_TIMEOUT, client.simple_method(req(format!("{i}"))))
            .await
            .unwrap_or_else(|_| panic!("unary call {i} through nginx hung"))
            .unwrap_or_else(|e| panic!("unary call {i} through nginx failed: {e:?}"));
        assert_eq!(
            answer.message().response_data,
            "Rust server SimpleMethod Ok!!!!"
        );
        *by_backend.entry(answer.message().server_id).or_insert(0) += 1;
    }
    by_backend
}

/// The three streaming kinds through nginx, each answered whole by one backend.
async fn streaming_kinds(client: &GrpcDemoClient) {
    // Server streaming.
    let mut responses = client
        .server_streaming_method(req("through nginx"))
        .await
        .expect("server streaming through nginx")
        .into_message();
    let mut ids = Vec::new();
    while let Some(r) = responses.message().await.expect("server streaming message") {
        assert_eq!(
            r.response_data,
            format!("send by Rust server, message={}", ids.len())
        );
        ids.push(r.server_id);
    }
    assert_eq!(ids.len(), 5);
    assert!(ids.iter().all(|&id| id == ids[0]), "{ids:?}");

    // Client streaming: 50 requests.
    let answer = client
        .client_streaming_method(stream::iter((0..50).map(|i| req(format!("m{i}")))))
        .await
        .expect("client streaming through nginx");
    assert_eq!(
        answer.message().response_data,
        "Rust server ClientStreamingMethod ok"
    );

    // Bidirectional, full duplex: the client sends its first request, then waits for the
    // first answer before sending the other nine. A proxy that held either direction back
    // would leave this call stuck.
    let (first_seen, wait_first) = oneshot::channel::<()>();
    let requests = stream::unfold((0, Some(wait_first)), |(i, mut wait)| async move {
        if i == 1
            && let Some(wait) = wait.take()
        {
            let _ = wait.await;
        }
        (i < 10).then(|| (req(format!("b{i}")), (i + 1, wait)))
    });
    let mut responses = client
        .bidirectional_streaming_method(requests)
        .await
        .expect("bidi through nginx")
        .into_message();
    let mut first_seen = Some(first_seen);
    let mut n = 0;
    while let Some(r) = tokio::time::timeout(CALL_TIMEOUT, responses.message())
        .await
        .expect("bidi through nginx: no answer (is the proxy streaming both ways?)")
        .expect("bidi message")
    {
        if let Some(tx) = first_seen.take() {
            let _ = tx.send(());
        }
        assert_eq!(
            r.response_data,
            format!("send by Rust server, message= {n}")
        );
        n += 1;
    }
    assert_eq!(n, 5);
}

/// Outcomes of calls: successes by answering backend, failures by code, hangs.
#[derive(Default, Debug)]
struct Tally {
    ok: usize,
    by_backend: BTreeMap<i64, usize>,
    failed: BTreeMap<String, usize>,
    first_failures: Vec<String>,
    hung: usize,
}

impl Tally {
    fn record(
        &mut self,
        n: usize,
        result: Result<Result<i64, Status>, tokio::time::error::Elapsed>,
    ) {
        match result {
            Ok(Ok(id)) => {
                self.ok += 1;
                *self.by_backend.entry(id).or_insert(0) += 1;
            }
            Ok(Err(s)) => {
                *self.failed.entry(s.code().to_string()).or_insert(0) += 1;
                if self.first_failures.len() < 10 {
                    self.first_failures.push(format!("call {n}: {s:?}"));
                }
            }
            Err(_) => self.hung += 1,
        }
    }

    fn failures(&self) -> usize {
        self.failed.values().sum()
    }
}

/// One call of kind `n % kinds` (unary, server streaming, client streaming, bidi), its
/// answers checked; the answering backend's id.
async fn mixed_call(client: &GrpcDemoClient, n: usize, kinds: usize) -> Result<i64, Status> {
    let streamed = |count: usize, id: i64| {
        if count == 5 {
            Ok(id)
        } else {
            Err(Status::internal(format!("{count} messages, want 5")))
        }
    };
    match n % kinds {
        0 => Ok(client.simple_method(req("loop")).await?.message().server_id),
        1 => {
            let mut s = client
                .server_streaming_method(req("loop"))
                .await?
                .into_message();
            let (mut count, mut id) = (0, 0);
            while let Some(r) = s.message().await? {
                count += 1;
                id = r.server_id;
            }
            streamed(count, id)
        }
        2 => Ok(client
            .client_streaming_method(stream::iter((0..5).map(|i| req(format!("m{i}")))))
            .await?
            .message()
            .server_id),
        _ => {
            let mut s = client
                .bidirectional_streaming_method(stream::iter((0..5).map(|i| req(format!("m{i}")))))
                .await?
                .into_message();
            let (mut count, mut id) = (0, 0);
            while let Some(r) = s.message().await? {
                count += 1;
                id = r.server_id;
            }
            streamed(count, id)
        }
    }
}

/// Two demo-servers (ids 1 and 2) behind nginx, and a runtime for the clients.
struct Setup {
    rt: tokio::runtime::Runtime,
    proxy: Nginx,
    one: DemoServer,
    two: DemoServer,
}

impl Setup {
    /// `None` (the test did not run) without nginx.
    fn start(test: &str) -> Option<Setup> {
        let binary = nginx::binary(test)?;
        let rt = runtime();
        let (one, two) = rt.block_on(async {
            (
                DemoServer::start(DEMO_SERVER, free_port(), 1).await,
                DemoServer::start(DEMO_SERVER, free_port(), 2).await,
            )
        });
        let proxy = Nginx::start(&binary, local(free_port()), &[one.addr(), two.addr()]);
        Some(Setup {
            rt,
            proxy,
            one,
            two,
        })
    }

    fn client(&self) -> GrpcDemoClient {
        GrpcDemoClient::new(Channel::lazy(self.proxy.listen.to_string()).unwrap())
    }
}

#[test]
fn through_nginx_our_client_works_and_calls_spread_over_both_backends() {
    let Some(setup) =
        Setup::start("through_nginx_our_client_works_and_calls_spread_over_both_backends")
    else {
        return;
    };
    let proxy = &setup.proxy;

    // Our demo-client binary, all four calls.
    let mut demo_client = Command::new(env!("CARGO_BIN_EXE_demo-client"));
    demo_client.args(["--addr", &proxy.listen.to_string(), "--interval-ms", "50"]);
    check_client_run("demo-client", demo_client, proxy);

    let client = setup.client();
    setup.rt.block_on(async {
        let spread = tokio::time::timeout(PART_TIMEOUT, spread(&client))
            .await
            .expect("spread calls timed out");
        eprintln!("{SPREAD_CALLS} unary calls through nginx, by backend id: {spread:?}");
        assert_eq!(spread.values().sum::<usize>(), SPREAD_CALLS);
        for id in [1, 2] {
            assert!(
                spread.get(&id).copied().unwrap_or(0) > 0,
                "backend {id} got no call: {spread:?}\n{}",
                proxy.dump()
            );
        }
        tokio::time::timeout(PART_TIMEOUT, streaming_kinds(&client))
            .await
            .expect("streaming calls timed out");
    });
}

/// Concurrent calls over one channel through nginx, more than nginx's
/// `keepalive_requests` (1000 by default): nginx then closes the client connection with
/// GOAWAY(NO_ERROR), refusing the streams the client had already opened past its
/// last-stream-id. Those calls were never processed, so a gRPC client retries them on a
/// new connection (transparent retry) and none fails.
#[test]
fn through_nginx_calls_outlive_nginx_recycling_the_connection() {
    const WORKERS: usize = 8;
    const CALLS_PER_WORKER: usize = 400;
    let Some(setup) = Setup::start("through_nginx_calls_outlive_nginx_recycling_the_connection")
    else {
        return;
    };
    let client = setup.client();
    let tally = setup.rt.block_on(async {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let mut workers = Vec::new();
        for w in 0..WORKERS {
            let (client, tally) = (client.clone(), tally.clone());
            workers.push(tokio::spawn(async move {
                for n in (w * CALLS_PER_WORKER)..((w + 1) * CALLS_PER_WORKER) {
                    // Unary and server streaming: calls whose request the client holds whole.
                    let result =
                        tokio::time::timeout(CALL_TIMEOUT, mixed_call(&client, n, 2)).await;
                    tally.lock().await.record(n, result);
                }
            }));
        }
        for w in workers {
            tokio::time::timeout(PART_TIMEOUT, w)
                .await
                .expect("a worker did not finish")
                .expect("worker task");
        }
        Arc::try_unwrap(tally)
            .expect("workers are done")
            .into_inner()
    });
    eprintln!(
        "{} calls over one channel through nginx (keepalive_requests 1000): {tally:#?}",
        WORKERS * CALLS_PER_WORKER
    );
    assert_eq!(tally.hung, 0, "calls hung: {tally:#?}");
    assert_eq!(
        tally.failures(),
        0,
        "calls failed while nginx recycled the client connection (GOAWAY after its \
         keepalive_requests); streams refused by a GOAWAY were never processed and should be \
         retried on a new connection: {tally:#?}"
    );
    assert_eq!(tally.ok, WORKERS * CALLS_PER_WORKER);
}

/// Calls of the four kinds from 4 workers over one channel through nginx, 800 in all
/// (under nginx's 1000 requests per connection, so no GOAWAY interferes); backend 2 is
/// killed (SIGKILL) once 300 have started. Calls in flight on backend 2 may fail
/// (UNAVAILABLE: nginx answers 502), none hangs, and every call after the kill is
/// served by backend 1.
#[test]
fn through_nginx_one_backend_killed_mid_run_leaves_the_other_serving() {
    const WORKERS: usize = 4;
    const CALLS_PER_WORKER: usize = 200;
    const KILL_AFTER: usize = 300;
    let Some(mut setup) =
        Setup::start("through_nginx_one_backend_killed_mid_run_leaves_the_other_serving")
    else {
        return;
    };
    let client = setup.client();
    let (before, after) = setup.rt.block_on(async {
        let started = Arc::new(AtomicUsize::new(0));
        let killed = Arc::new(AtomicBool::new(false));
        let tallies = Arc::new(Mutex::new([Tally::default(), Tally::default()]));
        let mut workers = Vec::new();
        for w in 0..WORKERS {
            let (client, started, killed, tallies) = (
                client.clone(),
                started.clone(),
                killed.clone(),
                tallies.clone(),
            );
            workers.push(tokio::spawn(async move {
                for n in (w * CALLS_PER_WORKER)..((w + 1) * CALLS_PER_WORKER) {
                    started.fetch_add(1, Ordering::SeqCst);
                    let phase = usize::from(killed.load(Ordering::SeqCst));
                    let result =
                        tokio::time::timeout(CALL_TIMEOUT, mixed_call(&client, n, 4)).await;
                    tallies.lock().await[phase].record(n, result);
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            }));
        }
        tokio::time::timeout(PART_TIMEOUT, async {
            while started.load(Ordering::SeqCst) < KILL_AFTER {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the calls did not get going");
        setup.two.kill();
        killed.store(true, Ordering::SeqCst);
        for w in workers {
            tokio::time::timeout(PART_TIMEOUT, w)
                .await
                .expect("a worker did not finish")
                .expect("worker task");
        }
        let [before, after] = Arc::try_unwrap(tallies)
            .expect("workers are done")
            .into_inner();
        (before, after)
    });
    let proxy = &setup.proxy;
    eprintln!(
        "calls through nginx started before backend 2 was killed: {before:#?}\nand after: {after:#?}"
    );
    assert_eq!(
        before.hung + after.hung,
        0,
        "calls hung:\n{before:#?}\n{after:#?}"
    );
    assert!(
        before.by_backend.len() == 2,
        "both backends should have served before the kill: {before:#?}"
    );
    assert!(
        after.ok > 0,
        "nothing served after the kill: {after:#?}\n{}",
        proxy.dump()
    );
    assert_eq!(
        after.by_backend.keys().copied().collect::<Vec<_>>(),
        [1],
        "after the kill only backend 1 can answer: {after:#?}"
    );
    // Only calls in flight on backend 2 when it died may fail: one per worker at most,
    // doubled for nginx's reuse of a cached connection to the dead backend.
    let failed = before.failures() + after.failures();
    assert!(
        failed <= 2 * WORKERS,
        "{failed} calls failed around the kill:\n{before:#?}\n{after:#?}\n{}",
        proxy.dump()
    );
    // A call whose response nginx had begun to relay when the backend died cannot get a
    // 502 any more: nginx resets it with INTERNAL_ERROR, which the spec maps to INTERNAL.
    // That can only happen to a call in flight at the kill (the `before` tally).
    let internal = Code::Internal.to_string();
    for code in before.failed.keys() {
        assert!(
            *code == Code::Unavailable.to_string() || *code == internal,
            "a call in flight at the kill failed with {code}:\n{before:#?}\n{after:#?}"
        );
    }
    for code in after.failed.keys() {
        assert_eq!(
            code,
            &Code::Unavailable.to_string(),
            "a call made after the kill failed with a code other than UNAVAILABLE:\n{after:#?}"
        );
    }
    // Settled: every call goes to the survivor.
    setup.rt.block_on(async {
        for i in 0..50 {
            let answer = tokio::time::timeout(CALL_TIMEOUT, client.simple_method(req("settled")))
                .await
                .unwrap_or_else(|_| panic!("call {i} after the kill hung"))
                .unwrap_or_else(|e| {
                    panic!("call {i} after the kill failed: {e:?}\n{}", proxy.dump())
                });
            assert_eq!(answer.message().server_id, 1);
        }
    });
    let _ = &setup.one;
}

#[test]
fn official_python_client_through_nginx() {
    let test = "official_python_client_through_nginx";
    let Some(binary) = nginx::binary(test) else {
        return;
    };
    let Some(example) = python::example_dir(test) else {
        return;
    };
    let Some(venv) = python::venv(test) else {
        return;
    };
    let stubs = python::generate_stubs(venv, &example, "demo.proto");
    let rt = runtime();
    let (one, two) = rt.block_on(async {
        (
            DemoServer::start(DEMO_SERVER, free_port(), 1).await,
            DemoServer::start(DEMO_SERVER, free_port(), 2).await,
        )
    });
    let _port = lock_port(EXAMPLE_PORT);
    let listen: SocketAddr = local(EXAMPLE_PORT);
    assert_port_free(listen);
    let proxy = Nginx::start(&binary, listen, &[one.addr(), two.addr()]);
    let client = python::python_script(venv, &stubs, &example.join("client.py"));
    check_client_run("client.py", client, &proxy);
    drop(proxy);
    drop((one, two));
}
