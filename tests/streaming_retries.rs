//! Retries and hedging (gRFC A6) of client-streaming and bidi calls, against a scripted
//! HTTP/2 server on a real socket: each attempt's request messages are read to the end
//! of the stream and recorded with its `grpc-previous-rpc-attempts` (and whether the
//! client cancelled it), then answered as the test's script says.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{StreamExt, stream};
use h2grpc::client::ChannelBuilder;
use h2grpc::{Channel, Code, Request};
use h2grpc_test_support::demo::Request as DemoRequest;
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::service::*;
use prost::Message;
use tokio::net::TcpListener;

/// How the scripted server answers one attempt, once it has read every request.
#[derive(Clone, Debug)]
enum Reply {
    /// A Trailers-Only failure, with an optional `grpc-retry-pushback-ms`.
    Fail(Code, Option<&'static str>),
    /// Response headers, then a failure in the trailers.
    HeadersThenFail(Code),
    /// A Trailers-Only failure with a zero pushback as soon as the request headers
    /// come, before reading any message.
    FailAtOnce(Code),
    /// One response per request message echoing its data, then OK.
    Echo,
    /// One response joining every request's data with `,`, then OK.
    Joined,
}

/// One attempt as the server saw it.
#[derive(Clone, Debug, Default)]
struct Seen {
    previous: Option<String>,
    messages: Vec<String>,
    /// The stream ended with END_STREAM (not a reset).
    ended: bool,
    cancelled: bool,
}

type Script = Arc<dyn Fn(usize) -> (Duration, Reply) + Send + Sync>;

struct Scripted {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Scripted {
    async fn start(
        script: impl Fn(usize) -> (Duration, Reply) + Send + Sync + 'static,
    ) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
        let script: Script = Arc::new(script);
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (log, script) = (log.clone(), script.clone());
                tokio::spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(socket).await else {
                        return;
                    };
                    while let Some(Ok((request, respond))) = conn.accept().await {
                        let n = {
                            let mut log = log.lock().unwrap();
                            log.push(Seen {
                                previous: request
                                    .headers()
                                    .get("grpc-previous-rpc-attempts")
                                    .map(|v| v.to_str().unwrap().to_string()),
                                ..Seen::default()
                            });
                            log.len() - 1
                        };
                        tokio::spawn(serve(request, respond, script.clone(), log.clone(), n));
                    }
                });
            }
        });
        Scripted { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn builder(&self, service_config: &str) -> ChannelBuilder {
        Channel::builder(self.addr.to_string()).service_config(service_config)
    }

    fn client(&self, service_config: &str) -> GrpcDemoClient {
        GrpcDemoClient::new(self.builder(service_config).lazy().unwrap())
    }
}

/// Read one attempt's requests to the end, then answer it by the script.
async fn serve(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    script: Script,
    log: Arc<Mutex<Vec<Seen>>>,
    n: usize,
) {
    let (delay, reply) = script(n);
    if let Reply::FailAtOnce(code) = reply {
        let code = (code as i32).to_string();
        let response = http::Response::builder()
            .status(200)
            .header("content-type", "application/grpc")
            .header("grpc-status", code)
            .header("grpc-retry-pushback-ms", "0")
            .body(())
            .unwrap();
        let _ = respond.send_response(response, true);
        return;
    }
    let mut body = request.into_body();
    let mut data = BytesMut::new();
    let mut ended = true;
    while let Some(chunk) = body.data().await {
        match chunk {
            Ok(chunk) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                data.extend_from_slice(&chunk);
            }
            Err(_) => {
                ended = false;
                break;
            }
        }
    }
    let messages = decode(data.freeze());
    {
        let mut log = log.lock().unwrap();
        log[n].messages = messages.clone();
        log[n].ended = ended;
    }
    if !ended {
        log.lock().unwrap()[n].cancelled = true;
        return;
    }
    // Wait out the delay unless the client cancels first.
    let reset =
        tokio::time::timeout(delay, std::future::poll_fn(|cx| respond.poll_reset(cx))).await;
    if reset.is_ok() {
        log.lock().unwrap()[n].cancelled = true;
        return;
    }
    let head = |fields: &[(&'static str, &str)]| {
        let mut response = http::Response::builder()
            .status(200)
            .header("content-type", "application/grpc");
        for (k, v) in fields {
            response = response.header(*k, *v);
        }
        response.body(()).unwrap()
    };
    let trailers = |code: Code| {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", (code as i32).to_string().parse().unwrap());
        trailers
    };
    let responses = match reply {
        Reply::Fail(code, pushback) => {
            let code = (code as i32).to_string();
            let mut fields = vec![("grpc-status", code.as_str()), ("grpc-message", "scripted")];
            if let Some(ms) = pushback {
                fields.push(("grpc-retry-pushback-ms", ms));
            }
            let _ = respond.send_response(head(&fields), true);
            return;
        }
        Reply::HeadersThenFail(code) => {
            if let Ok(mut stream) = respond.send_response(head(&[]), false) {
                let _ = stream.send_trailers(trailers(code));
            }
            return;
        }
        Reply::FailAtOnce(_) => unreachable!("answered before reading"),
        Reply::Echo => messages,
        Reply::Joined => vec![messages.join(",")],
    };
    let Ok(mut stream) = respond.send_response(head(&[]), false) else {
        return;
    };
    let mut out = BytesMut::new();
    for text in responses {
        let message = h2grpc_test_support::service::reply(text).encode_to_vec();
        out.extend_from_slice(&[0]);
        out.extend_from_slice(&(message.len() as u32).to_be_bytes());
        out.extend_from_slice(&message);
    }
    let _ = stream.send_data(out.freeze(), false);
    let _ = stream.send_trailers(trailers(Code::Ok));
}

