//! Python peers for interop tests: finds the official example, keeps a pinned venv, generates stubs (also for the grpc.testing interop protos), starts the grpcio interop peers of tests/peers/python, runs processes with timeouts, serialises use of fixed ports.
//!
//! Include it with `#[path = "support/python.rs"] mod python;`. Each test crate uses a
//! subset of it, hence the `dead_code` allowance.



use crate::lock::lock_file;

use std::fs::{self, File};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Names the directory holding gRPC's examples/python/data_transmission.
pub const EXAMPLE_DIR_VAR: &str = "GRPC_PYTHON_EXAMPLE_DIR";

/// What the venv gets installed; nothing else is assumed on the machine but `python3`.
pub const PINS: &[&str] = &["grpcio==1.76.0", "grpcio-tools==1.76.0", "protobuf==6.33.6"];

/// The files of the official example that the tests need.
const EXAMPLE_FILES: &[&str] = &["client.py", "server.py", "demo.proto"];

const VENV_CREATE_TIMEOUT: Duration = Duration::from_secs(120);
const PIP_TIMEOUT: Duration = Duration::from_secs(600);
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
const PROTOC_TIMEOUT: Duration = Duration::from_secs(60);
const VENV_LOCK_TIMEOUT: Duration = Duration::from_secs(900);
const PORT_LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// Where the tests keep state between runs (venv, lock files).
fn target_tmpdir() -> PathBuf {
    crate::target_tmp()
}

fn under_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        .unwrap_or(false)
}

/// The official example's directory from `GRPC_PYTHON_EXAMPLE_DIR` (relative paths are
/// taken from the repo root). `None` when the variable is unset, after printing that the
/// calling test did not run; under CI (`CI=true`) an unset variable panics instead.
pub fn example_dir(test: &str) -> Option<PathBuf> {
    let value = std::env::var_os(EXAMPLE_DIR_VAR).filter(|v| !v.is_empty());
    let Some(value) = value else {
        let how = format!(
            "set {EXAMPLE_DIR_VAR} to a checkout of grpc/grpc's examples/python/data_transmission \
             (absolute, or relative to the repo root), e.g. \
             `{EXAMPLE_DIR_VAR}=../shared/grpc-python-example cargo test --test python_example`"
        );
        if under_ci() {
            panic!("{test}: {EXAMPLE_DIR_VAR} is unset under CI (CI=true); {how}");
        }
        eprintln!("{test}: NOT RUN: {EXAMPLE_DIR_VAR} is unset; to run it, {how}");
        return None;
    };
    let dir = crate::repo_root().join(value);
    let missing: Vec<&str> = EXAMPLE_FILES
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "{EXAMPLE_DIR_VAR}={} does not look like grpc's examples/python/data_transmission: missing {missing:?}",
        dir.display()
    );
    Some(dir)
}

/// A virtual environment with [`PINS`] installed.
pub struct Venv {
    pub dir: PathBuf,
    pub python: PathBuf,
    /// The interpreter's (major, minor).
    pub version: (u32, u32),
}

/// The shared venv under the cargo target dir, created on first use and reused while its
/// marker file records the same pins. Guarded against other threads and other processes.
pub fn venv() -> &'static Venv {
    static VENV: OnceLock<Result<Venv, String>> = OnceLock::new();
    match VENV.get_or_init(prepare_venv) {
        Ok(v) => v,
        Err(e) => panic!("cannot prepare the Python venv: {e}"),
    }
}

fn venv_python(dir: &Path) -> PathBuf {
    if cfg!(windows) {
        dir.join("Scripts").join("python.exe")
    } else {
        dir.join("bin").join("python")
    }
}

fn marker_text() -> String {
    format!("h2grpc test venv v1\n{}\n", PINS.join("\n"))
}

