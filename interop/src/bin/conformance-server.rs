//! conformance-server: `connectrpc.conformance.v1.ConformanceService` on h2grpc's server, for
//! the ConnectRPC conformance runner's server mode (`connectconformance --mode server`).
//!
//! The runner starts this process and writes a `ServerCompatRequest` to its stdin (a 4-byte
//! big-endian length, then the message); the server listens on 127.0.0.1 (with TLS when asked,
//! with a certificate made at start, and requiring the runner's client certificate when it
//! sends one) and answers with a `ServerCompatResponse` on stdout the same way. Each method
//! then does what the request's `ResponseDefinition` says (headers, trailers, data, delay,
//! error with details) and echoes what it received (`ConformancePayload.RequestInfo`), as the
//! suite's reference server (`internal/app/referenceserver/impl.go`) does.

use std::io::{Read, Write};
use std::time::Duration;

use futures_util::stream;
use h2grpc::prost::Message;
use h2grpc::{
    Code, Metadata, Request, Response, ResponseStream, Server, ServerTls, Status, Streaming,
};
use h2grpc_interop::conformance as pb;
use pb::conformance_payload::RequestInfo;
use pb::conformance_service_server::{ConformanceService, ConformanceServiceServer};
use prost_types::Any;

/// The largest `ServerCompatRequest` read from stdin.
const MAX_COMPAT_REQUEST_BYTES: usize = 1 << 20;

/// The package of every message echoed as an `Any`.
const TYPE_URL_PREFIX: &str = "type.googleapis.com/connectrpc.conformance.v1.";

/// `message` as a `google.protobuf.Any` named `type_name` (in the conformance package).
fn any(type_name: &str, message: &impl Message) -> Any {
    Any {
        type_url: format!("{TYPE_URL_PREFIX}{type_name}"),
        value: message.encode_to_vec(),
    }
}

/// The request's headers as the suite's `Header` list, values of one name together.
fn request_headers(metadata: &Metadata) -> Vec<pb::Header> {
    let mut headers: Vec<pb::Header> = Vec::new();
    for (name, value) in metadata.iter() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.iter_mut().find(|h| h.name == name) {
            Some(header) => header.value.push(value),
            None => headers.push(pb::Header {
                name: name.to_owned(),
                value: vec![value],
            }),
        }
    }
    headers
}

/// Add the definition's `headers` to `metadata` (names lower-cased, every value).
fn add_headers(headers: &[pb::Header], metadata: &mut Metadata) {
    for header in headers {
        let name = header.name.to_ascii_lowercase();
        for value in &header.value {
            let added = if name.ends_with("-bin") {
                match h2grpc::metadata::decode_bin(value.as_bytes()) {
                    Ok(bytes) => metadata.append_bin(&name, &bytes),
                    Err(e) => Err(e),
                }
            } else {
                metadata.append(&name, value)
            };
            if let Err(e) = added {
                tracing::warn!("response metadata {name}: {e}");
            }
        }
    }
}

/// What the server saw of a call: its headers and timeout (the requests are added per call).
struct Seen {
    headers: Vec<pb::Header>,
    timeout_ms: Option<i64>,
}

impl Seen {
    fn of<T>(request: &Request<T>) -> Seen {
        Seen {
            headers: request_headers(request.metadata()),
            timeout_ms: request
                .timeout()
                .map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX)),
        }
    }

    fn info(&self, requests: Vec<Any>) -> RequestInfo {
        RequestInfo {
            request_headers: self.headers.clone(),
            timeout_ms: self.timeout_ms,
            requests,
            connect_get_info: None,
        }
    }
}

/// The status of a definition's `error`, its details plus `info` (when given) as a
/// `google.rpc.Status` in `grpc-status-details-bin`.
fn error_status(error: &pb::Error, info: Option<&RequestInfo>) -> Status {
    let code = Code::from_i32(error.code);
    let message = error.message.clone().unwrap_or_default();
    let mut details = error.details.clone();
    details.extend(info.map(|info| any("ConformancePayload.RequestInfo", info)));
    if details.is_empty() {
        return Status::new(code, message);
    }
    let rpc = h2grpc::status::details::rpc::Status {
        code: code.as_i32(),
        message: message.clone(),
        details,
    };
    Status::new(code, message).with_details_bytes(rpc.encode_to_vec())
}

