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

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use h2grpc_test_support::demo_process::demo_server_binary;
use h2grpc_test_support::lock::lock_file;
use h2grpc_test_support::process::{Process, run_named};
use h2grpc_test_support::{missing, repo_root, target_tmp};

/// The peer's directory, relative to the repo root.
const PEER_DIR: &str = "tests/peers/web";
/// Written into node_modules after a successful `npm ci`: the package files it installed
/// from, so that a changed pin or lock makes the install stale.
const STAMP_FILE: &str = ".h2grpc-web-peer-stamp";
const STAMP_HEADER: &str = "h2grpc web peer v1\n";

const SERVER_START: Duration = Duration::from_secs(30);
const CLIENT_RUN: Duration = Duration::from_secs(120);
const BROWSER_RUN: Duration = Duration::from_secs(180);
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(600);
const INSTALL_LOCK_TIMEOUT: Duration = Duration::from_secs(900);

const NODE_HOW: &str =
    "install Node.js (20 or newer) and npm (Debian: `apt-get install -y nodejs npm`)";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMIUM_HOW: &str = "install Chromium (Debian: `apt-get install -y chromium`)";
/// browser.mjs's exit status when it finds no Chromium.
const BROWSER_MISSING_EXIT: i32 = 3;

/// Environment that would change how node behaves: proxies, preloads.
const SCRUBBED_ENV: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
    "NODE_OPTIONS",
    "NODE_PATH",
];

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
    fn start(peer: &WebPeer) -> WebDemoServer {
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

#[derive(Clone)]
struct WebPeer {
    dir: PathBuf,
}

#[derive(Clone)]
enum PeerError {
    /// `node` or `npm` is not on this machine.
    Missing(String),
    /// Installing or checking the peer failed.
    Failed(String),
}

impl From<String> for PeerError {
    fn from(e: String) -> PeerError {
        PeerError::Failed(e)
    }
}

/// The peer with its packages installed (`npm ci` at most once per process, and only when
/// needed; a lock file keeps test processes from installing at the same time), or `None`
/// after [`missing`] allowed the test to be skipped.
fn web_peer(test: &str) -> Option<WebPeer> {
    static PEER: Mutex<Option<Result<WebPeer, PeerError>>> = Mutex::new(None);
    let mut slot = PEER.lock().unwrap_or_else(|e| e.into_inner());
    let result = slot
        .get_or_insert_with(|| prepare(&repo_root().join(PEER_DIR)))
        .clone();
    drop(slot);
    match result {
        Ok(peer) => Some(peer),
        Err(PeerError::Missing(what)) => {
            missing(test, &what, NODE_HOW);
            None
        }
        Err(PeerError::Failed(e)) => panic!("{test}: cannot prepare the web peer: {e}"),
    }
}

impl WebPeer {
    fn node_command(&self, script: &str) -> Command {
        let mut cmd = Command::new("node");
        cmd.arg(self.dir.join(script)).current_dir(&self.dir);
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        cmd
    }
}

fn prepare(dir: &Path) -> Result<WebPeer, PeerError> {
    tool_version("node")?;
    tool_version("npm")?;
    for file in [
        "package.json",
        "package-lock.json",
        "client.mjs",
        "browser.mjs",
        "gen/demo_pb.js",
    ] {
        if !dir.join(file).is_file() {
            return Err(format!("{} is missing", dir.join(file).display()).into());
        }
    }
    let tmp = target_tmp();
    fs::create_dir_all(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    let _lock = lock_file(&tmp.join("web-peer.lock"), INSTALL_LOCK_TIMEOUT)?;

    let wanted = stamp_text(dir)?;
    let stamp = dir.join("node_modules").join(STAMP_FILE);
    let installed = fs::read_to_string(&stamp).is_ok_and(|s| s == wanted)
        && [
            "@connectrpc/connect-node",
            "@connectrpc/connect",
            "@bufbuild/protobuf",
            "playwright-core",
        ]
        .iter()
        .all(|p| {
            dir.join("node_modules")
                .join(p)
                .join("package.json")
                .is_file()
        });
    if !installed {
        eprintln!(
            "installing the web peer's packages: npm ci in {}",
            dir.display()
        );
        let mut npm = Command::new("npm");
        npm.args(["ci", "--no-audit", "--no-fund"]).current_dir(dir);
        for var in ["NODE_OPTIONS", "NODE_PATH"] {
            npm.env_remove(var);
        }
        let out = run_named("npm ci", npm, NPM_CI_TIMEOUT).map_err(|e| format!("npm ci: {e}"))?;
        out.success_or(&format!("npm ci in {}", dir.display()))?;
        fs::write(&stamp, &wanted).map_err(|e| format!("write {}: {e}", stamp.display()))?;
    }
    Ok(WebPeer {
        dir: dir.to_path_buf(),
    })
}

fn stamp_text(dir: &Path) -> Result<String, String> {
    let mut text = String::from(STAMP_HEADER);
    for file in ["package.json", "package-lock.json"] {
        let path = dir.join(file);
        let content =
            fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
        text.push_str(&format!("==== {file}\n{content}\n"));
    }
    Ok(text)
}

/// `tool --version`, or why it cannot be run.
fn tool_version(tool: &str) -> Result<String, PeerError> {
    let mut cmd = Command::new(tool);
    cmd.arg("--version");
    let name = format!("{tool} --version");
    let out = match run_named(&name, cmd, PROBE_TIMEOUT) {
        Ok(out) => out,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(PeerError::Missing(format!("`{tool}` is not on PATH")));
        }
        Err(e) => return Err(format!("cannot run `{name}`: {e}").into()),
    };
    out.success_or(&format!("`{name}`"))?;
    Ok(out.stdout.trim().to_string())
}
