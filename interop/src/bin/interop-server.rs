//! interop-server: `grpc.testing.TestService` as the standard gRPC interop suite
//! describes it (grpc/grpc doc/interop-test-descriptions.md), for other
//! implementations' interop clients and ours.

use std::collections::VecDeque;
use std::time::Duration;

use clap::{ArgAction, Parser};
use futures_util::stream;
use h2grpc::health::HealthReporter;
use h2grpc::reflection::ReflectionService;
use h2grpc::{
    Code, CompressionSwitch, Encoding, Metadata, Request, Response, ResponseStream, Server,
    ServerTls, Status, Streaming,
};
use h2grpc_interop::pb::test_service_server::{TestService, TestServiceServer};
use h2grpc_interop::pb::{
    EchoStatus, Empty, Payload, PayloadType, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};

/// Serve grpc.testing.TestService for interop clients.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Port to listen on (0: any free port; the chosen one is printed).
    #[arg(long)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    /// Serve over TLS, with --tls_cert_file and --tls_key_file.
    #[arg(long = "use_tls", action = ArgAction::Set, default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    use_tls: bool,
    /// Certificate chain (PEM) for --use_tls (no test certificate is built in: no key is
    /// committed to this repository).
    #[arg(long = "tls_cert_file")]
    tls_cert_file: Option<std::path::PathBuf>,
    /// Private key (PEM) of --tls_cert_file.
    #[arg(long = "tls_key_file")]
    tls_key_file: Option<std::path::PathBuf>,
    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(long = "tls_client_ca_file")]
    tls_client_ca_file: Option<std::path::PathBuf>,
}

const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
const ECHO_TRAILING: &str = "x-grpc-test-echo-trailing-bin";

struct Interop;

fn payload(size: i32) -> Result<Option<Payload>, Status> {
    let size = usize::try_from(size)
        .map_err(|_| Status::invalid_argument(format!("negative payload size {size}")))?;
    Ok(Some(Payload {
        r#type: 0,
        body: vec![0; size],
    }))
}

/// The metadata echo of the interop suite: the initial value goes back in the response
/// headers, the trailing one in the trailers.
#[derive(Clone)]
struct Echo {
    initial: Option<String>,
    trailing: Option<Vec<u8>>,
}

impl Echo {
    fn from(metadata: &Metadata) -> Result<Echo, Status> {
        let trailing = match metadata.get_bin(ECHO_TRAILING) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => return Err(Status::invalid_argument(e.to_string())),
        };
        Ok(Echo {
            initial: metadata.get(ECHO_INITIAL).map(str::to_owned),
            trailing,
        })
    }

    fn apply<T>(&self, response: &mut Response<T>) {
        if let Some(v) = &self.initial {
            let _ = response.metadata_mut().insert(ECHO_INITIAL, v);
        }
        if let Some(v) = &self.trailing {
            let _ = response.trailers_mut().insert_bin(ECHO_TRAILING, v);
        }
    }

    /// On an error both travel in the one HEADERS frame (Trailers-Only) or the trailers.
    fn apply_to_status(&self, mut status: Status) -> Status {
        if let Some(v) = &self.initial {
            let _ = status.metadata_mut().insert(ECHO_INITIAL, v);
        }
        if let Some(v) = &self.trailing {
            let _ = status.metadata_mut().insert_bin(ECHO_TRAILING, v);
        }
        status
    }
}

fn requested_status(status: &Option<EchoStatus>) -> Option<Status> {
    status
        .as_ref()
        .filter(|s| s.code != 0)
        .map(|s| Status::new(Code::from_i32(s.code), s.message.clone()))
}

fn check_compressed(expect: Option<bool>, compressed: bool) -> Result<(), Status> {
    if expect == Some(true) && !compressed {
        return Err(Status::invalid_argument(
            "expected a compressed request message, got an uncompressed one",
        ));
    }
    Ok(())
}

async fn unary(request: Request<SimpleRequest>) -> Result<Response<SimpleResponse>, Status> {
    let echo = Echo::from(request.metadata())?;
    let outcome = async {
        let r = request.message();
        check_compressed(
            r.expect_compressed.as_ref().map(|b| b.value),
            request.message_compressed(),
        )?;
        if let Some(status) = requested_status(&r.response_status) {
            return Err(status);
        }
        let mut response = Response::new(SimpleResponse {
            payload: payload(r.response_size)?,
            ..Default::default()
        });
        // Compress when asked; otherwise not at all.
        let compressed = r.response_compressed.as_ref().is_some_and(|b| b.value);
        response.set_compression(compressed.then_some(Encoding::Gzip));
        Ok(response)
    }
    .await;
    match outcome {
        Ok(mut response) => {
            echo.apply(&mut response);
            Ok(response)
        }
        Err(status) => Err(echo.apply_to_status(status)),
    }
}

