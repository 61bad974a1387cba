//! Server interceptors over real sockets: run in the order added, async, before the
//! handler; a refusal ends the call Trailers-Only without running the handler (or reading
//! the request); response headers and trailers they add reach the client, on success and
//! on failure; extensions they set reach the handler; they see the peer's address, and
//! over mutual TLS the client certificate's identity.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::stream;
use h2grpc::server::{CallContext, InterceptFuture, Interceptor, interceptor_fn};
use h2grpc::{
    Channel, ClientTls, Code, Request, Response, ResponseStream, Server, ServerTls, Status,
    Streaming,
};
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::demo::grpc_demo_server::{GrpcDemo, GrpcDemoServer};
use h2grpc_test_support::demo::{Request as DemoRequest, Response as DemoResponse};
use h2grpc_test_support::service::{bounded, grpc_head, raw_request, reply, req};
use h2grpc_test_support::tls::{CLIENT_COMMON_NAME, TestCerts};
use tokio::sync::oneshot;

/// What interceptors leave for the handler: the tags of the interceptors that ran.
#[derive(Clone, Debug, Default)]
struct Trail(Vec<&'static str>);

/// The service of these tests. Every handler counts its runs, then answers with the
/// `Trail` extension (`a,b`), or `peer` with the peer address it was given.
#[derive(Clone, Default)]
struct Probe {
    runs: Arc<AtomicUsize>,
}

impl Probe {
    fn ran(&self, request_extensions: &http::Extensions) -> String {
        self.runs.fetch_add(1, Ordering::SeqCst);
        request_extensions
            .get::<Trail>()
            .map(|t| t.0.join(","))
            .unwrap_or_else(|| "no trail".into())
    }
}

impl GrpcDemo for Probe {
    async fn simple_method(
        &self,
        request: Request<DemoRequest>,
    ) -> Result<Response<DemoResponse>, Status> {
        let trail = self.ran(request.extensions());
        match request.message().request_data.as_str() {
            "peer" => {
                let addr = request.peer().and_then(|p| p.addr());
                Ok(Response::new(reply(format!("{addr:?}"))))
            }
            "fail" => Err(Status::failed_precondition("the handler failed")),
            _ => {
                let mut response = Response::new(reply(trail));
                response.metadata_mut().insert("x-handler", "h").unwrap();
                response.trailers_mut().insert("x-handler-t", "t").unwrap();
                Ok(response)
            }
        }
    }

    async fn client_streaming_method(
        &self,
        request: Request<Streaming<DemoRequest>>,
    ) -> Result<Response<DemoResponse>, Status> {
        let trail = self.ran(request.extensions());
        let mut requests = request.into_message();
        while requests.message().await?.is_some() {}
        Ok(Response::new(reply(trail)))
    }

    async fn server_streaming_method(
        &self,
        request: Request<DemoRequest>,
    ) -> Result<Response<ResponseStream<DemoResponse>>, Status> {
        let trail = self.ran(request.extensions());
        Ok(Response::new(Box::pin(stream::iter([Ok(reply(trail))]))))
    }

    async fn bidirectional_streaming_method(
        &self,
        request: Request<Streaming<DemoRequest>>,
    ) -> Result<Response<ResponseStream<DemoResponse>>, Status> {
        let trail = self.ran(request.extensions());
        Ok(Response::new(Box::pin(stream::iter([Ok(reply(trail))]))))
    }
}

/// A server running `probe` with `server`'s settings and interceptors, until dropped.
struct Running {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn serve(server: Server, probe: Probe) -> Running {
    let listening = server
        .add_service(GrpcDemoServer::new(probe))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listening.local_addrs()[0];
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(listening.serve_with_shutdown(async {
        let _ = stopped.await;
    }));
    Running { addr, _stop: stop }
}

fn client(running: &Running) -> GrpcDemoClient {
    GrpcDemoClient::new(Channel::lazy(running.addr.to_string()).unwrap())
}

/// Appends its tag to the `Trail` extension and to `log` (with the path), after a yield
/// (async work: a token lookup, say).
struct Tagger {
    tag: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

impl Interceptor for Tagger {
    fn intercept<'a>(&'a self, call: &'a mut CallContext<'_>) -> InterceptFuture<'a> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            self.log
                .lock()
                .unwrap()
                .push(format!("{} {}", self.tag, call.path()));
            let trail = call.extensions_mut().get_or_insert_default::<Trail>();
            trail.0.push(self.tag);
            Ok(())
        })
    }
}

