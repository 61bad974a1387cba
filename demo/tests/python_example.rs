//! Interop with gRPC's official Python example "data_transmission", run unedited from $GRPC_PYTHON_EXAMPLE_DIR: its client.py against our demo-server, our demo-client against its server.py.
//!
//! The official files hard-code localhost:23333, so both tests use that port and hold
//! [`lock_port`] for their whole body. Without the variable (or without python3) they
//! fail, unless H2GRPC_SKIP_MISSING_PEERS=1 lets them print NOT RUN (see the kit's
//! `missing`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use h2grpc_test_support::ports::{EXAMPLE_PORT, assert_port_free, local, lock_port};
use h2grpc_test_support::process::{self, LineMatch, Process};
use h2grpc_test_support::python::{self, Venv};

const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// client.py's bidirectional call alone takes about 5 s.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The address hard-coded in the official client.py and server.py.
fn addr() -> SocketAddr {
    local(EXAMPLE_PORT)
}

/// The example's directory and the venv, or `None` if `test` cannot run.
fn example_and_venv(test: &str) -> Option<(PathBuf, &'static Venv)> {
    let example = python::example_dir(test)?;
    let venv = python::venv(test)?;
    Some((example, venv))
}

/// What client.py (and our demo-client) print, talking to a server that calls itself
/// `server` ("Rust" or "Python").
fn client_lines(server: &str) -> Vec<String> {
    let mut lines = vec![
        "--------------Call SimpleMethod Begin--------------".to_string(),
        format!("resp from server(1), the message={server} server SimpleMethod Ok!!!!"),
        "--------------Call SimpleMethod Over---------------".to_string(),
        "--------------Call ClientStreamingMethod Begin--------------".to_string(),
        format!("resp from server(1), the message={server} server ClientStreamingMethod ok"),
        "--------------Call ClientStreamingMethod Over---------------".to_string(),
        "--------------Call ServerStreamingMethod Begin--------------".to_string(),
    ];
    lines.extend(
        (0..5)
            .map(|i| format!("recv from server(1), message=send by {server} server, message={i}")),
    );
    lines.push("--------------Call ServerStreamingMethod Over---------------".to_string());
    lines.push("--------------Call BidirectionalStreamingMethod Begin---------------".to_string());
    lines
        .extend((0..5).map(|i| {
            format!("recv from server(1), message=send by {server} server, message= {i}")
        }));
    lines.push("--------------Call BidirectionalStreamingMethod Over---------------".to_string());
    lines
}

/// What server.py (and our demo-server) log for the four calls of a client that calls
/// itself `client` ("Python" or "Rust").
fn server_lines(client: &str) -> Vec<String> {
    let mut lines = vec![
        format!("SimpleMethod called by client(1) the message: called by {client} client"),
        "ClientStreamingMethod called by client...".to_string(),
    ];
    lines.extend(
        (0..5).map(|i| {
            format!("recv from client(1), message= called by {client} client, message:{i}")
        }),
    );
    lines.push(format!(
        "ServerStreamingMethod called by client(1), message= called by {client} client"
    ));
    lines.push("BidirectionalStreamingMethod called by client...".to_string());
    lines.extend(
        (0..5).map(|i| {
            format!("recv from client(1), message= called by {client} client, message: {i}")
        }),
    );
    lines
}

/// Runs the client to completion and checks its exit status and output, then stops the
/// server and checks what it logged. `server_is` and `client_is` are the names the two
/// put in their messages ("Rust" or "Python").
fn check_pair(
    mut server: Process,
    server_is: &str,
    client_name: &str,
    client: Command,
    client_is: &str,
) {
    let started = Instant::now();
    let run = process::run_named(client_name, client, CLIENT_TIMEOUT)
        .unwrap_or_else(|e| panic!("cannot start {client_name}: {e}"));
    server.stop();
    let outputs = format!("{}{}", run.dump(), server.dump());
    assert!(
        run.success(),
        "{client_name} did not exit 0 against {}\n{outputs}",
        server.name()
    );
    process::assert_lines_in_order(
        &format!("{client_name} stdout"),
        &run.stdout,
        &client_lines(server_is),
        LineMatch::Exact,
        &outputs,
    );
    // Our server logs through tracing, server.py with print: look in both streams.
    let server_output = format!("{}\n{}", server.stdout(), server.stderr());
    process::assert_lines_in_order(
        &format!("{} output", server.name()),
        &server_output,
        &server_lines(client_is),
        LineMatch::Contains,
        &outputs,
    );
    eprintln!(
        "{client_name} against {}: ok in {:.1?} (client {:.1?})\n{outputs}",
        server.name(),
        started.elapsed(),
        run.elapsed
    );
}

#[test]
fn official_python_client_against_our_server() {
    let Some((example, venv)) = example_and_venv("official_python_client_against_our_server")
    else {
        return;
    };
    let stubs = python::generate_stubs(venv, &example, "demo.proto");
    let _port = lock_port(EXAMPLE_PORT);
    assert_port_free(addr());

    let mut server_cmd = Command::new(env!("CARGO_BIN_EXE_demo-server"));
    server_cmd.current_dir(stubs.path());
    let mut server =
        Process::spawn("demo-server", server_cmd).expect("cannot start demo-server binary");
    server.wait_for_port(addr(), READY_TIMEOUT);

    let client = python::python_script(venv, &stubs, &example.join("client.py"));
    check_pair(server, "Rust", "client.py", client, "Python");
}

#[test]
fn our_client_against_official_python_server() {
    let Some((example, venv)) = example_and_venv("our_client_against_official_python_server")
    else {
        return;
    };
    let stubs = python::generate_stubs(venv, &example, "demo.proto");
    let _port = lock_port(EXAMPLE_PORT);
    assert_port_free(addr());

    let server_cmd = python::python_script(venv, &stubs, &example.join("server.py"));
    let mut server = Process::spawn("server.py", server_cmd).unwrap_or_else(|e| {
        panic!(
            "cannot start {} with {}: {e}",
            example.join("server.py").display(),
            venv.python.display()
        )
    });
    server.wait_for_port(addr(), READY_TIMEOUT);

    let mut client = Command::new(env!("CARGO_BIN_EXE_demo-client"));
    client.current_dir(stubs.path());
    check_pair(server, "Python", "demo-client", client, "Rust");
}
