//! The real `demo-server` binary as a child process for fault and proxy tests: started on
//! a port of the test's choosing, frozen (SIGSTOP) and killed (SIGKILL) at will, killed
//! and reaped on drop; the binary built on demand for test crates outside `h2grpc-demo`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::ports::local;
use crate::repo_root;

/// How long a freshly started server has to accept connections.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `demo-server --quiet --addr ADDR --server-id ID`.
pub struct DemoServer {
    child: Child,
    pub port: u16,
    pub server_id: i64,
    address: SocketAddr,
    reaped: bool,
}

impl DemoServer {
    /// Starts the server on 127.0.0.1:`port` and waits (asynchronously) until it accepts
    /// connections.
    pub async fn start(binary: &str, port: u16, server_id: i64) -> DemoServer {
        DemoServer::start_at(binary, local(port), server_id).await
    }

    /// Starts the server on `address` (say 127.0.0.2:PORT) and waits until it accepts
    /// connections.
    pub async fn start_at(binary: &str, address: SocketAddr, server_id: i64) -> DemoServer {
        DemoServer::start_with_args(binary, address, server_id, &[]).await
    }

    /// Starts the server on `address` with `extra` flags after the usual ones (say
    /// `["--token", "secret"]`) and waits until it accepts connections.
    pub async fn start_with_args(
        binary: &str,
        address: SocketAddr,
        server_id: i64,
        extra: &[&str],
    ) -> DemoServer {
        let port = address.port();
        let mut cmd = Command::new(binary);
        cmd.args(["--quiet", "--grace-secs", "1", "--addr"])
            .arg(address.to_string())
            .arg("--server-id")
            .arg(server_id.to_string())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start demo-server: {e}"));
        let mut server = DemoServer {
            child,
            port,
            server_id,
            address,
            reaped: false,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.reaped = true;
                panic!(
                    "demo-server (id {}) exited ({status}) before listening on port {}",
                    self.server_id, self.port
                );
            }
            if tokio::net::TcpStream::connect(self.address).await.is_ok() {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "demo-server (id {}) did not listen on port {} within {READY_TIMEOUT:?}",
                    self.server_id, self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.address
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGSTOP: the process stops reading and answering; the kernel still accepts and
    /// buffers for it. A call made now is in the server's hands until it is killed.
    pub fn freeze(&self) {
        // SAFETY: kill(2) on our own child's pid, which is not reaped yet.
        let r = unsafe { libc::kill(self.pid(), libc::SIGSTOP) };
        assert_eq!(r, 0, "SIGSTOP failed: {}", std::io::Error::last_os_error());
        // The signal is delivered asynchronously: wait until every thread is stopped.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.all_threads_stopped() {
            assert!(
                Instant::now() < deadline,
                "demo-server (pid {}) not stopped 5 s after SIGSTOP",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// True when every thread of the process is in state `T` (stopped), per /proc.
    fn all_threads_stopped(&self) -> bool {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return false;
        };
        tasks.flatten().all(|task| {
            std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
                // `pid (comm) STATE ...`; comm may hold spaces and parentheses.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next())
                    == Some("T")
            })
        })
    }

    /// SIGTERM (a graceful stop: GOAWAY, the grace period), then wait up to `timeout` for
    /// the process to exit; `true` when it exited successfully.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        // SAFETY: kill(2) on our own child's pid, which is not reaped yet.
        let r = unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        assert_eq!(r, 0, "SIGTERM failed: {}", std::io::Error::last_os_error());
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.reaped = true;
                return status.success();
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL (works on a frozen process too), then reap it: its sockets are closed by
    /// the kernel when this returns.
    pub fn kill(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.kill();
    }
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
