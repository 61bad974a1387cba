//! Fuzz target: decompression held to the size limit.
//! Invariants: on any input, `decompress` returns at most `limit` bytes or fails with
//! RESOURCE_EXHAUSTED (over the limit) or INTERNAL (corrupt input), and never allocates
//! much more than the limit whatever the input inflates to (a counting allocator
//! watches); what `compress` wrote decompresses back to the input, or is refused as over
//! the limit when the input is larger than the limit.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use h2grpc::Code;
use h2grpc::compression::{Encoding, compress, decompress};
use libfuzzer_sys::fuzz_target;

/// Counts live bytes and their peak, for the allocations of this (single) thread of work.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What decompression may hold beyond its output: the decoder's window and buffers.
const FIXED_OVERHEAD: usize = 512 * 1024;
/// The output buffer grows by doubling up to one byte past the limit, and each growth
/// holds the old and the new buffer at once: up to three times the limit, transiently.
const GROWTH_FACTOR: usize = 3;

/// Peak bytes allocated while `f` ran, above what was live before.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed) - base)
}

fuzz_target!(|input: &[u8]| {
    let Some((&control, data)) = input.split_first() else {
        return;
    };
    let encoding = if control & 1 == 0 {
        Encoding::Gzip
    } else {
        Encoding::Deflate
    };
    // Limits from 0 bytes to 1 MiB; small ones are where inflation overshoots.
    let limit = match control >> 1 {
        0 => 0,
        n => 1usize << (n % 21),
    };

    // Arbitrary bytes as a compressed message.
    let (result, peak) = peak_of(|| decompress(encoding, data, limit));
    match &result {
        Ok(out) => assert!(out.len() <= limit, "{} bytes out, limit {limit}", out.len()),
        Err(status) => assert!(
            matches!(status.code(), Code::ResourceExhausted | Code::Internal),
            "{status:?}"
        ),
    }
    assert!(
        peak <= GROWTH_FACTOR * limit + data.len() + FIXED_OVERHEAD,
        "decompressing {} bytes under a limit of {limit} allocated {peak} bytes",
        data.len()
    );
    drop(result);

    // The input as a message: compress, then decompress under the limit.
    let mut compressed = BytesMut::new();
    compress(encoding, data, &mut compressed).expect("compression of any bytes succeeds");
    match decompress(encoding, &compressed, limit) {
        Ok(out) => assert_eq!(&out[..], data, "round trip"),
        Err(status) => {
            assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
            assert!(
                data.len() > limit,
                "refused {} bytes under a limit of {limit}",
                data.len()
            );
        }
    }
});
