//! `call`: one RPC of any of the four kinds on a method known only at run time. Requests
//! are JSON documents turned into protobuf with prost-reflect and carried through
//! h2grpc's typed calls as [`RawMessage`]s; each response is printed as one JSON document.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream;
use h2grpc::{Channel, Metadata, Request, Status, Streaming};
use http::uri::PathAndQuery;
use prost::Message;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, MessageDescriptor, MethodDescriptor, SerializeOptions,
};
use tokio::sync::{mpsc, oneshot};

use crate::connect::seconds;
use crate::failure::Failure;
use crate::source::Source;
use h2grpc_bench::RawMessage;

/// What `call` was given.
pub struct CallArgs<'a> {
    pub data: Option<&'a str>,
    pub emit_defaults: bool,
    pub metadata: Metadata,
    pub timeout: Option<Duration>,
    pub verbose: bool,
}

/// `pkg.Service/Method` or `pkg.Service.Method` as (service, method).
pub fn split_method(name: &str) -> Option<(&str, &str)> {
    let name = name.trim_start_matches('/');
    let (service, method) = name.rsplit_once('/').or_else(|| name.rsplit_once('.'))?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

/// Finds the method in the descriptors.
pub async fn resolve(source: &mut Source, name: &str) -> Result<MethodDescriptor, Failure> {
    let (service, method) = split_method(name).ok_or_else(|| {
        Failure::Usage(format!(
            "Invalid method name {name:?}: give pkg.Service/Method"
        ))
    })?;
    let pool = source.pool_with(service).await.map_err(|e| {
        Failure::Other(format!(
            "Error invoking method \"{name}\": target server does not expose service \"{service}\" ({})",
            e.report()
        ))
    })?;
    let found = pool.get_service_by_name(service).ok_or_else(|| {
        Failure::Other(format!(
            "Error invoking method \"{name}\": target server does not expose service \"{service}\""
        ))
    })?;
    found.methods().find(|m| m.name() == method).ok_or_else(|| {
        Failure::Other(format!(
            "Error invoking method \"{name}\": service \"{service}\" does not include a method named \"{method}\""
        ))
    })
}

/// Runs the call, printing each response to stdout as it arrives.
pub async fn call(
    channel: &Channel,
    method: &MethodDescriptor,
    args: CallArgs<'_>,
) -> Result<(), Failure> {
    let started = Instant::now();
    let path = PathAndQuery::try_from(format!(
        "/{}/{}",
        method.parent_service().full_name(),
        method.name()
    ))
    .map_err(|e| Failure::Other(format!("bad method path: {e}")))?;
    let input = method.input();
    let output = Output {
        descriptor: method.output(),
        options: SerializeOptions::new().skip_default_fields(!args.emit_defaults),
        verbose: args.verbose,
        received: 0,
    };
    if args.verbose {
        eprintln!(
            "\nResolved method descriptor:\n{}",
            crate::describe::describe(method.parent_pool(), method.full_name())
                .unwrap_or_default()
                .split_once('\n')
                .map_or("", |(_, text)| text)
        );
        eprintln!(
            "Request metadata to send:\n{}",
            show_metadata(&args.metadata)
        );
    }
    let sent = Arc::new(AtomicUsize::new(0));
    let mut output = output;
    let outcome = if method.is_client_streaming() {
        let (requests, input_error) = request_stream(args.data, &input, sent.clone())?;
        let request = Request::from_parts(args.metadata, requests, args.timeout);
        if method.is_server_streaming() {
            let call = async {
                match channel
                    .streaming::<RawMessage, RawMessage, _>(path, request)
                    .await
                {
                    Ok(response) => output.stream(response).await,
                    Err(status) => Err(output.failed(status)),
                }
            };
            tokio::select! {
                outcome = call => outcome,
                Ok(failure) = input_error => Err(failure),
            }
        } else {
            let call = channel.client_streaming::<RawMessage, RawMessage, _>(path, request);
            tokio::select! {
                outcome = call => match outcome {
                    Ok(response) => output.single(response),
                    Err(status) => Err(output.failed(status)),
                },
                Ok(failure) = input_error => Err(failure),
            }
        }
    } else {
        let message = single_request(args.data, &input).await?;
        sent.store(1, Ordering::Relaxed);
        let request = Request::from_parts(args.metadata, message, args.timeout);
        if method.is_server_streaming() {
            match channel
                .server_streaming::<RawMessage, RawMessage>(path, request)
                .await
            {
                Ok(response) => output.stream(response).await,
                Err(status) => Err(output.failed(status)),
            }
        } else {
            match channel.unary::<RawMessage, RawMessage>(path, request).await {
                Ok(response) => output.single(response),
                Err(status) => Err(output.failed(status)),
            }
        }
    };
    if args.verbose {
        let n = sent.load(Ordering::Relaxed);
        let m = output.received;
        eprintln!(
            "\nSent {n} request{} and received {m} response{} in {}",
            if n == 1 { "" } else { "s" },
            if m == 1 { "" } else { "s" },
            seconds(started.elapsed())
        );
    }
    outcome
}

struct Output {
    descriptor: MessageDescriptor,
    options: SerializeOptions,
    verbose: bool,
    received: usize,
}

impl Output {
    fn headers(&self, headers: &Metadata) {
        if self.verbose {
            eprintln!("\nResponse headers received:\n{}", show_metadata(headers));
        }
    }

    fn trailers(&self, trailers: &Metadata) {
        if self.verbose {
            eprintln!("\nResponse trailers received:\n{}", show_metadata(trailers));
        }
    }

    /// The call ended with `status`: its trailers, then the failure.
    fn failed(&self, status: Status) -> Failure {
        self.trailers(status.metadata());
        Failure::Rpc(status)
    }

    fn single(&mut self, response: h2grpc::Response<RawMessage>) -> Result<(), Failure> {
        let (headers, message, trailers) = response.into_parts();
        self.headers(&headers);
        self.print(message)?;
        self.trailers(&trailers);
        Ok(())
    }

    async fn stream(
        &mut self,
        response: h2grpc::Response<Streaming<RawMessage>>,
    ) -> Result<(), Failure> {
        let (headers, mut messages, _) = response.into_parts();
        self.headers(&headers);
        loop {
            match messages.message().await {
                Ok(Some(message)) => self.print(message)?,
                Ok(None) => break,
                Err(status) => return Err(self.failed(status)),
            }
        }
        self.trailers(messages.trailers().unwrap_or(&Metadata::new()));
        Ok(())
    }

    /// One response as a JSON document on stdout, flushed at once.
    fn print(&mut self, message: RawMessage) -> Result<(), Failure> {
        self.received += 1;
        let n = self.received;
        let decoded = DynamicMessage::decode(self.descriptor.clone(), message.0).map_err(|e| {
            Failure::Other(format!(
                "Failed to decode response message {n} as {}: {e}",
                self.descriptor.full_name()
            ))
        })?;
        let mut text = Vec::new();
        let mut serializer = serde_json::Serializer::pretty(&mut text);
        decoded
            .serialize_with_options(&mut serializer, &self.options)
            .map_err(|e| Failure::Other(format!("Failed to format response message {n}: {e}")))?;
        text.push(b'\n');
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&text)
            .and_then(|()| stdout.flush())
            .map_err(|e| Failure::Other(format!("cannot write to stdout: {e}")))
    }
}