fn prepare_venv() -> Result<Venv, String> {
    let tmp = target_tmpdir();
    fs::create_dir_all(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    let _lock = lock_file(&tmp.join("py-venv.lock"), VENV_LOCK_TIMEOUT)?;
    let dir = tmp.join("py-venv");
    let python = venv_python(&dir);
    let marker = dir.join("h2grpc-pins.txt");
    let reusable = fs::read_to_string(&marker).is_ok_and(|m| m == marker_text());
    if reusable {
        if let Ok(version) = python_version(&python) {
            return Ok(Venv {
                dir,
                python,
                version,
            });
        }
        eprintln!("Python venv at {} is broken; recreating it", dir.display());
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| format!("remove {}: {e}", dir.display()))?;
    }
    eprintln!(
        "creating Python venv at {} with {}",
        dir.display(),
        PINS.join(" ")
    );
    let mut create = Command::new("python3");
    create.arg("-m").arg("venv").arg(&dir);
    run(create, VENV_CREATE_TIMEOUT)
        .map_err(|e| format!("python3 -m venv: {e}"))?
        .success_or("python3 -m venv")?;
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
        .args(PINS);
    run(pip, PIP_TIMEOUT)
        .map_err(|e| format!("pip install: {e}"))?
        .success_or("pip install")?;
    let version = python_version(&python)?;
    fs::write(&marker, marker_text()).map_err(|e| format!("write {}: {e}", marker.display()))?;
    Ok(Venv {
        dir,
        python,
        version,
    })
}

/// Runs the interpreter and checks the pinned packages import.
fn python_version(python: &Path) -> Result<(u32, u32), String> {
    let mut cmd = Command::new(python);
    cmd.args([
        "-c",
        "import sys, grpc, grpc_tools; print('%d %d' % sys.version_info[:2])",
    ]);
    let out = run(cmd, PROBE_TIMEOUT).map_err(|e| format!("{}: {e}", python.display()))?;
    out.success_or("python version probe")?;
    let mut parts = out.stdout.split_whitespace().map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Ok((major, minor)),
        _ => Err(format!("unexpected version probe output: {:?}", out.stdout)),
    }
}

/// A fresh directory, removed with everything in it on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "h2grpc-{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create temp dir {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Generates `<name>_pb2.py` and `<name>_pb2_grpc.py` from `example_dir/proto` into a fresh
/// temp directory, with the venv's grpc_tools.protoc.
pub fn generate_stubs(venv: &Venv, example_dir: &Path, proto: &str) -> TempDir {
    let out = TempDir::new("pystubs");
    let mut protoc = Command::new(&venv.python);
    protoc
        .args(["-m", "grpc_tools.protoc"])
        .arg(format!("-I{}", example_dir.display()))
        .arg(format!("--python_out={}", out.path().display()))
        .arg(format!("--grpc_python_out={}", out.path().display()))
        .arg(proto)
        .current_dir(out.path())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let result =
        run(protoc, PROTOC_TIMEOUT).unwrap_or_else(|e| panic!("cannot run grpc_tools.protoc: {e}"));
    if let Err(e) = result.success_or("grpc_tools.protoc") {
        panic!("{e}");
    }
    out
}

/// A command running `script` with the venv's interpreter, the stubs in `stubs` on the
/// path ahead of anything beside the script (a grpc checkout ships stale generated
/// modules there), no bytecode written, unbuffered output, and `stubs` as cwd.
pub fn python_script(venv: &Venv, stubs: &TempDir, script: &Path) -> Command {
    python_script_in(venv, stubs.path(), script)
}

