//! The Node interop peer (tests/peers/node: @grpc/grpc-js): installs its pinned packages
//! with `npm ci` when needed and builds the commands that start its server and client.
//!
//! Include it with `#[path = "support/node.rs"] mod node;`. Std only. Each test crate uses a
//! subset of it, hence the `dead_code` allowance.



use crate::lock::lock_file;

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// The peer's directory, relative to the repo root.
pub const PEER_DIR: &str = "tests/peers/node";

/// Written into node_modules after a successful `npm ci`: the package files it installed
/// from, so that a changed pin or lock makes the install stale.
const STAMP_FILE: &str = ".h2grpc-peer-stamp";
const STAMP_HEADER: &str = "h2grpc node peer v1\n";

const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(600);
const INSTALL_LOCK_TIMEOUT: Duration = Duration::from_secs(900);

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

/// The peer under `repo_root`, with its packages installed: `npm ci` runs at most once per
/// process, and only when node_modules is missing or was installed from other package
/// files; a lock file under the cargo target dir keeps test processes from installing at
/// the same time. Panics with the reason when `node` or `npm` is missing or the install
/// fails.
pub fn node_peer(repo_root: &Path) -> NodePeer {
    static PEER: Mutex<Option<Result<NodePeer, String>>> = Mutex::new(None);
    // A test that panicked while holding it left nothing half-done behind the Option.
    let mut slot = PEER.lock().unwrap_or_else(|e| e.into_inner());
    let result = slot.get_or_insert_with(|| prepare(&repo_root.join(PEER_DIR)));
    match result {
        Ok(peer) => peer.clone(),
        Err(e) => panic!("cannot prepare the Node interop peer: {e}"),
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

fn prepare(dir: &Path) -> Result<NodePeer, String> {
    let node_version = tool_version("node")?;
    tool_version("npm")?;
    for file in [
        "package.json",
        "package-lock.json",
        "interop_server.js",
        "interop_client.js",
    ] {
        if !dir.join(file).is_file() {
            return Err(format!("{} is missing", dir.join(file).display()));
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
        let out = run_with_timeout(npm, NPM_CI_TIMEOUT).map_err(|e| format!("npm ci: {e}"))?;
        if !out.status.is_some_and(|s| s.success()) {
            return Err(format!(
                "npm ci in {} failed\n{}",
                dir.display(),
                out.dump("npm ci")
            ));
        }
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
fn tool_version(tool: &str) -> Result<String, String> {
    let mut cmd = Command::new(tool);
    cmd.arg("--version");
    let out = match run_with_timeout(cmd, PROBE_TIMEOUT) {
        Ok(out) => out,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(format!(
                "`{tool}` is not on PATH; the Node interop peer needs Node.js (18 or newer) \
                 and npm (e.g. `apt-get install nodejs npm`)"
            ));
        }
        Err(e) => return Err(format!("cannot run `{tool} --version`: {e}")),
    };
    if !out.status.is_some_and(|s| s.success()) {
        return Err(format!(
            "`{tool} --version` failed\n{}",
            out.dump(&format!("{tool} --version"))
        ));
    }
    Ok(out.stdout.trim().to_string())
}

struct Output {
    /// `None` if it was killed for overrunning its timeout.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    timeout: Duration,
}

impl Output {
    fn dump(&self, name: &str) -> String {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => format!("killed: still running after {:?}", self.timeout),
        };
        format!(
            "==== {name} ({status}) stdout ====\n{}==== {name} stderr ====\n{}==== end of {name} ====\n",
            self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` with stdin closed and its output collected, killing it after `timeout`.
fn run_with_timeout(mut cmd: Command, timeout: Duration) -> io::Result<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let pump = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = pump(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = pump(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    // A grandchild still holding the pipes would keep these open: wait boundedly.
    let collect = |h: thread::JoinHandle<String>| {
        let until = Instant::now() + Duration::from_secs(5);
        while !h.is_finished() && Instant::now() < until {
            thread::sleep(Duration::from_millis(10));
        }
        if h.is_finished() {
            h.join().unwrap_or_default()
        } else {
            String::from("(output not collected: the pipe is still open)\n")
        }
    };
    Ok(Output {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
        timeout,
    })
}
