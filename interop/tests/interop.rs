//! The interop matrix: every case of the standard suite (grpc/grpc
//! doc/interop-test-descriptions.md) in every direction — ours against ours, grpcio's
//! client against our server and ours against grpcio's server, the same with grpc-js —
//! printed as one table of case × direction (also written to
//! `target/tmp/interop-matrix.txt`). Every direction runs twice: in plaintext, and over TLS
//! (`(TLS)` columns) with certificates generated for the run by the kit's
//! [`TestCerts`](h2grpc_test_support::tls::TestCerts) (none is committed), the clients
//! run as grpc's interop tests run them: `--use_tls=true --use_test_ca=true --ca_file
//! <the test CA> --server_host_override foo.test.google.fr`. Mutual TLS is in `mtls.rs`.
//!
//! Peers: `tests/peers/python` (grpcio, pinned, in the venv `tests/support/src/python.rs`
//! builds) and `tests/peers/node` (@grpc/grpc-js, pinned, installed with `npm ci`).
//! Without python3 or node/npm the matrix fails, unless H2GRPC_SKIP_MISSING_PEERS=1 lets
//! it print NOT RUN (see the kit's `missing`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use h2grpc_interop::{CASES, EXTRA_CASES as OUR_EXTRA_CASES};
use h2grpc_test_support::node;
use h2grpc_test_support::process::Process;
use h2grpc_test_support::python;
use h2grpc_test_support::tls::TestCerts;

const SERVER_START: Duration = Duration::from_secs(60);
const CLIENT_RUN: Duration = Duration::from_secs(300);

/// Marks the TLS variant of a direction (the same cells, the same limits).
const TLS_SUFFIX: &str = " (TLS)";

/// Cells a peer cannot take part in, and why. They still run, and the table shows their
/// outcome marked `limit`; they are the only cells allowed not to pass. A direction's TLS
/// variant has the same limits.
fn peer_limit(direction: &str, case: &str) -> Option<&'static str> {
    let direction = direction.strip_suffix(TLS_SUFFIX).unwrap_or(direction);
    match (direction, case) {
        ("ours → grpcio", "client_compressed_unary" | "client_compressed_streaming") => Some(
            "grpcio's server API cannot see whether a request message was compressed, so it cannot answer the \
             probe (expect_compressed on an uncompressed message) with INVALID_ARGUMENT",
        ),
        _ => None,
    }
}

struct Direction<'a> {
    name: &'static str,
    server: Command,
    client: Box<dyn Fn(u16) -> Command + 'a>,
}

/// `cmd` with `args` appended.
fn with_args(mut cmd: Command, args: &[OsString]) -> Command {
    cmd.args(args);
    cmd
}

fn our_server() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_interop-server"));
    cmd.args(["--port", "0", "--host", "127.0.0.1"]);
    cmd
}

fn our_client(port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_interop-client"));
    let cases = format!("all,{}", OUR_EXTRA_CASES.join(","));
    cmd.args([
        "--server_host",
        "127.0.0.1",
        "--server_port",
        &port.to_string(),
        "--test_case",
        &cases,
    ]);
    cmd
}

/// Run one direction: start its server, run its client over every case, collect one
/// outcome per case (`Err` holds the client's reason).
fn run(direction: Direction<'_>) -> (BTreeMap<String, Result<(), String>>, String) {
    let mut server = Process::spawn(&format!("{} server", direction.name), direction.server)
        .unwrap_or_else(|e| panic!("{}: cannot start the server: {e}", direction.name));
    let port = server.wait_for_listening(SERVER_START);
    let mut client = Process::spawn(
        &format!("{} client", direction.name),
        (direction.client)(port),
    )
    .unwrap_or_else(|e| panic!("{}: cannot start the client: {e}", direction.name));
    let status = client.wait_timeout(CLIENT_RUN);
    let stdout = client.stdout();
    let mut outcomes = BTreeMap::new();
    for line in stdout.lines() {
        if let Some(case) = line.strip_prefix("PASS ") {
            outcomes.insert(case.trim().to_owned(), Ok(()));
        } else if let Some(rest) = line.strip_prefix("FAIL ") {
            let (case, why) = rest.split_once(':').unwrap_or((rest, ""));
            outcomes.insert(case.trim().to_owned(), Err(why.trim().to_owned()));
        }
    }
    let log = format!(
        "== {}: client exit {status:?}\n{}\n{}",
        direction.name,
        client.dump(),
        server.dump()
    );
    client.stop();
    server.stop();
    (outcomes, log)
}