/// A unary or client-streaming answer: the payload with its headers and trailers, after the
/// definition's delay; or its error, carrying both (the headers as response header metadata).
async fn unary_answer(
    definition: Option<pb::UnaryResponseDefinition>,
    seen: &Seen,
    requests: Vec<Any>,
) -> Result<Response<pb::ConformancePayload>, Status> {
    let info = seen.info(requests);
    let Some(definition) = definition else {
        return Ok(Response::new(pb::ConformancePayload {
            data: Vec::new(),
            request_info: Some(info),
        }));
    };
    use pb::unary_response_definition::Response as Answer;
    let data = match definition.response {
        Some(Answer::Error(error)) => {
            let mut status = error_status(&error, Some(&info));
            add_headers(&definition.response_headers, status.response_metadata_mut());
            add_headers(&definition.response_trailers, status.metadata_mut());
            return Err(status);
        }
        Some(Answer::ResponseData(data)) => data,
        None => Vec::new(),
    };
    let mut response = Response::new(pb::ConformancePayload {
        data,
        request_info: Some(info),
    });
    add_headers(&definition.response_headers, response.metadata_mut());
    add_headers(&definition.response_trailers, response.trailers_mut());
    sleep_ms(definition.response_delay_ms).await;
    Ok(response)
}

async fn sleep_ms(ms: u32) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
    }
}

/// The responses of a streaming definition, as a server- or bidi-stream sends them.
struct Responses {
    data: std::vec::IntoIter<Vec<u8>>,
    delay_ms: u32,
    error: Option<pb::Error>,
    /// How many responses went out.
    sent: usize,
    seen: Seen,
    /// Requests received and not yet echoed.
    requests: Vec<Any>,
    /// Full duplex: the requests still being read, one response per request.
    reading: Option<Streaming<pb::BidiStreamRequest>>,
    /// Full duplex: a request came in that no response answered yet.
    unanswered: bool,
}

impl Responses {
    fn new(definition: Option<pb::StreamResponseDefinition>, seen: Seen) -> Responses {
        let definition = definition.unwrap_or_default();
        Responses {
            data: definition.response_data.into_iter(),
            delay_ms: definition.response_delay_ms,
            error: definition.error,
            sent: 0,
            seen,
            requests: Vec::new(),
            reading: None,
            unanswered: false,
        }
    }

    /// The next response: while reading (full duplex), one per request received; then the
    /// rest of the data, then the error. The first response echoes the whole request info,
    /// later ones only the requests that came since.
    async fn next(&mut self) -> Option<Result<pb::ConformancePayload, Status>> {
        loop {
            if let Some(requests) = &mut self.reading {
                if !self.unanswered {
                    match requests.message().await {
                        Ok(Some(request)) => {
                            self.requests.push(any("BidiStreamRequest", &request));
                            self.unanswered = true;
                        }
                        Ok(None) => self.reading = None,
                        Err(status) => {
                            self.reading = None;
                            self.error = None;
                            self.data = Vec::new().into_iter();
                            return Some(Err(status));
                        }
                    }
                    continue;
                }
                self.unanswered = false;
                if self.data.len() == 0 {
                    // Nothing left to answer with: stop reading, as the reference does.
                    self.reading = None;
                    continue;
                }
            }
            if let Some(data) = self.data.next() {
                let requests = std::mem::take(&mut self.requests);
                let info = if self.sent == 0 {
                    self.seen.info(requests)
                } else {
                    RequestInfo {
                        requests,
                        ..RequestInfo::default()
                    }
                };
                sleep_ms(self.delay_ms).await;
                self.sent += 1;
                return Some(Ok(pb::ConformancePayload {
                    data,
                    request_info: Some(info),
                }));
            }
            let error = self.error.take()?;
            let info = (self.sent == 0).then(|| self.seen.info(std::mem::take(&mut self.requests)));
            return Some(Err(error_status(&error, info.as_ref())));
        }
    }

