//! The interop matrix: every case of the standard suite (grpc/grpc
//! doc/interop-test-descriptions.md) in every direction — ours against ours, grpcio's
//! client against our server and ours against grpcio's server, the same with grpc-js —
//! each cell its own test named by direction and case (`grpcio_to_ours_tls::large_unary`;
//! libtest-mimic, `harness = false`), and the whole printed as one table of case ×
//! direction at the end (also written to `target/tmp/interop-matrix.txt`). A direction's
//! server and client run once, at its first test, the client over every case; the tests
//! run one at a time (unless `--test-threads` says otherwise), a direction after another. Every direction runs twice: in plaintext, and over TLS
//! (`(TLS)` columns) with certificates generated for the run by the kit's
//! [`TestCerts`](h2grpc_test_support::tls::TestCerts) (none is committed), the clients
//! run as grpc's interop tests run them: `--use_tls=true --use_test_ca=true --ca_file
//! <the test CA> --server_host_override foo.test.google.fr`. Mutual TLS is in `mtls.rs`.
//!
//! Peers: `tests/peers/python` (grpcio, pinned, in the venv `tests/support/src/python.rs`
//! builds) and `tests/peers/node` (@grpc/grpc-js, pinned, installed with `npm ci`).
//! Without python3 or node/npm the tests of those directions fail, unless
//! H2GRPC_SKIP_MISSING_PEERS=1 lets them print NOT RUN (see the kit's `missing`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use h2grpc_interop::{CASES, EXTRA_CASES as OUR_EXTRA_CASES};
use h2grpc_test_support::node::{self, NodePeer};
use h2grpc_test_support::process::{Process, TempDir};
use h2grpc_test_support::python::{self, Venv};
use h2grpc_test_support::tls::TestCerts;
use libtest_mimic::{Arguments, Failed, Trial};

const SERVER_START: Duration = Duration::from_secs(60);
const CLIENT_RUN: Duration = Duration::from_secs(300);

/// The name the kit's `missing` gives these tests.
const TEST: &str = "interop_matrix";

/// Cells a peer cannot take part in, and why. They still run, and the table shows their
/// outcome marked `limit`; they are the only cells allowed not to pass (their tests pass
/// either way). A direction's TLS variant has the same limits.
fn peer_limit(direction: &Direction, case: &str) -> Option<&'static str> {
    match (direction.client, direction.server, case) {
        (Peer::Ours, Peer::Grpcio, "client_compressed_unary" | "client_compressed_streaming") => {
            Some(
                "grpcio's server API cannot see whether a request message was compressed, so it cannot answer the \
             probe (expect_compressed on an uncompressed message) with INVALID_ARGUMENT",
            )
        }
        _ => None,
    }
}

/// An implementation on one end of a direction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Peer {
    Ours,
    Grpcio,
    GrpcJs,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Ours => "ours",
            Peer::Grpcio => "grpcio",
            Peer::GrpcJs => "grpc-js",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Peer::Ours => "ours",
            Peer::Grpcio => "grpcio",
            Peer::GrpcJs => "grpcjs",
        }
    }
}

/// A client against a server, in plaintext or over TLS.
struct Direction {
    client: Peer,
    server: Peer,
    tls: bool,
}

impl Direction {
    /// `grpcio → ours (TLS)`, as the table writes it.
    fn name(&self) -> String {
        let tls = if self.tls { " (TLS)" } else { "" };
        format!("{} → {}{tls}", self.client.name(), self.server.name())
    }

    /// `grpcio_to_ours_tls`, as the tests are named.
    fn slug(&self) -> String {
        let tls = if self.tls { "_tls" } else { "" };
        format!("{}_to_{}{tls}", self.client.slug(), self.server.slug())
    }

    /// The cases this direction runs: our extra cases only when our client runs them.
    fn cases(&self) -> Vec<&'static str> {
        let extra: &[&'static str] = if self.client == Peer::Ours {
            &OUR_EXTRA_CASES
        } else {
            &[]
        };
        CASES.iter().chain(extra).copied().collect()
    }
}

/// Every direction: the five pairs in plaintext, then the same five over TLS.
const DIRECTIONS: [Direction; 10] = {
    const fn d(client: Peer, server: Peer, tls: bool) -> Direction {
        Direction {
            client,
            server,
            tls,
        }
    }
    use Peer::*;
    [
        d(Ours, Ours, false),
        d(Grpcio, Ours, false),
        d(Ours, Grpcio, false),
        d(GrpcJs, Ours, false),
        d(Ours, GrpcJs, false),
        d(Ours, Ours, true),
        d(Grpcio, Ours, true),
        d(Ours, Grpcio, true),
        d(GrpcJs, Ours, true),
        d(Ours, GrpcJs, true),
    ]
};

/// What one direction's run gave.
enum Column {
    /// One outcome per case the client reported (`Err` holds its reason), and the client's
    /// and server's output.
    Ran {
        outcomes: BTreeMap<String, Result<(), String>>,
        log: String,
    },
    /// A peer is missing and H2GRPC_SKIP_MISSING_PEERS=1 allowed that (NOT RUN printed).
    NotRun,
}

/// The column of each direction, run at the first test that needs it.
static COLUMNS: [OnceLock<Column>; 10] = [const { OnceLock::new() }; 10];

/// The python venv and the interop stubs generated into it; `None`: NOT RUN.
fn grpcio() -> Option<(&'static Venv, &'static TempDir)> {
    static STUBS: OnceLock<TempDir> = OnceLock::new();
    let venv = python::venv(TEST)?;
    Some((
        venv,
        STUBS.get_or_init(|| python::generate_interop_stubs(venv)),
    ))
}

/// The grpc-js peer; `None`: NOT RUN.
fn grpc_js() -> Option<NodePeer> {
    node::node_peer(TEST)
}

