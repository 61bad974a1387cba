//! Memory checks for hostile tests: the process' resident set, and a bound on how much a
//! run of bad input may grow it (what it catches is a server that buffers what a peer
//! sends without limit, not small allocator noise).

/// How much a hostile test may grow the resident set: generous, far below what unbounded
/// buffering of the inputs the tests send would take.
pub const MEMORY_BOUND: u64 = 100 * 1024 * 1024;

/// The resident set size of this process, in bytes (Linux: `/proc/self/status`).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}

/// Fails the test if the resident set grew by more than [`MEMORY_BOUND`] since `before`
/// (a figure from [`rss_bytes`]); prints the growth under `what`.
pub fn assert_memory_bounded(before: u64, what: &str) {
    let after = rss_bytes();
    let grown = after.saturating_sub(before);
    eprintln!("{what}: resident set +{} KiB", grown >> 10);
    assert!(
        grown <= MEMORY_BOUND,
        "{what}: resident set grew by {} MiB ({} -> {} MiB)",
        grown >> 20,
        before >> 20,
        after >> 20
    );
}
