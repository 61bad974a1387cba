//! Client interceptors over real sockets: run in order, async, change the outgoing
//! metadata and deadline, refuse a call before it is sent, and see the response
//! headers, trailers and final status of every call kind.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use h2grpc::client::{InterceptFuture, Interceptor, Outgoing, interceptor_fn};
use h2grpc::{Channel, Code, Metadata, Status};
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::service::*;

/// Records what it sees; `before` appends `tag` to `x-req`.
struct Recorder {
    tag: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

impl Interceptor for Recorder {
    fn before<'a>(&'a self, call: &'a mut Outgoing<'_>) -> InterceptFuture<'a> {
        Box::pin(async move {
            // Async work before the call (a token fetch, say).
            tokio::task::yield_now().await;
            let so_far = call.metadata().get("x-req").unwrap_or_default().to_string();
            call.metadata()
                .insert("x-req", &format!("{so_far}{}", self.tag))
                .unwrap();
            self.log
                .lock()
                .unwrap()
                .push(format!("{} before {}", self.tag, call.path()));
            Ok(())
        })
    }

    fn headers(&self, _path: &str, headers: &Metadata) {
        let x = headers.get("x-resp-header").unwrap_or("-").to_string();
        self.log
            .lock()
            .unwrap()
            .push(format!("{} headers x-resp-header={x}", self.tag));
    }

    fn end(&self, _path: &str, status: &Status, trailers: Option<&Metadata>) {
        let x = match trailers {
            Some(t) if t.get("x-count").is_some() => t.get("x-count").unwrap().to_string(),
            Some(t) if t.get_bin("x-resp-trailer-bin").is_some() => "bin".to_string(),
            _ => "-".to_string(),
        };
        self.log
            .lock()
            .unwrap()
            .push(format!("{} end {:?} trailer={x}", self.tag, status.code()));
    }
}

fn recording(server: &TestServer) -> (GrpcDemoClient, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let channel = Channel::builder(server.addr.to_string())
        .interceptor(Recorder {
            tag: "a",
            log: log.clone(),
        })
        .interceptor(Recorder {
            tag: "b",
            log: log.clone(),
        })
        .lazy()
        .unwrap();
    (GrpcDemoClient::new(channel), log)
}

fn take(log: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

#[tokio::test]
async fn interceptors_run_in_order_change_metadata_and_see_headers_trailers_and_status() {
    bounded(async {
        let server = TestServer::start().await;
        let (client, log) = recording(&server);
        let answer = client.simple_method(req("metadata")).await.unwrap();
        // The server echoes x-req: both interceptors' changes, in order.
        assert_eq!(answer.message().response_data, "ab|0");
        assert_eq!(
            take(&log),
            [
                "a before /demo.GRPCDemo/SimpleMethod",
                "b before /demo.GRPCDemo/SimpleMethod",
                "a headers x-resp-header=ab",
                "b headers x-resp-header=ab",
                "a end Ok trailer=bin",
                "b end Ok trailer=bin",
            ]
        );

        // A server stream: the end is seen when the stream is read to its end.
        let mut stream = client
            .server_streaming_method(req("count:3"))
            .await
            .unwrap()
            .into_message();
        while stream.message().await.unwrap().is_some() {}
        let seen = take(&log);
        assert_eq!(
            seen[4..],
            ["a end Ok trailer=3", "b end Ok trailer=3"],
            "{seen:?}"
        );

        // A failing call: the status reaches `end`.
        let err = client.simple_method(req("fail:9:nope")).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        let seen = take(&log);
        assert_eq!(
            seen[2..],
            [
                "a end FailedPrecondition trailer=-",
                "b end FailedPrecondition trailer=-"
            ],
            "{seen:?}"
        );
    })
    .await
}

#[tokio::test]
async fn an_interceptor_sets_the_deadline_or_refuses_the_call_before_it_is_sent() {
    bounded(async {
        let mut server = TestServer::start().await;
        let short = GrpcDemoClient::new(
            Channel::builder(server.addr.to_string())
                .interceptor(interceptor_fn(
                    |call: &mut Outgoing<'_>| -> InterceptFuture<'_> {
                        *call.timeout() = Some(Duration::from_millis(100));
                        Box::pin(async { Ok(()) })
                    },
                ))
                .lazy()
                .unwrap(),
        );
        let started = std::time::Instant::now();
        let err = short.simple_method(req("sleep:2000")).await.unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        assert!(started.elapsed() < Duration::from_millis(1000));

        let refusing = GrpcDemoClient::new(
            Channel::builder(server.addr.to_string())
                .interceptor(interceptor_fn(
                    |_call: &mut Outgoing<'_>| -> InterceptFuture<'_> {
                        Box::pin(async {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            Err(Status::unauthenticated("no token"))
                        })
                    },
                ))
                .lazy()
                .unwrap(),
        );
        let err = refusing.simple_method(req("ran")).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        let err = refusing
            .client_streaming_method(futures_util::stream::iter([req("ran")]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        tokio::time::sleep(Duration::from_millis(100)).await;
        // (The cut-short sleep reports `sleep dropped`; a `ran` would be `handler ran`.)
        while let Some(event) = server.event_now() {
            assert_ne!(event, "handler ran", "a refused call reached the server");
        }
    })
    .await
}
