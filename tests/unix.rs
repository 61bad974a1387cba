//! Unix domain sockets, as gRPC's naming document spells them: `unix:/absolute`,
//! `unix:relative` and `unix-abstract:name`, on the server and the client; a stale socket
//! file from an earlier run is replaced (a live one, or a file that is not a socket, is
//! refused); the file goes when the server stops. And grpcio both ways over `unix:`.

use std::io::Write as _;
use std::process::Command;
use std::time::Duration;

use h2grpc::{Channel, Server};
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::demo::grpc_demo_server::GrpcDemoServer;
use h2grpc_test_support::process::{Process, TempDir, run};
use h2grpc_test_support::service::{TestService, bounded, req};
use h2grpc_test_support::{python, target_tmp};
use tokio::sync::{mpsc, oneshot};

/// A TestService served on `addr` until the returned sender is dropped or fired.
async fn serve(addr: &str) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (events, _) = mpsc::unbounded_channel();
    let listening = Server::new()
        .add_service(GrpcDemoServer::new(TestService::new(events)))
        .bind(addr)
        .await
        .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        listening
            .serve_with_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (stop, done)
}

async fn assert_calls(target: &str) {
    let client = GrpcDemoClient::new(Channel::lazy(target).unwrap());
    let reply = client.simple_method(req("echo:over uds")).await.unwrap();
    assert_eq!(reply.message().response_data, "over uds");
    let mut stream = client
        .server_streaming_method(req("count:2"))
        .await
        .unwrap()
        .into_message();
    assert_eq!(stream.message().await.unwrap().unwrap().response_data, "0");
    assert_eq!(stream.message().await.unwrap().unwrap().response_data, "1");
    assert!(stream.message().await.unwrap().is_none());
    // A Unix peer has no socket address.
    let peer = client.simple_method(req("peer")).await.unwrap();
    assert_eq!(peer.message().response_data, "||");
}

#[tokio::test]
async fn absolute_relative_and_abstract_unix_targets_serve_and_call() {
    bounded(async {
        let dir = TempDir::new("uds");
        let absolute = format!("unix:{}", dir.path().join("a.sock").display());
        let (stop, done) = serve(&absolute).await;
        assert_calls(&absolute).await;
        // `unix:///abs` names the same socket.
        assert_calls(&absolute.replacen("unix:", "unix://", 1)).await;
        let _ = stop.send(());
        done.await.unwrap();
        assert!(
            !dir.path().join("a.sock").exists(),
            "the socket file is removed when the server stops"
        );

        // Relative to the working directory (the package root, for tests).
        let relative_dir = target_tmp().join(format!("uds-rel-{}", std::process::id()));
        std::fs::create_dir_all(&relative_dir).unwrap();
        let cwd = std::env::current_dir().unwrap();
        let relative = relative_dir.join("r.sock");
        let relative = format!("unix:{}", relative.strip_prefix(&cwd).unwrap().display());
        assert!(!relative.starts_with("unix:/"), "{relative}");
        let (stop, done) = serve(&relative).await;
        assert_calls(&relative).await;
        let _ = stop.send(());
        done.await.unwrap();
        let _ = std::fs::remove_dir_all(&relative_dir);

        let name = format!("unix-abstract:h2grpc-test-{}", std::process::id());
        let (stop, done) = serve(&name).await;
        assert_calls(&name).await;
        let _ = stop.send(());
        done.await.unwrap();
    })
    .await
}

#[tokio::test]
async fn a_stale_socket_file_is_replaced_and_a_live_one_refused() {
    bounded(async {
        let dir = TempDir::new("uds-stale");
        let path = dir.path().join("s.sock");
        // A socket file whose server is gone (as after a crash).
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let target = format!("unix:{}", path.display());
        let (stop, done) = serve(&target).await;
        assert_calls(&target).await;
        // While it serves, a second server is refused and the first goes on.
        let second = Server::new().bind(&target).await;
        let err = second.err().expect("a live socket must not be replaced");
        assert!(err.to_string().contains("another server listens"), "{err}");
        assert_calls(&target).await;
        let _ = stop.send(());
        done.await.unwrap();
        // A file that is not a socket is never removed.
        let file = dir.path().join("not-a-socket");
        std::fs::File::create(&file)
            .unwrap()
            .write_all(b"data")
            .unwrap();
        let err = Server::new()
            .bind(&format!("unix:{}", file.display()))
            .await
            .err()
            .expect("a regular file must not be replaced");
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), b"data");
    })
    .await
}

