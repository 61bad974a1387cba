//! `RawMessage`: an encoded protobuf message carried as bytes, so that h2grpc's typed
//! call API (`M: prost::Message + Default`) can send and receive messages whose type is
//! known only at run time (the `h2grpc` tool's prost-reflect `DynamicMessage`s), and so
//! that a load run encodes each request once (cloning one bumps a count). The one
//! raw-bytes message of the workspace: the bench engine and the `h2grpc` tool share it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use h2grpc::prost::DecodeError;
use h2grpc::prost::encoding::{DecodeContext, WireType, decode_varint, encode_key, encode_varint};

/// One message's protobuf encoding, passed through untouched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawMessage(pub Bytes);

impl h2grpc::prost::Message for RawMessage {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    /// Keeps one field as it was encoded. Only prost's default `merge` calls this, and
    /// [`RawMessage::merge`] replaces that; it is here for completeness (groups, long
    /// deprecated, are refused).
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        _ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let mut out = BytesMut::from(&self.0[..]);
        encode_key(tag, wire_type, &mut out);
        let fixed = match wire_type {
            WireType::Varint => {
                encode_varint(decode_varint(buf)?, &mut out);
                0
            }
            WireType::ThirtyTwoBit => 4,
            WireType::SixtyFourBit => 8,
            WireType::LengthDelimited => {
                let len = decode_varint(buf)?;
                encode_varint(len, &mut out);
                usize::try_from(len).map_err(|_| decode_error("buffer underflow"))?
            }
            WireType::StartGroup | WireType::EndGroup => {
                return Err(decode_error("groups are not supported"));
            }
        };
        if buf.remaining() < fixed {
            return Err(decode_error("buffer underflow"));
        }
        out.put(buf.take(fixed));
        self.0 = out.freeze();
        Ok(())
    }

    fn merge(&mut self, mut buf: impl Buf) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            self.0 = buf.copy_to_bytes(buf.remaining());
        } else {
            let mut out = BytesMut::from(&self.0[..]);
            out.put(&mut buf);
            self.0 = out.freeze();
        }
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// prost offers no other public constructor for a `DecodeError` with a description.
#[allow(deprecated)]
fn decode_error(what: &'static str) -> DecodeError {
    DecodeError::new(what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use h2grpc::prost::Message;

    #[test]
    fn bytes_pass_through_both_ways() {
        let encoded = Bytes::from_static(&[0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i']);
        let raw = RawMessage::decode(encoded.clone()).unwrap();
        assert_eq!(raw.0, encoded);
        assert_eq!(raw.encode_to_vec(), encoded.to_vec());
        assert_eq!(raw.encoded_len(), encoded.len());
    }

    #[test]
    fn merge_field_copies_each_wire_type_and_refuses_truncation() {
        let mut raw = RawMessage::default();
        let mut varint: &[u8] = &[0x96, 0x01];
        raw.merge_field(1, WireType::Varint, &mut varint, DecodeContext::default())
            .unwrap();
        let mut delimited: &[u8] = &[0x02, b'h', b'i'];
        raw.merge_field(
            2,
            WireType::LengthDelimited,
            &mut delimited,
            DecodeContext::default(),
        )
        .unwrap();
        assert_eq!(&raw.0[..], &[0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i']);
        let mut short: &[u8] = &[0x05, b'h'];
        assert!(
            raw.merge_field(
                3,
                WireType::LengthDelimited,
                &mut short,
                DecodeContext::default()
            )
            .is_err()
        );
    }
}