fn take(log: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

#[tokio::test]
async fn interceptors_run_in_the_order_added_and_hand_extensions_to_every_kind_of_handler() {
    bounded(async {
        let log = Arc::new(Mutex::new(Vec::new()));
        let server = Server::new()
            .interceptor(Tagger {
                tag: "a",
                log: log.clone(),
            })
            .interceptor(Tagger {
                tag: "b",
                log: log.clone(),
            });
        let running = serve(server, Probe::default()).await;
        let client = client(&running);

        let answer = client.simple_method(req("x")).await.unwrap();
        assert_eq!(answer.message().response_data, "a,b");
        assert_eq!(
            take(&log),
            [
                "a /demo.GRPCDemo/SimpleMethod",
                "b /demo.GRPCDemo/SimpleMethod"
            ]
        );

        let answer = client
            .client_streaming_method(stream::iter([req("1"), req("2")]))
            .await
            .unwrap();
        assert_eq!(answer.message().response_data, "a,b");
        assert_eq!(
            take(&log),
            [
                "a /demo.GRPCDemo/ClientStreamingMethod",
                "b /demo.GRPCDemo/ClientStreamingMethod"
            ]
        );

        let mut replies = client
            .server_streaming_method(req("x"))
            .await
            .unwrap()
            .into_message();
        assert_eq!(
            replies.message().await.unwrap().unwrap().response_data,
            "a,b"
        );
        assert!(replies.message().await.unwrap().is_none());

        let mut replies = client
            .bidirectional_streaming_method(stream::iter([req("x")]))
            .await
            .unwrap()
            .into_message();
        assert_eq!(
            replies.message().await.unwrap().unwrap().response_data,
            "a,b"
        );
        assert!(replies.message().await.unwrap().is_none());
        assert_eq!(
            take(&log),
            [
                "a /demo.GRPCDemo/ServerStreamingMethod",
                "b /demo.GRPCDemo/ServerStreamingMethod",
                "a /demo.GRPCDemo/BidirectionalStreamingMethod",
                "b /demo.GRPCDemo/BidirectionalStreamingMethod"
            ]
        );
    })
    .await
}

#[tokio::test]
async fn a_handler_gets_no_extensions_without_interceptors() {
    bounded(async {
        let running = serve(Server::new(), Probe::default()).await;
        let answer = client(&running).simple_method(req("x")).await.unwrap();
        assert_eq!(answer.message().response_data, "no trail");
    })
    .await
}

/// Refuses calls without `x-token: open`; counts the calls it saw.
fn gatekeeper(seen: Arc<AtomicUsize>) -> impl Interceptor {
    interceptor_fn(move |call: &mut CallContext<'_>| {
        let seen = seen.clone();
        Box::pin(async move {
            seen.fetch_add(1, Ordering::SeqCst);
            match call.metadata().get("x-token") {
                Some("open") => Ok(()),
                _ => Err(Status::unauthenticated("x-token missing or wrong")),
            }
        })
    })
}

/// Counts the calls that reach it.
fn counter(count: Arc<AtomicUsize>) -> impl Interceptor {
    interceptor_fn(move |_call: &mut CallContext<'_>| {
        count.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    })
}

#[tokio::test]
async fn a_refusal_ends_the_call_trailers_only_and_neither_later_interceptors_nor_the_handler_run()
{
    bounded(async {
        let (seen, after) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let probe = Probe::default();
        let server = Server::new()
            .interceptor(gatekeeper(seen.clone()))
            .interceptor(counter(after.clone()));
        let running = serve(server, probe.clone()).await;
        let client = client(&running);

        // Unary and server streaming: UNAUTHENTICATED with the interceptor's message.
        let err = client.simple_method(req("x")).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
        assert_eq!(err.message(), "x-token missing or wrong");
        let err = client.server_streaming_method(req("x")).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

        // Client streaming whose request stream never ends: the refusal comes anyway, so
        // the server did not wait for (or read) the request.
        let err = client
            .client_streaming_method(stream::pending::<DemoRequest>())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

        // On the wire: one HEADERS frame with END_STREAM (no DATA, no separate trailers).
        let head = grpc_head(running.addr, "/demo.GRPCDemo/SimpleMethod")
            .body(())
            .unwrap();
        let raw = raw_request(running.addr, head, &[0, 0, 0, 0, 0]).await;
        assert_eq!(raw.status, http::StatusCode::OK);
        assert!(raw.trailers.is_none(), "{raw:?}");
        assert!(raw.body.is_empty(), "{raw:?}");
        assert_eq!(raw.headers.get("grpc-status").unwrap(), "16");
        assert_eq!(raw.grpc_message(), "x-token missing or wrong");

        assert_eq!(seen.load(Ordering::SeqCst), 4);
        assert_eq!(after.load(Ordering::SeqCst), 0, "a later interceptor ran");
        assert_eq!(probe.runs.load(Ordering::SeqCst), 0, "the handler ran");

        // With the token, both interceptors and the handler run.
        let mut request = Request::new(req("x"));
        request.metadata_mut().insert("x-token", "open").unwrap();
        let answer = client.simple_method(request).await.unwrap();
        assert_eq!(answer.message().response_data, "no trail");
        assert_eq!(after.load(Ordering::SeqCst), 1);
        assert_eq!(probe.runs.load(Ordering::SeqCst), 1);
    })
    .await
}

