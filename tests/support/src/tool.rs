//! A command-line binary of the workspace run to completion under test: arguments, stdin,
//! a timeout, its exit code and output (the `h2grpc` tool's tests, through the `h2grpc!`
//! macro), and a fresh runtime for the async part of such a test.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the `h2grpc` binary of the package under test (`CARGO_BIN_EXE_h2grpc`, which only
/// that package's tests see) with `args` and `stdin`: `h2grpc!(&["list", addr], None)`.
#[macro_export]
macro_rules! h2grpc {
    ($args:expr, $stdin:expr $(,)?) => {
        $crate::tool::run(env!("CARGO_BIN_EXE_h2grpc"), $args, $stdin)
    };
}

/// How long one run of a binary may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// One finished run of a binary.
pub struct Run {
    /// The binary's file name.
    pub binary: String,
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn dump(&self) -> String {
        format!(
            "{} {:?} exited {:?} after {:.1?}\n--- stdout ---\n{}--- stderr ---\n{}--- end ---",
            self.binary, self.args, self.code, self.elapsed, self.stdout, self.stderr
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

/// Runs `binary` with `args` and `stdin` (closed when `None`), killing it after
/// [`RUN_TIMEOUT`].
pub fn run(binary: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("cannot write {binary}'s stdin: {e}"));
    }
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(RUN_TIMEOUT) {
        Ok(output) => output.unwrap_or_else(|e| panic!("cannot wait for {binary}: {e}")),
        Err(_) => {
            // SAFETY: kill(2) on our own child, which has not been reaped (wait is pending).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{binary} {args:?} still running after {RUN_TIMEOUT:?}");
        }
    };
    Run {
        binary: std::path::Path::new(binary)
            .file_name()
            .map_or_else(|| binary.to_string(), |n| n.to_string_lossy().into_owned()),
        args: args.iter().map(|a| a.to_string()).collect(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
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
