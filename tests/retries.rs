//! Retries and hedging (gRFC A6) and the rest of the service config, against a scripted
//! HTTP/2 server on a real socket that fails on purpose: each attempt it receives is
//! recorded (its `grpc-previous-rpc-attempts`, when it came, whether it was cancelled)
//! and answered as the test's script says.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2grpc::{Channel, Code, Error, Request};
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::service::*;
use prost::Message;
use tokio::net::TcpListener;

/// How the scripted server answers one attempt.
#[derive(Clone, Debug)]
enum Reply {
    /// A Trailers-Only failure, with an optional `grpc-retry-pushback-ms`.
    Fail(Code, Option<&'static str>),
    /// Response headers, then a failure in the trailers.
    HeadersThenFail(Code),
    /// A response message of `size` bytes of data, then OK.
    Ok(usize),
}

/// One attempt as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    previous: Option<String>,
    at: Instant,
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
                                at: Instant::now(),
                                cancelled: false,
                            });
                            log.len() - 1
                        };
                        let (delay, reply) = script(n);
                        tokio::spawn(answer(respond, delay, reply, log.clone(), n));
                    }
                });
            }
        });
        Scripted { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn channel(&self, service_config: &str) -> GrpcDemoClient {
        GrpcDemoClient::new(
            Channel::builder(self.addr.to_string())
                .service_config(service_config)
                .lazy()
                .unwrap(),
        )
    }
}

async fn answer(
    mut respond: h2::server::SendResponse<Bytes>,
    delay: Duration,
    reply: Reply,
    log: Arc<Mutex<Vec<Seen>>>,
    n: usize,
) {
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
    match reply {
        Reply::Fail(code, pushback) => {
            let code = (code as i32).to_string();
            let mut fields = vec![("grpc-status", code.as_str()), ("grpc-message", "scripted")];
            if let Some(ms) = pushback {
                fields.push(("grpc-retry-pushback-ms", ms));
            }
            let _ = respond.send_response(head(&fields), true);
        }
        Reply::HeadersThenFail(code) => {
            let Ok(mut stream) = respond.send_response(head(&[]), false) else {
                return;
            };
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", (code as i32).to_string().parse().unwrap());
            let _ = stream.send_trailers(trailers);
        }
        Reply::Ok(size) => {
            let Ok(mut stream) = respond.send_response(head(&[]), false) else {
                return;
            };
            let message = reply_message(size);
            let mut body = vec![0u8];
            body.extend_from_slice(&(message.len() as u32).to_be_bytes());
            body.extend_from_slice(&message);
            let _ = stream.send_data(body.into(), false);
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().unwrap());
            let _ = stream.send_trailers(trailers);
        }
    }
}

fn reply_message(size: usize) -> Vec<u8> {
    reply("x".repeat(size)).encode_to_vec()
}

const RETRY_UNAVAILABLE: &str = r#"{"methodConfig": [{"name": [{"service": "demo.GRPCDemo"}],
    "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.05s", "maxBackoff": "0.2s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;

fn previous(seen: &[Seen]) -> Vec<Option<String>> {
    seen.iter().map(|s| s.previous.clone()).collect()
}

#[tokio::test]
async fn a_retryable_failure_is_retried_with_the_attempt_count_until_it_succeeds() {
    bounded(async {
        let server = Scripted::start(|n| match n {
            0 | 1 => (Duration::ZERO, Reply::Fail(Code::Unavailable, None)),
            _ => (Duration::ZERO, Reply::Ok(3)),
        })
        .await;
        let client = server.channel(RETRY_UNAVAILABLE);
        let answer = client.simple_method(req("x")).await.unwrap();
        assert_eq!(answer.message().response_data, "xxx");
        let seen = server.seen();
        assert_eq!(
            previous(&seen),
            [None, Some("1".into()), Some("2".into())],
            "grpc-previous-rpc-attempts"
        );
        // Backoff: random in (0, 50 ms] then (0, 100 ms], never above the cap.
        assert!(
            seen[1].at - seen[0].at <= Duration::from_millis(50 + 40),
            "{seen:?}"
        );
        assert!(
            seen[2].at - seen[1].at <= Duration::from_millis(100 + 40),
            "{seen:?}"
        );
    })
    .await
}