/// Adds `x-icpt` to the response headers and `x-icpt-t` to the trailers; refuses calls
/// that carry an `x-refuse` header.
fn decorator() -> impl Interceptor {
    interceptor_fn(|call: &mut CallContext<'_>| {
        Box::pin(async move {
            call.response_headers_mut().insert("x-icpt", "h").unwrap();
            call.response_trailers_mut()
                .insert("x-icpt-t", "t")
                .unwrap();
            if call.metadata().get("x-refuse").is_some() {
                return Err(Status::permission_denied("refused"));
            }
            Ok(())
        })
    })
}

#[tokio::test]
async fn response_metadata_from_interceptors_reaches_the_client_on_success_and_failure() {
    bounded(async {
        let running = serve(Server::new().interceptor(decorator()), Probe::default()).await;
        let client = client(&running);

        // Success: the interceptor's header beside the handler's, the same for trailers.
        let answer = client.simple_method(req("x")).await.unwrap();
        assert_eq!(answer.metadata().get("x-icpt"), Some("h"));
        assert_eq!(answer.metadata().get("x-handler"), Some("h"));
        assert_eq!(answer.trailers().get("x-icpt-t"), Some("t"));
        assert_eq!(answer.trailers().get("x-handler-t"), Some("t"));

        // Streaming: the trailers come at the end of the stream.
        let response = client.server_streaming_method(req("x")).await.unwrap();
        assert_eq!(response.metadata().get("x-icpt"), Some("h"));
        let mut replies = response.into_message();
        while replies.message().await.unwrap().is_some() {}
        assert_eq!(
            replies.trailers().and_then(|t| t.get("x-icpt-t")),
            Some("t")
        );

        // The handler fails: the interceptor's header metadata goes out as headers, then
        // the trailers (never folded into a Trailers-Only answer).
        let head = grpc_head(running.addr, "/demo.GRPCDemo/SimpleMethod")
            .body(())
            .unwrap();
        let fail = {
            use h2grpc::prost::Message;
            let mut framed = vec![0, 0, 0, 0, 0];
            let body = req("fail").encode_to_vec();
            framed[1..5].copy_from_slice(&(body.len() as u32).to_be_bytes());
            framed.extend_from_slice(&body);
            framed
        };
        let raw = raw_request(running.addr, head, &fail).await;
        assert_headers_then_trailers(&raw, "9");
        let err = client.simple_method(req("fail")).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert_eq!(err.metadata().get("x-icpt-t"), Some("t"), "{err:?}");

        // The interceptor refuses: its metadata still goes out, headers then trailers.
        let head = grpc_head(running.addr, "/demo.GRPCDemo/SimpleMethod")
            .header("x-refuse", "1")
            .body(())
            .unwrap();
        let raw = raw_request(running.addr, head, &[0, 0, 0, 0, 0]).await;
        assert_headers_then_trailers(&raw, "7");
    })
    .await
}

/// The interceptor's header metadata in the response headers, its trailer metadata and
/// the status `code` in the trailers.
fn assert_headers_then_trailers(raw: &h2grpc_test_support::service::RawResponse, code: &str) {
    assert!(raw.headers.get("grpc-status").is_none(), "{raw:?}");
    assert_eq!(raw.headers.get("x-icpt").unwrap(), "h");
    let trailers = raw.trailers.as_ref().expect("trailers after the headers");
    assert_eq!(trailers.get("grpc-status").unwrap(), code);
    assert_eq!(trailers.get("x-icpt-t").unwrap(), "t");
}

