//! A lock file shared by test processes (nextest runs tests in separate processes),
//! for one-time setup (a venv, node_modules) and for hard-coded ports.

use std::fs::{self, File};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

/// Takes an exclusive lock on `path`, polling up to `timeout`; released when the file is
/// closed.
pub fn lock_file(path: &Path, timeout: Duration) -> Result<File, String> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    let deadline = Instant::now() + timeout;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(100));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "{} still locked by another process after {timeout:?}",
                    path.display()
                ));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(format!("lock {}: {e}", path.display()));
            }
        }
    }
}
