//! TCP ports for tests: free ports picked so that parallel tests and restarts do not
//! collide, fixed ports (hard-coded by a peer) held exclusively under a lock, and probes
//! of whether something listens.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::lock::lock_file;

/// Ports below this are never picked (well-known and registered services).
const LOWEST_PORT: u16 = 10_000;
/// The port hard-coded by the official Python example, held by its own tests.
pub const EXAMPLE_PORT: u16 = 23_333;

const PORT_LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// The first port of the kernel's ephemeral range (outgoing connections take their local
/// port from it).
fn ephemeral_low() -> u16 {
    fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A free 127.0.0.1 port below the ephemeral range, so that no outgoing connection (nor
/// a client reconnecting to it while its server is down) can take it by chance between a
/// server's death and its restart. Spread by process id, time and a counter, so parallel
/// tests do not pick the same one. Never [`EXAMPLE_PORT`].
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let high = ephemeral_low().max(LOWEST_PORT + 1_000);
    let span = u32::from(high - LOWEST_PORT);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        .wrapping_add(std::process::id().wrapping_mul(7_919));
    for _ in 0..span {
        let step = u32::from(NEXT.fetch_add(1, Ordering::Relaxed)).wrapping_mul(101);
        let port = LOWEST_PORT + (seed.wrapping_add(step) % span) as u16;
        if port == EXAMPLE_PORT {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOWEST_PORT} and {high}");
}

/// `127.0.0.1:port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// True if something accepts TCP connections on `addr` (within 200 ms).
pub fn port_open(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Exclusive use of a fixed TCP port: a process-wide mutex for tests sharing a process,
/// and a lock file under the target dir for tests in other processes (nextest).
pub struct PortLock {
    _file: File,
    _guard: MutexGuard<'static, ()>,
}

/// Takes the [`PortLock`] of `port`, waiting (up to 10 minutes) for other tests to
/// release it.
pub fn lock_port(port: u16) -> PortLock {
    static IN_PROCESS: Mutex<()> = Mutex::new(());
    // A test that panicked while holding it has still released the port.
    let guard = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = crate::target_tmp();
    fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("create {}: {e}", tmp.display()));
    let file = lock_file(&tmp.join(format!("port-{port}.lock")), PORT_LOCK_TIMEOUT)
        .unwrap_or_else(|e| panic!("cannot lock port {port}: {e}"));
    PortLock {
        _file: file,
        _guard: guard,
    }
}

/// Panics unless `addr` is free: a peer that hard-codes its port would otherwise talk to
/// whatever holds it.
#[track_caller]
pub fn assert_port_free(addr: SocketAddr) {
    assert!(
        !port_open(addr),
        "{addr} is already accepting connections before the test started its own listener; \
         the peer hard-codes port {}: stop whatever holds it",
        addr.port()
    );
}
