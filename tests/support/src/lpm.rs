//! gRPC Length-Prefixed-Messages, what gRPC carries in HTTP/2 DATA frames: a flag byte
//! (1 = compressed), a 4-byte big-endian length, the payload. Built well formed, or with
//! a flag or a declared length that are wrong on purpose; and read back.

/// The prefix: the compressed flag and the length.
pub const PREFIX_LEN: usize = 5;

/// A message with flag byte `flag` and declared length `declared_len` before `payload`,
/// whether or not they tell the truth.
pub fn prefixed(flag: u8, declared_len: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX_LEN + payload.len());
    out.push(flag);
    out.extend_from_slice(&declared_len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// `payload` as one uncompressed message.
pub fn message(payload: &[u8]) -> Vec<u8> {
    prefixed(0, declared(payload), payload)
}

/// `payload`, already compressed, as one message with the compressed flag.
pub fn compressed(payload: &[u8]) -> Vec<u8> {
    prefixed(1, declared(payload), payload)
}

/// `message` encoded with prost, as one uncompressed message.
pub fn encode(message: &impl prost::Message) -> Vec<u8> {
    self::message(&message.encode_to_vec())
}

/// The payload of the message at the start of `bytes`; panics if `bytes` holds less than
/// a whole message.
#[track_caller]
pub fn payload(bytes: &[u8]) -> &[u8] {
    assert!(
        bytes.len() >= PREFIX_LEN,
        "{} bytes: not even a message prefix",
        bytes.len()
    );
    let len = u32::from_be_bytes(bytes[1..PREFIX_LEN].try_into().unwrap()) as usize;
    assert!(
        bytes.len() >= PREFIX_LEN + len,
        "a message of {len} bytes, but only {} follow its prefix",
        bytes.len() - PREFIX_LEN
    );
    &bytes[PREFIX_LEN..PREFIX_LEN + len]
}

fn declared(payload: &[u8]) -> u32 {
    u32::try_from(payload.len()).expect("a message payload over 4 GiB")
}
