//! Raw HTTP/2 for hostile tests: frames written and read as bytes, a header block encoder
//! that needs no state (HPACK literals only), a client connection that sends whatever it
//! is given and reads frames back, and a flood writer that never reads. For what the `h2`
//! crate's client refuses to send: streams past the limit, floods, resets by the
//! thousand, broken frames, garbage in place of the preface.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types (RFC 9113 §6).
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

/// Frame flags.
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// Setting identifiers (RFC 9113 §6.5.2).
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// The length of a frame header.
pub const FRAME_HEADER_LEN: usize = 9;

/// One frame as read off the wire.
#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Bytes,
}

impl Frame {
    /// The error code of an RST_STREAM or GOAWAY frame.
    pub fn error_code(&self) -> h2::Reason {
        let at = if self.kind == GOAWAY { 4 } else { 0 };
        let code = u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap());
        h2::Reason::from(code)
    }

    /// The debug data of a GOAWAY frame.
    pub fn debug_data(&self) -> String {
        String::from_utf8_lossy(&self.payload[8..]).into_owned()
    }
}

/// A frame of type `kind` with `flags` on `stream`, carrying `payload`, as bytes.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK integer with an `n`-bit prefix, the first byte's other bits set to `flags`.
pub fn hpack_int(out: &mut Vec<u8>, n: u32, flags: u8, value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// A header block of literal fields without indexing (no Huffman, no table): valid HPACK
/// that needs no encoder state.
pub fn hpack(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        hpack_int(&mut out, 7, 0, name.len());
        out.extend_from_slice(name.as_bytes());
        hpack_int(&mut out, 7, 0, value.len());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// A HEADERS frame opening a well-formed gRPC request on `stream`.
pub fn request_headers(stream: u32, path: &str, end_stream: bool) -> Vec<u8> {
    let block = hpack(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]);
    let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
    frame(HEADERS, flags, stream, &block)
}

/// An RST_STREAM frame resetting `stream` with `reason`.
pub fn rst_stream(stream: u32, reason: h2::Reason) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &u32::from(reason).to_be_bytes())
}

/// A raw HTTP/2 client connection.
pub struct RawConn {
    read: OwnedReadHalf,
    write: Option<OwnedWriteHalf>,
    buf: BytesMut,
}

impl RawConn {
    /// Connect and write `first` (the preface, or garbage in its place).
    pub async fn connect(addr: SocketAddr, first: &[u8]) -> RawConn {
        let socket = TcpStream::connect(addr).await.expect("connect");
        let (read, mut write) = socket.into_split();
        write.write_all(first).await.expect("write");
        RawConn {
            read,
            write: Some(write),
            buf: BytesMut::new(),
        }
    }

    /// Connect, send the preface and an empty SETTINGS, wait for the server's SETTINGS
    /// and acknowledge them; returns the connection and the server's settings.
    pub async fn handshake(addr: SocketAddr) -> (RawConn, Vec<(u16, u32)>) {
        let first = [PREFACE, &frame(SETTINGS, 0, 0, &[])].concat();
        let mut conn = RawConn::connect(addr, &first).await;
        let settings = conn
            .expect_frame("the server's SETTINGS", |f| {
                f.kind == SETTINGS && f.flags & ACK == 0
            })
            .await;
        let settings = settings
            .payload
            .chunks(6)
            .map(|s| {
                (
                    u16::from_be_bytes([s[0], s[1]]),
                    u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
                )
            })
            .collect();
        conn.send(&frame(SETTINGS, ACK, 0, &[])).await;
        (conn, settings)
    }

    /// Writes `bytes` as they are.
    pub async fn send(&mut self, bytes: &[u8]) {
        let write = self.write.as_mut().expect("writer taken");
        write.write_all(bytes).await.expect("write");
    }

    /// The writing half, for a [`flood`]; [`send`](RawConn::send) panics afterwards.
    pub fn take_writer(&mut self) -> OwnedWriteHalf {
        self.write.take().expect("writer taken")
    }

    /// The next frame, or `None` once the server closed the connection (or reset it).
    pub async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if self.buf.len() >= FRAME_HEADER_LEN {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() >= FRAME_HEADER_LEN + len {
                    let head = self.buf.split_to(FRAME_HEADER_LEN);
                    let payload = self.buf.split_to(len).freeze();
                    return Some(Frame {
                        kind: head[3],
                        flags: head[4],
                        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]])
                            & 0x7fff_ffff,
                        payload,
                    });
                }
            }
            match self.read.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Read frames until one matches `want`; fails if the connection ends first.
    pub async fn expect_frame(&mut self, what: &str, want: impl Fn(&Frame) -> bool) -> Frame {
        let mut seen = Vec::new();
        loop {
            match self.next_frame().await {
                Some(f) if want(&f) => return f,
                Some(f) => seen.push((f.kind, f.flags, f.stream)),
                None => panic!(
                    "connection ended before {what}; frames seen (type, flags, stream): {seen:?}"
                ),
            }
        }
    }

    /// Every frame until the server closes the connection.
    pub async fn frames_until_closed(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(f) = self.next_frame().await {
            frames.push(f);
        }
        frames
    }
}

/// Write `unit` over and over (up to `total` bytes) without ever reading; counts what
/// got written. The task ends when the server closes or `total` is reached.
pub fn flood(
    write: OwnedWriteHalf,
    unit: Vec<u8>,
    total: usize,
) -> (Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let written = Arc::new(AtomicUsize::new(0));
    let count = written.clone();
    let task = tokio::spawn(async move {
        let mut write = write;
        let batch: Vec<u8> = unit.repeat((64 * 1024 / unit.len()).max(1));
        while count.load(Ordering::Relaxed) < total {
            if write.write_all(&batch).await.is_err() {
                return;
            }
            count.fetch_add(batch.len(), Ordering::Relaxed);
        }
    });
    (written, task)
}
