//! The framing layer: gRPC Length-Prefixed-Messages (1-byte compressed flag, 4-byte
//! big-endian length, payload). `encode` writes prefix and protobuf into one buffer;
//! `Decoder` takes DATA frame payloads as they come and yields whole messages,
//! checking every declared length against the receive limit before buffering.
//! Pure: no I/O.

use std::cell::RefCell;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::compression::{self, Encoding};
use crate::status::Status;

/// Bytes before each message: the compressed flag and the 4-byte length.
pub const HEADER_LEN: usize = 5;
/// Default limit, in bytes, on one received message (what grpc-go and grpcio use).
pub const DEFAULT_MAX_RECEIVE_MESSAGE_SIZE: usize = 4 * 1024 * 1024;
/// Default limit, in bytes, on one sent message (the format's own limit).
pub const DEFAULT_MAX_SEND_MESSAGE_SIZE: usize = u32::MAX as usize;
/// Bytes the per-thread encode arena allocates at a time; smaller messages share it.
const ARENA_CHUNK_BYTES: usize = 16 * 1024;

/// Scratch buffers larger than this are freed after use rather than kept per thread.
const SCRATCH_KEEP_BYTES: usize = 1024 * 1024;

thread_local! {
    /// Small messages are encoded into slices of one shared allocation, so the
    /// per-message path allocates once per ~16 KiB rather than once per message.
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
    /// Where a message is serialized before it is compressed.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn check_send_size(len: usize, max_size: usize) -> Result<(), Status> {
    if len > max_size.min(DEFAULT_MAX_SEND_MESSAGE_SIZE) {
        return Err(Status::resource_exhausted(format!(
            "message of {len} bytes is larger than the send limit of {max_size} bytes"
        )));
    }
    Ok(())
}

/// Encode `message` compressed with `encoding` when given (flag 1), or as [`encode`] does.
pub fn encode_with<M: prost::Message>(
    message: &M,
    max_size: usize,
    encoding: Option<Encoding>,
) -> Result<Bytes, Status> {
    let Some(encoding) = encoding else {
        return encode(message, max_size);
    };
    check_send_size(message.encoded_len(), max_size)?;
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        scratch.clear();
        message.encode_raw(&mut *scratch);
        let mut out = BytesMut::with_capacity(HEADER_LEN + scratch.len() / 2 + 64);
        out.put_u8(1);
        out.put_u32(0);
        let compressed = compression::compress(encoding, &scratch, &mut out);
        if scratch.capacity() > SCRATCH_KEEP_BYTES {
            *scratch = Vec::new();
        }
        compressed?;
        let len = u32::try_from(out.len() - HEADER_LEN)
            .map_err(|_| Status::resource_exhausted("compressed message is larger than 4 GiB"))?;
        out[1..HEADER_LEN].copy_from_slice(&len.to_be_bytes());
        Ok(out.freeze())
    })
}

/// Encode `message` as one Length-Prefixed-Message (flag 0), prefix and payload in one
/// buffer. Fails with `RESOURCE_EXHAUSTED` when it is larger than `max_size` bytes.
pub fn encode<M: prost::Message>(message: &M, max_size: usize) -> Result<Bytes, Status> {
    let len = message.encoded_len();
    check_send_size(len, max_size)?;
    let total = HEADER_LEN + len;
    let write = |buf: &mut BytesMut| {
        buf.put_u8(0);
        buf.put_u32(len as u32);
        message.encode_raw(buf);
        buf.split().freeze()
    };
    if total > ARENA_CHUNK_BYTES / 4 {
        return Ok(write(&mut BytesMut::with_capacity(total)));
    }
    Ok(ARENA.with(|arena| {
        let mut arena = arena.borrow_mut();
        if arena.capacity() < total {
            *arena = BytesMut::with_capacity(ARENA_CHUNK_BYTES);
        }
        write(&mut arena)
    }))
}

