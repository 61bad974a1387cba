//! PLACEHOLDER until the HTTP/1.1 transport lands: the types `exchange.rs` names.
#![allow(dead_code)]
use std::task::{Context, Poll};

use bytes::Bytes;

#[derive(Debug)]
pub(crate) struct Error;
impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HTTP/1.1 error")
    }
}
pub(crate) struct RecvBody;
impl RecvBody {
    pub fn poll_data(&mut self, _: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        Poll::Ready(None)
    }
}
pub(crate) struct Respond;
impl Respond {
    pub fn send_response(&mut self, _: http::Response<()>, _: bool) -> Result<SendBody, Error> {
        Err(Error)
    }
    pub fn poll_reset(&mut self, _: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}
pub(crate) struct SendBody;
impl SendBody {
    pub fn reserve_capacity(&mut self, _: usize) {}
    pub fn capacity(&self) -> usize {
        0
    }
    pub fn poll_capacity(&mut self, _: &mut Context<'_>) -> Poll<Option<Result<usize, Error>>> {
        Poll::Ready(None)
    }
    pub fn send_data(&mut self, _: Bytes, _: bool) -> Result<(), Error> {
        Err(Error)
    }
    pub fn poll_reset(&mut self, _: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
    pub fn send_reset(&mut self) {}
}
