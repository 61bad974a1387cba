//! Fuzz target: the message decoder fed arbitrary bytes in arbitrary chunkings.
//! Invariants: every decoded message re-encodes to exactly the bytes it was read from;
//! a declared length over the limit is refused before anything is buffered for it.
#![no_main]

use bytes::Bytes;
use h2grpc::framing::{Decoder, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1024;

fuzz_target!(|input: &[u8]| {
    let Some((&seed, data)) = input.split_first() else { return };
    let encoding = (seed & 1 == 1).then_some(h2grpc::Encoding::Gzip);
    let mut decoder = Decoder::new(LIMIT, encoding);
    let mut rebuilt = Vec::new();
    let mut offset = 0;
    let mut step = usize::from(seed >> 1).max(1);
    let mut failed = false;
    while offset < data.len() && !failed {
        let end = (offset + step).min(data.len());
        decoder.push(Bytes::copy_from_slice(&data[offset..end]));
        offset = end;
        step = step % 7 + 1;
        loop {
            match decoder.decode() {
                Ok(Some(m)) => {
                    assert!(m.data.len() <= LIMIT);
                    rebuilt.push(u8::from(m.compressed));
                    rebuilt.extend_from_slice(&(m.data.len() as u32).to_be_bytes());
                    rebuilt.extend_from_slice(&m.data);
                }
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        // Never more buffered than one message and its prefix, plus the last chunk.
        assert!(decoder.buffered() <= LIMIT + HEADER_LEN + 8);
    }
    assert_eq!(&data[..rebuilt.len()], &rebuilt[..], "decoded messages re-encode to their bytes");
    if !failed && decoder.finish().is_ok() {
        assert_eq!(rebuilt.len(), data.len(), "a clean end consumed everything");
    }
});
