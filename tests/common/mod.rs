//! Shared by the integration tests: a `demo.GRPCDemo` service driven by commands in
//! `request_data`, a server on 127.0.0.1:0, and a raw h2 client for hand-made requests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use h2grpc::pb::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc::pb::demo::grpc_demo_server::{GrpcDemo, GrpcDemoServer};
use h2grpc::pb::demo::{Request as DemoRequest, Response as DemoResponse};
use h2grpc::{Code, Request, Response, ResponseStream, Server, Status, Streaming};
use http::HeaderMap;
use tokio::sync::{mpsc, oneshot};

/// Every async test body runs under this bound.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Run `body` with a timeout, failing the test if it hangs.
pub async fn bounded<T>(body: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, body)
        .await
        .expect("test timed out")
}

/// Sends a name when dropped: how a test sees that a handler was cancelled.
pub struct DropGuard(pub mpsc::UnboundedSender<&'static str>, pub &'static str);

impl Drop for DropGuard {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}

/// The test service. Commands in `request_data`:
/// - `echo:TEXT` replies TEXT; `fail:CODE:MESSAGE` fails; `sleep:MS` sleeps then replies;
/// - `metadata` echoes `x-req` and `x-req-bin` into headers and trailers; `panic` panics;
/// - server streaming: `count:N`, `count-then-fail:N`, `forever`.
pub struct TestService {
    pub events: mpsc::UnboundedSender<&'static str>,
}

pub fn reply(text: impl Into<String>) -> DemoResponse {
    DemoResponse {
        server_id: 7,
        response_data: text.into(),
    }
}

pub fn req(text: impl Into<String>) -> DemoRequest {
    DemoRequest {
        client_id: 1,
        request_data: text.into(),
    }
}

fn parse_fail(cmd: &str) -> Option<Status> {
    let rest = cmd.strip_prefix("fail:")?;
    let (code, message) = rest.split_once(':')?;
    Some(Status::new(Code::from_i32(code.parse().ok()?), message))
}

impl GrpcDemo for TestService {
    async fn simple_method(
        &self,
        request: Request<DemoRequest>,
    ) -> Result<Response<DemoResponse>, Status> {
        let cmd = request.message().request_data.clone();
        if let Some(text) = cmd.strip_prefix("echo:") {
            return Ok(Response::new(reply(text)));
        }
        if let Some(status) = parse_fail(&cmd) {
            return Err(status);
        }
        if let Some(ms) = cmd.strip_prefix("sleep:") {
            let _guard = DropGuard(self.events.clone(), "sleep dropped");
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
            std::mem::forget(_guard);
            return Ok(Response::new(reply("slept")));
        }
        if cmd == "metadata" {
            let md = request.metadata();
            let text = md.get("x-req").unwrap_or("missing").to_owned();
            let bin = md
                .get_bin("x-req-bin")
                .map(|r| r.unwrap())
                .unwrap_or_default();
            let timeout = request.timeout().map(|t| t.as_millis()).unwrap_or(0);
            let mut response = Response::new(reply(format!("{text}|{timeout}")));
            response
                .metadata_mut()
                .insert("x-resp-header", &text)
                .unwrap();
            response
                .trailers_mut()
                .insert_bin("x-resp-trailer-bin", &bin)
                .unwrap();
            return Ok(response);
        }
        if cmd == "panic" {
            panic!("the test handler panics on purpose");
        }
        Ok(Response::new(reply(format!("unknown command {cmd}"))))
    }

    async fn client_streaming_method(
        &self,
        request: Request<Streaming<DemoRequest>>,
    ) -> Result<Response<DemoResponse>, Status> {
        let mut requests = request.into_message();
        let (mut count, mut bytes) = (0usize, 0usize);
        while let Some(r) = requests.message().await? {
            if let Some(status) = parse_fail(&r.request_data) {
                return Err(status);
            }
            count += 1;
            bytes += r.request_data.len();
        }
        Ok(Response::new(reply(format!("count={count} bytes={bytes}"))))
    }