/// A server answering every attempt with `reply`, called once under `config`: the
/// call's code and how many attempts the server saw.
async fn always(reply: Reply, config: &str) -> (Code, usize) {
    let server = Scripted::start(move |_| (Duration::ZERO, reply.clone())).await;
    let err = server
        .channel(config)
        .simple_method(req("x"))
        .await
        .unwrap_err();
    (err.code(), server.seen().len())
}

#[tokio::test]
async fn a_code_not_listed_as_retryable_is_not_retried() {
    bounded(async {
        let (code, attempts) = always(Reply::Fail(Code::Internal, None), RETRY_UNAVAILABLE).await;
        assert_eq!((code, attempts), (Code::Internal, 1));
    })
    .await
}

#[tokio::test]
async fn retries_stop_at_max_attempts() {
    bounded(async {
        let (code, attempts) =
            always(Reply::Fail(Code::Unavailable, None), RETRY_UNAVAILABLE).await;
        assert_eq!((code, attempts), (Code::Unavailable, 4));
    })
    .await
}

#[tokio::test]
async fn a_call_commits_when_response_headers_arrive_and_is_not_retried_after() {
    bounded(async {
        let (code, attempts) =
            always(Reply::HeadersThenFail(Code::Unavailable), RETRY_UNAVAILABLE).await;
        assert_eq!(
            (code, attempts),
            (Code::Unavailable, 1),
            "retried after response headers"
        );
    })
    .await
}

#[tokio::test]
async fn the_servers_pushback_sets_the_delay_or_stops_retries() {
    bounded(async {
        let server = Scripted::start(|n| match n {
            0 => (Duration::ZERO, Reply::Fail(Code::Unavailable, Some("300"))),
            _ => (Duration::ZERO, Reply::Ok(1)),
        })
        .await;
        server
            .channel(RETRY_UNAVAILABLE)
            .simple_method(req("x"))
            .await
            .unwrap();
        let seen = server.seen();
        let gap = seen[1].at - seen[0].at;
        assert!(
            gap >= Duration::from_millis(300) && gap < Duration::from_millis(600),
            "{gap:?}"
        );

        let stop =
            Scripted::start(|_| (Duration::ZERO, Reply::Fail(Code::Unavailable, Some("-1")))).await;
        let err = stop
            .channel(RETRY_UNAVAILABLE)
            .simple_method(req("x"))
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
async fn the_deadline_covers_every_attempt() {
    bounded(async {
        let server =
            Scripted::start(|_| (Duration::ZERO, Reply::Fail(Code::Unavailable, Some("400"))))
                .await;
        let client = server.channel(RETRY_UNAVAILABLE);
        let started = Instant::now();
        let err = client
            .simple_method(Request::new(req("x")).with_timeout(Duration::from_millis(1000)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        assert!(
            started.elapsed() < Duration::from_millis(1300),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(server.seen().len(), 3, "attempts at 0, 400 and 800 ms");
    })
    .await
}

#[tokio::test]
async fn retry_throttling_stops_retries_once_the_bucket_is_half_empty() {
    bounded(async {
        let server =
            Scripted::start(|_| (Duration::ZERO, Reply::Fail(Code::Unavailable, None))).await;
        let client = server.channel(
            r#"{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 2,
                "initialBackoff": "0.01s", "maxBackoff": "0.01s", "backoffMultiplier": 1,
                "retryableStatusCodes": ["UNAVAILABLE"]}}],
               "retryThrottling": {"maxTokens": 10, "tokenRatio": 1}}"#,
        );
        let mut attempts = Vec::new();
        for _ in 0..4 {
            let before = server.seen().len();
            client.simple_method(req("x")).await.unwrap_err();
            attempts.push(server.seen().len() - before);
        }
        // Tokens 10 → 9 (retry) → 8; 7 (retry) → 6; 5: no more retries (5 is not above half).
        assert_eq!(attempts, [2, 2, 1, 1]);
    })
    .await
}

const HEDGE: &str = r#"{"methodConfig": [{"name": [{"service": "demo.GRPCDemo", "method": "SimpleMethod"}],
    "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.1s",
                      "nonFatalStatusCodes": ["UNAVAILABLE"]}}]}"#;

