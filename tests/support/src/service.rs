//! The test service of the root package's integration tests: a `demo.GRPCDemo` driven by
//! commands in `request_data` and configured with builder-style options, a server running
//! it on 127.0.0.1:0 (or on sockets the test accepts itself, counted), and a raw h2 client
//! for hand-made requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::demo::grpc_demo_client::GrpcDemoClient;
use crate::demo::grpc_demo_server::{GrpcDemo, GrpcDemoServer};
use crate::demo::{Request as DemoRequest, Response as DemoResponse};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use h2grpc::{
    Code, CompressionSwitch, Encoding, Request, Response, ResponseStream, Server, Status, Streaming,
};
use http::HeaderMap;
use tokio::sync::{Barrier, mpsc, oneshot};

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

/// The test service.
///
/// Commands in `request_data`:
/// - unary: `echo:TEXT` replies TEXT; `ran` sends the event `handler ran` and replies
///   `ran`; `peer` replies `ADDR-IP|COMMON-NAME|DNS-NAMES` of the connection's peer; `fail:CODE:MESSAGE` fails; `sleep:MS` sleeps then
///   replies `slept` (`sleep dropped` is sent if cancelled); `metadata` echoes `x-req` and
///   `x-req-bin` into headers and trailers; `panic` panics; `compression` replies
///   `compressed=BOOL` (whether the request message arrived compressed) and 1000 bytes
///   of padding, and `compression:gzip` / `compression:deflate` also asks for that
///   encoding on the reply; `block-meet:N` blocks its thread (no await) until N such
///   handlers have arrived, then replies `met` (or `alone` after 3 s);
/// - server streaming: `count:N` (replies `0`..`N-1`, trailer `x-count: N`),
///   `count:N:TAG` (replies `TAG:0`..`TAG:N-1`), `count-then-fail:N`, `forever`
///   (`stream dropped` is sent when cancelled), `big:SIZE:COUNT`, `alternate:N` (N gzip
///   replies, only the even ones compressed), `fail:CODE:MESSAGE`;
/// - client streaming: a `fail:CODE:MESSAGE` request fails the call; the answer is set
///   by [`TestService::client_streams`];
/// - bidirectional: each request echoed as `echo TEXT` as it comes; `fail:...` fails.
///
/// Options: [`TestService::client_streams`], [`TestService::gated`].
pub struct TestService {
    events: mpsc::UnboundedSender<&'static str>,
    client_streams: ClientStreamReply,
    gate: Option<Arc<Gate>>,
    rendezvous: Rendezvous,
}

/// Where `block-meet:N` handlers wait for each other without awaiting: each blocks its
/// thread. Handlers that run on threads of their own meet; handlers polled one after the
/// other on one thread cannot (the first gives up after [`Rendezvous::LIMIT`]).
#[derive(Default)]
struct Rendezvous {
    arrived: std::sync::Mutex<usize>,
    changed: std::sync::Condvar,
}

impl Rendezvous {
    /// How long a handler blocks waiting for the others.
    const LIMIT: Duration = Duration::from_secs(3);

    /// Arrive, then block the thread until `n` handlers have arrived or the limit passed:
    /// whether they all met.
    fn meet(&self, n: usize) -> bool {
        let mut arrived = self.arrived.lock().unwrap();
        *arrived += 1;
        self.changed.notify_all();
        let (arrived, _) = self
            .changed
            .wait_timeout_while(arrived, Self::LIMIT, |a| *a < n)
            .unwrap();
        *arrived >= n
    }
}

/// What a client-streaming call answers once its requests are all in.
#[derive(Clone, Copy, Debug, Default)]
pub enum ClientStreamReply {
    /// `count=N bytes=M`: the number of requests and the bytes of their texts.
    #[default]
    Count,
    /// One letter per request, `c` if it arrived compressed, `u` if not: `cucc`.
    Flags,
    /// `N messages: T1,T2,...`: the texts, in order.
    Texts,
}

/// Holds every handler of a [`TestService::gated`] service, once it has its request (the
/// first one, for a bidirectional call; all of them, for client streaming), until
/// `handlers` handlers are waiting: the calls are then provably concurrent.
pub struct Gate {
    barrier: Barrier,
    arrived: AtomicUsize,
}

impl Gate {
    pub fn new(handlers: usize) -> Arc<Gate> {
        Arc::new(Gate {
            barrier: Barrier::new(handlers),
            arrived: AtomicUsize::new(0),
        })
    }

    /// How many handlers have reached the gate so far.
    pub fn arrived(&self) -> usize {
        self.arrived.load(Ordering::SeqCst)
    }

    async fn pass(&self) {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        self.barrier.wait().await;
    }
}

impl TestService {
    /// The service with its defaults; handler events go to `events`.
    pub fn new(events: mpsc::UnboundedSender<&'static str>) -> TestService {
        TestService {
            events,
            client_streams: ClientStreamReply::default(),
            gate: None,
            rendezvous: Rendezvous::default(),
        }
    }

    /// What client-streaming calls answer.
    pub fn client_streams(mut self, reply: ClientStreamReply) -> TestService {
        self.client_streams = reply;
        self
    }