/// Responses for `parameters`, each after its interval, compressed as each one asks.
fn responses_for(
    parameters: VecDeque<ResponseParameters>,
    switch: CompressionSwitch,
) -> impl h2grpc::Stream<Item = Result<StreamingOutputCallResponse, Status>> + Send {
    stream::unfold(parameters, move |mut parameters| {
        let switch = switch.clone();
        async move {
            let p = parameters.pop_front()?;
            if p.interval_us > 0 {
                tokio::time::sleep(Duration::from_micros(p.interval_us as u64)).await;
            }
            switch.set(p.compressed.as_ref().is_some_and(|b| b.value));
            let item = payload(p.size).map(|payload| StreamingOutputCallResponse { payload });
            Some((item, parameters))
        }
    })
}

fn streaming_response(
    stream: impl h2grpc::Stream<Item = Result<StreamingOutputCallResponse, Status>> + Send + 'static,
    switch: CompressionSwitch,
    echo: &Echo,
) -> Response<ResponseStream<StreamingOutputCallResponse>> {
    let mut response = Response::new(Box::pin(stream) as ResponseStream<_>);
    response.set_compression(Some(Encoding::Gzip));
    response.set_compression_switch(switch);
    echo.apply(&mut response);
    response
}

/// FullDuplexCall: each request's responses go out as soon as it arrives; a request
/// carrying a status ends the call with it.
struct Duplex {
    requests: Streaming<StreamingOutputCallRequest>,
    queue: VecDeque<ResponseParameters>,
    done: bool,
}

impl TestService for Interop {
    async fn empty_call(&self, request: Request<Empty>) -> Result<Response<Empty>, Status> {
        let echo = Echo::from(request.metadata())?;
        let mut response = Response::new(Empty {});
        echo.apply(&mut response);
        Ok(response)
    }