#[tokio::test]
async fn hedging_sends_another_attempt_after_the_delay_and_the_first_answer_wins() {
    bounded(async {
        let server = Scripted::start(|n| match n {
            0 => (Duration::from_secs(3), Reply::Ok(1)),
            _ => (Duration::ZERO, Reply::Ok(2)),
        })
        .await;
        let started = Instant::now();
        let answer = server.channel(HEDGE).simple_method(req("x")).await.unwrap();
        assert_eq!(
            answer.message().response_data,
            "xx",
            "the second attempt's answer"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        // The slow first attempt is cancelled.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let seen = server.seen();
        assert_eq!(previous(&seen), [None, Some("1".into())]);
        let gap = seen[1].at - seen[0].at;
        assert!(gap >= Duration::from_millis(100), "{gap:?}");
        assert!(
            seen[0].cancelled,
            "the losing attempt was not cancelled: {seen:?}"
        );
    })
    .await
}

#[tokio::test]
async fn hedging_moves_on_at_once_after_a_non_fatal_code_and_stops_at_a_fatal_one() {
    bounded(async {
        let server = Scripted::start(|n| match n {
            0 => (Duration::ZERO, Reply::Fail(Code::Unavailable, None)),
            _ => (Duration::ZERO, Reply::Ok(4)),
        })
        .await;
        let started = Instant::now();
        let answer = server.channel(HEDGE).simple_method(req("x")).await.unwrap();
        assert_eq!(answer.message().response_data, "xxxx");
        assert!(
            started.elapsed() < Duration::from_millis(90),
            "did not skip the hedging delay"
        );

        let fatal =
            Scripted::start(|_| (Duration::ZERO, Reply::Fail(Code::InvalidArgument, None))).await;
        let err = fatal
            .channel(HEDGE)
            .simple_method(req("x"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(fatal.seen().len(), 1, "attempts after a fatal code");
    })
    .await
}

#[tokio::test]
async fn the_service_config_sets_timeouts_wait_for_ready_and_message_limits_per_method() {
    bounded(async {
        let server = Scripted::start(|_| (Duration::from_millis(500), Reply::Ok(2000))).await;
        let config = r#"{"methodConfig": [
            {"name": [{"service": "demo.GRPCDemo", "method": "SimpleMethod"}], "timeout": "0.1s"},
            {"name": [{"service": "demo.GRPCDemo"}], "maxResponseMessageBytes": 100}]}"#;
        let client = server.channel(config);
        let err = client.simple_method(req("x")).await.unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        let mut responses = client.server_streaming_method(req("x")).await;
        let err = match &mut responses {
            Ok(r) => r.message_mut().message().await.unwrap_err(),
            Err(e) => e.clone(),
        };
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");

        // waitForReady from the config: a channel to nothing waits until the deadline.
        let nothing = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let waiting = GrpcDemoClient::new(
            Channel::builder(nothing.to_string())
                .service_config(r#"{"methodConfig": [{"name": [{}], "waitForReady": true, "timeout": "0.3s"}]}"#)
                .lazy()
                .unwrap(),
        );
        let err = waiting.simple_method(req("x")).await.unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    })
    .await
}

#[test]
fn an_invalid_service_config_fails_the_build_with_the_bad_path() {
    let build = |json: &str| Channel::builder("localhost:1").service_config(json).lazy();
    assert!(matches!(build("{not json"), Err(Error::ServiceConfig(_))));
    let err = build(
        r#"{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 1,
        "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("methodConfig[0].retryPolicy.maxAttempts"),
        "{err}"
    );
}
