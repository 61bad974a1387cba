//! The demo binaries over a Unix domain socket: `demo-server --addr unix:PATH` and
//! `demo-client --addr unix:PATH` make all four calls; the socket file is gone once the
//! server stops on SIGTERM.

use std::process::Command;
use std::time::{Duration, Instant};

use h2grpc_test_support::process::{Process, TempDir, run};

#[test]
fn demo_client_calls_demo_server_over_a_unix_socket() {
    let dir = TempDir::new("demo-uds");
    let path = dir.path().join("demo.sock");
    let addr = format!("unix:{}", path.display());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo-server"));
    cmd.args(["--quiet", "--addr", &addr]);
    let mut server = Process::spawn("demo-server", cmd).unwrap();
    let started = Instant::now();
    while !path.exists() {
        assert!(server.try_status().is_none(), "{}", server.dump());
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{}",
            server.dump()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut client = Command::new(env!("CARGO_BIN_EXE_demo-client"));
    client.args(["--addr", &addr, "--interval-ms", "10"]);
    let done = run(client, Duration::from_secs(60)).unwrap();
    assert!(done.success(), "{}", done.dump());
    assert!(
        done.stdout
            .contains("resp from server(1), the message=Rust server SimpleMethod Ok!!!!"),
        "{}",
        done.dump()
    );
    // SIGTERM: a graceful stop, which removes the socket file.
    // SAFETY: kill(2) on our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(server.id() as i32, libc::SIGTERM) }, 0);
    let status = server.wait_timeout(Duration::from_secs(15));
    assert!(status.is_some_and(|s| s.success()), "{}", server.dump());
    assert!(!path.exists(), "the socket file outlived the server");
}