    async fn unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        unary(request).await
    }

    /// The request is ignored: the payload is the time in nanoseconds, different each call,
    /// and the response may be cached by proxies for 60 s.
    async fn cacheable_unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        let echo = Echo::from(request.metadata())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let mut response = Response::new(SimpleResponse {
            payload: Some(Payload {
                r#type: PayloadType::Compressable as i32,
                body: now.to_string().into_bytes(),
            }),
            ..Default::default()
        });
        let _ = response
            .metadata_mut()
            .insert("cache-control", "max-age=60");
        echo.apply(&mut response);
        Ok(response)
    }

    async fn streaming_output_call(
        &self,
        request: Request<StreamingOutputCallRequest>,
    ) -> Result<Response<ResponseStream<StreamingOutputCallResponse>>, Status> {
        let echo = Echo::from(request.metadata())?;
        let r = request.into_message();
        let status = requested_status(&r.response_status);
        let switch = CompressionSwitch::new(false);
        let responses = responses_for(r.response_parameters.into(), switch.clone());
        let end = stream::iter(status.map(|s| Err(echo.apply_to_status(s))));
        Ok(streaming_response(
            futures_util::StreamExt::chain(responses, end),
            switch,
            &echo,
        ))
    }

    async fn streaming_input_call(
        &self,
        request: Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        let echo = Echo::from(request.metadata())?;
        let mut requests = request.into_message();
        let mut total = 0usize;
        while let Some(r) = requests.message().await? {
            check_compressed(
                r.expect_compressed.as_ref().map(|b| b.value),
                requests.last_message_compressed(),
            )
            .map_err(|s| echo.apply_to_status(s))?;
            total += r.payload.map_or(0, |p| p.body.len());
        }
        let mut response = Response::new(StreamingInputCallResponse {
            aggregated_payload_size: i32::try_from(total).unwrap_or(i32::MAX),
        });
        echo.apply(&mut response);
        Ok(response)
    }

    async fn full_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<ResponseStream<StreamingOutputCallResponse>>, Status> {
        let echo = Echo::from(request.metadata())?;
        let switch = CompressionSwitch::new(false);
        let state = Duplex {
            requests: request.into_message(),
            queue: VecDeque::new(),
            done: false,
        };
        let (toggle, trailing_echo) = (switch.clone(), echo.clone());
        let responses = stream::unfold(state, move |mut state| {
            let (toggle, echo) = (toggle.clone(), trailing_echo.clone());
            async move {
                loop {
                    if state.done {
                        return None;
                    }
                    if let Some(p) = state.queue.pop_front() {
                        if p.interval_us > 0 {
                            tokio::time::sleep(Duration::from_micros(p.interval_us as u64)).await;
                        }
                        toggle.set(p.compressed.as_ref().is_some_and(|b| b.value));
                        let item =
                            payload(p.size).map(|payload| StreamingOutputCallResponse { payload });
                        return Some((item, state));
                    }
                    match state.requests.message().await {
                        Ok(Some(r)) => {
                            if let Some(status) = requested_status(&r.response_status) {
                                state.done = true;
                                return Some((Err(echo.apply_to_status(status)), state));
                            }
                            state.queue.extend(r.response_parameters);
                        }
                        Ok(None) => return None,
                        Err(status) => {
                            state.done = true;
                            return Some((Err(status), state));
                        }
                    }
                }
            }
        });
        Ok(streaming_response(responses, switch, &echo))
    }

    async fn half_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<ResponseStream<StreamingOutputCallResponse>>, Status> {
        let echo = Echo::from(request.metadata())?;
        let mut requests = request.into_message();
        let mut parameters = VecDeque::new();
        let mut status = None;
        // Everything the client sends first, then the responses in order.
        while let Some(r) = requests.message().await? {
            if status.is_none() {
                status = requested_status(&r.response_status);
            }
            parameters.extend(r.response_parameters);
        }
        let switch = CompressionSwitch::new(false);
        let end = stream::iter(status.map(|s| Err(echo.apply_to_status(s))));
        let responses =
            futures_util::StreamExt::chain(responses_for(parameters, switch.clone()), end);
        Ok(streaming_response(responses, switch, &echo))
    }

    async fn unimplemented_call(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented(
            "grpc.testing.TestService/UnimplementedCall is not implemented",
        ))
    }
}

/// The server's TLS, from the flags (`None` without --use_tls).
fn server_tls(args: &Args) -> Result<Option<ServerTls>, String> {
    if !args.use_tls {
        return Ok(None);
    }
    let (Some(cert), Some(key)) = (&args.tls_cert_file, &args.tls_key_file) else {
        return Err(
            "--use_tls needs --tls_cert_file and --tls_key_file (no test certificate is built in)"
                .into(),
        );
    };
    let tls = ServerTls::from_pem_files(cert, key).map_err(|e| e.to_string())?;
    match &args.tls_client_ca_file {
        None => Ok(Some(tls)),
        Some(ca) => {
            let ca = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
            tls.require_client_cert(&ca)
                .map(Some)
                .map_err(|e| e.to_string())
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .init();
    // Beside the test service: health (SERVING) and reflection listing what is served.
    let test_service = h2grpc_interop::pb::test_service_server::SERVICE_NAME;
    let health = HealthReporter::new();
    health.set_serving(test_service);
    let reflection = ReflectionService::builder()
        .register_encoded_file_descriptor_set(h2grpc_interop::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(h2grpc::health::FILE_DESCRIPTOR_SET)
        .with_service_name(test_service)
        .with_service_name(h2grpc::health::SERVICE_NAME)
        .build()
        .expect("the generated descriptor sets decode");
    let mut server = Server::new()
        .add_service(TestServiceServer::new(Interop))
        .add_service(health.service())
        .add_service(reflection.v1())
        .add_service(reflection.v1alpha());
    match server_tls(&args) {
        Ok(Some(tls)) => server = server.tls(tls),
        Ok(None) => {}
        Err(e) => {
            eprintln!("interop-server: {e}");
            std::process::exit(2);
        }
    }
    let addr = format!("{}:{}", args.host, args.port);
    let listening = match server.bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("interop-server: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let port = listening
        .local_addrs()
        .first()
        .map_or(args.port, |a| a.port());
    println!("listening on port {port}");
    if let Err(e) = listening
        .serve_with_shutdown(h2grpc::server::shutdown_signal())
        .await
    {
        eprintln!("interop-server: {e}");
        std::process::exit(1);
    }
}
