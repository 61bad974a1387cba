//! Real third-party web clients against `demo-server --web`: connect-es on Node
//! (`tests/peers/web/client.mjs`, @connectrpc/connect-node) over every protocol our server
//! speaks on one port — Connect with protobuf and with JSON, gRPC-Web (binary), gRPC — over
//! HTTP/1.1 and h2c, one test per protocol × HTTP version × case, named so that a failure
//! names all three (`connect_json_http1::error_details`); and the demo page in headless
//! Chromium (`tests/peers/web/browser.mjs`, playwright-core driving Debian's
//! `/usr/bin/chromium`), from its own origin and from another one (`?server=`, CORS), its
//! screenshot saved to `target/web/demo-page.png`; inside that page the official grpc-web
//! runtime also calls the server over gRPC-Web text and binary (what connect-es lacks).
//!
//! Each test starts its own `demo-server --web` on a port the OS chooses (`--addr
//! 127.0.0.1:0`; the port is read from the line it prints). The peer's pinned packages are
//! installed with `npm ci` in `tests/peers/web` when `node_modules` is missing or was
//! installed from other package files (a stamp file, as the kit's `node.rs` does for the
//! grpc-js peer). Without node/npm or Chromium the tests fail saying what to install,
//! unless H2GRPC_SKIP_MISSING_PEERS=1 lets them print NOT RUN (never under CI).
//! `H2GRPC_WEB_PEER_SERVER=1` runs them all against the peer's own connect-node server
//! (`server.mjs`) instead: a check of the clients, the page and this file without ours.
//!
//! What the cases expect of the server (tests/peers/web/demo_service.mjs): demo-server's
//! replies (server id 1, "Rust server ..." texts, 5 streamed replies); SimpleMethod with
//! request_data `error` fails with INVALID_ARGUMENT, the message `request_data "error" makes
//! SimpleMethod fail` and one google.rpc.BadRequest detail (field `request_data`,
//! description `the value "error" asks for an error`); request_data `sleep:N` makes
//! SimpleMethod wait N ms (at most 10 s, or until the deadline) before answering.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use h2grpc_test_support::demo_process::demo_server_binary;
use h2grpc_test_support::node::{self, NodePeer, NpmDir};
use h2grpc_test_support::process::{Process, run_named};
use h2grpc_test_support::{missing, repo_root, target_tmp};

/// The peer's directory, relative to the repo root.
const PEER_DIR: &str = "tests/peers/web";

const SERVER_START: Duration = Duration::from_secs(30);
const CLIENT_RUN: Duration = Duration::from_secs(120);
const BROWSER_RUN: Duration = Duration::from_secs(180);

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMIUM_HOW: &str = "install Chromium (Debian: `apt-get install -y chromium`)";
/// browser.mjs's exit status when it finds no Chromium.
const BROWSER_MISSING_EXIT: i32 = 3;

// ---- the matrix: protocol × HTTP version × case

/// One `#[test]` per case, in a module per protocol and HTTP version. Each list must be
/// what `client.mjs --protocol P --http V --list` prints (checked by
/// `matrix_matches_client_mjs`): a case added to client.mjs needs adding here.
macro_rules! matrix {
    ($($module:ident: $protocol:literal, $http:literal => [$($case:ident),* $(,)?];)*) => {
        $(
            mod $module {
                $(
                    #[test]
                    fn $case() {
                        super::client_case($protocol, $http, stringify!($case));
                    }
                )*
            }
        )*

        /// Every (protocol, HTTP version, cases) of the matrix.
        const MATRIX: &[(&str, &str, &[&str])] = &[
            $(($protocol, $http, &[$(stringify!($case)),*]),)*
        ];
    };
}