/// Records the peer address it saw.
fn peer_reporter(seen: Arc<Mutex<Option<SocketAddr>>>) -> impl Interceptor {
    interceptor_fn(move |call: &mut CallContext<'_>| {
        *seen.lock().unwrap() = call.peer().addr();
        Box::pin(async { Ok(()) })
    })
}

#[tokio::test]
async fn an_interceptor_sees_the_peer_address_the_handler_sees() {
    bounded(async {
        let seen = Arc::new(Mutex::new(None));
        let server = Server::new().interceptor(peer_reporter(seen.clone()));
        let running = serve(server, Probe::default()).await;
        let answer = client(&running).simple_method(req("peer")).await.unwrap();
        let addr = seen
            .lock()
            .unwrap()
            .expect("the interceptor saw no address");
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_ne!(addr.port(), 0);
        assert_ne!(addr.port(), running.addr.port(), "the server's own address");
        assert_eq!(answer.message().response_data, format!("{:?}", Some(addr)));
    })
    .await
}

/// Admits only clients whose certificate names `common_name`; records the names seen.
fn only_client(common_name: &'static str, seen: Arc<Mutex<Vec<String>>>) -> impl Interceptor {
    interceptor_fn(move |call: &mut CallContext<'_>| {
        let identity = call.peer().identity();
        let chain = call.peer().certificates().len();
        seen.lock().unwrap().push(match &identity {
            Some(id) => format!("{} {:?} chain={chain}", id.subject, id.dns_names),
            None => format!("no certificate chain={chain}"),
        });
        let admitted = identity.and_then(|id| id.common_name).as_deref() == Some(common_name);
        Box::pin(async move {
            if admitted {
                Ok(())
            } else {
                Err(Status::permission_denied(format!(
                    "only {common_name} may call"
                )))
            }
        })
    })
}

#[tokio::test]
async fn an_interceptor_sees_the_client_identity_over_mutual_tls() {
    bounded(async {
        let certs = TestCerts::generate();
        let ca = std::fs::read(&certs.ca_cert).unwrap();
        // Client certificates requested but optional: the interceptor decides.
        let tls = ServerTls::from_pem_files(&certs.server_cert, &certs.server_key)
            .unwrap()
            .request_client_cert(&ca)
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let server = Server::new()
            .tls(tls)
            .interceptor(only_client(CLIENT_COMMON_NAME, seen.clone()));
        let probe = Probe::default();
        let running = serve(server, probe.clone()).await;
        let connect = |identity: bool| {
            let mut tls = ClientTls::with_ca_file(&certs.ca_cert)
                .unwrap()
                .server_name("localhost");
            if identity {
                tls = tls
                    .identity_files(&certs.client_cert, &certs.client_key)
                    .unwrap();
            }
            let channel = Channel::builder(running.addr.to_string())
                .tls(tls)
                .lazy()
                .unwrap();
            GrpcDemoClient::new(channel)
        };

        let answer = connect(true).simple_method(req("x")).await.unwrap();
        assert_eq!(answer.message().response_data, "no trail");
        let err = connect(false).simple_method(req("x")).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        assert_eq!(err.message(), format!("only {CLIENT_COMMON_NAME} may call"));
        assert_eq!(probe.runs.load(Ordering::SeqCst), 1);
        assert_eq!(
            *seen.lock().unwrap(),
            [
                format!("CN={CLIENT_COMMON_NAME}, O=h2grpc tests [\"client.test\"] chain=1"),
                "no certificate chain=0".to_string()
            ]
        );
    })
    .await
}

#[tokio::test]
async fn the_deadline_covers_interceptors() {
    bounded(async {
        let slow = interceptor_fn(|call: &mut CallContext<'_>| {
            assert_eq!(call.timeout(), Some(std::time::Duration::from_millis(200)));
            Box::pin(async {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                Ok(())
            })
        });
        let probe = Probe::default();
        let running = serve(Server::new().interceptor(slow), probe.clone()).await;
        // A raw client, which has no deadline of its own: the answer is the server's.
        let head = grpc_head(running.addr, "/demo.GRPCDemo/SimpleMethod")
            .header("grpc-timeout", "200m")
            .body(())
            .unwrap();
        let started = std::time::Instant::now();
        let raw = raw_request(running.addr, head, &[0, 0, 0, 0, 0]).await;
        assert_eq!(raw.grpc_status(), Some(Code::DeadlineExceeded), "{raw:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(probe.runs.load(Ordering::SeqCst), 0);
    })
    .await
}
