//! What the `h2grpc` binary's tests share: running it (with stdin, under a timeout) and
//! the `demo-server` binary, built through the workspace into the same target directory.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long one run of the tool may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// One finished run of `h2grpc`.
pub struct Run {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn dump(&self) -> String {
        format!(
            "h2grpc {:?} exited {:?} after {:.1?}\n--- stdout ---\n{}--- stderr ---\n{}--- end ---",
            self.args, self.code, self.elapsed, self.stdout, self.stderr
        )
    }

    /// Panics unless the run exited `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, Some(code), "{}", self.dump());
        self
    }

    /// The JSON documents on stdout.
    #[track_caller]
    pub fn json(&self) -> Vec<serde_json::Value> {
        serde_json::Deserializer::from_str(&self.stdout)
            .into_iter::<serde_json::Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("stdout is not JSON documents: {e}\n{}", self.dump()))
    }
}

/// Runs the tool with `args` and `stdin` (closed when `None`), killing it after
/// [`RUN_TIMEOUT`].
pub fn h2grpc(args: &[&str], stdin: Option<&str>) -> Run {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_h2grpc"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start h2grpc");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(text.as_bytes())
            .expect("cannot write h2grpc's stdin");
    }
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(RUN_TIMEOUT) {
        Ok(output) => output.expect("cannot wait for h2grpc"),
        Err(_) => {
            // SAFETY: kill(2) on our own child, which has not been reaped (wait is pending).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("h2grpc {args:?} still running after {RUN_TIMEOUT:?}");
        }
    };
    Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `proto/demo.proto` of the repository.
pub fn demo_proto() -> String {
    repo_root().join("proto/demo.proto").display().to_string()
}

/// The `demo-server` binary, built once per test process with
/// `cargo build -p h2grpc-demo --bin demo-server` into this test's own target directory.
pub fn demo_server_binary() -> &'static str {
    static BINARY: OnceLock<String> = OnceLock::new();
    BINARY.get_or_init(|| {
        // This test runs as <target>/<profile>/deps/<name>-<hash>.
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in <target>/<profile>/deps");
        let target_dir = profile_dir.parent().expect("<target>/<profile>");
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("debug");
        let mut build = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        build
            .args(["build", "-p", "h2grpc-demo", "--bin", "demo-server"])
            .current_dir(repo_root())
            .env("CARGO_TARGET_DIR", target_dir);
        // Only the user's own environment: what `cargo test` adds for this test (the
        // CARGO_PKG_* family, a dylib search path, ...) would make the inner build's
        // fingerprints differ from the outer one's, and each would rebuild the other's
        // dependencies on every run.
        build.env_clear();
        for (name, value) in std::env::vars_os() {
            let key = name.to_string_lossy();
            let keep = [
                "PATH",
                "HOME",
                "USER",
                "TMPDIR",
                "CARGO_HOME",
                "RUSTUP_HOME",
                "RUSTUP_TOOLCHAIN",
            ]
            .contains(&key.as_ref())
                || [
                    "CARGO_PROFILE_",
                    "CARGO_BUILD_",
                    "CARGO_NET_",
                    "CARGO_REGISTRIES_",
                    "CARGO_INCREMENTAL",
                    "RUSTFLAGS",
                ]
                .iter()
                .any(|p| key.starts_with(p));
            if keep {
                build.env(&name, value);
            }
        }
        build.env("CARGO_TARGET_DIR", target_dir);
        if profile == "release" {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("cannot run cargo build for demo-server");
        assert!(
            status.success(),
            "cargo build -p h2grpc-demo --bin demo-server failed"
        );
        let binary = profile_dir.join("demo-server");
        assert!(binary.is_file(), "no demo-server at {}", binary.display());
        binary.display().to_string()
    })
}

/// Runs `f` on a fresh multi-threaded runtime, failing after `limit`.
pub fn with_timeout<F: std::future::Future<Output = ()>>(limit: Duration, f: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        tokio::time::timeout(limit, f)
            .await
            .expect("the test did not finish in time");
    });
}