/// Certificates made for this run (kept for as long as their files are used), and the
/// interop programs' TLS flags.
struct Tls {
    _certs: TestCerts,
    server: Vec<OsString>,
    client: Vec<OsString>,
}

fn tls() -> &'static Tls {
    static TLS: OnceLock<Tls> = OnceLock::new();
    TLS.get_or_init(|| {
        let certs = TestCerts::generate();
        Tls {
            server: certs.interop_server_args(false),
            client: certs.interop_client_args(None),
            _certs: certs,
        }
    })
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

/// The server of `direction`; `None` when its peer is missing (NOT RUN).
fn server(direction: &Direction) -> Option<Command> {
    let mut cmd = match direction.server {
        Peer::Ours => our_server(),
        Peer::Grpcio => {
            let (venv, stubs) = grpcio()?;
            python::python_interop_server(venv, stubs, 0)
        }
        Peer::GrpcJs => grpc_js()?.server_command(0),
    };
    if direction.tls {
        cmd.args(&tls().server);
    }
    Some(cmd)
}

/// The client of `direction` against `port`; `None` when its peer is missing.
fn client(direction: &Direction, port: u16) -> Option<Command> {
    let mut cmd = match direction.client {
        Peer::Ours => our_client(port),
        Peer::Grpcio => {
            let (venv, stubs) = grpcio()?;
            python::python_interop_client(venv, stubs, port, "all")
        }
        Peer::GrpcJs => grpc_js()?.client_command(port, "all"),
    };
    if direction.tls {
        cmd.args(&tls().client);
    }
    Some(cmd)
}

/// Run one direction: start its server, run its client over every case, collect one
/// outcome per case.
fn run(direction: &Direction) -> Column {
    let name = direction.name();
    // Both peers first, so that a missing one starts nothing.
    let (Some(server_cmd), Some(_)) = (server(direction), client(direction, 0)) else {
        return Column::NotRun;
    };
    let mut server = Process::spawn(&format!("{name} server"), server_cmd)
        .unwrap_or_else(|e| panic!("{name}: cannot start the server: {e}"));
    let port = server.wait_for_listening(SERVER_START);
    let client_cmd = client(direction, port).expect("the client's peer was found above");
    let mut client = Process::spawn(&format!("{name} client"), client_cmd)
        .unwrap_or_else(|e| panic!("{name}: cannot start the client: {e}"));
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
        "== {name}: client exit {status:?}\n{}\n{}",
        client.dump(),
        server.dump()
    );
    client.stop();
    server.stop();
    Column::Ran { outcomes, log }
}

/// One cell as a test: the direction runs if it has not yet, then its outcome for `case`.
fn cell(index: usize, case: &str) -> Result<(), Failed> {
    let direction = &DIRECTIONS[index];
    let Column::Ran { outcomes, log } = COLUMNS[index].get_or_init(|| run(direction)) else {
        return Ok(());
    };
    let name = direction.name();
    match (outcomes.get(case), peer_limit(direction, case)) {
        (Some(Ok(())), _) | (Some(Err(_)), Some(_)) => Ok(()),
        (Some(Err(why)), None) => Err(format!("{name} / {case}: {why}\n{log}").into()),
        (None, _) => Err(format!("{name} / {case}: the client printed no result\n{log}").into()),
    }
}

/// The table of case × direction from the directions that ran, with every cell that did
/// not pass listed under it.
fn table() -> String {
    let names: Vec<String> = DIRECTIONS.iter().map(Direction::name).collect();
    // A column is as wide as its name, and at least 15.
    let widths: Vec<usize> = names.iter().map(|n| n.chars().count().max(15)).collect();
    let mut table = format!("{:<30}", "case");
    for (name, width) in names.iter().zip(&widths) {
        let _ = write!(table, " | {name:<width$}");
    }
    table.push('\n');
    let (mut failures, mut limits) = (Vec::new(), Vec::new());
    let (mut cells, mut passed) = (0, 0);
    for case in CASES.iter().chain(&OUR_EXTRA_CASES) {
        let case = *case;
        let _ = write!(table, "{case:<30}");
        for ((direction, name), (column, width)) in DIRECTIONS
            .iter()
            .zip(&names)
            .zip(COLUMNS.iter().zip(&widths))
        {
            if !direction.cases().contains(&case) {
                let _ = write!(table, " | {:<width$}", "—");
                continue;
            }
            let outcomes = match column.get() {
                Some(Column::Ran { outcomes, .. }) => outcomes,
                Some(Column::NotRun) => {
                    let _ = write!(table, " | {:<width$}", "NOT RUN");
                    continue;
                }
                None => {
                    let _ = write!(table, " | {:<width$}", "(filtered)");
                    continue;
                }
            };
            cells += 1;
            if matches!(outcomes.get(case), Some(Ok(()))) {
                passed += 1;
            }
            let limit = peer_limit(direction, case);
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
    table
}

fn main() {
    let mut args = Arguments::from_args();
    // One direction after another, as the peers' processes expect a quiet machine.
    args.test_threads.get_or_insert(1);
    let trials: Vec<Trial> = DIRECTIONS
        .iter()
        .enumerate()
        .flat_map(|(index, direction)| {
            let slug = direction.slug();
            direction
                .cases()
                .into_iter()
                .map(move |case| Trial::test(format!("{slug}::{case}"), move || cell(index, case)))
        })
        .collect();
    let listing = args.list;
    let conclusion = libtest_mimic::run(&args, trials);
    if !listing && COLUMNS.iter().any(|c| c.get().is_some()) {
        let table = table();
        let report = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-matrix.txt");
        let _ = std::fs::write(&report, &table);
        eprintln!("{table}");
    }
    conclusion.exit();
}
