//! What one call sends and expects, for any method: its path and kind, the request messages
//! encoded once and shared by every call, the metadata and deadline of each call, and a
//! response type that checks the wire form and counts bytes without building the message.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut};
use h2grpc::Metadata;
use h2grpc::http::uri::PathAndQuery;
use h2grpc::prost::encoding::{DecodeContext, WireType, key_len, skip_field};
use h2grpc::prost::{DecodeError, Message};

use crate::raw::RawMessage;

/// The four call kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// One request, one response.
    Unary,
    /// `--messages` requests on one call, one response.
    ClientStream,
    /// One request, a stream of responses.
    ServerStream,
    /// Requests and responses on one call.
    Bidi,
}

impl Kind {
    /// The kind of a method that streams requests (`client`) and/or responses (`server`).
    pub fn of(client: bool, server: bool) -> Kind {
        match (client, server) {
            (false, false) => Kind::Unary,
            (true, false) => Kind::ClientStream,
            (false, true) => Kind::ServerStream,
            (true, true) => Kind::Bidi,
        }
    }

    /// True for the kinds whose calls carry several requests.
    pub fn streams_requests(self) -> bool {
        matches!(self, Kind::ClientStream | Kind::Bidi)
    }

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Unary => "unary",
            Kind::ClientStream => "client-stream",
            Kind::ServerStream => "server-stream",
            Kind::Bidi => "bidi",
        }
    }
}

/// A response whose fields are checked (valid protobuf wire form) and skipped, not stored;
/// it keeps only its encoded length.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Skipped {
    /// Bytes of the encoded message.
    pub len: usize,
}

impl Message for Skipped {
    fn encode_raw(&self, _buf: &mut impl BufMut) {}

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let before = buf.remaining();
        skip_field(wire_type, tag, buf, ctx)?;
        self.len += key_len(tag) + before - buf.remaining();
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        0
    }

    fn clear(&mut self) {
        self.len = 0;
    }
}

/// Everything a call needs, built once before the run.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The service called, for the report (`pkg.Service`).
    pub service: String,
    /// The call kind.
    pub kind: Kind,
    /// The method's path.
    pub path: PathAndQuery,
    /// The request messages, never empty. Unary and server-streaming calls send the first;
    /// a client-streaming or bidi call sends them in turn, starting over after the last.
    pub requests: Arc<[RawMessage]>,
    /// Requests per client-streaming or bidi call; 0: until the run ends.
    pub messages: u64,
    /// Pause between two requests of a streaming call.
    pub interval: Duration,
    /// Metadata sent with every call.
    pub metadata: Metadata,
    /// The deadline of every call (sent as grpc-timeout and enforced by the channel).
    pub timeout: Option<Duration>,
}

impl Workload {
    /// Calls of `kind` to `path` of `service`, sending `requests` (an empty list: one empty
    /// message), `messages` per streaming call, no pause, metadata or deadline.
    pub fn new(
        service: impl Into<String>,
        kind: Kind,
        path: PathAndQuery,
        requests: Vec<RawMessage>,
        messages: u64,
    ) -> Workload {
        let requests: Arc<[RawMessage]> = if requests.is_empty() {
            Arc::new([RawMessage::default()])
        } else {
            requests.into()
        };
        Workload {
            service: service.into(),
            kind,
            path,
            requests,
            messages,
            interval: Duration::ZERO,
            metadata: Metadata::new(),
            timeout: None,
        }
    }

    /// The request of a unary or server-streaming call (the first of the list).
    pub fn first(&self) -> &RawMessage {
        &self.requests[0]
    }

    /// The bytes of a request, on average over the list.
    pub fn request_bytes(&self) -> usize {
        self.requests.iter().map(|r| r.0.len()).sum::<usize>() / self.requests.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn encoded_message_goes_out_as_it_is() {
        let bytes = Bytes::from_static(&[0x08, 0x01, 0x12, 0x02, b'h', b'i']);
        let wire = RawMessage(bytes.clone()).encode_to_vec();
        assert_eq!(wire, bytes.to_vec());
    }

    #[test]
    fn skipped_counts_a_valid_message_and_rejects_a_truncated_field() {
        // Field 2, length-delimited, claims 5 bytes but carries 2.
        let bad = [0x12u8, 5, b'a', b'b'];
        assert!(Skipped::decode(&bad[..]).is_err());
        // Field 1 varint 300, field 2 "ok".
        let good = [0x08u8, 0xac, 0x02, 0x12, 2, b'o', b'k'];
        let skipped = Skipped::decode(&good[..]).expect("valid");
        assert_eq!(skipped.len, good.len());
    }

    #[test]
    fn an_empty_request_list_sends_one_empty_message() {
        let work = Workload::new(
            "s.S",
            Kind::Unary,
            PathAndQuery::from_static("/s.S/M"),
            Vec::new(),
            1,
        );
        assert_eq!(&work.requests[..], &[RawMessage::default()]);
        assert_eq!(work.request_bytes(), 0);
    }

    #[test]
    fn kinds_follow_the_streaming_flags() {
        assert_eq!(Kind::of(false, false), Kind::Unary);
        assert_eq!(Kind::of(true, false), Kind::ClientStream);
        assert_eq!(Kind::of(false, true), Kind::ServerStream);
        assert_eq!(Kind::of(true, true), Kind::Bidi);
        assert!(Kind::Bidi.streams_requests() && !Kind::ServerStream.streams_requests());
    }
}
