//! Child processes for tests: a process whose stdout and stderr are collected as it runs
//! (killed and reaped on drop), commands run to completion under a timeout, temporary
//! directories removed on drop, and checks of the lines a process printed.

use std::fs;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::ports::port_open;

/// A fresh directory, removed with everything in it on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// `h2grpc-<label>-<pid>-<n>-<nanos>` under the system's temp directory.
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
    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

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

    /// `Ok` if it exited 0, else an error naming `what` with the output.
    pub fn success_or(&self, what: &str) -> Result<(), String> {
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
