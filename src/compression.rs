//! Message compression: `gzip` and `deflate` (zlib-wrapped, RFC 1950), decompression
//! held to the receive limit without inflating past it, and the whole negotiation: which
//! encoding a request or a response is sent with, given what the peer advertised in
//! `grpc-accept-encoding`, and message by message with a [`CompressionSwitch`].

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderValue;

use crate::status::Status;

/// The `grpc-accept-encoding` we send: every encoding we can read.
pub const ACCEPT_ENCODING: &str = "identity,deflate,gzip";

/// A message encoding other than `identity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `gzip` (RFC 1952).
    Gzip,
    /// `deflate`: zlib-wrapped deflate (RFC 1950), as gRPC peers speak it.
    Deflate,
}

impl Encoding {
    /// The name in `grpc-encoding`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
        }
    }

    /// The `grpc-encoding` header value.
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(self.as_str())
    }

    /// Parse a `grpc-encoding` value: `Ok(None)` for `identity`, an error for an
    /// encoding we do not support.
    pub fn parse(name: &[u8]) -> Result<Option<Encoding>, UnsupportedEncoding> {
        match name.trim_ascii() {
            b"identity" => Ok(None),
            b"gzip" => Ok(Some(Encoding::Gzip)),
            b"deflate" => Ok(Some(Encoding::Deflate)),
            _ => Err(UnsupportedEncoding),
        }
    }

    fn bit(self) -> u8 {
        match self {
            Encoding::Gzip => 1,
            Encoding::Deflate => 2,
        }
    }
}

/// A `grpc-encoding` name this library cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsupportedEncoding;

impl std::fmt::Display for UnsupportedEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unsupported message encoding")
    }
}

impl std::error::Error for UnsupportedEncoding {}

/// The set of encodings a peer advertised in `grpc-accept-encoding`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AcceptEncodings(u8);

impl AcceptEncodings {
    /// Every encoding we know.
    pub const ALL: AcceptEncodings = AcceptEncodings(3);
    /// None (identity only).
    pub const NONE: AcceptEncodings = AcceptEncodings(0);

    /// Parse a `grpc-accept-encoding` value (comma list; unknown names are ignored).
    pub fn parse(value: &[u8]) -> AcceptEncodings {
        let mut set = 0;
        for name in value.split(|&b| b == b',') {
            if let Ok(Some(e)) = Encoding::parse(name) {
                set |= e.bit();
            }
        }
        AcceptEncodings(set)
    }

    /// The set as bits (gzip 1, deflate 2).
    pub fn bits(self) -> u8 {
        self.0
    }

    /// The set from [`AcceptEncodings::bits`]; unknown bits are dropped.
    pub fn from_bits(bits: u8) -> AcceptEncodings {
        AcceptEncodings(bits & AcceptEncodings::ALL.0)
    }

    /// The `grpc-accept-encoding` value naming this set (identity always included).
    pub fn header_value(self) -> HeaderValue {
        match (
            self.contains(Encoding::Deflate),
            self.contains(Encoding::Gzip),
        ) {
            (true, true) => HeaderValue::from_static(ACCEPT_ENCODING),
            (true, false) => HeaderValue::from_static("identity,deflate"),
            (false, true) => HeaderValue::from_static("identity,gzip"),
            (false, false) => HeaderValue::from_static("identity"),
        }
    }

    /// Whether `encoding` is in the set.
    pub fn contains(self, encoding: Encoding) -> bool {
        self.0 & encoding.bit() != 0
    }
}

/// A shared switch saying whether the next messages of a call are compressed, for
/// senders that compress some messages and not others. Without one, every message of
/// a call with an encoding is compressed.
#[derive(Clone, Debug)]
pub struct CompressionSwitch(Arc<AtomicBool>);

impl CompressionSwitch {
    /// A switch, initially `on` or off.
    pub fn new(on: bool) -> CompressionSwitch {
        CompressionSwitch(Arc::new(AtomicBool::new(on)))
    }

