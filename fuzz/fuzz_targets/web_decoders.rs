//! Fuzz target: the web protocols' decoders, through `h2grpc::__fuzz::web_decoders`. The
//! first input byte picks how the rest is cut up, the receive limit and the encoding.
//! - gRPC-Web text (`TextDecoder`): the body decoded whole and decoded in pieces gives
//!   the same bytes, or is refused both ways; at most three characters are carried; our
//!   own padded chunks read back across any cut.
//! - Connect GET (`connect_get_message`): any query reads without panicking into a message
//!   no longer than itself; a message sent in base64url (padded or not) or
//!   percent-encoded reads back exactly.
//! - `Wire::classify`: any content type, any method; a GET is only a Connect GET; a
//!   call's response content type classifies back to its wire form; upper case classifies
//!   the same.
//! - `framing::Decoder` on a whole body (Connect unary): never holds more than the limit,
//!   refuses as soon as the body is over it, and otherwise hands out exactly the body, once.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    h2grpc::__fuzz::web_decoders(data);
});