matrix! {
    connect_http1: "connect", "1.1" => [
        unary, server_streaming, client_streaming, bidi_http1, error_details, unimplemented,
        deadline_ok, deadline_exceeded, compression_unary, compression_server_streaming,
        compression_client_streaming,
    ];
    connect_http2: "connect", "2" => [
        unary, server_streaming, client_streaming, bidi, error_details, unimplemented,
        deadline_ok, deadline_exceeded, deadline_bidi, compression_unary,
        compression_server_streaming, compression_client_streaming,
    ];
    connect_json_http1: "connect-json", "1.1" => [
        unary, server_streaming, client_streaming, bidi_http1, error_details, unimplemented,
        deadline_ok, deadline_exceeded, compression_unary, compression_server_streaming,
        compression_client_streaming,
    ];
    connect_json_http2: "connect-json", "2" => [
        unary, server_streaming, client_streaming, bidi, error_details, unimplemented,
        deadline_ok, deadline_exceeded, deadline_bidi, compression_unary,
        compression_server_streaming, compression_client_streaming,
    ];
    grpc_web_http1: "grpc-web", "1.1" => [
        unary, server_streaming, client_streaming, bidi_http1, error_details, unimplemented,
        deadline_ok, deadline_exceeded, compression_unary, compression_server_streaming,
        compression_client_streaming,
    ];
    grpc_web_http2: "grpc-web", "2" => [
        unary, server_streaming, client_streaming, bidi, error_details, unimplemented,
        deadline_ok, deadline_exceeded, deadline_bidi, compression_unary,
        compression_server_streaming, compression_client_streaming,
    ];
    grpc_http2: "grpc", "2" => [
        unary, server_streaming, client_streaming, bidi, error_details, unimplemented,
        deadline_ok, deadline_exceeded, deadline_bidi, compression_unary,
        compression_server_streaming, compression_client_streaming,
    ];
}

fn http_slug(http: &str) -> &'static str {
    if http == "2" { "http2" } else { "http1" }
}

/// `client.mjs --case CASE` with `protocol` over HTTP/`http` against a fresh
/// `demo-server --web`; it prints one JSON line and exits 0 only if the case passed.
fn client_case(protocol: &str, http: &str, case: &str) {
    let test = format!(
        "web_clients::{}_{}::{case}",
        protocol.replace('-', "_"),
        http_slug(http)
    );
    let Some(peer) = web_peer(&test) else { return };
    let server = WebDemoServer::start(&peer);
    let mut cmd = peer.node_command("client.mjs");
    cmd.args(["--url", &server.url(), "--server-name", server.name])
        .args(["--protocol", protocol, "--http", http, "--case", case]);
    let name = format!("client.mjs {protocol} HTTP/{http} {case}");
    let out = run_named(&name, cmd, CLIENT_RUN).unwrap_or_else(|e| panic!("{test}: {e}"));
    assert!(
        out.success(),
        "{test}: connect-node's {protocol} client over HTTP/{http}, case {case}, against demo-server --web\n{}{}",
        out.dump(),
        server.dump()
    );
}

/// The matrix above is what client.mjs can run: `--list` for each protocol and version.
#[test]
fn matrix_matches_client_mjs() {
    let test = "web_clients::matrix_matches_client_mjs";
    let Some(peer) = web_peer(test) else { return };
    for (protocol, http, cases) in MATRIX {
        let mut cmd = peer.node_command("client.mjs");
        cmd.args(["--protocol", protocol, "--http", http, "--list"]);
        let out = run_named("client.mjs --list", cmd, CLIENT_RUN).unwrap();
        out.success_or("client.mjs --list").unwrap();
        let listed: Vec<&str> = out.stdout.lines().map(str::trim).collect();
        assert_eq!(
            listed, *cases,
            "{test}: the cases of {protocol} over HTTP/{http} in tests/web_clients.rs differ from client.mjs --list"
        );
    }
}

// ---- the demo page in Chromium

mod browser {
    /// The page from demo-server's own origin.
    #[test]
    fn same_origin() {
        super::browser_case(
            "same_origin",
            |port| format!("http://127.0.0.1:{port}/"),
            "demo-page.png",
        );
    }

    /// The page from http://127.0.0.1:PORT calling http://localhost:PORT (another origin
    /// for the browser, the same server): needs demo-server's CORS answers.
    #[test]
    fn cross_origin() {
        super::browser_case(
            "cross_origin",
            |port| format!("http://127.0.0.1:{port}/?server=http://localhost:{port}"),
            "demo-page-cross-origin.png",
        );
    }
}

fn browser_case(name: &str, url: impl Fn(u16) -> String, screenshot: &str) {
    let test = format!("web_clients::browser::{name}");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.to_string());
    if !Path::new(&chromium).is_file() {
        missing(
            &test,
            &format!("Chromium is not installed (no {chromium})"),
            CHROMIUM_HOW,
        );
        return;
    }
    let Some(peer) = web_peer(&test) else { return };
    let server = WebDemoServer::start(&peer);
    let shot = target_dir().join("web").join(screenshot);
    let mut cmd = peer.node_command("browser.mjs");
    cmd.args(["--url", &url(server.port), "--chromium", &chromium])
        .args(["--server-name", server.name])
        .args(server.without_grpc_web_text.then_some("--no-grpc-web-text"))
        .arg("--screenshot")
        .arg(&shot);
    let out = run_named("browser.mjs", cmd, BROWSER_RUN).unwrap_or_else(|e| panic!("{test}: {e}"));
    if out.status.and_then(|s| s.code()) == Some(BROWSER_MISSING_EXIT) {
        missing(
            &test,
            &format!("browser.mjs found no Chromium:\n{}", out.stderr),
            CHROMIUM_HOW,
        );
        return;
    }
    assert!(
        out.success(),
        "{test}: the demo page in headless Chromium (screenshot: {})\n{}{}",
        shot.display(),
        out.dump(),
        server.dump()
    );
    eprintln!("{test}: screenshot saved to {}", shot.display());
}

