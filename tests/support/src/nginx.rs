//! nginx as a gRPC proxy for tests: finds the binary, writes a config with `grpc_pass`
//! to an upstream of backends into a fresh temp dir (pid file, logs and temp paths all
//! there, so neither root nor a writable /var/lib/nginx is assumed), runs it in the
//! foreground in its own process group, and kills the whole group on drop.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::port_open;
use crate::process::TempDir;

/// How long nginx has to start listening.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The nginx binary: `$NGINX` if set, else `nginx` on the PATH or in /usr/sbin. Without
/// one `test` cannot run: [`crate::missing`] decides whether that fails it or this
/// returns `None`.
pub fn binary(test: &str) -> Option<PathBuf> {
    let candidates = std::env::var_os("NGINX")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join("nginx"))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        )
        .chain(["/usr/sbin/nginx".into(), "/usr/local/sbin/nginx".into()]);
    for c in candidates {
        if c.is_file() {
            return Some(c);
        }
    }
    crate::missing(
        test,
        "nginx not found",
        "install nginx (Debian: `apt-get install -y nginx`) or set NGINX to its binary",
    );
    None
}

/// The proxy part of the config: what a user puts in their own nginx.conf's `http` block
/// (the README shows it).
pub fn grpc_proxy_config(listen: SocketAddr, backends: &[SocketAddr]) -> String {
    let servers: String = backends
        .iter()
        .map(|b| format!("        server {b};\n"))
        .collect();
    format!(
        "    upstream grpc_backends {{\n\
         {servers}        \
                 keepalive 32;\n    \
         }}\n\
         \n    \
         server {{\n        \
                 listen {listen} http2;\n        \
                 location / {{\n            \
                     grpc_pass grpc://grpc_backends;\n        \
                 }}\n    \
         }}\n"
    )
}

/// A whole nginx.conf keeping every file under `dir`.
pub fn config(dir: &Path, listen: SocketAddr, backends: &[SocketAddr]) -> String {
    let d = dir.display();
    format!(
        "# Written by the h2grpc tests: nginx in the foreground, everything under {d}.\n\
         worker_processes 1;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         events {{\n    worker_connections 1024;\n}}\n\
         http {{\n    \
             access_log off;\n    \
             client_body_temp_path {d}/client_body;\n    \
             proxy_temp_path {d}/proxy;\n    \
             fastcgi_temp_path {d}/fastcgi;\n    \
             uwsgi_temp_path {d}/uwsgi;\n    \
             scgi_temp_path {d}/scgi;\n\
         \n\
         {}\
         }}\n",
        grpc_proxy_config(listen, backends)
    )
}

/// A running nginx (master and workers, one process group).
pub struct Nginx {
    child: Child,
    dir: TempDir,
    pub listen: SocketAddr,
    reaped: bool,
}

impl Nginx {
    /// Writes the config for `listen` and `backends` into a fresh temp dir, starts nginx,
    /// and waits until it accepts connections on `listen`.
    pub fn start(binary: &Path, listen: SocketAddr, backends: &[SocketAddr]) -> Nginx {
        let temp = TempDir::new("nginx");
        let dir = temp.path();
        let conf = dir.join("nginx.conf");
        fs::write(&conf, config(dir, listen, backends))
            .unwrap_or_else(|e| panic!("write {}: {e}", conf.display()));
        let stdout = fs::File::create(dir.join("stdout.log")).expect("create stdout.log");
        let stderr = fs::File::create(dir.join("stderr.log")).expect("create stderr.log");
        let mut cmd = Command::new(binary);
        cmd.arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            // Its own process group: drop kills the master and its workers together.
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut nginx = Nginx {
            child,
            dir: temp,
            listen,
            reaped: false,
        };
        nginx.wait_ready();
        nginx
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.reaped = true;
                panic!(
                    "nginx exited ({status}) before listening on {}\n{}",
                    self.listen,
                    self.dump()
                );
            }
            if port_open(self.listen) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "nginx did not listen on {} within {READY_TIMEOUT:?}\n{}",
                    self.listen,
                    self.dump()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its directory: config, pid file, logs, temp paths.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The config, its stderr and its error log, for failure messages.
    pub fn dump(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir().join(name)).unwrap_or_default();
        format!(
            "==== nginx.conf ====\n{}==== nginx stderr ====\n{}==== nginx error.log ====\n{}==== end of nginx ====\n",
            read("nginx.conf"),
            read("stderr.log"),
            read("error.log")
        )
    }

    /// Kills the master and its workers, and reaps the master.
    pub fn stop(&mut self) {
        if !self.reaped {
            // SAFETY: kill(2) on the process group our child leads.
            unsafe {
                libc::kill(-(self.child.id() as i32), libc::SIGKILL);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Before its directory goes (the TempDir field is dropped after this).
        self.stop();
    }
}