#[test]
fn interop_matrix() {
    let test = "interop_matrix";
    let Some(venv) = python::venv(test) else {
        return;
    };
    let Some(node) = node::node_peer(test) else {
        return;
    };
    let stubs = python::generate_interop_stubs(venv);
    let certs = TestCerts::generate();
    let tls_server = certs.interop_server_args(false);
    let tls_client = certs.interop_client_args(None);

    let mut directions = vec![
        Direction {
            name: "ours → ours",
            server: our_server(),
            client: Box::new(our_client),
        },
        Direction {
            name: "grpcio → ours",
            server: our_server(),
            client: Box::new(|port| python::python_interop_client(venv, &stubs, port, "all")),
        },
        Direction {
            name: "ours → grpcio",
            server: python::python_interop_server(venv, &stubs, 0),
            client: Box::new(our_client),
        },
        Direction {
            name: "grpc-js → ours",
            server: our_server(),
            client: Box::new({
                let node = node.clone();
                move |port| node.client_command(port, "all")
            }),
        },
        Direction {
            name: "ours → grpc-js",
            server: node.server_command(0),
            client: Box::new(our_client),
        },
    ];
    // The same five directions over TLS.
    directions.extend([
        Direction {
            name: "ours → ours (TLS)",
            server: with_args(our_server(), &tls_server),
            client: Box::new(|port| with_args(our_client(port), &tls_client)),
        },
        Direction {
            name: "grpcio → ours (TLS)",
            server: with_args(our_server(), &tls_server),
            client: Box::new(|port| {
                with_args(
                    python::python_interop_client(venv, &stubs, port, "all"),
                    &tls_client,
                )
            }),
        },
        Direction {
            name: "ours → grpcio (TLS)",
            server: with_args(python::python_interop_server(venv, &stubs, 0), &tls_server),
            client: Box::new(|port| with_args(our_client(port), &tls_client)),
        },
        Direction {
            name: "grpc-js → ours (TLS)",
            server: with_args(our_server(), &tls_server),
            client: Box::new({
                let node = node.clone();
                let tls_client = &tls_client;
                move |port| with_args(node.client_command(port, "all"), tls_client)
            }),
        },
        Direction {
            name: "ours → grpc-js (TLS)",
            server: with_args(node.server_command(0), &tls_server),
            client: Box::new(|port| with_args(our_client(port), &tls_client)),
        },
    ]);

    let names: Vec<&str> = directions.iter().map(|d| d.name).collect();
    let mut columns = Vec::new();
    let mut logs = String::new();
    for direction in directions {
        let (outcomes, log) = run(direction);
        columns.push(outcomes);
        logs.push_str(&log);
    }

    // The table, and every cell that is not a pass. A column is as wide as its name, and
    // at least 15.
    let widths: Vec<usize> = names.iter().map(|n| n.chars().count().max(15)).collect();
    let mut table = format!("{:<30}", "case");
    for (name, width) in names.iter().zip(&widths) {
        let _ = write!(table, " | {name:<width$}");
    }
    table.push('\n');
    let mut failures = Vec::new();
    let mut limits = Vec::new();
    let mut cells = 0;
    let mut passed = 0;
    for case in CASES.iter().chain(&OUR_EXTRA_CASES) {
        let case = *case;
        let _ = write!(table, "{case:<30}");
        for ((name, outcomes), width) in names.iter().zip(&columns).zip(&widths) {
            if OUR_EXTRA_CASES.contains(&case) && !name.starts_with("ours →") {
                let _ = write!(table, " | {:<width$}", "—");
                continue;
            }
            cells += 1;
            if matches!(outcomes.get(case), Some(Ok(()))) {
                passed += 1;
            }
            let limit = peer_limit(name, case);
            let cell = match (outcomes.get(case), limit) {
                (Some(Ok(())), None) => "PASS".to_owned(),
                (Some(Ok(())), Some(_)) => "PASS (limit)".to_owned(),
                (Some(Err(why)), Some(reason)) => {
                    limits.push(format!("{name} / {case}: {why} — peer limit: {reason}"));
                    "limit".to_owned()
                }
                (Some(Err(why)), None) => {
                    failures.push(format!("{name} / {case}: {why}"));
                    "FAIL".to_owned()
                }
                (None, _) => {
                    failures.push(format!("{name} / {case}: the client printed no result"));
                    "MISSING".to_owned()
                }
            };
            let _ = write!(table, " | {cell:<width$}");
        }
        table.push('\n');
    }
    let _ = writeln!(table, "\n{passed} of {cells} cells pass");
    for l in &limits {
        let _ = writeln!(table, "limit: {l}");
    }
    for f in &failures {
        let _ = writeln!(table, "FAIL: {f}");
    }
    let report = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-matrix.txt");
    let _ = std::fs::write(&report, &table);
    eprintln!("{table}");
    assert!(
        failures.is_empty(),
        "{} interop cells failed:\n{table}\n{logs}",
        failures.len()
    );
}
