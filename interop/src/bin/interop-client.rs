//! interop-client: the cases of the standard gRPC interop suite (grpc/grpc
//! doc/interop-test-descriptions.md) that need no cloud credentials, against any
//! implementation's interop server. One line per case: `PASS <case>` or
//! `FAIL <case>: <mismatch>`; exit status 1 when any case failed.

use std::time::Duration;

use clap::{ArgAction, Parser};
use futures_util::stream;
use h2grpc::{Channel, ClientTls, Code, CompressionSwitch, Encoding, Request, Status};
use h2grpc_interop::CASES;
use h2grpc_interop::pb::test_service_client::TestServiceClient;
use h2grpc_interop::pb::unimplemented_service_client::UnimplementedServiceClient;
use h2grpc_interop::pb::{
    BoolValue, EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest,
    StreamingInputCallRequest, StreamingOutputCallRequest,
};
use tokio::sync::mpsc;

/// Run interop cases against a grpc.testing.TestService server.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Server host.
    #[arg(long = "server_host", default_value = "localhost")]
    server_host: String,
    /// Server port.
    #[arg(long = "server_port")]
    server_port: u16,
    /// Authority to send instead of the host (TLS name checks; sent as :authority).
    #[arg(long = "server_host_override")]
    server_host_override: Option<String>,
    /// Connect over TLS (not available yet).
    #[arg(long = "use_tls", action = ArgAction::Set, default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    use_tls: bool,
    /// Trust the interop suite's test CA (with --use_tls), read from --ca_file; without
    /// it, the system's roots are trusted.
    #[arg(long = "use_test_ca", action = ArgAction::Set, default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    use_test_ca: bool,
    /// The CA bundle (PEM) to trust with --use_test_ca (no test CA is built in: no
    /// certificate or key is committed to this repository).
    #[arg(long = "ca_file")]
    ca_file: Option<std::path::PathBuf>,
    /// Client certificate chain (PEM) for servers that require one (mutual TLS).
    #[arg(long = "tls_client_cert_file")]
    tls_client_cert_file: Option<std::path::PathBuf>,
    /// Private key (PEM) of --tls_client_cert_file.
    #[arg(long = "tls_client_key_file")]
    tls_client_key_file: Option<std::path::PathBuf>,
    /// One case, a comma-separated list, or `all` (the 18 standard cases; the
    /// experimental `rpc_soak` and `channel_soak` run when named).
    #[arg(long = "test_case", default_value = "all")]
    test_case: String,
    /// rpc_soak / channel_soak: calls to make.
    #[arg(long = "soak_iterations", default_value_t = 10)]
    soak_iterations: u32,
    /// rpc_soak / channel_soak: failed or too slow calls allowed.
    #[arg(long = "soak_max_failures", default_value_t = 0)]
    soak_max_failures: u32,
    /// rpc_soak / channel_soak: a call slower than this counts as failed.
    #[arg(
        long = "soak_per_iteration_max_acceptable_latency_ms",
        default_value_t = 1000
    )]
    soak_per_iteration_max_acceptable_latency_ms: u64,
    /// rpc_soak / channel_soak: time for the whole soak.
    #[arg(long = "soak_overall_timeout_seconds", default_value_t = 25)]
    soak_overall_timeout_seconds: u64,
}

type CaseResult = Result<(), String>;

fn check(ok: bool, what: impl FnOnce() -> String) -> CaseResult {
    if ok { Ok(()) } else { Err(what()) }
}

fn zeros(size: usize) -> Option<Payload> {
    Some(Payload {
        r#type: 0,
        body: vec![0; size],
    })
}

fn body_len(payload: &Option<Payload>) -> usize {
    payload.as_ref().map_or(0, |p| p.body.len())
}

fn check_payload(payload: &Option<Payload>, size: usize, what: &str) -> CaseResult {
    let got = body_len(payload);
    check(got == size, || {
        format!("{what}: payload of {got} bytes, expected {size}")
    })?;
    check(
        payload
            .as_ref()
            .is_none_or(|p| p.body.iter().all(|&b| b == 0)),
        || format!("{what}: payload is not all zeros"),
    )
}

fn expect_code<T>(result: Result<T, Status>, code: Code, what: &str) -> Result<Status, String> {
    match result {
        Ok(_) => Err(format!("{what}: succeeded, expected {code}")),
        Err(status) if status.code() == code => Ok(status),
        Err(status) => Err(format!(
            "{what}: got {} ({:?}), expected {code}",
            status.code(),
            status.message()
        )),
    }
}

