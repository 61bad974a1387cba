//! Rich error details over real sockets: a `google.rpc.Status` with every standard detail
//! type in `grpc-status-details-bin`, from our server to our client (Trailers-Only and
//! after streamed messages), from a grpcio-status server to our client, from our server to
//! a grpcio-status client, and from a hand-written h2 peer whose details disagree with
//! `grpc-status` or do not decode.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::stream;
use h2grpc::status::details::{
    Any, BadRequest, DebugInfo, ErrorDetail, ErrorInfo, Help, LocalizedMessage,
    PreconditionFailure, QuotaFailure, RequestInfo, ResourceInfo, RetryInfo, rpc,
};
use h2grpc::{Code, Request, Response, ResponseStream, Server, Status, Streaming};
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::demo::grpc_demo_server::{GrpcDemo, GrpcDemoServer};
use h2grpc_test_support::demo::{Request as DemoRequest, Response as DemoResponse};
use h2grpc_test_support::process::{Process, run_named};
use h2grpc_test_support::python;
use h2grpc_test_support::service::{bounded, reply, req};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The message of the status, with what `grpc-message` percent-encodes.
const MESSAGE: &str = "the request is not valid: \u{263a} 100%";

/// The details tests/peers/python/details_peer.py builds and checks, in its order.
fn expected_details() -> Vec<ErrorDetail> {
    vec![
        ErrorInfo::with_reason("NAME_INVALID", "h2grpc.test")
            .with_metadata("field", "name")
            .with_metadata("limit", "10")
            .into(),
        RetryInfo::with_delay(Duration::from_millis(1500)).into(),
        DebugInfo::with_stack(["frame one", "frame two"], "debug detail").into(),
        QuotaFailure::with_violation("project:demo", "daily limit").into(),
        PreconditionFailure::with_violation("TOS", "h2grpc.test/terms", "terms not accepted")
            .into(),
        BadRequest::with_violation("name", "too long")
            .and_violation("age", "negative")
            .into(),
        RequestInfo::with_id("req-42", "shard 7").into(),
        ResourceInfo::with_resource("book", "shelves/1/books/2", "user:alice", "not found").into(),
        Help::with_link("the docs", "https://example.com/help").into(),
        LocalizedMessage::with_locale("fr-FR", "la requête n'est pas valide").into(),
        // google.protobuf.StringValue { value: "custom" }: a message that is no standard detail.
        ErrorDetail::Other(Any {
            type_url: "type.googleapis.com/google.protobuf.StringValue".to_owned(),
            value: b"\x0a\x06custom".to_vec(),
        }),
    ]
}

fn expected_status() -> Status {
    Status::with_details(Code::InvalidArgument, MESSAGE, expected_details())
}

/// Checks `status` is [`expected_status`], field by field through the typed accessors.
fn assert_expected(status: &Status) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(status.message(), MESSAGE);
    assert_eq!(status.details(), expected_details());

    let info = status.detail::<ErrorInfo>().expect("ErrorInfo");
    assert_eq!(info.reason, "NAME_INVALID");
    assert_eq!(info.domain, "h2grpc.test");
    assert_eq!(
        info.metadata,
        HashMap::from([
            ("field".to_owned(), "name".to_owned()),
            ("limit".to_owned(), "10".to_owned())
        ])
    );
    let retry = status.detail::<RetryInfo>().expect("RetryInfo");
    assert_eq!(retry.delay(), Some(Duration::from_millis(1500)));
    let bad = status.detail::<BadRequest>().expect("BadRequest");
    let fields: Vec<_> = bad
        .field_violations
        .iter()
        .map(|v| (v.field.as_str(), v.description.as_str()))
        .collect();
    assert_eq!(fields, [("name", "too long"), ("age", "negative")]);
    let help = status.detail::<Help>().expect("Help");
    assert_eq!(help.links[0].url, "https://example.com/help");
    let localized = status
        .detail::<LocalizedMessage>()
        .expect("LocalizedMessage");
    assert_eq!(localized.locale, "fr-FR");
    let rpc = status.rpc_status().expect("a google.rpc.Status");
    assert_eq!(rpc.code, 3);
    assert_eq!(rpc.message, MESSAGE);
    assert_eq!(rpc.details.len(), 11);
}