/// Frame an already serialized payload (a JSON message): the prefix, and the payload
/// compressed with `encoding` when given (flag 1).
pub(crate) fn frame_payload(
    payload: &[u8],
    max_size: usize,
    encoding: Option<Encoding>,
) -> Result<Bytes, Status> {
    check_send_size(payload.len(), max_size)?;
    let mut out = BytesMut::with_capacity(HEADER_LEN + payload.len());
    out.put_u8(u8::from(encoding.is_some()));
    out.put_u32(0);
    match encoding {
        Some(encoding) => compression::compress(encoding, payload, &mut out)?,
        None => out.put_slice(payload),
    }
    let len = u32::try_from(out.len() - HEADER_LEN)
        .map_err(|_| Status::resource_exhausted("message is larger than 4 GiB"))?;
    out[1..HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    Ok(out.freeze())
}

/// A payload without prefix, compressed whole with `encoding` when given (a Connect
/// unary body).
pub(crate) fn whole_payload(
    payload: Bytes,
    max_size: usize,
    encoding: Option<Encoding>,
) -> Result<Bytes, Status> {
    check_send_size(payload.len(), max_size)?;
    let Some(encoding) = encoding else {
        return Ok(payload);
    };
    let mut out = BytesMut::with_capacity(payload.len() / 2 + 64);
    compression::compress(encoding, &payload, &mut out)?;
    Ok(out.freeze())
}

/// Decode a protobuf payload; failure is `INTERNAL`, as the spec says for parse errors.
#[inline]
pub fn decode_payload<M: prost::Message + Default>(payload: Bytes) -> Result<M, Status> {
    M::decode(payload)
        .map_err(|e| Status::internal(format!("failed to decode protobuf message: {e}")))
}

/// One received message, its payload not yet decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The compressed flag was set.
    pub compressed: bool,
    /// The payload, without the 5-byte prefix.
    pub data: Bytes,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Header,
    Body { compressed: bool, len: usize },
}

/// Incremental decoder of Length-Prefixed-Messages.
///
/// Push each DATA frame payload with [`Decoder::push`], then call [`Decoder::decode`]
/// until it returns `Ok(None)`. A message wholly inside one payload is handed out as a
/// slice of it, without copying; only a message spanning payloads is gathered into a
/// buffer, which grows with the bytes received, never with the declared length.
#[derive(Debug)]
pub struct Decoder {
    max_message_size: usize,
    /// The stream's `grpc-encoding`, for messages with the compressed flag.
    encoding: Option<Encoding>,
    state: State,
    /// The unconsumed rest of the last pushed payload.
    pending: Bytes,
    /// The start of a prefix or message that spans payloads.
    partial: BytesMut,
    /// The body is one message without a prefix (a Connect unary request): it is
    /// gathered whole and handed out at [`Decoder::end`].
    whole: bool,
    /// A whole body that ended (its message waits in `partial` to be handed out).
    ended: bool,
    /// Messages are JSON of this type, turned into protobuf before decoding.
    json: Option<Box<crate::protocol::json::MessageJson>>,
}

impl Decoder {
    /// A decoder refusing messages over `max_message_size` bytes (compressed or not);
    /// `encoding` is the stream's `grpc-encoding` (`None`: identity, and then the
    /// compressed flag is an error).
    pub fn new(max_message_size: usize, encoding: Option<Encoding>) -> Decoder {
        Decoder {
            max_message_size,
            encoding,
            state: State::Header,
            pending: Bytes::new(),
            partial: BytesMut::new(),
            whole: false,
            ended: false,
            json: None,
        }
    }

    /// A decoder for a call's wire form: with `whole`, the body is one message without
    /// a prefix (Connect unary), compressed whole when there is an encoding; with `json`,
    /// messages are JSON of that type.
    #[inline(always)]
    pub(crate) fn for_wire(
        max_message_size: usize,
        encoding: Option<Encoding>,
        whole: bool,
        json: Option<crate::protocol::json::MessageJson>,
    ) -> Decoder {
        Decoder {
            max_message_size,
            encoding,
            state: State::Header,
            pending: Bytes::new(),
            partial: BytesMut::new(),
            whole,
            ended: false,
            json: json.map(Box::new),
        }
    }

    /// Add the next received bytes.
    pub fn push(&mut self, chunk: Bytes) {
        if self.pending.is_empty() {
            self.pending = chunk;
        } else if !chunk.is_empty() {
            // Only when the caller pushes before draining: join the two (one copy).
            let mut joined = BytesMut::with_capacity(self.pending.len() + chunk.len());
            joined.put_slice(&self.pending);
            joined.put_slice(&chunk);
            self.pending = joined.freeze();
        }
    }