/// grpcio over `unix:`, with its generic (bytes) API: the client sends a serialized
/// `demo.Request` and prints the reply's bytes in hex; the server answers SimpleMethod
/// with the bytes it is given.
///
/// grpc's C core sends a Unix target's path, percent-encoded, as `:authority`
/// (`tmp%2Fx.sock`), which the `http` crate under h2 refuses as a host (h2 resets the
/// stream with PROTOCOL_ERROR before the server sees it). grpc-go sends `localhost`; a
/// C-core client sets it with `grpc.default_authority`, as here.
const GRPCIO_CLIENT: &str = r#"
import sys, grpc
channel = grpc.insecure_channel(sys.argv[1], options=[("grpc.default_authority", "localhost")])
call = channel.unary_unary("/demo.GRPCDemo/SimpleMethod")
print(call(bytes.fromhex(sys.argv[2]), timeout=20).hex())
"#;

const GRPCIO_SERVER: &str = r#"
import sys, time, grpc
from concurrent import futures
reply = bytes.fromhex(sys.argv[2])
handler = grpc.method_handlers_generic_handler("demo.GRPCDemo", {
    "SimpleMethod": grpc.unary_unary_rpc_method_handler(lambda request, context: reply),
})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
server.add_generic_rpc_handlers((handler,))
server.add_insecure_port(sys.argv[1])
server.start()
print("serving", flush=True)
time.sleep(60)
"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn grpcio_calls_our_server_and_ours_calls_grpcio_over_unix_sockets() {
    let Some(venv) =
        python::venv("grpcio_calls_our_server_and_ours_calls_grpcio_over_unix_sockets")
    else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = TempDir::new("uds-grpcio");
    let request = h2grpc::prost::Message::encode_to_vec(&req("echo:from grpcio"));

    // grpcio → ours.
    let ours = format!("unix:{}", dir.path().join("ours.sock").display());
    let (stop, done) = runtime.block_on(serve(&ours));
    let mut client = Command::new(&venv.python);
    client.args(["-c", GRPCIO_CLIENT, &ours, &hex(&request)]);
    let finished = run(client, Duration::from_secs(60)).unwrap();
    assert!(finished.success(), "{}", finished.dump());
    let reply: h2grpc_test_support::demo::Response =
        h2grpc::prost::Message::decode(&*decode_hex(finished.stdout.trim())).unwrap();
    assert_eq!(reply.response_data, "from grpcio");
    let _ = stop.send(());
    runtime.block_on(done).unwrap();

    // Ours → grpcio.
    let theirs = format!("unix:{}", dir.path().join("grpcio.sock").display());
    let answer = h2grpc::prost::Message::encode_to_vec(&h2grpc_test_support::service::reply(
        "from grpcio's server",
    ));
    let mut server = Command::new(&venv.python);
    server.args(["-c", GRPCIO_SERVER, &theirs, &hex(&answer)]);
    let mut server = Process::spawn("grpcio uds server", server).unwrap();
    let started = std::time::Instant::now();
    while !server.stdout().contains("serving") {
        assert!(server.try_status().is_none(), "{}", server.dump());
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            server.dump()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let reply = runtime.block_on(async {
        let client = GrpcDemoClient::new(Channel::lazy(theirs.as_str()).unwrap());
        tokio::time::timeout(Duration::from_secs(20), client.simple_method(req("x")))
            .await
            .expect("bounded")
    });
    assert_eq!(
        reply.unwrap().message().response_data,
        "from grpcio's server"
    );
    server.stop();
}

fn decode_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}
