//! The real `demo-server`'s health and reflection: SERVING for the server and
//! `demo.GRPCDemo`, reflection listing exactly what it serves, and on SIGTERM an open Watch
//! sees NOT_SERVING before the drain ends the process.

use std::time::Duration;

use h2grpc::Channel;
use h2grpc::health::pb::HealthCheckRequest;
use h2grpc::health::{HealthClient, ServingStatus};
use h2grpc::reflection::v1::ServerReflectionRequest;
use h2grpc::reflection::v1::server_reflection_client::ServerReflectionClient;
use h2grpc::reflection::v1::server_reflection_request::MessageRequest;
use h2grpc::reflection::v1::server_reflection_response::MessageResponse;
use h2grpc_test_support::demo_process::DemoServer;
use h2grpc_test_support::ports::free_port;

const DEMO_SERVER: &str = env!("CARGO_BIN_EXE_demo-server");
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

fn request(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_server_reports_serving_reflects_its_services_and_drains_not_serving() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut server = DemoServer::start(DEMO_SERVER, free_port(), 1).await;
        let channel = Channel::connect(server.addr().to_string()).await.unwrap();
        let health = HealthClient::new(channel.clone());
        for service in ["", "demo.GRPCDemo"] {
            let reply = health.check(request(service)).await.unwrap();
            assert_eq!(
                reply.into_message().status(),
                ServingStatus::Serving,
                "{service:?}"
            );
        }

        let reflection = ServerReflectionClient::new(channel.clone());
        let list = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = reflection
            .server_reflection_info(futures_util::stream::iter([list]))
            .await
            .unwrap()
            .into_message();
        let answer = answers.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(listed)) = answer.message_response else {
            panic!("not a service list: {answer:?}");
        };
        let names: Vec<&str> = listed.service.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "demo.GRPCDemo",
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ]
        );

        let mut watch = health
            .watch(request("demo.GRPCDemo"))
            .await
            .unwrap()
            .into_message();
        let first = watch.message().await.unwrap().unwrap();
        assert_eq!(first.status(), ServingStatus::Serving);
        let terminated = tokio::task::spawn_blocking(move || {
            let exited = server.terminate(Duration::from_secs(20));
            (server, exited)
        });
        let next = watch.message().await.unwrap().unwrap();
        assert_eq!(next.status(), ServingStatus::NotServing);
        let (_server, exited) = terminated.await.unwrap();
        assert!(exited, "demo-server did not exit cleanly after SIGTERM");
    })
    .await
    .expect("test timed out");
}