/// [`python_script`] with the stubs directory given as a path.
pub fn python_script_in(venv: &Venv, stubs: &Path, script: &Path) -> Command {
    let beside = script.parent().unwrap_or(Path::new("."));
    let shadowed = ["_pb2.py", "_pb2_grpc.py"].iter().any(|suffix| {
        fs::read_dir(beside).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(suffix))
        })
    });
    // PYTHONSAFEPATH (3.11+) keeps the script's own directory off sys.path.
    assert!(
        !shadowed || venv.version >= (3, 11),
        "{} holds generated *_pb2 modules that would shadow ours; Python {}.{} cannot \
         keep them off sys.path (PYTHONSAFEPATH needs 3.11+)",
        beside.display(),
        venv.version.0,
        venv.version.1
    );
    let mut cmd = Command::new(&venv.python);
    cmd.arg(script)
        .current_dir(stubs)
        .env("PYTHONPATH", stubs)
        .env("PYTHONSAFEPATH", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONNOUSERSITE", "1");
    // gRPC Python honours these; the peers talk over loopback only.
    for var in [
        "grpc_proxy",
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The interop suite's protos, relative to the repo's `proto/` directory.
pub const INTEROP_PROTOS: &[&str] = &[
    "grpc/testing/empty.proto",
    "grpc/testing/messages.proto",
    "grpc/testing/test.proto",
];

/// The top-level Python package that [`generate_proto_stubs`] puts stubs of protos under
/// `grpc/` into, instead of `grpc`: a `grpc/` directory on `PYTHONPATH` would take the
/// `grpc` name from grpcio (generated code does `from grpc.testing import ...`, which needs
/// `grpc.testing` to be a subpackage of the package `import grpc` gives). So
/// `grpc/testing/test.proto` yields the module `grpc_gen.testing.test_pb2`.
pub const STUBS_GRPC_ALIAS: &str = "grpc_gen";

/// The interop crate's `proto/` directory (`grpc/testing/*.proto`).
pub fn proto_dir() -> PathBuf {
    crate::repo_root().join("interop").join("proto")
}

/// The directory of the grpcio interop peers (`interop_server.py`, `interop_client.py`).
pub fn python_peers_dir() -> PathBuf {
    crate::repo_root()
        .join("tests")
        .join("peers")
        .join("python")
}

/// `proto` with a leading `grpc/` directory renamed to [`STUBS_GRPC_ALIAS`]; other paths
/// unchanged.
fn aliased_proto_path(proto: &str) -> String {
    match proto.strip_prefix("grpc/") {
        Some(rest) => format!("{STUBS_GRPC_ALIAS}/{rest}"),
        None => proto.to_string(),
    }
}

/// `text` (a .proto file) with each `import "grpc/..."` line pointing at the renamed copy.
fn alias_proto_imports(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("import ") {
            out.push_str(&line.replace("\"grpc/", &format!("\"{STUBS_GRPC_ALIAS}/")));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Generates `_pb2.py` and `_pb2_grpc.py` modules for `protos` (paths relative to
/// `include_dir`, with `/` separators) into a fresh temp directory, to be put on
/// `PYTHONPATH` (e.g. with [`python_script`]).
///
/// The protos are compiled from copies in a scratch directory (the originals are never
/// touched): a proto under a top-level `grpc/` directory, and every `import "grpc/..."`,
/// is moved to [`STUBS_GRPC_ALIAS`]`/...`, so the modules land as
/// `grpc_gen/testing/test_pb2.py` etc. and `import grpc` still gives grpcio. Proto package
/// names (and so the service paths on the wire, `/grpc.testing.TestService/...`) are
/// unchanged. Every proto that a listed one imports, other than protobuf's well-known
/// types, must be listed too. Checks that each generated module imports and that `grpc` is
/// grpcio's; panics otherwise.
pub fn generate_proto_stubs(venv: &Venv, include_dir: &Path, protos: &[&str]) -> TempDir {
    assert!(!protos.is_empty(), "generate_proto_stubs: no protos given");
    let sources = TempDir::new("pyprotos");
    let mut copies = Vec::new();
    for proto in protos {
        let from = include_dir.join(proto);
        let text = fs::read_to_string(&from)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()));
        let copy = aliased_proto_path(proto);
        let to = sources.path().join(&copy);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        }
        fs::write(&to, alias_proto_imports(&text))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", to.display()));
        copies.push(copy);
    }

    let out = TempDir::new("pystubs");
    let mut protoc = Command::new(&venv.python);
    protoc
        .args(["-m", "grpc_tools.protoc"])
        .arg(format!("-I{}", sources.path().display()))
        .arg(format!("--python_out={}", out.path().display()))
        .arg(format!("--grpc_python_out={}", out.path().display()))
        .args(&copies)
        .current_dir(out.path())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let result =
        run(protoc, PROTOC_TIMEOUT).unwrap_or_else(|e| panic!("cannot run grpc_tools.protoc: {e}"));
    if let Err(e) = result.success_or("grpc_tools.protoc") {
        panic!("{e}");
    }

    // Import every generated module from the output dir, as the peers will.
    let modules: Vec<String> = copies
        .iter()
        .map(|c| c.trim_end_matches(".proto").replace('/', "."))
        .flat_map(|m| [format!("{m}_pb2"), format!("{m}_pb2_grpc")])
        .collect();
    let probe = format!(
        "import importlib, os, sys\n\
         import grpc\n\
         out = os.path.realpath(sys.argv[1])\n\
         where = os.path.realpath(grpc.__file__)\n\
         assert not where.startswith(out + os.sep), 'grpc is shadowed by the stubs: ' + where\n\
         assert hasattr(grpc, 'insecure_channel'), 'grpc is not grpcio: ' + where\n\
         for m in {modules:?}:\n    importlib.import_module(m)\n"
    );
    let mut check = Command::new(&venv.python);
    check
        .args(["-c", &probe])
        .arg(out.path())
        .current_dir(out.path())
        .env("PYTHONPATH", out.path())
        .env("PYTHONSAFEPATH", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONNOUSERSITE", "1");
    let result = run(check, PROBE_TIMEOUT)
        .unwrap_or_else(|e| panic!("cannot run the stubs import check: {e}"));
    if let Err(e) = result.success_or("importing the generated stubs") {
        panic!("{e}");
    }
    out
}

/// Stubs for [`INTEROP_PROTOS`] (the `grpc.testing` interop protos of the repo's `proto/`),
/// as [`generate_proto_stubs`] makes them: modules `grpc_gen.testing.{empty,messages,test}_pb2`
/// and `grpc_gen.testing.test_pb2_grpc`, which the grpcio interop peers import.
pub fn generate_interop_stubs(venv: &Venv) -> TempDir {
    generate_proto_stubs(venv, &proto_dir(), INTEROP_PROTOS)
}

/// The grpcio interop server (tests/peers/python/interop_server.py) listening on
/// `127.0.0.1:port`; `stubs` from [`generate_interop_stubs`]. `port` 0 lets it pick a free
/// port, which it names in its `listening on port N` line (see
/// [`Process::wait_for_listening`]). Add `--host H` to listen elsewhere. Exits 0 on
/// SIGTERM/SIGINT.
pub fn python_interop_server(venv: &Venv, stubs: &TempDir, port: u16) -> Command {
    let mut cmd = python_script(venv, stubs, &python_peers_dir().join("interop_server.py"));
    cmd.arg("--port").arg(port.to_string());
    cmd
}

/// The grpcio interop client (tests/peers/python/interop_client.py) running `cases` (one
/// case, a comma list, or `all`) against `127.0.0.1:port`; `stubs` from
/// [`generate_interop_stubs`]. Prints `PASS <case>` / `FAIL <case>: <reason>` lines and
/// exits 0 when all passed. Further flags (e.g. `--server_host_override`) may be added.
pub fn python_interop_client(venv: &Venv, stubs: &TempDir, port: u16, cases: &str) -> Command {
    let mut cmd = python_script(venv, stubs, &python_peers_dir().join("interop_client.py"));
    cmd.args(["--server_host", "127.0.0.1"])
        .arg("--server_port")
        .arg(port.to_string())
        .arg("--test_case")
        .arg(cases);
    cmd
}

/// Exclusive use of a fixed TCP port: a process-wide mutex for tests sharing a process,
/// and a lock file under the target dir for tests in other processes (nextest).
pub struct PortLock {
    _file: File,
    _guard: MutexGuard<'static, ()>,
}

pub fn lock_port(port: u16) -> PortLock {
    static IN_PROCESS: Mutex<()> = Mutex::new(());
    // A test that panicked while holding it has still released the port.
    let guard = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = target_tmpdir();
    fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("create {}: {e}", tmp.display()));
    let file = lock_file(&tmp.join(format!("port-{port}.lock")), PORT_LOCK_TIMEOUT)
        .unwrap_or_else(|e| panic!("cannot lock port {port}: {e}"));
    PortLock {
        _file: file,
        _guard: guard,
    }
}

/// True if something accepts TCP connections on `addr`.
pub fn port_open(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// A child process whose stdout and stderr are collected as it runs; killed and reaped
/// on drop, so a failed assertion never leaves it holding a port.
pub struct Process {
    name: String,
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    pumps: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

fn pump(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => into
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    })
}

impl Process {
    /// Starts `cmd` with stdin closed and its output collected.
    pub fn spawn(name: &str, mut cmd: Command) -> io::Result<Process> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pumps = Vec::new();
        if let Some(out) = child.stdout.take() {
            pumps.push(pump(out, stdout.clone()));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(pump(err, stderr.clone()));
        }
        Ok(Process {
            name: name.to_string(),
            child,
            stdout,
            stderr,
            pumps,
            status: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exit status if the process has ended.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits up to `timeout` for the process to end; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                self.drain();
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process if it is still running, reaps it, and collects the rest of its
    /// output.
    pub fn stop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
        self.drain();
    }

    /// Waits (boundedly: a grandchild may hold the pipes) for the output pumps to finish.
    fn drain(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.pumps.iter().any(|p| !p.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        for p in std::mem::take(&mut self.pumps) {
            if p.is_finished() {
                let _ = p.join();
            }
        }
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Everything collected so far, for failure messages.
    pub fn dump(&self) -> String {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "still running".to_string(),
        };
        format!(
            "==== {} ({status}) stdout ====\n{}==== {} stderr ====\n{}==== end of {} ====\n",
            self.name,
            self.stdout(),
            self.name,
            self.stderr(),
            self.name
        )
    }

    /// Polls until `addr` accepts a TCP connection; panics (with the output) if the
    /// process exits first or `timeout` passes.
    pub fn wait_for_port(&mut self, addr: SocketAddr, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                self.drain();
                panic!(
                    "{} exited ({status}) before listening on {addr}\n{}",
                    self.name,
                    self.dump()
                );
            }
            if port_open(addr) {
                return;
            }
            if Instant::now() >= deadline {
                self.stop();
                panic!(
                    "{} did not listen on {addr} within {timeout:?}\n{}",
                    self.name,
                    self.dump()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Process {
    /// Waits for the `listening on port N` line that the interop servers print once
    /// listening (tests/peers/CONVENTIONS.md) and returns N; panics (with the output) if
    /// the process exits first or `timeout` passes.
    pub fn wait_for_listening(&mut self, timeout: Duration) -> u16 {
        let deadline = Instant::now() + timeout;
        loop {
            let port = self.stdout().lines().find_map(|line| {
                line.trim()
                    .strip_prefix("listening on port ")
                    .and_then(|n| n.trim().parse::<u16>().ok())
            });
            if let Some(port) = port {
                return port;
            }
            if let Some(status) = self.try_status() {
                self.drain();
                panic!(
                    "{} exited ({status}) before printing `listening on port N`\n{}",
                    self.name,
                    self.dump()
                );
            }
            if Instant::now() >= deadline {
                self.stop();
                panic!(
                    "{} did not print `listening on port N` within {timeout:?}\n{}",
                    self.name,
                    self.dump()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a command run to completion left behind.
pub struct Finished {
    pub name: String,
    /// `None` if it was killed for overrunning its timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub timeout: Duration,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    pub fn dump(&self) -> String {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => format!("killed: still running after {:?}", self.timeout),
        };
        format!(
            "==== {} ({status}, {:.1?}) stdout ====\n{}==== {} stderr ====\n{}==== end of {} ====\n",
            self.name, self.elapsed, self.stdout, self.name, self.stderr, self.name
        )
    }

    fn success_or(&self, what: &str) -> Result<(), String> {
        if self.success() {
            Ok(())
        } else {
            Err(format!("{what} failed\n{}", self.dump()))
        }
    }
}

/// Runs `cmd` to completion, killing it after `timeout`.
pub fn run(cmd: Command, timeout: Duration) -> io::Result<Finished> {
    let name = format!("{:?}", cmd.get_program());
    run_named(&name, cmd, timeout)
}

/// [`run`] with a name for messages.
pub fn run_named(name: &str, cmd: Command, timeout: Duration) -> io::Result<Finished> {
    let started = Instant::now();
    let mut p = Process::spawn(name, cmd)?;
    let status = p.wait_timeout(timeout);
    p.stop();
    Ok(Finished {
        name: name.to_string(),
        status,
        stdout: p.stdout(),
        stderr: p.stderr(),
        elapsed: started.elapsed(),
        timeout,
    })
}

/// `text` without ANSI escape sequences (CSI `ESC [ ... letter`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// How [`assert_lines_in_order`] matches an expected line.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum LineMatch {
    /// The whole line (trailing whitespace ignored).
    Exact,
    /// Somewhere in the line (for logs that may gain prefixes).
    Contains,
}

/// Asserts `expected` occur as lines of `text` in that order (other lines may come
/// between); on failure names the first missing line and appends `context`.
#[track_caller]
pub fn assert_lines_in_order(
    what: &str,
    text: &str,
    expected: &[String],
    how: LineMatch,
    context: &str,
) {
    let text = strip_ansi(text);
    let mut lines = text.lines().map(str::trim_end);
    for (i, want) in expected.iter().enumerate() {
        let found = lines.any(|line| match how {
            LineMatch::Exact => line == want,
            LineMatch::Contains => line.contains(want.as_str()),
        });
        assert!(
            found,
            "{what}: expected line {} of {} not found (in order): {want:?}\n{context}",
            i + 1,
            expected.len()
        );
    }
}