    /// Compress the messages sent from now on, or not.
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Release);
    }

    /// Whether the next message is compressed.
    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A call's compression as its sender chose it, and what its receiver saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct Compression {
    /// Encoding to send with (used only when the peer accepts it).
    pub(crate) encoding: Option<Encoding>,
    /// Per-message on/off switch for that encoding.
    pub(crate) switch: Option<CompressionSwitch>,
    /// Inbound: the message arrived with the compressed flag set.
    pub(crate) received_compressed: bool,
}

impl Compression {
    /// The encoding the next message is sent with, given the call's `negotiated` one.
    pub(crate) fn for_next_message(&self, negotiated: Option<Encoding>) -> Option<Encoding> {
        negotiated.filter(|_| self.switch.as_ref().is_none_or(CompressionSwitch::is_on))
    }
}

/// The encoding of a response: the handler's choice, else the server's default, and only
/// if the client listed it in `grpc-accept-encoding`.
pub(crate) fn response_encoding(
    chosen: Option<Encoding>,
    server_default: Option<Encoding>,
    client_accepts: AcceptEncodings,
) -> Option<Encoding> {
    chosen
        .or(server_default)
        .filter(|e| client_accepts.contains(*e))
}

/// What a server advertised in `grpc-accept-encoding`, learnt from its responses and
/// shared by every call of a channel: a request is never compressed with an encoding
/// the server did not list. Until the server has said, every encoding is tried.
#[derive(Debug)]
pub(crate) struct PeerAccepts(AtomicU8);

impl PeerAccepts {
    const UNKNOWN: u8 = u8::MAX;

    pub(crate) fn new() -> PeerAccepts {
        PeerAccepts(AtomicU8::new(PeerAccepts::UNKNOWN))
    }

    /// Remember what the server advertised.
    pub(crate) fn learn(&self, accepted: AcceptEncodings) {
        self.0.store(accepted.bits(), Ordering::Relaxed);
    }

    /// The encoding to compress requests with: `wanted`, unless the server has said it
    /// does not accept it.
    pub(crate) fn request_encoding(&self, wanted: Option<Encoding>) -> Option<Encoding> {
        let wanted = wanted?;
        match self.0.load(Ordering::Relaxed) {
            PeerAccepts::UNKNOWN => Some(wanted),
            bits => AcceptEncodings::from_bits(bits)
                .contains(wanted)
                .then_some(wanted),
        }
    }
}

/// Compress `input` with `encoding`, appending to `out`.
pub fn compress(encoding: Encoding, input: &[u8], out: &mut BytesMut) -> Result<(), Status> {
    let level = flate2::Compression::default();
    let writer = out.writer();
    let result = match encoding {
        Encoding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(writer, level);
            e.write_all(input).and_then(|()| e.finish().map(drop))
        }
        Encoding::Deflate => {
            let mut e = flate2::write::ZlibEncoder::new(writer, level);
            e.write_all(input).and_then(|()| e.finish().map(drop))
        }
    };
    result.map_err(|e| Status::internal(format!("{} compression failed: {e}", encoding.as_str())))
}

