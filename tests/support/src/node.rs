//! The Node peers: npm package directories of the repository whose pinned packages are
//! installed with `npm ci` when needed ([`install`], one per [`NpmDir`]), and the grpc-js
//! interop peer (tests/peers/node) with the commands that start its server and client.
//! The web peer (tests/peers/web, connect-node and playwright) is installed the same way by
//! `tests/web_clients.rs`.

use std::collections::HashMap;
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

/// The grpc-js interop peer's package directory.
pub const GRPC_JS: NpmDir = NpmDir {
    dir: PEER_DIR,
    name: "the Node interop peer",
    files: &["interop_server.js", "interop_client.js"],
    packages: &["@grpc/grpc-js", "@grpc/proto-loader"],
};

/// An npm package directory of the repository that tests run Node scripts from.
#[derive(Debug)]
pub struct NpmDir {
    /// Relative to the repo root; holds package.json and package-lock.json.
    pub dir: &'static str,
    /// What to call it in messages ("the web peer").
    pub name: &'static str,
    /// Files that must be there besides package.json and package-lock.json.
    pub files: &'static [&'static str],
    /// Packages `npm ci` must have put in node_modules.
    pub packages: &'static [&'static str],
}

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

/// An installed package directory (see [`install`]), or the grpc-js peer.
#[derive(Clone, Debug)]
pub struct NodePeer {
    /// The package directory under the repo root.
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

/// The grpc-js interop peer (tests/peers/node) with its packages installed; see [`install`].
pub fn node_peer(test: &str) -> Option<NodePeer> {
    install(test, &GRPC_JS)
}

/// `package` with its packages installed: `npm ci` runs at most once per process and
/// directory, and only when node_modules is missing or was installed from other package
/// files; a lock file under the cargo target dir keeps test processes from installing at
/// the same time. Without `node` or `npm` on PATH `test` cannot run: [`crate::missing`]
/// decides whether that fails it or this returns `None`. A failed install fails the test.
pub fn install(test: &str, package: &NpmDir) -> Option<NodePeer> {
    type Installed = HashMap<&'static str, Result<NodePeer, PeerError>>;
    static PEERS: Mutex<Option<Installed>> = Mutex::new(None);
    // A test that panicked while holding it left nothing half-done behind the map.
    let mut slot = PEERS.lock().unwrap_or_else(|e| e.into_inner());
    let result = slot
        .get_or_insert_with(HashMap::new)
        .entry(package.dir)
        .or_insert_with(|| prepare(package))
        .clone();
    drop(slot);
    match result {
        Ok(peer) => Some(peer),
        Err(PeerError::Missing(what)) => {
            crate::missing(test, &what, NODE_HOW);
            None
        }
        Err(PeerError::Failed(e)) => panic!("cannot prepare {}: {e}", package.name),
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

    /// `node SCRIPT` in the package directory, with the environment that would change how
    /// node behaves (proxies, NODE_OPTIONS, NODE_PATH) removed.
    pub fn node_command(&self, script: &str) -> Command {
        let mut cmd = Command::new("node");
        cmd.arg(self.dir.join(script)).current_dir(&self.dir);
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        cmd
    }
}

fn prepare(package: &NpmDir) -> Result<NodePeer, PeerError> {
    let dir = crate::repo_root().join(package.dir);
    let node_version = tool_version("node")?;
    tool_version("npm")?;
    let required = ["package.json", "package-lock.json"];
    for file in required.iter().chain(package.files) {
        if !dir.join(file).is_file() {
            return Err(format!("{} is missing", dir.join(file).display()).into());
        }
    }
    let tmp = crate::target_tmp();
    fs::create_dir_all(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    let lock_name = format!("{}.lock", package.dir.replace('/', "-"));
    let _lock = lock_file(&tmp.join(lock_name), INSTALL_LOCK_TIMEOUT)?;

    let wanted = stamp_text(&dir)?;
    let stamp = dir.join("node_modules").join(STAMP_FILE);
    let installed = fs::read_to_string(&stamp).is_ok_and(|s| s == wanted)
        && package.packages.iter().all(|p| {
            dir.join("node_modules")
                .join(p)
                .join("package.json")
                .is_file()
        });
    if !installed {
        eprintln!(
            "installing the packages of {}: npm ci in {}",
            package.name,
            dir.display()
        );
        let mut npm = Command::new("npm");
        npm.args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir);
        for var in ["NODE_OPTIONS", "NODE_PATH"] {
            npm.env_remove(var);
        }
        let out = run_named("npm ci", npm, NPM_CI_TIMEOUT).map_err(|e| format!("npm ci: {e}"))?;
        out.success_or(&format!("npm ci in {}", dir.display()))?;
        fs::write(&stamp, &wanted).map_err(|e| format!("write {}: {e}", stamp.display()))?;
    }
    Ok(NodePeer { dir, node_version })
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