    async fn server_streaming_method(
        &self,
        request: Request<DemoRequest>,
    ) -> Result<Response<ResponseStream<DemoResponse>>, Status> {
        let cmd = request.message().request_data.clone();
        if let Some(n) = cmd.strip_prefix("count:") {
            let n: usize = n.parse().unwrap();
            let items: Vec<_> = (0..n).map(|i| Ok(reply(i.to_string()))).collect();
            let mut response = Response::new(Box::pin(stream::iter(items)) as ResponseStream<_>);
            response
                .trailers_mut()
                .insert("x-count", &n.to_string())
                .unwrap();
            return Ok(response);
        }
        if let Some(n) = cmd.strip_prefix("count-then-fail:") {
            let n: usize = n.parse().unwrap();
            let mut items: Vec<_> = (0..n).map(|i| Ok(reply(i.to_string()))).collect();
            items.push(Err(Status::new(
                Code::Aborted,
                "stopped after the requested messages",
            )));
            return Ok(Response::new(Box::pin(stream::iter(items))));
        }
        if cmd == "forever" {
            let guard = DropGuard(self.events.clone(), "stream dropped");
            let s = stream::unfold((0u64, guard), |(i, guard)| async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Some((Ok(reply(i.to_string())), (i + 1, guard)))
            });
            return Ok(Response::new(Box::pin(s)));
        }
        if let Some(size) = cmd.strip_prefix("big:") {
            // `big:SIZE:COUNT`: COUNT messages of SIZE bytes each.
            let (size, count) = size.split_once(':').unwrap();
            let (size, count): (usize, usize) = (size.parse().unwrap(), count.parse().unwrap());
            let s = stream::iter((0..count).map(move |_| Ok(reply("x".repeat(size)))));
            return Ok(Response::new(Box::pin(s)));
        }
        Err(parse_fail(&cmd)
            .unwrap_or_else(|| Status::invalid_argument(format!("unknown command {cmd}"))))
    }

    async fn bidirectional_streaming_method(
        &self,
        request: Request<Streaming<DemoRequest>>,
    ) -> Result<Response<ResponseStream<DemoResponse>>, Status> {
        let requests = request.into_message();
        // Echo each request as it comes (ping-pong).
        let s = stream::unfold(requests, |mut requests| async move {
            match requests.message().await {
                Ok(Some(r)) => match parse_fail(&r.request_data) {
                    Some(status) => Some((Err(status), requests)),
                    None => Some((Ok(reply(format!("echo {}", r.request_data))), requests)),
                },
                Ok(None) => None,
                Err(status) => Some((Err(status), requests)),
            }
        });
        Ok(Response::new(Box::pin(s)))
    }
}

/// A running test server: its address, the handler events, and its stop switch.
pub struct TestServer {
    pub addr: SocketAddr,
    pub events: mpsc::UnboundedReceiver<&'static str>,
    stop: Option<oneshot::Sender<()>>,
    pub done: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(Server::new()).await
    }

    pub async fn start_with(server: Server) -> TestServer {
        TestServer::start_on(server, "127.0.0.1:0").await
    }

    pub async fn start_on(server: Server, addr: &str) -> TestServer {
        let (tx, events) = mpsc::unbounded_channel();
        let listening = server
            .add_service(GrpcDemoServer::new(TestService { events: tx }))
            .bind(addr)
            .await
            .expect("bind");
        let addr = listening.local_addrs()[0];
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            listening
                .serve_with_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        TestServer {
            addr,
            events,
            stop: Some(stop),
            done: Some(done),
        }
    }

    pub async fn client(&self) -> GrpcDemoClient {
        GrpcDemoClient::connect(self.addr.to_string())
            .await
            .expect("connect")
    }

    /// Signal a graceful shutdown and wait for the server to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            done.await.expect("server task");
        }
    }

    /// Wait for a handler event, bounded.
    pub async fn event(&mut self) -> &'static str {
        tokio::time::timeout(Duration::from_secs(5), self.events.recv())
            .await
            .expect("no handler event within 5 s")
            .expect("event channel closed")
    }
}

/// What a raw h2 request got back.
#[derive(Debug)]
pub struct RawResponse {
    pub status: http::StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl RawResponse {
    /// `grpc-status` from the trailers, or from the headers of a Trailers-Only response.
    pub fn grpc_status(&self) -> Option<Code> {
        let from = |h: &HeaderMap| h.get("grpc-status").map(|v| Code::from_bytes(v.as_bytes()));
        self.trailers
            .as_ref()
            .and_then(from)
            .or_else(|| from(&self.headers))
    }

    pub fn grpc_message(&self) -> String {
        let from = |h: &HeaderMap| {
            h.get("grpc-message")
                .map(|v| h2grpc::status::decode_message(v.as_bytes()))
        };
        self.trailers
            .as_ref()
            .and_then(from)
            .or_else(|| from(&self.headers))
            .unwrap_or_default()
    }
}

/// A hand-made request over the `h2` crate's client, so headers and bodies can be malformed on purpose.
pub async fn raw_request(addr: SocketAddr, request: http::Request<()>, body: &[u8]) -> RawResponse {
    let socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (send, conn) = h2::client::handshake(socket).await.expect("handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut send = send.ready().await.expect("ready");
    let (response, mut stream) = send
        .send_request(request, body.is_empty())
        .expect("send_request");
    if !body.is_empty() {
        stream
            .send_data(Bytes::copy_from_slice(body), true)
            .expect("send_data");
    }
    let response = response.await.expect("response");
    let (head, mut recv) = response.into_parts();
    let mut data = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.expect("data");
        let _ = recv.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = recv.trailers().await.expect("trailers");
    RawResponse {
        status: head.status,
        headers: head.headers,
        body: Bytes::from(data),
        trailers,
    }
}

/// A well-formed gRPC request head for `path`.
pub fn grpc_head(addr: SocketAddr, path: &str) -> http::request::Builder {
    http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
}

/// One Length-Prefixed-Message holding `message`.
pub fn lpm(message: &impl prost::Message) -> Vec<u8> {
    let payload = message.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Check that the server still answers a normal call.
pub async fn assert_serves(addr: SocketAddr) {
    let client = GrpcDemoClient::connect(addr.to_string())
        .await
        .expect("connect");
    let answer = client
        .simple_method(req("echo:still here"))
        .await
        .expect("normal call");
    assert_eq!(answer.message().response_data, "still here");
}