    /// Bytes held that are not yet part of a returned message.
    pub fn buffered(&self) -> usize {
        self.pending.len() + self.partial.len()
    }

    /// The next whole message, `Ok(None)` when more bytes are needed.
    pub fn decode(&mut self) -> Result<Option<Message>, Status> {
        if self.whole {
            return self.decode_whole();
        }
        loop {
            match self.state {
                State::Header => {
                    let header: [u8; HEADER_LEN] =
                        if self.partial.is_empty() && self.pending.len() >= HEADER_LEN {
                            let mut h = [0; HEADER_LEN];
                            self.pending.copy_to_slice(&mut h);
                            h
                        } else {
                            self.gather(HEADER_LEN);
                            if self.partial.len() < HEADER_LEN {
                                return Ok(None);
                            }
                            let mut h = [0; HEADER_LEN];
                            h.copy_from_slice(&self.partial[..HEADER_LEN]);
                            self.partial.clear();
                            h
                        };
                    let compressed = match header[0] {
                        0 => false,
                        1 if self.encoding.is_some() => true,
                        1 => {
                            return Err(Status::internal(
                                "compressed flag set on a message but no grpc-encoding was negotiated",
                            ));
                        }
                        flag => {
                            return Err(Status::internal(format!(
                                "invalid compressed flag {flag} on a message (must be 0 or 1)"
                            )));
                        }
                    };
                    let len =
                        u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
                    if len > self.max_message_size {
                        return Err(Status::resource_exhausted(format!(
                            "received message of {len} bytes is larger than the limit of {} bytes",
                            self.max_message_size
                        )));
                    }
                    self.state = State::Body { compressed, len };
                }
                State::Body { compressed, len } => {
                    let data = if self.partial.is_empty() && self.pending.len() >= len {
                        self.pending.split_to(len)
                    } else {
                        self.gather(len);
                        if self.partial.len() < len {
                            return Ok(None);
                        }
                        self.partial.split().freeze()
                    };
                    self.state = State::Header;
                    return Ok(Some(Message { compressed, data }));
                }
            }
        }
    }

    /// The next whole message decompressed and decoded as `M`, with whether it arrived
    /// compressed; `Ok(None)` when more bytes are needed. Every limit holds: the declared
    /// length before buffering, and the decompressed size while inflating.
    pub fn decode_message<M: prost::Message + Default>(
        &mut self,
    ) -> Result<Option<(M, bool)>, Status> {
        let Some(message) = self.decode()? else {
            return Ok(None);
        };
        let payload = match self.encoding {
            // `decode` refuses a set flag when there is no encoding.
            Some(encoding) if message.compressed => {
                compression::decompress(encoding, &message.data, self.max_message_size)?
            }
            _ => message.data,
        };
        let message_compressed = message.compressed;
        if let Some(json) = &self.json {
            let mut proto = Vec::with_capacity(payload.len());
            json.to_proto(&payload, &mut proto)?;
            return Ok(Some((
                decode_payload(Bytes::from(proto))?,
                message_compressed,
            )));
        }
        Ok(Some((decode_payload(payload)?, message_compressed)))
    }

