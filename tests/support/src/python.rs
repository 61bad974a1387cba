//! The Python peers: the official example "data_transmission" (found through
//! `GRPC_PYTHON_EXAMPLE_DIR`), a pinned grpcio venv, stubs generated with its
//! grpc_tools.protoc (also for the grpc.testing interop protos), and the commands that
//! run Python scripts and the grpcio interop peers of tests/peers/python.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::lock::lock_file;
use crate::process::{TempDir, run};

/// Names the directory holding gRPC's examples/python/data_transmission.
pub const EXAMPLE_DIR_VAR: &str = "GRPC_PYTHON_EXAMPLE_DIR";

/// What the venv gets installed; nothing else is assumed on the machine but `python3`.
pub const PINS: &[&str] = &[
    "grpcio==1.76.0",
    "grpcio-tools==1.76.0",
    "protobuf==6.33.6",
    // The health, reflection and rich-error-details clients of grpc's Python packages.
    "grpcio-health-checking==1.76.0",
    "grpcio-reflection==1.76.0",
    "grpcio-status==1.76.0",
    "googleapis-common-protos==1.76.0",
];

/// How to get what the venv is built from.
const PYTHON_HOW: &str = "install Python 3 (3.9 or newer) with its venv module \
     (Debian: `apt-get install -y python3 python3-venv`)";

/// The files of the official example that the tests need.
const EXAMPLE_FILES: &[&str] = &["client.py", "server.py", "demo.proto"];

const VENV_CREATE_TIMEOUT: Duration = Duration::from_secs(120);
const PIP_TIMEOUT: Duration = Duration::from_secs(600);
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
const PROTOC_TIMEOUT: Duration = Duration::from_secs(60);
const VENV_LOCK_TIMEOUT: Duration = Duration::from_secs(900);

/// The official example's directory from `GRPC_PYTHON_EXAMPLE_DIR` (relative paths are
/// taken from the repo root). When the variable is unset, `test` cannot run:
/// [`crate::missing`] decides whether that fails it or it returns `None`. A directory
/// without the example's files fails the test.
pub fn example_dir(test: &str) -> Option<PathBuf> {
    let value = std::env::var_os(EXAMPLE_DIR_VAR).filter(|v| !v.is_empty());
    let Some(value) = value else {
        let how = format!(
            "set {EXAMPLE_DIR_VAR} to a checkout of grpc/grpc's examples/python/data_transmission \
             (absolute, or relative to the repo root), e.g. \
             `{EXAMPLE_DIR_VAR}=../shared/grpc-python-example cargo test --test python_example`"
        );
        crate::missing(test, &format!("{EXAMPLE_DIR_VAR} is unset"), &how);
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

/// Why there is no venv.
enum VenvError {
    /// What the venv is built from is not on this machine (python3, its venv module).
    Missing(String),
    /// Building it failed.
    Failed(String),
}

impl From<String> for VenvError {
    fn from(e: String) -> VenvError {
        VenvError::Failed(e)
    }
}

/// The shared venv under the cargo target dir, created on first use and reused while its
/// marker file records the same pins. Guarded against other threads and other processes.
/// Without python3 (or its venv module) `test` cannot run: [`crate::missing`] decides
/// whether that fails it or this returns `None`. Any other failure to build the venv
/// fails the test.
pub fn venv(test: &str) -> Option<&'static Venv> {
    static VENV: OnceLock<Result<Venv, VenvError>> = OnceLock::new();
    match VENV.get_or_init(prepare_venv) {
        Ok(v) => Some(v),
        Err(VenvError::Missing(what)) => {
            crate::missing(test, what, PYTHON_HOW);
            None
        }
        Err(VenvError::Failed(e)) => panic!("cannot prepare the Python venv: {e}"),
    }
}

/// Checks that `python3` runs and can make a venv (Debian ships the venv module's
/// ensurepip apart, in python3-venv).
fn probe_python3() -> Result<(), VenvError> {
    let mut probe = Command::new("python3");
    probe.args(["-c", "import venv, ensurepip"]);
    match run(probe, PROBE_TIMEOUT) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(VenvError::Missing("`python3` is not on PATH".to_string()))
        }
        Err(e) => Err(VenvError::Failed(format!("cannot run python3: {e}"))),
        Ok(out) if out.status.is_some() && !out.success() => Err(VenvError::Missing(format!(
            "python3 has no usable venv module (`import venv, ensurepip` failed: {})",
            out.stderr.trim()
        ))),
        Ok(out) => Ok(out.success_or("python3 probe")?),
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

fn prepare_venv() -> Result<Venv, VenvError> {
    let tmp = crate::target_tmp();
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
    probe_python3()?;
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
/// [`Process::wait_for_listening`](crate::process::Process::wait_for_listening)). Add
/// `--host H` to listen elsewhere. Exits 0 on SIGTERM/SIGINT.
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