    /// The response for `definition`'s headers and trailers, streaming `wrap`ped payloads.
    /// With data to send, the headers go out at once (before the first delay).
    fn into_response<T: Send + 'static>(
        self,
        definition_headers: &[pb::Header],
        definition_trailers: &[pb::Header],
        wrap: fn(pb::ConformancePayload) -> T,
    ) -> Response<ResponseStream<T>> {
        let headers_first = self.data.len() > 0;
        let responses = stream::unfold(self, move |mut responses| async move {
            let item = responses.next().await?;
            Some((item.map(wrap), responses))
        });
        let mut response = Response::new(Box::pin(responses) as ResponseStream<T>);
        add_headers(definition_headers, response.metadata_mut());
        add_headers(definition_trailers, response.trailers_mut());
        if headers_first {
            response.send_headers_first();
        }
        response
    }
}

struct Conformance;

impl ConformanceService for Conformance {
    async fn unary(
        &self,
        request: Request<pb::UnaryRequest>,
    ) -> Result<Response<pb::UnaryResponse>, Status> {
        let seen = Seen::of(&request);
        let message = request.into_message();
        let requests = vec![any("UnaryRequest", &message)];
        let response = unary_answer(message.response_definition, &seen, requests).await?;
        Ok(wrap(response, |payload| pb::UnaryResponse {
            payload: Some(payload),
        }))
    }

    async fn idempotent_unary(
        &self,
        request: Request<pb::IdempotentUnaryRequest>,
    ) -> Result<Response<pb::IdempotentUnaryResponse>, Status> {
        let seen = Seen::of(&request);
        let message = request.into_message();
        let requests = vec![any("IdempotentUnaryRequest", &message)];
        let response = unary_answer(message.response_definition, &seen, requests).await?;
        Ok(wrap(response, |payload| pb::IdempotentUnaryResponse {
            payload: Some(payload),
        }))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<pb::ClientStreamRequest>>,
    ) -> Result<Response<pb::ClientStreamResponse>, Status> {
        let seen = Seen::of(&request);
        let mut stream = request.into_message();
        let mut definition = None;
        let mut requests = Vec::new();
        while let Some(message) = stream.message().await? {
            if requests.is_empty() {
                definition = message.response_definition.clone();
            }
            requests.push(any("ClientStreamRequest", &message));
        }
        let response = unary_answer(definition, &seen, requests).await?;
        Ok(wrap(response, |payload| pb::ClientStreamResponse {
            payload: Some(payload),
        }))
    }

    async fn server_stream(
        &self,
        request: Request<pb::ServerStreamRequest>,
    ) -> Result<Response<ResponseStream<pb::ServerStreamResponse>>, Status> {
        let seen = Seen::of(&request);
        let message = request.into_message();
        let echoed = any("ServerStreamRequest", &message);
        let definition = message.response_definition.unwrap_or_default();
        let (headers, trailers) = (
            definition.response_headers.clone(),
            definition.response_trailers.clone(),
        );
        let mut responses = Responses::new(Some(definition), seen);
        responses.requests.push(echoed);
        Ok(
            responses.into_response(&headers, &trailers, |payload| pb::ServerStreamResponse {
                payload: Some(payload),
            }),
        )
    }

    async fn bidi_stream(
        &self,
        request: Request<Streaming<pb::BidiStreamRequest>>,
    ) -> Result<Response<ResponseStream<pb::BidiStreamResponse>>, Status> {
        let seen = Seen::of(&request);
        let mut stream = request.into_message();
        // The first request says what to answer, and whether to answer as requests come.
        let first = stream.message().await?;
        let Some(first) = first else {
            let responses = Responses::new(None, seen);
            return Ok(responses.into_response(&[], &[], wrap_bidi));
        };
        let definition = first.response_definition.clone().unwrap_or_default();
        let (headers, trailers) = (
            definition.response_headers.clone(),
            definition.response_trailers.clone(),
        );
        let mut responses = Responses::new(Some(definition), seen);
        responses.requests.push(any("BidiStreamRequest", &first));
        if first.full_duplex {
            responses.unanswered = true;
            responses.reading = Some(stream);
        } else {
            // Half duplex: every request first, then the responses.
            while let Some(message) = stream.message().await? {
                responses.requests.push(any("BidiStreamRequest", &message));
            }
        }
        Ok(responses.into_response(&headers, &trailers, wrap_bidi))
    }