fn ok<T>(result: Result<T, Status>, what: &str) -> Result<T, String> {
    result.map_err(|s| format!("{what}: failed with {} ({:?})", s.code(), s.message()))
}

fn duplex_request(request_size: usize, response_size: i32) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_parameters: vec![ResponseParameters {
            size: response_size,
            ..Default::default()
        }],
        payload: zeros(request_size),
        ..Default::default()
    }
}

/// A request stream fed message by message from the test (ping-pong style).
fn feed<T: Send + 'static>() -> (
    mpsc::Sender<T>,
    impl h2grpc::Stream<Item = T> + Send + 'static,
) {
    let (tx, rx) = mpsc::channel(4);
    (
        tx,
        stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) }),
    )
}

struct Cases {
    test: TestServiceClient,
    unimplemented: UnimplementedServiceClient,
    /// How to build a fresh channel (channel_soak).
    new_channel: Box<dyn Fn() -> Result<Channel, String>>,
    soak: Soak,
}

struct Soak {
    iterations: u32,
    max_failures: u32,
    max_latency: Duration,
    overall: Duration,
}

const LARGE_REQUEST: usize = 271_828;
const LARGE_RESPONSE: i32 = 314_159;
const REQUEST_SIZES: [usize; 4] = [27_182, 8, 1_828, 45_904];
const RESPONSE_SIZES: [i32; 4] = [31_415, 9, 2_653, 58_979];

impl Cases {
    async fn run(&self, case: &str) -> CaseResult {
        match case {
            "empty_unary" => self.empty_unary().await,
            "large_unary" => self.large_unary().await,
            "client_compressed_unary" => self.client_compressed_unary().await,
            "server_compressed_unary" => self.server_compressed_unary().await,
            "client_streaming" => self.client_streaming().await,
            "client_compressed_streaming" => self.client_compressed_streaming().await,
            "server_streaming" => self.server_streaming().await,
            "server_compressed_streaming" => self.server_compressed_streaming().await,
            "ping_pong" => self.ping_pong().await,
            "empty_stream" => self.empty_stream().await,
            "cancel_after_begin" => self.cancel_after_begin().await,
            "cancel_after_first_response" => self.cancel_after_first_response().await,
            "timeout_on_sleeping_server" => self.timeout_on_sleeping_server().await,
            "custom_metadata" => self.custom_metadata().await,
            "status_code_and_message" => self.status_code_and_message().await,
            "special_status_message" => self.special_status_message().await,
            "unimplemented_method" => self.unimplemented_method().await,
            "unimplemented_service" => self.unimplemented_service().await,
            "rpc_soak" => self.soak(false).await,
            "channel_soak" => self.soak(true).await,
            other => Err(format!("unknown test case {other:?}")),
        }
    }

    async fn empty_unary(&self) -> CaseResult {
        let response = ok(self.test.empty_call(Empty {}).await, "EmptyCall")?;
        check(*response.message() == Empty {}, || {
            "EmptyCall: response is not empty".into()
        })
    }

    fn large_request() -> SimpleRequest {
        SimpleRequest {
            response_size: LARGE_RESPONSE,
            payload: zeros(LARGE_REQUEST),
            ..Default::default()
        }
    }

    async fn large_unary(&self) -> CaseResult {
        let response = ok(
            self.test.unary_call(Self::large_request()).await,
            "UnaryCall",
        )?;
        check_payload(
            &response.message().payload,
            LARGE_RESPONSE as usize,
            "UnaryCall",
        )
    }

    async fn client_compressed_unary(&self) -> CaseResult {
        let with = |expect: bool| SimpleRequest {
            expect_compressed: Some(BoolValue { value: expect }),
            ..Self::large_request()
        };
        // The probe: an uncompressed request that claims to be compressed must be refused.
        let probe = self.test.unary_call(with(true)).await;
        expect_code(
            probe,
            Code::InvalidArgument,
            "probe (uncompressed, expect_compressed=true)",
        )?;
        let compressed = Request::new(with(true)).with_compression(Encoding::Gzip);
        let response = ok(self.test.unary_call(compressed).await, "compressed request")?;
        check_payload(
            &response.message().payload,
            LARGE_RESPONSE as usize,
            "compressed request",
        )?;
        let response = ok(
            self.test.unary_call(with(false)).await,
            "uncompressed request",
        )?;
        check_payload(
            &response.message().payload,
            LARGE_RESPONSE as usize,
            "uncompressed request",
        )
    }