/// The one request of a unary or server-streaming call: `-d` must hold at most one
/// document (none means an empty request).
async fn single_request(
    data: Option<&str>,
    input: &MessageDescriptor,
) -> Result<RawMessage, Failure> {
    let text = match data {
        None => return Ok(RawMessage::default()),
        Some("@") => tokio::task::spawn_blocking(|| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text).map(|_| text)
        })
        .await
        .map_err(|e| Failure::Other(format!("reading stdin: {e}")))?
        .map_err(|e| Failure::Other(format!("Failed to read request data from stdin: {e}")))?,
        Some(text) => text.to_string(),
    };
    let mut documents = documents(text.as_bytes(), input);
    let first = match documents.next() {
        None => return Ok(RawMessage::default()),
        Some(first) => first?,
    };
    if documents.next().is_some() {
        return Err(Failure::Other(format!(
            "Error invoking method: the method takes one request ({}), and the data holds more than one JSON document",
            input.full_name()
        )));
    }
    Ok(first)
}

/// The requests of a client-streaming or bidi call, and where a bad document in `-d @`
/// is reported (the call is then cancelled rather than half-closed).
#[allow(clippy::type_complexity)]
fn request_stream(
    data: Option<&str>,
    input: &MessageDescriptor,
    sent: Arc<AtomicUsize>,
) -> Result<
    (
        impl futures_util::Stream<Item = RawMessage> + Send + 'static,
        oneshot::Receiver<Failure>,
    ),
    Failure,
