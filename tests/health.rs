//! The health service (`grpc.health.v1.Health`) over real sockets: Check, Watch (the
//! current status, each change, a late registration), List, NOT_SERVING once a graceful
//! shutdown begins; with our client and with grpcio-health-checking's.

use std::process::Command;
use std::time::{Duration, Instant};

use h2grpc::health::pb::{HealthCheckRequest, HealthListRequest};
use h2grpc::health::{HealthClient, HealthReporter, ServingStatus};
use h2grpc::{Channel, Code, Server};
use h2grpc_test_support::process::{Process, TempDir, run};
use h2grpc_test_support::python;
use h2grpc_test_support::service::{TestServer, bounded};

const DEMO: &str = "demo.GRPCDemo";

async fn server_with(health: &HealthReporter) -> TestServer {
    TestServer::start_with(Server::new().add_service(health.service())).await
}

async fn client(server: &TestServer) -> HealthClient {
    HealthClient::new(Channel::connect(server.addr.to_string()).await.unwrap())
}

fn check_request(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

async fn check(client: &HealthClient, service: &str) -> Result<ServingStatus, Code> {
    match client.check(check_request(service)).await {
        Ok(reply) => Ok(reply.into_message().status()),
        Err(status) => Err(status.code()),
    }
}

/// The next message of a Watch, as a status.
async fn next(
    watch: &mut h2grpc::Streaming<h2grpc::health::pb::HealthCheckResponse>,
) -> ServingStatus {
    watch
        .message()
        .await
        .expect("watch failed")
        .expect("watch ended")
        .status()
}

#[tokio::test]
async fn check_answers_each_registered_status_and_not_found_for_an_unknown_name() {
    bounded(async {
        let health = HealthReporter::new();
        health.set_not_serving(DEMO);
        let server = server_with(&health).await;
        let client = client(&server).await;
        assert_eq!(check(&client, "").await, Ok(ServingStatus::Serving));
        assert_eq!(check(&client, DEMO).await, Ok(ServingStatus::NotServing));
        let unknown = client.check(check_request("no.Such")).await.unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound);
        assert!(unknown.message().contains("no.Such"), "{unknown:?}");
        health.set_serving(DEMO);
        assert_eq!(check(&client, DEMO).await, Ok(ServingStatus::Serving));
        health.clear(DEMO);
        assert_eq!(check(&client, DEMO).await, Err(Code::NotFound));
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn watch_sends_the_status_then_each_change_and_a_late_registration() {
    bounded(async {
        let health = HealthReporter::new();
        health.set_serving(DEMO);
        let server = server_with(&health).await;
        let client = client(&server).await;

        let mut known = client
            .watch(check_request(DEMO))
            .await
            .unwrap()
            .into_message();
        assert_eq!(next(&mut known).await, ServingStatus::Serving);
        health.set_not_serving(DEMO);
        assert_eq!(next(&mut known).await, ServingStatus::NotServing);
        health.set_not_serving(DEMO); // no change, no message
        health.set_serving(DEMO);
        assert_eq!(next(&mut known).await, ServingStatus::Serving);

        let mut late = client
            .watch(check_request("late.Service"))
            .await
            .unwrap()
            .into_message();
        assert_eq!(next(&mut late).await, ServingStatus::ServiceUnknown);
        health.set_not_serving("late.Service");
        assert_eq!(next(&mut late).await, ServingStatus::NotServing);
        health.clear("late.Service");
        assert_eq!(next(&mut late).await, ServingStatus::ServiceUnknown);
        drop((known, late));
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn list_maps_every_registered_service_to_its_status() {
    bounded(async {
        let health = HealthReporter::new();
        health.set_serving(DEMO);
        health.set_not_serving("other.Service");
        let server = server_with(&health).await;
        let client = client(&server).await;
        // A name only watched is not registered: List leaves it out.
        let mut watch = client
            .watch(check_request("watched.Only"))
            .await
            .unwrap()
            .into_message();
        assert_eq!(next(&mut watch).await, ServingStatus::ServiceUnknown);
        let list = client
            .list(HealthListRequest {})
            .await
            .unwrap()
            .into_message();
        let mut statuses: Vec<(String, ServingStatus)> = list
            .statuses
            .into_iter()
            .map(|(name, reply)| (name, reply.status()))
            .collect();
        statuses.sort();
        assert_eq!(
            statuses,
            [
                (String::new(), ServingStatus::Serving),
                (DEMO.to_owned(), ServingStatus::Serving),
                ("other.Service".to_owned(), ServingStatus::NotServing),
            ]
        );
        drop(watch);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn list_of_too_many_services_is_resource_exhausted() {
    bounded(async {
        let health = HealthReporter::new();
        for i in 0..h2grpc::health::MAX_LISTED_SERVICES {
            health.set_serving(&format!("s.S{i}"));
        }
        let server = server_with(&health).await;
        let client = client(&server).await;
        let status = client.list(HealthListRequest {}).await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_graceful_shutdown_sets_every_service_not_serving_before_the_drain() {
    bounded(async {
        let health = HealthReporter::new();
        health.set_serving(DEMO);
        let server = TestServer::start_with(
            Server::new()
                .grace_period(Duration::from_secs(2))
                .add_service(health.service()),
        )
        .await;
        let client = client(&server).await;
        let mut whole = client
            .watch(check_request(""))
            .await
            .unwrap()
            .into_message();
        let mut demo = client
            .watch(check_request(DEMO))
            .await
            .unwrap()
            .into_message();
        assert_eq!(next(&mut whole).await, ServingStatus::Serving);
        assert_eq!(next(&mut demo).await, ServingStatus::Serving);
        let done = tokio::spawn(server.shutdown());
        assert_eq!(next(&mut whole).await, ServingStatus::NotServing);
        assert_eq!(next(&mut demo).await, ServingStatus::NotServing);
        // Changes after the shutdown began are ignored.
        health.set_serving(DEMO);
        assert_eq!(health.status(DEMO), Some(ServingStatus::NotServing));
        drop((whole, demo));
        done.await.unwrap();
    })
    .await;
}

// ---- grpcio-health-checking as the client (1.76.0 has no List; the tests above call it)

fn script() -> std::path::PathBuf {
    python::python_peers_dir().join("health_client.py")
}

fn health_client(venv: &python::Venv, cwd: &TempDir, port: u16, args: &[&str]) -> Command {
    let mut cmd = python::python_script_in(venv, cwd.path(), &script());
    cmd.arg("--port").arg(port.to_string()).args(args);
    cmd
}

/// Polls `process` until its output holds `line`; panics with the output on exit or timeout.
fn wait_for_line(process: &mut Process, line: &str) {
    let started = Instant::now();
    while !process.stdout().lines().any(|l| l.trim_end() == line) {
        assert!(
            process.try_status().is_none() || process.stdout().contains(line),
            "exited before {line:?}: {}",
            process.dump()
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no {line:?} in 30 s: {}",
            process.dump()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn grpcio_health_checking_checks_and_watches() {
    let test = "grpcio_health_checking_checks_and_watches";
    let Some(venv) = python::venv(test) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let health = HealthReporter::new();
    health.set_serving(DEMO);
    let server = runtime.block_on(server_with(&health));
    let port = server.addr.port();
    let cwd = TempDir::new("health-python");

    let checked = run(
        health_client(venv, &cwd, port, &["check", "\"\"", DEMO, "no.Such"]),
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(checked.success(), "{}", checked.dump());
    assert_eq!(
        checked.stdout.lines().collect::<Vec<_>>(),
        [
            "check \"\": SERVING",
            "check demo.GRPCDemo: SERVING",
            "check no.Such: error NOT_FOUND",
        ],
        "{}",
        checked.dump()
    );

    // A Watch sees a change of a known service, and an unknown name registered later.
    let mut known = Process::spawn(
        "health_client.py watch",
        health_client(venv, &cwd, port, &["watch", DEMO, "2"]),
    )
    .unwrap();
    let mut late = Process::spawn(
        "health_client.py watch late",
        health_client(venv, &cwd, port, &["watch", "late.Service", "3"]),
    )
    .unwrap();
    wait_for_line(&mut known, "watch demo.GRPCDemo: SERVING");
    health.set_not_serving(DEMO);
    wait_for_line(&mut known, "watch demo.GRPCDemo: NOT_SERVING");
    wait_for_line(&mut late, "watch late.Service: SERVICE_UNKNOWN");
    health.set_serving("late.Service");
    wait_for_line(&mut late, "watch late.Service: SERVING");
    health.set_not_serving("late.Service");
    wait_for_line(&mut late, "watch late.Service: NOT_SERVING");
    for process in [&mut known, &mut late] {
        let status = process.wait_timeout(Duration::from_secs(30));
        assert!(status.is_some_and(|s| s.success()), "{}", process.dump());
        assert!(!process.stdout().contains("error"), "{}", process.dump());
    }

    runtime.block_on(server.shutdown());
}

#[test]
fn grpcio_health_checking_watch_sees_not_serving_when_the_server_drains() {
    let test = "grpcio_health_checking_watch_sees_not_serving_when_the_server_drains";
    let Some(venv) = python::venv(test) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let health = HealthReporter::new();
    let server = runtime.block_on(TestServer::start_with(
        Server::new()
            .grace_period(Duration::from_secs(2))
            .add_service(health.service()),
    ));
    let cwd = TempDir::new("health-python-drain");
    let mut watch = Process::spawn(
        "health_client.py watch",
        health_client(venv, &cwd, server.addr.port(), &["watch", "\"\"", "2"]),
    )
    .unwrap();
    wait_for_line(&mut watch, "watch \"\": SERVING");
    runtime.block_on(server.shutdown());
    wait_for_line(&mut watch, "watch \"\": NOT_SERVING");
    let status = watch.wait_timeout(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{}", watch.dump());
}
