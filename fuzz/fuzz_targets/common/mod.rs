//! Shared by the end-to-end targets: an I/O wrapper that chops reads into sizes drawn
//! from the input, a trivial `demo.GRPCDemo` service, and the runtime every input runs on.
#![allow(dead_code)]

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream;
use h2grpc_demo::pb::grpc_demo_server::GrpcDemo;
use h2grpc_demo::pb::{Request as DemoRequest, Response as DemoResponse};
use h2grpc::{Request, Response, ResponseStream, Status, Streaming};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The HTTP/2 client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Virtual time one input may take before it counts as a hang. The clock is paused and
/// jumps ahead only when every task is idle, so this costs no wall-clock time: reaching
/// it means the code under test sat waiting with nothing left to happen.
pub const HANG_BOUND: Duration = Duration::from_secs(120);

/// A current-thread runtime with a paused clock (and I/O, for a channel that reconnects).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime")
}

/// Reads of pseudo-random sizes (1 to `max`), from a generator seeded by the input.
pub struct Chopped<IO> {
    inner: IO,
    state: u32,
    max: usize,
}

impl<IO> Chopped<IO> {
    pub fn new(inner: IO, seed: u8) -> Chopped<IO> {
        // Small reads are where the bugs are; now and then a large one.
        let max = match seed & 3 {
            0 => 1,
            1 => 7,
            2 => 64,
            _ => 4096,
        };
        Chopped {
            inner,
            state: 0x9e37_79b9 ^ u32::from(seed),
            max,
        }
    }

    fn next_size(&mut self) -> usize {
        // xorshift32
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        self.state as usize % self.max + 1
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Chopped<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let size = self.next_size().min(buf.remaining());
        let mut chunk = [0u8; 4096];
        let mut small = ReadBuf::new(&mut chunk[..size]);
        let poll = Pin::new(&mut self.inner).poll_read(cx, &mut small);
        buf.put_slice(small.filled());
        poll
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Chopped<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// `demo.GRPCDemo` with trivial handlers: echo, count, three replies, echo each.
pub struct Trivial;

fn reply(text: String) -> DemoResponse {
    DemoResponse {
        server_id: 1,
        response_data: text,
    }
}

impl GrpcDemo for Trivial {
    async fn simple_method(
        &self,
        request: Request<DemoRequest>,
    ) -> Result<Response<DemoResponse>, Status> {
        Ok(Response::new(reply(request.message().request_data.clone())))
    }

    async fn client_streaming_method(
        &self,
        request: Request<Streaming<DemoRequest>>,
    ) -> Result<Response<DemoResponse>, Status> {
        let mut requests = request.into_message();
        let mut count = 0usize;
        while requests.message().await?.is_some() {
            count += 1;
        }
        Ok(Response::new(reply(count.to_string())))
    }

    async fn server_streaming_method(
        &self,
        request: Request<DemoRequest>,
    ) -> Result<Response<ResponseStream<DemoResponse>>, Status> {
        let text = request.message().request_data.clone();
        let items: Vec<_> = (0..3).map(|i| Ok(reply(format!("{text}{i}")))).collect();
        Ok(Response::new(Box::pin(stream::iter(items))))
    }

    async fn bidirectional_streaming_method(
        &self,
        request: Request<Streaming<DemoRequest>>,
    ) -> Result<Response<ResponseStream<DemoResponse>>, Status> {
        let requests = request.into_message();
        let s = stream::unfold(requests, |mut requests| async move {
            match requests.message().await {
                Ok(Some(r)) => Some((Ok(reply(r.request_data)), requests)),
                Ok(None) => None,
                Err(status) => Some((Err(status), requests)),
            }
        });
        Ok(Response::new(Box::pin(s)))
    }
}