/// The `request_data` of each Length-Prefixed-Message in `data`.
fn decode(mut data: Bytes) -> Vec<String> {
    let mut messages = Vec::new();
    while data.len() >= 5 {
        assert_eq!(data[0], 0, "a compressed request");
        let len = u32::from_be_bytes(data[1..5].try_into().unwrap()) as usize;
        data.advance(5);
        let message = DemoRequest::decode(data.split_to(len)).unwrap();
        messages.push(message.request_data);
    }
    assert!(data.is_empty(), "a partial message");
    messages
}

const RETRY: &str = r#"{"methodConfig": [{"name": [{"service": "demo.GRPCDemo"}],
    "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.05s", "maxBackoff": "0.2s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;

const HEDGE: &str = r#"{"methodConfig": [{"name": [{"service": "demo.GRPCDemo"}],
    "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.1s",
                      "nonFatalStatusCodes": ["UNAVAILABLE"]}}]}"#;

fn texts(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

fn previous(seen: &[Seen]) -> Vec<Option<String>> {
    seen.iter().map(|s| s.previous.clone()).collect()
}

fn requests(data: &[&str]) -> impl futures_core::Stream<Item = DemoRequest> + Send + 'static {
    stream::iter(data.iter().map(|d| req(*d)).collect::<Vec<_>>())
}

/// Requests that come one at a time, `gap` apart, as a caller producing them would.
fn paced(
    data: &[&str],
    gap: Duration,
) -> impl futures_core::Stream<Item = DemoRequest> + Send + 'static {
    requests(data).then(move |r| async move {
        tokio::time::sleep(gap).await;
        r
    })
}

#[tokio::test]
async fn a_client_stream_is_replayed_whole_on_each_retry() {
    bounded(async {
        let server = Scripted::start(|n| match n {
            0 | 1 => (Duration::ZERO, Reply::Fail(Code::Unavailable, None)),
            _ => (Duration::ZERO, Reply::Joined),
        })
        .await;
        let client = server.client(RETRY);
        let answer = client
            .client_streaming_method(paced(&["a", "b", "c", "d"], Duration::from_millis(5)))
            .await
            .unwrap();
        assert_eq!(answer.message().response_data, "a,b,c,d");
        let seen = server.seen();
        assert_eq!(
            previous(&seen),
            [None, Some("1".into()), Some("2".into())],
            "grpc-previous-rpc-attempts"
        );
        for attempt in &seen {
            assert_eq!(attempt.messages, texts(&["a", "b", "c", "d"]), "{seen:?}");
            assert!(attempt.ended, "{seen:?}");
        }
    })
    .await
}

