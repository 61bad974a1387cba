//! The example as a user runs it: `hello-server` on a port the OS picks, `hello-client`
//! against it, and the health and reflection services the server registers, over real
//! sockets.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::stream;
use h2grpc::Code;
use h2grpc::health::pb::HealthCheckRequest;
use h2grpc::health::{HealthClient, ServingStatus};
use h2grpc::prost::Message;
use h2grpc::reflection::prost_types::FileDescriptorProto;
use h2grpc::reflection::v1::ServerReflectionRequest;
use h2grpc::reflection::v1::server_reflection_client::ServerReflectionClient;
use h2grpc::reflection::v1::server_reflection_request::MessageRequest;
use h2grpc::reflection::v1::server_reflection_response::MessageResponse;
use h2grpc::status::details::BadRequest;
use hello_h2grpc::hello::greeter_client::GreeterClient;
use hello_h2grpc::hello::{HelloRequest, RepeatRequest};

/// The longest any step may take, a cold start of a binary included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A running `hello-server 127.0.0.1:0`, killed when dropped.
struct ServerProcess {
    child: Child,
    /// What it printed after `listening on `.
    addr: String,
}

impl ServerProcess {
    fn start() -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hello-server"))
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .expect("hello-server starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(read.map(|_| line));
        });
        let line = rx
            .recv_timeout(TIMEOUT)
            .expect("hello-server prints its address in time")
            .expect("hello-server's stdout reads");
        let Some(addr) = line.trim_end().strip_prefix("listening on ") else {
            let _ = child.kill();
            panic!("hello-server's first line is not `listening on ADDR`: {line:?}");
        };
        assert!(
            !addr.ends_with(":0"),
            "the address names the port the OS picked: {addr}"
        );
        let addr = addr.to_owned();
        ServerProcess { child, addr }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `f` under [`TIMEOUT`].
async fn timely<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, f).await.expect("in time")
}

#[tokio::test]
async fn the_client_prints_each_kind_of_call_and_the_error_detail() {
    let server = ServerProcess::start();
    let output = timely(async {
        let mut client = tokio::process::Command::new(env!("CARGO_BIN_EXE_hello-client"));
        client.arg(&server.addr).kill_on_drop(true);
        client.output().await.expect("hello-client runs")
    })
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "hello-client failed ({}); stdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout,
        "SayHello: Hello, Ada!\n\
         SayHelloRepeatedly: Hello #1, Grace!\n\
         SayHelloRepeatedly: Hello #2, Grace!\n\
         SayHelloRepeatedly: Hello #3, Grace!\n\
         SayHelloToAll: Hello, Ada and Grace and Barbara!\n\
         Chat: Hello, Ken!\n\
         Chat: Hello, Dennis!\n\
         SayHello(\"\"): INVALID_ARGUMENT: invalid name (details: google.rpc.BadRequest)\n  \
         field name: must not be empty\n"
    );
}

#[tokio::test]
async fn bad_input_is_invalid_argument_with_a_bad_request_naming_the_field() {
    let server = ServerProcess::start();
    timely(async {
        let client = GreeterClient::connect(server.addr.clone()).await.unwrap();

        let request = RepeatRequest {
            name: "Ada".into(),
            times: 11,
        };
        let status = client.say_hello_repeatedly(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad = status.detail::<BadRequest>().expect("a BadRequest detail");
        assert_eq!(bad.field_violations.len(), 1);
        assert_eq!(bad.field_violations[0].field, "times");
        assert_eq!(bad.field_violations[0].description, "must be from 1 to 10");

        // In a bidirectional call the bad name ends the call after the replies before it.
        let names = ["Ken", ""].map(|name| HelloRequest { name: name.into() });
        let mut replies = client
            .chat(stream::iter(names))
            .await
            .unwrap()
            .into_message();
        assert_eq!(
            replies.message().await.unwrap().unwrap().message,
            "Hello, Ken!"
        );
        let status = replies.message().await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad = status.detail::<BadRequest>().expect("a BadRequest detail");
        assert_eq!(bad.field_violations[0].field, "name");
    })
    .await;
}

#[tokio::test]
async fn health_reports_the_server_and_the_greeter_serving() {
    let server = ServerProcess::start();
    timely(async {
        let health = HealthClient::connect(server.addr.clone()).await.unwrap();
        for service in ["", "hello.Greeter"] {
            let request = HealthCheckRequest {
                service: service.into(),
            };
            let reply = health.check(request).await.unwrap();
            assert_eq!(
                reply.message().status,
                ServingStatus::Serving as i32,
                "{service:?}"
            );
        }
        let request = HealthCheckRequest {
            service: "hello.Nobody".into(),
        };
        let status = health.check(request).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    })
    .await;
}

#[tokio::test]
async fn reflection_lists_the_services_and_describes_the_greeter() {
    let server = ServerProcess::start();
    timely(async {
        let reflection = ServerReflectionClient::connect(server.addr.clone())
            .await
            .unwrap();
        let ask = |question| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(question),
        };
        let questions = [
            ask(MessageRequest::ListServices(String::new())),
            ask(MessageRequest::FileContainingSymbol("hello.Greeter".into())),
        ];
        let mut answers = reflection
            .server_reflection_info(stream::iter(questions))
            .await
            .unwrap()
            .into_message();

        let answer = answers.message().await.unwrap().expect("a first answer");
        let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
            panic!("not a list of services: {answer:?}");
        };
        let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
                "hello.Greeter",
            ]
        );

        let answer = answers.message().await.unwrap().expect("a second answer");
        let Some(MessageResponse::FileDescriptorResponse(files)) = answer.message_response else {
            panic!("not a file descriptor: {answer:?}");
        };
        let file = FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice()).unwrap();
        assert_eq!(file.name(), "hello.proto");
        let methods: Vec<&str> = file.service[0].method.iter().map(|m| m.name()).collect();
        assert_eq!(
            methods,
            ["SayHello", "SayHelloRepeatedly", "SayHelloToAll", "Chat"]
        );
        assert_eq!(
            answers.message().await.unwrap(),
            None,
            "the call ends after two answers"
        );
    })
    .await;
}

#[tokio::test]
async fn sigterm_shuts_the_server_down_gracefully() {
    let mut server = ServerProcess::start();
    timely(async {
        // Health is the visible sign: Watch sees SERVING, then NOT_SERVING when the drain
        // begins.
        let health = HealthClient::connect(server.addr.clone()).await.unwrap();
        let request = HealthCheckRequest {
            service: "hello.Greeter".into(),
        };
        let mut statuses = health.watch(request).await.unwrap().into_message();
        let first = statuses
            .message()
            .await
            .unwrap()
            .expect("the current status");
        assert_eq!(first.status, ServingStatus::Serving as i32);

        let pid = server.child.id().to_string();
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("`kill` (procps or util-linux) is installed");
        assert!(kill.success());

        let next = statuses.message().await.unwrap().expect("a change");
        assert_eq!(next.status, ServingStatus::NotServing as i32);
    })
    .await;
    // The Watch call and its connection ended when the block above dropped them, so the
    // drain has nothing to wait for.
    let status = timely(tokio::task::spawn_blocking(move || server.child.wait()))
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "hello-server exited with {status}");
}