    async fn server_compressed_unary(&self) -> CaseResult {
        for compressed in [true, false] {
            let request = SimpleRequest {
                response_compressed: Some(BoolValue { value: compressed }),
                ..Self::large_request()
            };
            let what = format!("response_compressed={compressed}");
            let response = ok(self.test.unary_call(request).await, &what)?;
            check_payload(&response.message().payload, LARGE_RESPONSE as usize, &what)?;
            check(response.message_compressed() == compressed, || {
                format!(
                    "{what}: the response's compressed flag was {}",
                    response.message_compressed()
                )
            })?;
        }
        Ok(())
    }

    /// StreamingInputCall with `request`; the server must count `expected` payload bytes.
    async fn aggregate<S>(
        &self,
        request: impl h2grpc::IntoStreamingRequest<Message = StreamingInputCallRequest, Stream = S>,
        expected: i32,
    ) -> CaseResult
    where
        S: h2grpc::Stream<Item = StreamingInputCallRequest> + Send + 'static,
    {
        let response = ok(
            self.test.streaming_input_call(request).await,
            "StreamingInputCall",
        )?;
        let got = response.message().aggregated_payload_size;
        check(got == expected, || {
            format!("aggregated_payload_size {got}, expected {expected}")
        })
    }

    async fn client_streaming(&self) -> CaseResult {
        let requests = stream::iter(REQUEST_SIZES.map(|n| StreamingInputCallRequest {
            payload: zeros(n),
            ..Default::default()
        }));
        self.aggregate(requests, 74_922).await
    }

    async fn client_compressed_streaming(&self) -> CaseResult {
        let request = |size, expect| StreamingInputCallRequest {
            payload: zeros(size),
            expect_compressed: Some(BoolValue { value: expect }),
        };
        // The probe: a first message that claims compression but is not compressed.
        let probe = self
            .test
            .streaming_input_call(stream::iter([request(27_182, true)]))
            .await;
        expect_code(
            probe,
            Code::InvalidArgument,
            "probe (uncompressed, expect_compressed=true)",
        )?;
        let switch = CompressionSwitch::new(true);
        let toggle = switch.clone();
        let messages = [request(27_182, true), request(45_904, false)];
        let requests = stream::iter(messages.into_iter().enumerate().map(move |(i, m)| {
            toggle.set(i == 0);
            m
        }));
        let mut call = Request::new(requests).with_compression(Encoding::Gzip);
        call.set_compression_switch(switch);
        self.aggregate(call, 73_086).await
    }