    /// Every handler waits at `gate` once it has its request.
    pub fn gated(mut self, gate: Arc<Gate>) -> TestService {
        self.gate = Some(gate);
        self
    }

    async fn pass_gate(&self) {
        if let Some(gate) = &self.gate {
            gate.pass().await;
        }
    }
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

/// The encoding named after `compression:`; `None` for the server's default.
fn parse_encoding(cmd: &str) -> Option<Encoding> {
    match cmd.strip_prefix("compression:")? {
        "gzip" => Some(Encoding::Gzip),
        "deflate" => Some(Encoding::Deflate),
        other => panic!("unknown encoding in compression:{other}"),
    }
}

/// The reply to a bidirectional request.
fn echo(request: &DemoRequest) -> Result<DemoResponse, Status> {
    match parse_fail(&request.request_data) {
        Some(status) => Err(status),
        None => Ok(reply(format!("echo {}", request.request_data))),
    }
}

impl GrpcDemo for TestService {
    async fn simple_method(
        &self,
        request: Request<DemoRequest>,
    ) -> Result<Response<DemoResponse>, Status> {
        self.pass_gate().await;
        let cmd = request.message().request_data.clone();
        if let Some(text) = cmd.strip_prefix("echo:") {
            return Ok(Response::new(reply(text)));
        }
        if cmd == "ran" {
            let _ = self.events.send("handler ran");
            return Ok(Response::new(reply("ran")));
        }
        if cmd == "peer" {
            let peer = request
                .peer()
                .expect("a server-side request knows its peer");
            let ip = peer.addr().map(|a| a.ip().to_string()).unwrap_or_default();
            let identity = peer.identity().unwrap_or_default();
            let cn = identity.common_name.unwrap_or_default();
            let text = format!("{ip}|{cn}|{}", identity.dns_names.join(","));
            return Ok(Response::new(reply(text)));
        }
        if let Some(status) = parse_fail(&cmd) {
            return Err(status);
        }
        if cmd == "fail-with-headers" {
            // A failing call with response header metadata (and trailer metadata).
            let mut status = Status::new(Code::Aborted, "failed after setting headers");
            let headers = status.response_metadata_mut();
            headers.insert("x-resp-header", "head").unwrap();
            status
                .metadata_mut()
                .insert("x-resp-trailer", "tail")
                .unwrap();
            return Err(status);
        }
        if let Some(n) = cmd.strip_prefix("block-meet:") {
            let met = self.rendezvous.meet(n.parse().unwrap());
            return Ok(Response::new(reply(if met { "met" } else { "alone" })));
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
        if cmd == "compression" || cmd.starts_with("compression:") {
            let compressed = request.message_compressed();
            let mut response = Response::new(reply(format!(
                "compressed={compressed} {}",
                "x".repeat(1000)
            )));
            response.set_compression(parse_encoding(&cmd));
            return Ok(response);
        }
        Ok(Response::new(reply(format!("unknown command {cmd}"))))
    }

    async fn client_streaming_method(
        &self,
        request: Request<Streaming<DemoRequest>>,
    ) -> Result<Response<DemoResponse>, Status> {
        let mut requests = request.into_message();
        let (mut count, mut bytes) = (0usize, 0usize);
        let (mut flags, mut texts) = (String::new(), Vec::new());
        while let Some(r) = requests.message().await? {
            if let Some(status) = parse_fail(&r.request_data) {
                return Err(status);
            }
            count += 1;
            bytes += r.request_data.len();
            flags.push(if requests.last_message_compressed() {
                'c'
            } else {
                'u'
            });
            texts.push(r.request_data);
        }
        self.pass_gate().await;
        let answer = match self.client_streams {
            ClientStreamReply::Count => format!("count={count} bytes={bytes}"),
            ClientStreamReply::Flags => flags,
            ClientStreamReply::Texts => format!("{count} messages: {}", texts.join(",")),
        };
        Ok(Response::new(reply(answer)))
    }

    async fn server_streaming_method(
        &self,
        request: Request<DemoRequest>,
    ) -> Result<Response<ResponseStream<DemoResponse>>, Status> {
        self.pass_gate().await;
        let cmd = request.message().request_data.clone();
        if let Some(rest) = cmd.strip_prefix("count:") {
            let (n, tag) = match rest.split_once(':') {
                Some((n, tag)) => (n, Some(tag.to_owned())),
                None => (rest, None),
            };
            let n: usize = n.parse().unwrap();
            let items: Vec<_> = (0..n)
                .map(|i| match &tag {
                    Some(tag) => Ok(reply(format!("{tag}:{i}"))),
                    None => Ok(reply(i.to_string())),
                })
                .collect();
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
        if cmd == "headers-then-fail" || cmd == "headers-then-end" {
            // Response header metadata, then the stream ends before its first message.
            let end = (cmd == "headers-then-fail")
                .then(|| Err(Status::new(Code::Aborted, "failed before any message")));
            let mut response = Response::new(Box::pin(stream::iter(end)) as ResponseStream<_>);
            response
                .metadata_mut()
                .insert("x-resp-header", "head")
                .unwrap();
            response
                .trailers_mut()
                .insert("x-resp-trailer", "tail")
                .unwrap();
            return Ok(response);
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
        if let Some(n) = cmd.strip_prefix("alternate:") {
            let n: usize = n.parse().unwrap();
            let switch = CompressionSwitch::new(true);
            let toggle = switch.clone();
            let replies = stream::iter((0..n).map(move |i| {
                // Decided just before each message goes out: compress the even ones.
                toggle.set(i % 2 == 0);
                Ok(reply(format!("{i} {}", "y".repeat(500))))
            }));
            let mut response = Response::new(Box::pin(replies) as ResponseStream<_>);
            response.set_compression(Some(Encoding::Gzip));
            response.set_compression_switch(switch);
            return Ok(response);
        }
        Err(parse_fail(&cmd)
            .unwrap_or_else(|| Status::invalid_argument(format!("unknown command {cmd}"))))
    }

    async fn bidirectional_streaming_method(
        &self,
        request: Request<Streaming<DemoRequest>>,
    ) -> Result<Response<ResponseStream<DemoResponse>>, Status> {
        let mut requests = request.into_message();
        // Gated, the handler waits for the first request (the call is then open on both
        // sides) and the gate before it answers at all.
        let first = match &self.gate {
            Some(_) => {
                let first = requests.message().await?;
                self.pass_gate().await;
                first
            }
            None => None,
        };
        let first = stream::iter(first.map(|r| echo(&r)));
        // Echo each request as it comes (ping-pong).
        let rest = stream::unfold(requests, |mut requests| async move {
            match requests.message().await {
                Ok(Some(r)) => Some((echo(&r), requests)),
                Ok(None) => None,
                Err(status) => Some((Err(status), requests)),
            }
        });
        // The headers go out now, not with the first echo: clients that wait for the
        // response headers before sending their first request (ours does) can start.
        let mut response = Response::new(Box::pin(first.chain(rest)) as ResponseStream<_>);
        response.send_headers_first();
        Ok(response)
    }
}

/// A running test server: its address, the handler events, and its stop switch.
pub struct TestServer {
    pub addr: SocketAddr,
    pub events: mpsc::UnboundedReceiver<&'static str>,
    stop: Option<oneshot::Sender<()>>,
    pub done: Option<tokio::task::JoinHandle<()>>,
    /// Connections accepted so far, for a server started with
    /// [`TestServer::start_counting`].
    accepted: Option<Arc<AtomicUsize>>,
}

impl TestServer {
    /// The default [`TestService`] on a default [`Server`].
    pub async fn start() -> TestServer {
        TestServer::start_with(Server::new()).await
    }

    /// The default [`TestService`] on `server`.
    pub async fn start_with(server: Server) -> TestServer {
        TestServer::start_service(server, |service| service).await
    }

    /// The [`TestService`] that `configure` makes of the default one, on `server`.
    pub async fn start_service(
        server: Server,
        configure: impl FnOnce(TestService) -> TestService,
    ) -> TestServer {
        let (tx, events) = mpsc::unbounded_channel();
        let listening = server
            .add_service(GrpcDemoServer::new(configure(TestService::new(tx))))
            .bind("127.0.0.1:0")
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
            accepted: None,
        }
    }

    /// The default [`TestService`] on `server`, on connections the test accepts itself
    /// (a listener on 127.0.0.1:0 that counts each socket, then hands it to
    /// [`Server::serve_io`]): [`TestServer::accepted`] says how many there were.
    pub async fn start_counting(server: Server) -> TestServer {
        let (tx, events) = mpsc::unbounded_channel();
        let server = Arc::new(server.add_service(GrpcDemoServer::new(TestService::new(tx))));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    socket = listener.accept() => {
                        let (socket, _) = socket.expect("accept");
                        counted.fetch_add(1, Ordering::SeqCst);
                        let server = server.clone();
                        tokio::spawn(async move { server.serve_io(socket).await });
                    }
                }
            }
        });
        TestServer {
            addr,
            events,
            stop: Some(stop),
            done: Some(done),
            accepted: Some(accepted),
        }
    }

    /// How many connections the server has accepted (only for
    /// [`TestServer::start_counting`]).
    #[track_caller]
    pub fn accepted(&self) -> usize {
        self.accepted
            .as_ref()
            .expect("a server started with TestServer::start_counting")
            .load(Ordering::SeqCst)
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

    /// The handler event already sent, if any (does not wait).
    pub fn event_now(&mut self) -> Option<&'static str> {
        self.events.try_recv().ok()
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

/// `n` concurrent `SimpleMethod` calls of `command` through `client`: each one's reply
/// text, or its status.
pub async fn concurrent_calls(
    client: &GrpcDemoClient,
    n: usize,
    command: &str,
) -> Vec<Result<String, Status>> {
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let client = client.clone();
            let request = req(command);
            tokio::spawn(async move { client.simple_method(request).await })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        let answer = call.await.expect("the call's task");
        answers.push(answer.map(|r| r.message().response_data.clone()));
    }
    answers
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