/// The Cargo target directory (`target/` unless CARGO_TARGET_DIR says otherwise).
fn target_dir() -> PathBuf {
    let tmp = target_tmp();
    tmp.parent().map(Path::to_path_buf).unwrap_or(tmp)
}

// ---- demo-server --web

/// Set to `1` to run every test against `tests/peers/web/server.mjs` (connect-node,
/// serving demo/web/dist) instead of demo-server: a check of the clients, the page and this
/// harness on their own.
const PEER_SERVER_VAR: &str = "H2GRPC_WEB_PEER_SERVER";

/// `demo-server --grace-secs 1 --addr 127.0.0.1:0 --web` (not --quiet: its log of the
/// calls is in a failure's dump), or server.mjs with [`PEER_SERVER_VAR`]; killed on drop.
struct WebDemoServer {
    process: Process,
    port: u16,
    /// `Rust`, or `Node` for server.mjs: the name in the replies' texts.
    name: &'static str,
    /// server.mjs (connect-node) has no gRPC-Web text: browser.mjs leaves it out.
    without_grpc_web_text: bool,
}

impl WebDemoServer {
    fn start(peer: &NodePeer) -> WebDemoServer {
        if std::env::var(PEER_SERVER_VAR).is_ok_and(|v| v == "1") {
            let mut cmd = peer.node_command("server.mjs");
            cmd.args(["--port", "0", "--static"])
                .arg(repo_root().join("demo/web/dist"));
            let mut process = Process::spawn("server.mjs", cmd)
                .unwrap_or_else(|e| panic!("cannot start server.mjs: {e}"));
            let port = process.wait_for_listening(SERVER_START);
            return WebDemoServer {
                process,
                port,
                name: "Node",
                without_grpc_web_text: true,
            };
        }
        let mut cmd = Command::new(demo_server_binary());
        cmd.args(["--grace-secs", "1", "--addr", "127.0.0.1:0", "--web"]);
        let mut process = Process::spawn("demo-server --web", cmd)
            .unwrap_or_else(|e| panic!("cannot start demo-server: {e}"));
        let port = wait_for_address(&mut process);
        WebDemoServer {
            process,
            port,
            name: "Rust",
            without_grpc_web_text: false,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn dump(&self) -> String {
        self.process.dump()
    }
}

/// The port of the `... start Rust GRPC server on 127.0.0.1:PORT` line demo-server prints
/// once it listens.
fn wait_for_address(process: &mut Process) -> u16 {
    let deadline = Instant::now() + SERVER_START;
    loop {
        let port = process.stdout().lines().find_map(|line| {
            let (_, addrs) = line.split_once("start Rust GRPC server on ")?;
            addrs
                .split(", ")
                .find_map(|a| a.trim().rsplit_once(':')?.1.parse::<u16>().ok())
        });
        if let Some(port) = port {
            return port;
        }
        if let Some(status) = process.try_status() {
            panic!(
                "demo-server --web exited ({status}) before listening\n{}",
                process.dump()
            );
        }
        if Instant::now() >= deadline {
            panic!(
                "demo-server --web printed no address within {SERVER_START:?}\n{}",
                process.dump()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---- the peer: tests/peers/web with its packages installed

/// The web peer's package directory (tests/peers/web), installed by the test kit's npm
/// installer (`npm ci` when needed, once per process).
const WEB_PEER: NpmDir = NpmDir {
    dir: PEER_DIR,
    name: "the web peer",
    files: &["client.mjs", "browser.mjs", "server.mjs", "gen/demo_pb.js"],
    packages: &[
        "@connectrpc/connect-node",
        "@connectrpc/connect",
        "@bufbuild/protobuf",
        "playwright-core",
    ],
};

/// The web peer with its packages installed, or `None` after `missing` let the test skip.
fn web_peer(test: &str) -> Option<NodePeer> {
    node::install(test, &WEB_PEER)
}