    /// StreamingOutputCall for `plan` (size, and compressed when `Some`): each response
    /// must have its size (and compressed flag), and no more must come.
    async fn expect_streamed(&self, plan: &[(i32, Option<bool>)]) -> CaseResult {
        let request = StreamingOutputCallRequest {
            response_parameters: plan
                .iter()
                .map(|&(size, compressed)| ResponseParameters {
                    size,
                    compressed: compressed.map(|value| BoolValue { value }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let mut responses = ok(
            self.test.streaming_output_call(request).await,
            "StreamingOutputCall",
        )?
        .into_message();
        for (i, &(size, compressed)) in plan.iter().enumerate() {
            let response =
                ok(responses.message().await, "reading responses")?.ok_or_else(|| {
                    format!("stream ended after {i} responses, expected {}", plan.len())
                })?;
            check_payload(&response.payload, size as usize, &format!("response {i}"))?;
            if let Some(compressed) = compressed {
                let flag = responses.last_message_compressed();
                check(flag == compressed, || {
                    format!("response {i}: compressed flag {flag}, expected {compressed}")
                })?;
            }
        }
        let extra = ok(responses.message().await, "end of stream")?;
        check(extra.is_none(), || {
            format!("more than {} responses", plan.len())
        })
    }

    async fn server_streaming(&self) -> CaseResult {
        self.expect_streamed(&RESPONSE_SIZES.map(|size| (size, None)))
            .await
    }

    async fn server_compressed_streaming(&self) -> CaseResult {
        self.expect_streamed(&[(31_415, Some(true)), (92_653, Some(false))])
            .await
    }

    async fn ping_pong(&self) -> CaseResult {
        let (tx, requests) = feed();
        let mut pairs = REQUEST_SIZES.iter().zip(&RESPONSE_SIZES).enumerate();
        // The first request goes with the call: a server may send its response headers
        // only with its first response, and the call resolves on those headers.
        let (_, (&first_request, &first_response)) = pairs.next().ok_or("no sizes")?;
        tx.send(duplex_request(first_request, first_response))
            .await
            .map_err(|_| "request 0 could not be sent".to_string())?;
        let mut responses =
            ok(self.test.full_duplex_call(requests).await, "FullDuplexCall")?.into_message();
        let first = ok(responses.message().await, "reading responses")?
            .ok_or("stream ended before response 0")?;
        check_payload(&first.payload, first_response as usize, "response 0")?;
        for (i, (&request_size, &response_size)) in pairs {
            tx.send(duplex_request(request_size, response_size))
                .await
                .map_err(|_| format!("request {i} could not be sent"))?;
            let response = ok(responses.message().await, "reading responses")?
                .ok_or_else(|| format!("stream ended before response {i}"))?;
            check_payload(
                &response.payload,
                response_size as usize,
                &format!("response {i}"),
            )?;
        }
        drop(tx);
        let extra = ok(responses.message().await, "end of stream")?;
        check(extra.is_none(), || {
            "a response after the last request".into()
        })
    }

    async fn empty_stream(&self) -> CaseResult {
        let requests = stream::iter(Vec::<StreamingOutputCallRequest>::new());
        let mut responses =
            ok(self.test.full_duplex_call(requests).await, "FullDuplexCall")?.into_message();
        let first = ok(responses.message().await, "reading responses")?;
        check(first.is_none(), || "a response to an empty stream".into())
    }

    async fn cancel_after_begin(&self) -> CaseResult {
        // A request stream that has sent nothing yet; the call is cancelled before any message.
        let (tx, requests) = feed::<StreamingInputCallRequest>();
        let call = self.test.streaming_input_call(requests);
        // Dropping the call's future cancels it: RST_STREAM(CANCEL), status CANCELLED locally.
        if let Ok(result) = tokio::time::timeout(Duration::from_millis(100), call).await {
            return Err(format!(
                "the call ended before it was cancelled: {:?}",
                result.map(drop)
            ));
        }
        check(tx.is_closed(), || {
            "the cancelled call still holds its request stream".into()
        })
    }

    async fn cancel_after_first_response(&self) -> CaseResult {
        let (tx, requests) = feed();
        // Sent with the call, for servers that answer headers only with a first response.
        tx.send(duplex_request(27_182, 31_415))
            .await
            .map_err(|_| "request could not be sent".to_string())?;
        let mut responses =
            ok(self.test.full_duplex_call(requests).await, "FullDuplexCall")?.into_message();
        let response =
            ok(responses.message().await, "first response")?.ok_or("no first response")?;
        check_payload(&response.payload, 31_415, "first response")?;
        // Cancel: drop the response stream (RST_STREAM(CANCEL)) while the request side is open.
        drop(responses);
        tokio::time::sleep(Duration::from_millis(50)).await;
        check(tx.is_closed(), || {
            "the request stream kept running after the call was cancelled".into()
        })
    }

    async fn timeout_on_sleeping_server(&self) -> CaseResult {
        let (tx, requests) = feed();
        let request = Request::new(requests).with_timeout(Duration::from_millis(1));
        let _ = tx.try_send(duplex_request(27_182, 31_415));
        let outcome = match self.test.full_duplex_call(request).await {
            Err(status) => Err(status),
            Ok(response) => {
                let mut responses = response.into_message();
                loop {
                    match responses.message().await {
                        Ok(Some(_)) => continue,
                        Ok(None) => break Ok(()),
                        Err(status) => break Err(status),
                    }
                }
            }
        };
        expect_code(
            outcome,
            Code::DeadlineExceeded,
            "FullDuplexCall with a 1 ms deadline",
        )
        .map(drop)
    }

    async fn custom_metadata(&self) -> CaseResult {
        const INITIAL: (&str, &str) = ("x-grpc-test-echo-initial", "test_initial_metadata_value");
        const TRAILING: (&str, &[u8]) = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab");
        let with_metadata = |request: &mut h2grpc::Metadata| {
            request
                .insert(INITIAL.0, INITIAL.1)
                .and_then(|()| request.insert_bin(TRAILING.0, TRAILING.1))
        };
        let check_echo =
            |what: &str, headers: &h2grpc::Metadata, trailers: Option<&h2grpc::Metadata>| {
                let initial = headers.get(INITIAL.0);
                check(initial == Some(INITIAL.1), || {
                    format!("{what}: initial metadata echo {initial:?}")
                })?;
                let trailing = trailers
                    .and_then(|t| t.get_bin(TRAILING.0))
                    .and_then(Result::ok);
                check(trailing.as_deref() == Some(TRAILING.1), || {
                    format!("{what}: trailing metadata echo {trailing:?}")
                })
            };
        let mut request = Request::new(Self::large_request());
        with_metadata(request.metadata_mut()).map_err(|e| e.to_string())?;
        let response = ok(self.test.unary_call(request).await, "UnaryCall")?;
        check_payload(
            &response.message().payload,
            LARGE_RESPONSE as usize,
            "UnaryCall",
        )?;
        check_echo("UnaryCall", response.metadata(), Some(response.trailers()))?;

        let mut request = Request::new(stream::iter([duplex_request(
            LARGE_REQUEST,
            LARGE_RESPONSE,
        )]));
        with_metadata(request.metadata_mut()).map_err(|e| e.to_string())?;
        let response = ok(self.test.full_duplex_call(request).await, "FullDuplexCall")?;
        let headers = response.metadata().clone();
        let mut responses = response.into_message();
        let first =
            ok(responses.message().await, "FullDuplexCall response")?.ok_or("no response")?;
        check_payload(&first.payload, LARGE_RESPONSE as usize, "FullDuplexCall")?;
        let end = ok(responses.message().await, "FullDuplexCall end")?;
        check(end.is_none(), || {
            "FullDuplexCall: more than one response".into()
        })?;
        check_echo("FullDuplexCall", &headers, responses.trailers())
    }

    async fn status_is(&self, code: i32, message: &str) -> CaseResult {
        let echo = Some(EchoStatus {
            code,
            message: message.to_owned(),
        });
        let unary = self
            .test
            .unary_call(SimpleRequest {
                response_status: echo.clone(),
                ..Default::default()
            })
            .await;
        let status = expect_code(unary, Code::from_i32(code), "UnaryCall")?;
        check(status.message() == message, || {
            format!(
                "UnaryCall: message {:?}, expected {message:?}",
                status.message()
            )
        })?;
        let request = StreamingOutputCallRequest {
            response_status: echo,
            ..Default::default()
        };
        let outcome = match self.test.full_duplex_call(stream::iter([request])).await {
            Err(status) => Err(status),
            Ok(response) => response.into_message().message().await.map(drop),
        };
        let status = expect_code(outcome, Code::from_i32(code), "FullDuplexCall")?;
        check(status.message() == message, || {
            format!(
                "FullDuplexCall: message {:?}, expected {message:?}",
                status.message()
            )
        })
    }

    async fn status_code_and_message(&self) -> CaseResult {
        self.status_is(2, "test status message").await
    }

    async fn special_status_message(&self) -> CaseResult {
        let message =
            "\t\ntest with whitespace\r\nand Unicode BMP \u{263A} and non-BMP \u{1F608}\t\n";
        let unary = self
            .test
            .unary_call(SimpleRequest {
                response_status: Some(EchoStatus {
                    code: 2,
                    message: message.to_owned(),
                }),
                ..Default::default()
            })
            .await;
        let status = expect_code(unary, Code::Unknown, "UnaryCall")?;
        check(status.message() == message, || {
            format!("message {:?}, expected {message:?}", status.message())
        })
    }

    async fn unimplemented_method(&self) -> CaseResult {
        expect_code(
            self.test.unimplemented_call(Empty {}).await,
            Code::Unimplemented,
            "UnimplementedCall",
        )
        .map(drop)
    }

    /// large_unary, `iterations` times, on one channel or a new channel each time; a call
    /// that fails or takes longer than the latency bound counts against `max_failures`.
    async fn soak(&self, new_channel_each_time: bool) -> CaseResult {
        let started = std::time::Instant::now();
        let mut failures = Vec::new();
        for i in 0..self.soak.iterations {
            if started.elapsed() > self.soak.overall {
                return Err(format!(
                    "only {i} of {} calls within {:?}",
                    self.soak.iterations, self.soak.overall
                ));
            }
            let client = if new_channel_each_time {
                TestServiceClient::new((self.new_channel)()?)
            } else {
                self.test.clone()
            };
            let call_started = std::time::Instant::now();
            let result = client.unary_call(Self::large_request()).await;
            let took = call_started.elapsed();
            let outcome = ok(result, &format!("call {i}"))
                .and_then(|r| {
                    check_payload(
                        &r.message().payload,
                        LARGE_RESPONSE as usize,
                        &format!("call {i}"),
                    )
                })
                .and_then(|()| {
                    check(took <= self.soak.max_latency, || {
                        format!("call {i} took {took:?}")
                    })
                });
            if let Err(why) = outcome {
                failures.push(why);
            }
        }
        check(failures.len() <= self.soak.max_failures as usize, || {
            format!(
                "{} of {} calls failed: {}",
                failures.len(),
                self.soak.iterations,
                failures.join("; ")
            )
        })
    }

    async fn unimplemented_service(&self) -> CaseResult {
        let result = self.unimplemented.unimplemented_call(Empty {}).await;
        expect_code(
            result,
            Code::Unimplemented,
            "UnimplementedService/UnimplementedCall",
        )
        .map(drop)
    }
}

/// The TLS of the channel, from the flags (`None` without --use_tls).
fn client_tls(args: &Args) -> Result<Option<ClientTls>, String> {
    if !args.use_tls {
        if args.use_test_ca || args.ca_file.is_some() {
            return Err("--use_test_ca and --ca_file need --use_tls".into());
        }
        return Ok(None);
    }
    let tls = match (&args.ca_file, args.use_test_ca) {
        (Some(ca), true) => ClientTls::with_ca_file(ca),
        (None, true) => {
            return Err(
                "--use_test_ca: no test CA is built in; pass its PEM with --ca_file".into(),
            );
        }
        (Some(_), false) => return Err("--ca_file is read with --use_test_ca=true".into()),
        (None, false) => ClientTls::with_native_roots(),
    }
    .map_err(|e| e.to_string())?;
    let tls = match (&args.tls_client_cert_file, &args.tls_client_key_file) {
        (Some(cert), Some(key)) => tls.identity_files(cert, key).map_err(|e| e.to_string())?,
        (None, None) => tls,
        _ => return Err("--tls_client_cert_file and --tls_client_key_file go together".into()),
    };
    Ok(Some(tls))
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let tls = match client_tls(&args) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("interop-client: {e}");
            std::process::exit(2);
        }
    };
    // `all` stands for the standard cases, alone or in a list.
    let cases: Vec<&str> = args
        .test_case
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .flat_map(|c| if c == "all" { CASES.to_vec() } else { vec![c] })
        .collect();
    // The authority sent is the override when given (as other interop clients do).
    let target = format!("{}:{}", args.server_host, args.server_port);
    let authority = args
        .server_host_override
        .map(|name| format!("{name}:{}", args.server_port));
    let new_channel = move || {
        let mut builder = Channel::builder(target.clone());
        if let Some(authority) = &authority {
            builder = builder.authority(authority.clone());
        }
        if let Some(tls) = &tls {
            builder = builder.tls(tls.clone());
        }
        builder.lazy().map_err(|e| e.to_string())
    };
    let channel = new_channel();
    let channel = match channel {
        Ok(c) => c,
        Err(e) => {
            eprintln!("interop-client: {e}");
            std::process::exit(2);
        }
    };
    let suite = Cases {
        test: TestServiceClient::new(channel.clone()),
        unimplemented: UnimplementedServiceClient::new(channel),
        new_channel: Box::new(new_channel),
        soak: Soak {
            iterations: args.soak_iterations,
            max_failures: args.soak_max_failures,
            max_latency: Duration::from_millis(args.soak_per_iteration_max_acceptable_latency_ms),
            overall: Duration::from_secs(args.soak_overall_timeout_seconds),
        },
    };
    let mut failed = 0;
    for case in cases {
        // Each case is bounded: a hang is a failure, not a stuck suite.
        let result = match tokio::time::timeout(Duration::from_secs(30), suite.run(case)).await {
            Ok(result) => result,
            Err(_) => Err("did not finish within 30 s".into()),
        };
        match result {
            Ok(()) => println!("PASS {case}"),
            Err(why) => {
                failed += 1;
                println!("FAIL {case}: {why}");
            }
        }
    }
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