#[tokio::test]
async fn a_bidi_stream_is_replayed_whole_on_each_retry() {
    bounded(async {
        let server = Scripted::start(|n| match n {
            0 | 1 => (Duration::ZERO, Reply::Fail(Code::Unavailable, None)),
            _ => (Duration::ZERO, Reply::Echo),
        })
        .await;
        let client = server.client(RETRY);
        let data: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
        let refs: Vec<&str> = data.iter().map(String::as_str).collect();
        let mut responses = client
            .bidirectional_streaming_method(requests(&refs))
            .await
            .unwrap()
            .into_message();
        let mut echoed = Vec::new();
        while let Some(response) = responses.message().await.unwrap() {
            echoed.push(response.response_data);
        }
        assert_eq!(echoed, data, "the responses of the final attempt");
        let seen = server.seen();
        assert_eq!(previous(&seen), [None, Some("1".into()), Some("2".into())]);
        for attempt in &seen {
            assert_eq!(
                attempt.messages, data,
                "every attempt got every message, in order"
            );
        }
    })
    .await
}

#[tokio::test]
async fn messages_past_the_per_call_buffer_limit_commit_the_call_and_the_failure_surfaces() {
    bounded(async {
        let server =
            Scripted::start(|_| (Duration::ZERO, Reply::Fail(Code::Unavailable, None))).await;
        let big = "x".repeat(600);
        // Three messages of ~605 bytes each, over a 1000-byte limit.
        let client = GrpcDemoClient::new(
            server
                .builder(RETRY)
                .per_rpc_buffer_limit(1000)
                .lazy()
                .unwrap(),
        );
        let err = client
            .client_streaming_method(requests(&[&big, &big, &big]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        let seen = server.seen();
        assert_eq!(seen.len(), 1, "a committed call was retried: {seen:?}");
        assert_eq!(
            seen[0].messages.len(),
            3,
            "the one attempt got every message"
        );

        // The same call within the limit is retried to the end.
        let within = GrpcDemoClient::new(
            server
                .builder(RETRY)
                .per_rpc_buffer_limit(2000)
                .lazy()
                .unwrap(),
        );
        let before = server.seen().len();
        let err = within
            .client_streaming_method(requests(&[&big, &big, &big]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(
            server.seen().len() - before,
            4,
            "maxAttempts within the limit"
        );
    })
    .await
}

#[tokio::test]
async fn the_channel_wide_retry_buffer_limit_commits_a_call_too() {
    bounded(async {
        let server =
            Scripted::start(|_| (Duration::ZERO, Reply::Fail(Code::Unavailable, None))).await;
        let big = "x".repeat(600);
        let client = GrpcDemoClient::new(
            server
                .builder(RETRY)
                .retry_buffer_size(1000)
                .lazy()
                .unwrap(),
        );
        let mut bidi = client
            .bidirectional_streaming_method(requests(&[&big, &big]))
            .await;
        let err = match &mut bidi {
            Ok(r) => r.message_mut().message().await.unwrap_err(),
            Err(e) => e.clone(),
        };
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert_eq!(server.seen().len(), 1, "retried past the channel's buffer");
        // The bytes of the finished call were given back: a small call retries again.
        let before = server.seen().len();
        client
            .client_streaming_method(requests(&["a"]))
            .await
            .unwrap_err();
        assert_eq!(server.seen().len() - before, 4);
    })
    .await
}

#[tokio::test]
async fn a_streaming_call_commits_on_response_headers_and_is_not_retried_after() {
    bounded(async {
        let server =
            Scripted::start(|_| (Duration::ZERO, Reply::HeadersThenFail(Code::Unavailable))).await;
        let client = server.client(RETRY);
        let err = client
            .client_streaming_method(requests(&["a", "b"]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(server.seen().len(), 1, "retried after response headers");

        let mut responses = client
            .bidirectional_streaming_method(requests(&["a", "b"]))
            .await
            .unwrap()
            .into_message();
        let err = responses.message().await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(
            server.seen().len(),
            2,
            "a bidi call retried after response headers"
        );
    })
    .await
}

#[tokio::test]
async fn pushback_and_the_deadline_hold_for_streaming_retries() {
    bounded(async {
        let server =
            Scripted::start(|_| (Duration::ZERO, Reply::Fail(Code::Unavailable, Some("400"))))
                .await;
        let client = server.client(RETRY);
        let started = Instant::now();
        let err = client
            .client_streaming_method(
                Request::new(requests(&["a", "b"])).with_timeout(Duration::from_millis(1000)),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        assert!(
            started.elapsed() < Duration::from_millis(1300),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(server.seen().len(), 3, "attempts at 0, 400 and 800 ms");

        let stop =
            Scripted::start(|_| (Duration::ZERO, Reply::Fail(Code::Unavailable, Some("-1")))).await;
        let err = stop
            .client(RETRY)
            .client_streaming_method(requests(&["a"]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(
            stop.seen().len(),
            1,
            "a negative pushback must stop retries"
        );
    })
    .await
}

#[tokio::test]
async fn hedging_a_client_stream_sends_the_buffered_messages_on_every_hedge() {
    bounded(async {
        let server = Scripted::start(|n| match n {
            0 => (Duration::from_secs(3), Reply::Joined),
            _ => (Duration::ZERO, Reply::Joined),
        })
        .await;
        let client = server.client(HEDGE);
        let started = Instant::now();
        // The messages are all taken by the first attempt before the hedge starts.
        let answer = client
            .client_streaming_method(paced(&["a", "b", "c"], Duration::from_millis(10)))
            .await
            .unwrap();
        assert_eq!(answer.message().response_data, "a,b,c");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let seen = server.seen();
        assert_eq!(previous(&seen), [None, Some("1".into())], "{seen:?}");
        assert_eq!(seen[1].messages, texts(&["a", "b", "c"]), "{seen:?}");
        assert!(
            seen[0].cancelled,
            "the losing attempt was not cancelled: {seen:?}"
        );
    })
    .await
}

#[tokio::test]
async fn hedges_share_messages_that_arrive_while_they_run() {
    bounded(async {
        // maxAttempts 3 at 0, 100, 200 ms; the messages keep coming until ~400 ms, and
        // every attempt must get them all, in order; the last attempt answers.
        let server = Scripted::start(|n| match n {
            2 => (Duration::ZERO, Reply::Joined),
            _ => (Duration::from_secs(3), Reply::Joined),
        })
        .await;
        let data: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
        let refs: Vec<&str> = data.iter().map(String::as_str).collect();
        let answer = server
            .client(HEDGE)
            .client_streaming_method(paced(&refs, Duration::from_millis(50)))
            .await
            .unwrap();
        assert_eq!(answer.message().response_data, data.join(","));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let seen = server.seen();
        assert_eq!(seen.len(), 3, "{seen:?}");
        for attempt in &seen {
            assert_eq!(attempt.messages, data, "{seen:?}");
        }
        assert!(seen[0].cancelled && seen[1].cancelled, "{seen:?}");
    })
    .await
}

#[tokio::test]
async fn hedging_past_the_buffer_limit_keeps_one_attempt_and_cancels_the_others() {
    bounded(async {
        // Attempts at 0 and 100 ms; at ~150 ms a message outgrows the buffer: the call
        // commits to one attempt, the other is cancelled, and the third (due at 200 ms)
        // never starts.
        let server = Scripted::start(|_| (Duration::ZERO, Reply::Joined)).await;
        let big = "x".repeat(400);
        let client = GrpcDemoClient::new(
            server
                .builder(HEDGE)
                .per_rpc_buffer_limit(1000)
                .lazy()
                .unwrap(),
        );
        let stream = stream::iter(0..4usize).then(move |i| {
            let big = big.clone();
            async move {
                let gap = [0, 120, 30, 30][i];
                tokio::time::sleep(Duration::from_millis(gap)).await;
                req(format!("{i}{big}"))
            }
        });
        let answer = client.client_streaming_method(stream).await.unwrap();
        assert_eq!(answer.message().response_data.split(',').count(), 4);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let seen = server.seen();
        assert_eq!(
            seen.len(),
            2,
            "an attempt started after the commit: {seen:?}"
        );
        let whole: Vec<_> = seen.iter().filter(|s| s.ended).collect();
        assert_eq!(whole.len(), 1, "{seen:?}");
        assert_eq!(whole[0].messages.len(), 4);
        assert!(seen.iter().any(|s| s.cancelled), "{seen:?}");
    })
    .await
}

#[tokio::test]
async fn a_retry_right_after_a_failure_mid_stream_still_gets_every_message() {
    bounded(async {
        // The first attempts fail while the caller's next message is still to come (the
        // writer pulling it is being stopped as the retry starts, with no backoff).
        let server = Scripted::start(|n| match n {
            0 | 1 => (Duration::ZERO, Reply::FailAtOnce(Code::Unavailable)),
            _ => (Duration::ZERO, Reply::Joined),
        })
        .await;
        let answer = server
            .client(RETRY)
            .client_streaming_method(paced(&["a", "b", "c"], Duration::from_millis(100)))
            .await
            .unwrap();
        assert_eq!(answer.message().response_data, "a,b,c");
        let seen = server.seen();
        assert_eq!(previous(&seen), [None, Some("1".into()), Some("2".into())]);
        assert_eq!(seen[2].messages, texts(&["a", "b", "c"]));
    })
    .await
}

/// A grpcio server whose client-streaming and bidi methods read every request, print
/// what the attempt carried, fail the first two attempts of each method `UNAVAILABLE`
/// and answer the third (joined, or echoed one by one). Messages are handled as raw
/// bytes: the `request_data` (field 2) of a `demo.Request`, and a `demo.Response` with
/// only `response_data` (field 2) set.
const GRPCIO_FLAKY_SERVER: &str = r#"
import time, grpc
from concurrent import futures

def varint(message, i):
    value, shift = 0, 0
    while True:
        b = message[i]; i += 1
        value |= (b & 0x7F) << shift; shift += 7
        if b < 0x80:
            return value, i

def text(message):
    i = 0
    while i < len(message):
        key, i = varint(message, i)
        if key & 7 == 0:
            _, i = varint(message, i)
            continue
        assert key & 7 == 2, message
        length, i = varint(message, i)
        if key >> 3 == 2:
            return message[i:i + length].decode()
        i += length
    return ""

def encode(s):
    data, n, out = s.encode(), len(s.encode()), bytearray([0x12])
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80); n >>= 7
    out.append(n)
    return bytes(out) + data

attempts = {"client": 0, "bidi": 0}

def attempt(kind, requests, context):
    previous = dict(context.invocation_metadata()).get("grpc-previous-rpc-attempts", "-")
    messages = [text(m) for m in requests]
    n = attempts[kind]; attempts[kind] += 1
    print(f"{kind} attempt {n} previous={previous} messages={','.join(messages)}", flush=True)
    if n < 2:
        context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
    return messages

def client_streaming(requests, context):
    return encode(",".join(attempt("client", requests, context)))

def bidi(requests, context):
    for m in attempt("bidi", requests, context):
        yield encode(m)

handler = grpc.method_handlers_generic_handler("demo.GRPCDemo", {
    "ClientStreamingMethod": grpc.stream_unary_rpc_method_handler(client_streaming),
    "BidirectionalStreamingMethod": grpc.stream_stream_rpc_method_handler(bidi),
})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((handler,))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(f"serving {port}", flush=True)
time.sleep(120)
"#;

#[test]
fn streaming_calls_to_a_grpcio_server_are_retried_with_every_message() {
    use h2grpc_test_support::process::Process;
    use h2grpc_test_support::python;
    let Some(venv) =
        python::venv("streaming_calls_to_a_grpcio_server_are_retried_with_every_message")
    else {
        return;
    };
    let mut command = std::process::Command::new(&venv.python);
    command.args(["-c", GRPCIO_FLAKY_SERVER]);
    let mut server = Process::spawn("grpcio flaky server", command).unwrap();
    let started = Instant::now();
    let port = loop {
        let out = server.stdout();
        if let Some(port) = out
            .lines()
            .find_map(|l| l.strip_prefix("serving "))
            .and_then(|p| p.trim().parse::<u16>().ok())
        {
            break port;
        }
        assert!(server.try_status().is_none(), "{}", server.dump());
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            server.dump()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(bounded(async {
        let client = GrpcDemoClient::new(
            Channel::builder(format!("127.0.0.1:{port}"))
                .service_config(RETRY)
                .lazy()
                .unwrap(),
        );
        let answer = client
            .client_streaming_method(paced(&["a", "b", "c"], Duration::from_millis(5)))
            .await
            .unwrap();
        assert_eq!(answer.message().response_data, "a,b,c");
        let mut responses = client
            .bidirectional_streaming_method(requests(&["x", "y"]))
            .await
            .unwrap()
            .into_message();
        let mut echoed = Vec::new();
        while let Some(response) = responses.message().await.unwrap() {
            echoed.push(response.response_data);
        }
        assert_eq!(echoed, texts(&["x", "y"]));
    }));
    // The peer prints each attempt as it ends; the last line may still be on its way when
    // the client has its answer: wait for it (a few seconds at most).
    let last = "bidi attempt 2 previous=2 messages=x,y";
    let waited = std::time::Instant::now();
    while !server.stdout().contains(last) && waited.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = server.stdout();
    server.stop();
    // What grpcio saw (shown with `--nocapture`).
    eprint!("{out}");
    for kind_and_messages in [("client", "a,b,c"), ("bidi", "x,y")] {
        let (kind, messages) = kind_and_messages;
        for (n, previous) in ["-", "1", "2"].iter().enumerate() {
            let line = format!("{kind} attempt {n} previous={previous} messages={messages}");
            assert!(out.contains(&line), "no `{line}` in:\n{out}");
        }
    }
}

#[tokio::test]
async fn a_unary_message_bigger_than_the_buffer_limit_is_sent_once() {
    bounded(async {
        let server =
            Scripted::start(|_| (Duration::ZERO, Reply::Fail(Code::Unavailable, None))).await;
        let client = GrpcDemoClient::new(
            server
                .builder(RETRY)
                .per_rpc_buffer_limit(1000)
                .lazy()
                .unwrap(),
        );
        let err = client
            .simple_method(req("x".repeat(1000)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(
            server.seen().len(),
            1,
            "a message past the limit was retried"
        );
        let before = server.seen().len();
        client
            .simple_method(req("x".repeat(900)))
            .await
            .unwrap_err();
        assert_eq!(
            server.seen().len() - before,
            4,
            "a message within it is retried"
        );
    })
    .await
}

#[tokio::test]
async fn many_concurrent_hedged_streams_all_finish_and_give_the_buffer_back() {
    bounded(async {
        // Every attempt of every call at once (hedgingDelay 0); each attempt answers after
        // a delay of its own, so winners and losers interleave across calls. Then, once
        // `failing` is set, every attempt fails.
        let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let fail = failing.clone();
        let server = Scripted::start(move |n| {
            if fail.load(std::sync::atomic::Ordering::Relaxed) || n % 5 == 0 {
                (Duration::ZERO, Reply::Fail(Code::Unavailable, None))
            } else {
                (Duration::from_millis((n as u64 * 7) % 40), Reply::Joined)
            }
        })
        .await;
        let config = r#"{"methodConfig": [
            {"name": [{"service": "demo.GRPCDemo", "method": "ClientStreamingMethod"}],
             "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0s",
                               "nonFatalStatusCodes": ["UNAVAILABLE"]}},
            {"name": [{"service": "demo.GRPCDemo", "method": "BidirectionalStreamingMethod"}],
             "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.01s", "maxBackoff": "0.01s",
                             "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;
        let client = GrpcDemoClient::new(
            server
                .builder(config)
                .retry_buffer_size(64 * 1024)
                .lazy()
                .unwrap(),
        );
        let calls = (0..40).map(|call| {
            let client = client.clone();
            async move {
                let data: Vec<String> = (0..5).map(|i| format!("c{call}m{i}")).collect();
                let refs: Vec<&str> = data.iter().map(String::as_str).collect();
                let answer = client
                    .client_streaming_method(paced(&refs, Duration::from_millis(2)))
                    .await
                    .unwrap();
                assert_eq!(answer.message().response_data, data.join(","));
            }
        });
        futures_util::future::join_all(calls).await;
        // Every call gave its bytes back: a call needing nearly the whole channel buffer
        // is still retried to maxAttempts.
        tokio::time::sleep(Duration::from_millis(100)).await;
        failing.store(true, std::sync::atomic::Ordering::Relaxed);
        // Calls that fail every attempt hold their bytes to the end, then give them back.
        let some = "y".repeat(10 * 1024);
        for _ in 0..5 {
            let mut bidi = client
                .bidirectional_streaming_method(requests(&[&some]))
                .await;
            if let Ok(r) = &mut bidi {
                r.message_mut().message().await.unwrap_err();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before = server.seen().len();
        let big = "x".repeat(20 * 1024);
        let mut bidi = client
            .bidirectional_streaming_method(requests(&[&big, &big, &big]))
            .await;
        let err = match &mut bidi {
            Ok(r) => r.message_mut().message().await.unwrap_err(),
            Err(e) => e.clone(),
        };
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(
            server.seen().len() - before,
            4,
            "the channel's buffer leaked"
        );
    })
    .await
}