    /// A whole body (see [`Decoder::whole_body`]): nothing until [`Decoder::end`], and
    /// never more than the receive limit held.
    fn decode_whole(&mut self) -> Result<Option<Message>, Status> {
        if self.ended {
            if self.state_taken() {
                return Ok(None);
            }
            let data = self.partial.split().freeze();
            return Ok(Some(Message {
                compressed: self.encoding.is_some(),
                data,
            }));
        }
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.partial.extend_from_slice(&pending);
        }
        if self.partial.len() > self.max_message_size {
            return Err(Status::resource_exhausted(format!(
                "received message of more than {} bytes is larger than the limit of {} bytes",
                self.partial.len(),
                self.max_message_size
            )));
        }
        Ok(None)
    }

    /// Whether the one message of an ended whole body was handed out (marked by moving
    /// the state off `Header`, which a whole body does not otherwise use).
    fn state_taken(&mut self) -> bool {
        if matches!(self.state, State::Body { .. }) {
            return true;
        }
        self.state = State::Body {
            compressed: false,
            len: 0,
        };
        false
    }

    /// Whether the body is one message without a prefix (see [`Decoder::for_wire`]).
    #[inline]
    pub(crate) fn is_whole(&self) -> bool {
        self.whole
    }

    /// The body ended: check it ended on a message boundary, and, for a whole body, make
    /// its one message ready for [`Decoder::decode`].
    #[inline]
    pub(crate) fn end(&mut self) -> Result<(), Status> {
        if !self.whole {
            return self.finish();
        }
        self.decode_whole()?;
        self.ended = true;
        Ok(())
    }

    /// Check that the stream ended on a message boundary.
    #[inline]
    pub fn finish(&self) -> Result<(), Status> {
        if self.whole {
            return Ok(());
        }
        match self.state {
            State::Header if self.buffered() == 0 => Ok(()),
            State::Header => Err(Status::internal(format!(
                "stream ended inside a message prefix ({} of {HEADER_LEN} bytes)",
                self.buffered()
            ))),
            State::Body { len, .. } => Err(Status::internal(format!(
                "stream ended inside a message ({} of {len} bytes received)",
                self.buffered()
            ))),
        }
    }

    /// Move bytes from `pending` into `partial` until `partial` holds `want` bytes.
    fn gather(&mut self, want: usize) {
        let take = want
            .saturating_sub(self.partial.len())
            .min(self.pending.len());
        self.partial.extend_from_slice(&self.pending[..take]);
        self.pending.advance(take);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(flag: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![flag];
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn decode_all(d: &mut Decoder, chunks: &[&[u8]]) -> Result<Vec<Message>, Status> {
        let mut out = Vec::new();
        for c in chunks {
            d.push(Bytes::copy_from_slice(c));
            while let Some(m) = d.decode()? {
                out.push(m);
            }
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn several_messages_in_one_chunk_including_empty() {
        let mut wire = message(0, b"hello");
        wire.extend(message(0, b""));
        wire.extend(message(0, b"world!"));
        let mut d = Decoder::new(100, None);
        let got = decode_all(&mut d, &[&wire]).unwrap();
        let payloads: Vec<&[u8]> = got.iter().map(|m| &m.data[..]).collect();
        assert_eq!(payloads, [&b"hello"[..], b"", b"world!"]);
    }

    #[test]
    fn a_message_split_at_every_byte_boundary() {
        let mut wire = message(0, b"split me please");
        wire.extend(message(0, b""));
        wire.extend(message(0, b"x"));
        for cut1 in 0..wire.len() {
            for cut2 in cut1..wire.len() {
                let mut d = Decoder::new(100, None);
                let got =
                    decode_all(&mut d, &[&wire[..cut1], &wire[cut1..cut2], &wire[cut2..]]).unwrap();
                assert_eq!(got.len(), 3, "cuts {cut1} {cut2}");
                assert_eq!(&got[0].data[..], b"split me please");
                assert_eq!(&got[1].data[..], b"");
                assert_eq!(&got[2].data[..], b"x");
            }
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let wire = message(0, &[7u8; 300]);
        let mut d = Decoder::new(1000, None);
        let chunks: Vec<&[u8]> = wire.chunks(1).collect();
        let got = decode_all(&mut d, &chunks).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data.len(), 300);
    }

    #[test]
    fn pushing_twice_without_draining_keeps_order() {
        let mut d = Decoder::new(100, None);
        let wire = [message(0, b"ab"), message(0, b"cd")].concat();
        d.push(Bytes::copy_from_slice(&wire[..4]));
        d.push(Bytes::copy_from_slice(&wire[4..]));
        assert_eq!(&d.decode().unwrap().unwrap().data[..], b"ab");
        assert_eq!(&d.decode().unwrap().unwrap().data[..], b"cd");
        assert!(d.decode().unwrap().is_none());
    }

    #[test]
    fn oversize_is_resource_exhausted_before_buffering() {
        let mut d = Decoder::new(10, None);
        d.push(Bytes::from_static(&[0, 0xff, 0xff, 0xff, 0xff]));
        let err = d.decode().unwrap_err();
        assert_eq!(err.code(), crate::Code::ResourceExhausted);
        assert!(
            d.partial.capacity() < 64,
            "nothing allocated for the declared length"
        );
        let mut d = Decoder::new(10, None);
        assert_eq!(
            decode_all(&mut d, &[&message(0, &[1; 10])]).unwrap().len(),
            1
        );
        let mut d = Decoder::new(10, None);
        assert_eq!(
            decode_all(&mut d, &[&message(0, &[1; 11])])
                .unwrap_err()
                .code(),
            crate::Code::ResourceExhausted
        );
    }

    #[test]
    fn bad_flags_are_internal() {
        let mut d = Decoder::new(100, None);
        let err = decode_all(&mut d, &[&message(1, b"x")]).unwrap_err();
        assert_eq!(err.code(), crate::Code::Internal);
        assert!(err.message().contains("no grpc-encoding"));
        let mut d = Decoder::new(100, Some(Encoding::Gzip));
        assert!(decode_all(&mut d, &[&message(1, b"x")]).unwrap()[0].compressed);
        for flag in [2u8, 0x80, 0xff] {
            let mut d = Decoder::new(100, Some(Encoding::Gzip));
            assert_eq!(
                decode_all(&mut d, &[&message(flag, b"x")])
                    .unwrap_err()
                    .code(),
                crate::Code::Internal
            );
        }
    }

    #[test]
    fn truncated_streams_are_internal() {
        let wire = message(0, b"truncated");
        for cut in 1..wire.len() {
            let mut d = Decoder::new(100, None);
            let err = decode_all(&mut d, &[&wire[..cut]]).unwrap_err();
            assert_eq!(err.code(), crate::Code::Internal, "cut at {cut}");
        }
        let mut d = Decoder::new(100, None);
        assert!(decode_all(&mut d, &[]).unwrap().is_empty());
    }

    #[test]
    fn compressed_encoding_sets_the_flag_and_round_trips() {
        let msg = "squeeze me ".repeat(100);
        for e in [Encoding::Gzip, Encoding::Deflate] {
            let wire = encode_with(&msg, usize::MAX, Some(e)).unwrap();
            assert_eq!(wire[0], 1);
            assert!(wire.len() < 200, "{}", wire.len());
            // One step: limit, decompression and protobuf decoding.
            let mut d = Decoder::new(10_000, Some(e));
            d.push(wire.clone());
            assert_eq!(
                d.decode_message::<String>().unwrap(),
                Some((msg.clone(), true))
            );
            // The limit holds on the inflated size too.
            let mut d = Decoder::new(200, Some(e));
            d.push(wire);
            let err = d.decode_message::<String>().unwrap_err();
            assert_eq!(err.code(), crate::Code::ResourceExhausted);
        }
        assert_eq!(encode_with(&msg, usize::MAX, None).unwrap()[0], 0);
        assert_eq!(
            encode_with(&msg, 10, Some(Encoding::Gzip))
                .unwrap_err()
                .code(),
            crate::Code::ResourceExhausted
        );
    }

    #[test]
    fn encode_writes_prefix_and_payload_and_round_trips() {
        let msg = String::from("héllo");
        let wire = encode(&msg, usize::MAX).unwrap();
        assert_eq!(wire[0], 0);
        assert_eq!(
            u32::from_be_bytes(wire[1..5].try_into().unwrap()) as usize,
            wire.len() - 5
        );
        let mut d = Decoder::new(100, None);
        d.push(wire);
        let m = d.decode().unwrap().unwrap();
        assert_eq!(decode_payload::<String>(m.data).unwrap(), msg);
        assert_eq!(
            encode(&msg, 3).unwrap_err().code(),
            crate::Code::ResourceExhausted
        );
        let big = "z".repeat(100_000);
        let wire = encode(&big, usize::MAX).unwrap();
        assert_eq!(wire.len(), 5 + big.encoded_len_for_test());
    }

    trait EncodedLen {
        fn encoded_len_for_test(&self) -> usize;
    }
    impl EncodedLen for String {
        fn encoded_len_for_test(&self) -> usize {
            prost::Message::encoded_len(self)
        }
    }
}