    async fn unimplemented(
        &self,
        _request: Request<pb::UnimplementedRequest>,
    ) -> Result<Response<pb::UnimplementedResponse>, Status> {
        Err(Status::unimplemented(
            "connectrpc.conformance.v1.ConformanceService.Unimplemented is not implemented",
        ))
    }
}

/// `response` with its payload wrapped in the method's response message.
fn wrap<T>(
    response: Response<pb::ConformancePayload>,
    wrap: impl FnOnce(pb::ConformancePayload) -> T,
) -> Response<T> {
    let (headers, payload, trailers) = response.into_parts();
    Response::from_parts(headers, wrap(payload), trailers)
}

fn wrap_bidi(payload: pb::ConformancePayload) -> pb::BidiStreamResponse {
    pb::BidiStreamResponse {
        payload: Some(payload),
    }
}

/// Read the length-prefixed `ServerCompatRequest` from stdin.
fn read_compat_request() -> Result<pb::ServerCompatRequest, String> {
    let mut stdin = std::io::stdin().lock();
    let mut prefix = [0u8; 4];
    stdin
        .read_exact(&mut prefix)
        .map_err(|e| format!("reading the request's length: {e}"))?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_COMPAT_REQUEST_BYTES {
        return Err(format!(
            "a {len}-byte request is over the {MAX_COMPAT_REQUEST_BYTES}-byte limit"
        ));
    }
    let mut body = vec![0; len];
    stdin
        .read_exact(&mut body)
        .map_err(|e| format!("reading the request: {e}"))?;
    pb::ServerCompatRequest::decode(&body[..]).map_err(|e| format!("decoding the request: {e}"))
}

/// The server's TLS for `request` and the certificate (PEM) the runner is to trust: the
/// runner's credentials when it sends them, else a self-signed certificate made now.
fn server_tls(request: &pb::ServerCompatRequest) -> Result<(ServerTls, Vec<u8>), String> {
    let (cert, key) = match &request.server_creds {
        Some(creds) if !creds.cert.is_empty() => (creds.cert.clone(), creds.key.clone()),
        _ => {
            let made = rcgen::generate_simple_self_signed(vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
            ])
            .map_err(|e| format!("making a certificate: {e}"))?;
            (
                made.cert.pem().into_bytes(),
                made.signing_key.serialize_pem().into_bytes(),
            )
        }
    };
    let mut tls = ServerTls::from_pem(&cert, &key).map_err(|e| e.to_string())?;
    if !request.client_tls_cert.is_empty() {
        tls = tls
            .require_client_cert(&request.client_tls_cert)
            .map_err(|e| e.to_string())?;
    }
    Ok((tls, cert))
}

fn fail(what: String) -> ! {
    eprintln!("conformance-server: {what}");
    std::process::exit(1);
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .init();
    let request = read_compat_request().unwrap_or_else(|e| fail(e));
    let mut server = Server::new().add_service(ConformanceServiceServer::new(Conformance));
    if request.message_receive_limit > 0 {
        server = server.max_receive_message_size(request.message_receive_limit as usize);
    }
    let mut pem_cert = Vec::new();
    if request.use_tls {
        let (tls, cert) = server_tls(&request).unwrap_or_else(|e| fail(e));
        server = server.tls(tls);
        pem_cert = cert;
    }
    let listening = server
        .bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen: {e}")));
    let port = listening.local_addrs().first().map_or(0, |a| a.port());
    let response = pb::ServerCompatResponse {
        host: "127.0.0.1".to_owned(),
        port: u32::from(port),
        pem_cert,
    };
    let body = response.encode_to_vec();
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(&(body.len() as u32).to_be_bytes())
        .and_then(|()| stdout.write_all(&body))
        .and_then(|()| stdout.flush());
    if let Err(e) = written {
        fail(format!("writing the response: {e}"));
    }
    drop(stdout);
    if let Err(e) = listening
        .serve_with_shutdown(h2grpc::server::shutdown_signal())
        .await
    {
        fail(e.to_string());
    }
}