/// `demo.GRPCDemo` failing SimpleMethod at once (Trailers-Only) and ServerStreamingMethod
/// after two messages (trailers), both with [`expected_status`].
struct DetailsService;

impl GrpcDemo for DetailsService {
    async fn simple_method(
        &self,
        _request: Request<DemoRequest>,
    ) -> Result<Response<DemoResponse>, Status> {
        Err(expected_status())
    }

    async fn client_streaming_method(
        &self,
        _request: Request<Streaming<DemoRequest>>,
    ) -> Result<Response<DemoResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn server_streaming_method(
        &self,
        _request: Request<DemoRequest>,
    ) -> Result<Response<ResponseStream<DemoResponse>>, Status> {
        let items = vec![Ok(reply("0")), Ok(reply("1")), Err(expected_status())];
        Ok(Response::new(Box::pin(stream::iter(items))))
    }

    async fn bidirectional_streaming_method(
        &self,
        _request: Request<Streaming<DemoRequest>>,
    ) -> Result<Response<ResponseStream<DemoResponse>>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

/// Our server with [`DetailsService`] on 127.0.0.1:0, stopped when the sender is dropped.
async fn serve_details() -> (SocketAddr, oneshot::Sender<()>) {
    let listening = Server::new()
        .add_service(GrpcDemoServer::new(DetailsService))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listening.local_addrs()[0];
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        listening
            .serve_with_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
    });
    (addr, stop)
}

/// Reads the status of a server-streaming call that sends two messages first.
async fn streamed_status(client: &GrpcDemoClient) -> Status {
    let mut replies = client
        .server_streaming_method(req("x"))
        .await
        .expect("the call starts with response headers")
        .into_message();
    let mut got = Vec::new();
    let status = loop {
        match replies.message().await {
            Ok(Some(r)) => got.push(r.response_data),
            Ok(None) => panic!("the stream ended OK after {got:?}"),
            Err(status) => break status,
        }
    };
    assert_eq!(got.len(), 2, "{got:?}");
    status
}

#[tokio::test]
async fn every_standard_detail_crosses_a_unary_call_typed() {
    bounded(async {
        let (addr, _stop) = serve_details().await;
        let client = GrpcDemoClient::connect(addr.to_string()).await.unwrap();
        let status = client.simple_method(req("x")).await.unwrap_err();
        assert_expected(&status);
    })
    .await
}

#[tokio::test]
async fn details_arrive_in_trailers_after_streamed_messages() {
    bounded(async {
        let (addr, _stop) = serve_details().await;
        let client = GrpcDemoClient::connect(addr.to_string()).await.unwrap();
        let status = streamed_status(&client).await;
        assert_expected(&status);
    })
    .await
}

/// An h2 server answering every request Trailers-Only with `grpc-status: 3`,
/// `grpc-message: header message` and the given `grpc-status-details-bin` value.
async fn serve_trailers_only(details_bin: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(socket).await else {
                    return;
                };
                while let Some(Ok((_request, mut respond))) = conn.accept().await {
                    let response = http::Response::builder()
                        .header("content-type", "application/grpc")
                        .header("grpc-status", "3")
                        .header("grpc-message", "header message")
                        .header("grpc-status-details-bin", details_bin)
                        .body(())
                        .unwrap();
                    let _ = respond.send_response(response, true);
                }
            });
        }
    });
    addr
}

fn base64(bytes: &[u8]) -> &'static str {
    let value = h2grpc::metadata::encode_bin(bytes);
    Box::leak(value.to_str().unwrap().to_owned().into_boxed_str())
}