> {
    let (tx, rx) = mpsc::unbounded_channel::<RawMessage>();
    let (error_tx, error_rx) = oneshot::channel();
    match data {
        None => {}
        Some("@") => {
            let input = input.clone();
            std::thread::spawn(move || {
                let stdin = std::io::stdin().lock();
                for document in documents(stdin, &input) {
                    match document {
                        Ok(message) => {
                            if tx.send(message).is_err() {
                                return;
                            }
                        }
                        Err(failure) => {
                            // Keep the request stream open: the call is to be cancelled.
                            let _keep_open = tx;
                            let _ = error_tx.send(failure);
                            std::thread::park();
                            return;
                        }
                    }
                }
            });
        }
        Some(text) => {
            for document in documents(text.as_bytes(), input) {
                let _ = tx.send(document?);
            }
        }
    }
    let requests = stream::unfold((rx, sent), |(mut rx, sent)| async move {
        let message = rx.recv().await?;
        sent.fetch_add(1, Ordering::Relaxed);
        Some((message, (rx, sent)))
    });
    Ok((requests, error_rx))
}

/// JSON documents one after another in `reader`, each encoded as `input`.
pub fn documents<R: std::io::Read>(
    reader: R,
    input: &MessageDescriptor,
) -> impl Iterator<Item = Result<RawMessage, Failure>> {
    let input = input.clone();
    let options = DeserializeOptions::new();
    let mut n = 0usize;
    serde_json::Deserializer::from_reader(reader)
        .into_iter::<serde_json::Value>()
        .map(move |value| {
            n += 1;
            let value = value.map_err(|e| {
                Failure::Other(format!(
                    "Error invoking method: request {n} is not JSON: {e}"
                ))
            })?;
            let message = DynamicMessage::deserialize_with_options(input.clone(), value, &options)
                .map_err(|e| {
                    Failure::Other(format!(
                        "Error invoking method: request {n} is not a {}: {e}",
                        input.full_name()
                    ))
                })?;
            Ok(RawMessage(Bytes::from(message.encode_to_vec())))
        })
}

/// Metadata as `name: value` lines (a `-bin` value as its base64); `(empty)` when empty.
pub fn show_metadata(metadata: &Metadata) -> String {
    let mut lines: Vec<String> = metadata
        .iter()
        .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
        .collect();
    if lines.is_empty() {
        return "(empty)".to_string();
    }
    lines.sort();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_take_a_slash_or_a_dot() {
        assert_eq!(
            split_method("demo.GRPCDemo/SimpleMethod"),
            Some(("demo.GRPCDemo", "SimpleMethod"))
        );
        assert_eq!(
            split_method("/demo.GRPCDemo/SimpleMethod"),
            Some(("demo.GRPCDemo", "SimpleMethod"))
        );
        assert_eq!(
            split_method("demo.GRPCDemo.SimpleMethod"),
            Some(("demo.GRPCDemo", "SimpleMethod"))
        );
        assert_eq!(split_method("Method"), None);
        assert_eq!(split_method("demo.GRPCDemo/"), None);
    }
}
