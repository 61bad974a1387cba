//! The Node interop peer (tests/peers/node: @grpc/grpc-js): installs its pinned packages
//! with `npm ci` when needed and builds the commands that start its server and client.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crate::lock::lock_file;
use crate::process::run_named;

/// The peer's directory, relative to the repo root.
pub const PEER_DIR: &str = "tests/peers/node";

/// Written into node_modules after a successful `npm ci`: the package files it installed
/// from, so that a changed pin or lock makes the install stale.
const STAMP_FILE: &str = ".h2grpc-peer-stamp";
const STAMP_HEADER: &str = "h2grpc node peer v1\n";

const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(600);
const INSTALL_LOCK_TIMEOUT: Duration = Duration::from_secs(900);

/// How to get what the peer runs on.
const NODE_HOW: &str =
    "install Node.js (18 or newer) and npm (Debian: `apt-get install -y nodejs npm`)";

/// Environment that would change how node or grpc-js behave: grpc-js honours proxy
/// variables, and NODE_OPTIONS could preload anything.
const SCRUBBED_ENV: &[&str] = &[
    "grpc_proxy",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "no_grpc_proxy",
    "no_proxy",
    "NO_PROXY",
    "NODE_OPTIONS",
    "NODE_PATH",
];

/// The installed peer.
#[derive(Clone, Debug)]
pub struct NodePeer {
    /// `tests/peers/node` under the repo root.
    pub dir: PathBuf,
    /// `node --version`, e.g. `v20.20.2`.
    pub node_version: String,
}

/// Why there is no peer.
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

/// The peer (tests/peers/node under the repo root), with its packages installed: `npm ci`
/// runs at most once per process, and only when node_modules is missing or was installed
/// from other package files; a lock file under the cargo target dir keeps test processes
/// from installing at the same time. Without `node` or `npm` on PATH `test` cannot run:
/// [`crate::missing`] decides whether that fails it or this returns `None`. A failed
/// install fails the test.
pub fn node_peer(test: &str) -> Option<NodePeer> {
    static PEER: Mutex<Option<Result<NodePeer, PeerError>>> = Mutex::new(None);
    // A test that panicked while holding it left nothing half-done behind the Option.
    let mut slot = PEER.lock().unwrap_or_else(|e| e.into_inner());
    let result = slot
        .get_or_insert_with(|| prepare(&crate::repo_root().join(PEER_DIR)))
        .clone();
    drop(slot);
    match result {
        Ok(peer) => Some(peer),
        Err(PeerError::Missing(what)) => {
            crate::missing(test, &what, NODE_HOW);
            None
        }
        Err(PeerError::Failed(e)) => panic!("cannot prepare the Node interop peer: {e}"),
    }
}

impl NodePeer {
    /// `node interop_server.js --port N --host 127.0.0.1`; it prints `listening on port N`
    /// once it listens and exits 0 on SIGTERM/SIGINT.
    pub fn server_command(&self, port: u16) -> Command {
        let mut cmd = self.node_command("interop_server.js");
        cmd.arg("--port")
            .arg(port.to_string())
            .args(["--host", "127.0.0.1"]);
        cmd
    }

    /// `node interop_client.js --server_host 127.0.0.1 --server_port N --test_case CASES`;
    /// it prints one `PASS <case>` / `FAIL <case>: <reason>` line per case and exits 0
    /// only if all passed.
    pub fn client_command(&self, port: u16, test_cases: &str) -> Command {
        let mut cmd = self.client_base_command();
        cmd.args(["--server_host", "127.0.0.1"])
            .arg("--server_port")
            .arg(port.to_string())
            .arg("--test_case")
            .arg(test_cases);
        cmd
    }

    /// `node interop_client.js` with no flags, for callers that want others.
    pub fn client_base_command(&self) -> Command {
        self.node_command("interop_client.js")
    }

    fn node_command(&self, script: &str) -> Command {
        let mut cmd = Command::new("node");
        cmd.arg(self.dir.join(script)).current_dir(&self.dir);
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        cmd
    }
}

fn prepare(dir: &Path) -> Result<NodePeer, PeerError> {
    let node_version = tool_version("node")?;
    tool_version("npm")?;
    for file in [
        "package.json",
        "package-lock.json",
        "interop_server.js",
        "interop_client.js",
    ] {
        if !dir.join(file).is_file() {
            return Err(format!("{} is missing", dir.join(file).display()).into());
        }
    }
    let tmp = crate::target_tmp();
    fs::create_dir_all(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    let _lock = lock_file(&tmp.join("node-peer.lock"), INSTALL_LOCK_TIMEOUT)?;

    let wanted = stamp_text(dir)?;
    let stamp = dir.join("node_modules").join(STAMP_FILE);
    let installed = fs::read_to_string(&stamp).is_ok_and(|s| s == wanted)
        && dir
            .join("node_modules/@grpc/grpc-js/package.json")
            .is_file()
        && dir
            .join("node_modules/@grpc/proto-loader/package.json")
            .is_file();
    if !installed {
        eprintln!(
            "installing the Node interop peer's packages: npm ci in {}",
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
    Ok(NodePeer {
        dir: dir.to_path_buf(),
        node_version,
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