fn rpc_status_bytes(code: i32, message: &str) -> Vec<u8> {
    h2grpc::prost::Message::encode_to_vec(&rpc::Status {
        code,
        message: message.to_owned(),
        details: vec![ErrorDetail::from(Help::with_link("d", "u")).to_any()],
    })
}

async fn call_peer(details_bin: &'static str) -> Status {
    let addr = serve_trailers_only(details_bin).await;
    let client = GrpcDemoClient::connect(addr.to_string()).await.unwrap();
    client.simple_method(req("x")).await.unwrap_err()
}

#[tokio::test]
async fn details_whose_code_disagrees_with_grpc_status_are_internal() {
    bounded(async {
        let status = call_peer(base64(&rpc_status_bytes(5, "not found"))).await;
        assert_eq!(status.code(), Code::Internal, "{status:?}");
        assert!(
            status
                .message()
                .starts_with("grpc-status-details-bin mismatch: grpc-status=3"),
            "{}",
            status.message()
        );
        assert!(status.details().is_empty());
    })
    .await
}

#[tokio::test]
async fn details_whose_code_agrees_give_the_status_its_message_and_details() {
    bounded(async {
        let status = call_peer(base64(&rpc_status_bytes(3, "details message"))).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(status.message(), "details message");
        assert_eq!(status.detail::<Help>(), Some(Help::with_link("d", "u")));
    })
    .await
}

#[tokio::test]
async fn details_that_are_no_google_rpc_status_are_ignored() {
    bounded(async {
        // A field 3 whose length runs past the end: no protobuf message.
        let status = call_peer(base64(b"\x1a\x7f\x01\x02")).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(status.message(), "header message");
        assert!(status.details().is_empty());
        assert!(status.details_bytes().is_empty());
    })
    .await
}

#[tokio::test]
async fn details_that_are_no_base64_fail_the_call_internal() {
    bounded(async {
        let status = call_peer("*not*base64*").await;
        assert_eq!(status.code(), Code::Internal, "{status:?}");
        assert!(
            status
                .message()
                .starts_with("malformed grpc-status-details-bin"),
            "{}",
            status.message()
        );
    })
    .await
}

const PEER_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn grpcio_status_server_details_are_read_as_typed_values() {
    let Some(venv) = python::venv("grpcio_status_server_details_are_read_as_typed_values") else {
        return;
    };
    let script = python::python_peers_dir().join("details_peer.py");
    let scratch = h2grpc_test_support::process::TempDir::new("details-peer");
    let mut cmd = python::python_script(venv, &scratch, &script);
    cmd.args(["server", "--port", "0"]);
    let mut server = Process::spawn("details_peer.py server", cmd).unwrap();
    let port = server.wait_for_listening(Duration::from_secs(30));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(bounded(async {
        let client = GrpcDemoClient::connect(format!("127.0.0.1:{port}"))
            .await
            .unwrap();
        let status = client.simple_method(req("x")).await.unwrap_err();
        assert_expected(&status);
        let status = streamed_status(&client).await;
        assert_expected(&status);
    }));
    server.stop();
}

#[test]
fn grpcio_status_client_reads_our_details() {
    let Some(venv) = python::venv("grpcio_status_client_reads_our_details") else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (addr, stop) = runtime.block_on(serve_details());
    let script = python::python_peers_dir().join("details_peer.py");
    let scratch = h2grpc_test_support::process::TempDir::new("details-peer");
    for method in ["SimpleMethod", "ServerStreamingMethod"] {
        let mut cmd = python::python_script(venv, &scratch, &script);
        cmd.args([
            "client",
            "--port",
            &addr.port().to_string(),
            "--method",
            method,
        ]);
        let finished = run_named("details_peer.py client", cmd, PEER_TIMEOUT).unwrap();
        assert!(finished.success(), "{}", finished.dump());
        assert!(
            finished.stdout.contains(&format!("PASS {method}")),
            "{}",
            finished.dump()
        );
    }
    drop(stop);
}