/// Decompress `input`, refusing output over `limit` bytes with `RESOURCE_EXHAUSTED`.
/// Memory is bounded by the limit whatever the input claims: inflation stops one
/// byte past it.
pub fn decompress(encoding: Encoding, input: &[u8], limit: usize) -> Result<Bytes, Status> {
    let cap = (limit as u64).saturating_add(1);
    let mut out = Vec::with_capacity(input.len().saturating_mul(2).min(limit).min(64 * 1024));
    let result = match encoding {
        Encoding::Gzip => flate2::read::GzDecoder::new(input)
            .take(cap)
            .read_to_end(&mut out),
        Encoding::Deflate => flate2::read::ZlibDecoder::new(input)
            .take(cap)
            .read_to_end(&mut out),
    };
    if let Err(e) = result {
        return Err(Status::internal(format!(
            "failed to decompress a {} message: {e}",
            encoding.as_str()
        )));
    }
    if out.len() > limit {
        return Err(Status::resource_exhausted(format!(
            "decompressed message is larger than the limit of {limit} bytes"
        )));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_encodings_round_trip() {
        let input = b"hello hello hello hello, compressible text ".repeat(50);
        for e in [Encoding::Gzip, Encoding::Deflate] {
            let mut out = BytesMut::new();
            compress(e, &input, &mut out).unwrap();
            assert!(out.len() < input.len());
            assert_eq!(decompress(e, &out, input.len()).unwrap(), input);
        }
    }

    #[test]
    fn deflate_is_zlib_wrapped() {
        let mut out = BytesMut::new();
        compress(Encoding::Deflate, b"abc", &mut out).unwrap();
        assert_eq!(out[0] & 0x0f, 8, "zlib header: CM = 8 (deflate)");
        assert_eq!(
            (u16::from(out[0]) << 8 | u16::from(out[1])) % 31,
            0,
            "zlib header check bits"
        );
        let mut gz = BytesMut::new();
        compress(Encoding::Gzip, b"abc", &mut gz).unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    }

    #[test]
    fn a_small_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 10 * 1024 * 1024];
        let mut bomb = BytesMut::new();
        compress(Encoding::Gzip, &zeros, &mut bomb).unwrap();
        assert!(bomb.len() < 20 * 1024, "{} bytes", bomb.len());
        let err = decompress(Encoding::Gzip, &bomb, 1024 * 1024).unwrap_err();
        assert_eq!(err.code(), crate::Code::ResourceExhausted);
        assert_eq!(
            decompress(Encoding::Gzip, &bomb, zeros.len())
                .unwrap()
                .len(),
            zeros.len()
        );
    }

    #[test]
    fn garbage_is_internal() {
        for e in [Encoding::Gzip, Encoding::Deflate] {
            assert_eq!(
                decompress(e, b"not compressed at all", 1000)
                    .unwrap_err()
                    .code(),
                crate::Code::Internal
            );
        }
    }

    #[test]
    fn negotiation_never_sends_what_the_peer_cannot_read() {
        let gzip_only = AcceptEncodings::parse(b"gzip");
        let g = Some(Encoding::Gzip);
        let d = Some(Encoding::Deflate);
        assert_eq!(response_encoding(g, None, gzip_only), g);
        assert_eq!(response_encoding(None, g, gzip_only), g);
        assert_eq!(response_encoding(d, g, gzip_only), None);
        assert_eq!(response_encoding(g, None, AcceptEncodings::NONE), None);
        let peer = PeerAccepts::new();
        assert_eq!(peer.request_encoding(d), d, "unknown: try");
        peer.learn(gzip_only);
        assert_eq!(peer.request_encoding(d), None);
        assert_eq!(peer.request_encoding(g), g);
        assert_eq!(peer.request_encoding(None), None);
        let switch = CompressionSwitch::new(false);
        let c = Compression {
            switch: Some(switch.clone()),
            ..Compression::default()
        };
        assert_eq!(c.for_next_message(g), None);
        switch.set(true);
        assert_eq!(c.for_next_message(g), g);
    }

    #[test]
    fn names_and_accept_lists_parse() {
        assert_eq!(Encoding::parse(b"gzip"), Ok(Some(Encoding::Gzip)));
        assert_eq!(Encoding::parse(b"deflate"), Ok(Some(Encoding::Deflate)));
        assert_eq!(Encoding::parse(b"identity"), Ok(None));
        assert_eq!(Encoding::parse(b"snappy"), Err(UnsupportedEncoding));
        let a = AcceptEncodings::parse(b"identity, gzip ,br");
        assert!(a.contains(Encoding::Gzip) && !a.contains(Encoding::Deflate));
        assert_eq!(
            AcceptEncodings::parse(ACCEPT_ENCODING.as_bytes()),
            AcceptEncodings::ALL
        );
        assert_eq!(AcceptEncodings::parse(b""), AcceptEncodings::NONE);
    }
}
