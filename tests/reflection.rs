//! Server reflection (`grpc.reflection.v1` and `v1alpha`) over real sockets: listing
//! services, files by name and by symbol with their imports (each import once per
//! stream), extensions, NOT_FOUND answers; with our client and with grpcio-reflection's
//! ProtoReflectionDescriptorDatabase.

use std::time::Duration;

use futures_util::stream;
use h2grpc::prost::Message;
use h2grpc::reflection::prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet,
    MethodDescriptorProto, ServiceDescriptorProto,
    descriptor_proto::ExtensionRange,
    field_descriptor_proto::{Label, Type},
};
use h2grpc::reflection::v1::server_reflection_request::MessageRequest;
use h2grpc::reflection::v1::server_reflection_response::MessageResponse;
use h2grpc::reflection::v1::{ExtensionRequest, ServerReflectionRequest, ServerReflectionResponse};
use h2grpc::reflection::{ReflectionService, v1, v1alpha};
use h2grpc::{Channel, Code, Server, health};
use h2grpc_test_support::process::{TempDir, run};
use h2grpc_test_support::python;
use h2grpc_test_support::service::{TestServer, bounded};

/// A field `name = number` of `type_name` (a message) or of type `kind`.
fn field(name: &str, number: i32, kind: Type, type_name: Option<&str>) -> FieldDescriptorProto {
    FieldDescriptorProto {
        name: Some(name.to_owned()),
        number: Some(number),
        label: Some(Label::Optional as i32),
        r#type: Some(kind as i32),
        type_name: type_name.map(str::to_owned),
        json_name: Some(name.to_owned()),
        ..Default::default()
    }
}

fn message(name: &str, fields: Vec<FieldDescriptorProto>) -> DescriptorProto {
    DescriptorProto {
        name: Some(name.to_owned()),
        field: fields,
        ..Default::default()
    }
}

/// Three files: `app/app.proto` (service `app.App`, extension `app.tag` = 100 of
/// `app.Base`) imports `app/types.proto` (`app.Item`, `app.Base`) and
/// `google/protobuf/empty.proto`.
fn app_files() -> FileDescriptorSet {
    let empty = FileDescriptorProto {
        name: Some("google/protobuf/empty.proto".to_owned()),
        package: Some("google.protobuf".to_owned()),
        message_type: vec![message("Empty", vec![])],
        syntax: Some("proto3".to_owned()),
        ..Default::default()
    };
    let mut base = message("Base", vec![field("id", 1, Type::String, None)]);
    base.extension_range = vec![ExtensionRange {
        start: Some(100),
        end: Some(200),
        options: None,
    }];
    let types = FileDescriptorProto {
        name: Some("app/types.proto".to_owned()),
        package: Some("app".to_owned()),
        message_type: vec![
            message("Item", vec![field("id", 1, Type::String, None)]),
            base,
        ],
        syntax: Some("proto2".to_owned()),
        ..Default::default()
    };
    let mut tag = field("tag", 100, Type::Int32, None);
    tag.extendee = Some(".app.Base".to_owned());
    let app = FileDescriptorProto {
        name: Some("app/app.proto".to_owned()),
        package: Some("app".to_owned()),
        dependency: vec![
            "app/types.proto".to_owned(),
            "google/protobuf/empty.proto".to_owned(),
        ],
        service: vec![ServiceDescriptorProto {
            name: Some("App".to_owned()),
            method: vec![MethodDescriptorProto {
                name: Some("Get".to_owned()),
                input_type: Some(".app.Item".to_owned()),
                output_type: Some(".google.protobuf.Empty".to_owned()),
                ..Default::default()
            }],
            options: None,
        }],
        extension: vec![tag],
        syntax: Some("proto2".to_owned()),
        ..Default::default()
    };
    FileDescriptorSet {
        file: vec![empty, types, app],
    }
}

/// demo.GRPCDemo, health and reflection (both versions) over demo's, health's and
/// [`app_files`]'s descriptors.
async fn server() -> TestServer {
    let reflection = ReflectionService::builder()
        .register_encoded_file_descriptor_set(h2grpc_test_support::demo::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(health::FILE_DESCRIPTOR_SET)
        .register_file_descriptor_set(app_files())
        .build()
        .unwrap();
    let health = health::HealthReporter::new();
    TestServer::start_with(
        Server::new()
            .add_service(health.service())
            .add_service(reflection.v1())
            .add_service(reflection.v1alpha()),
    )
    .await
}

#[derive(Clone, Copy, Debug)]
enum Version {
    V1,
    V1alpha,
}

fn transcode<A: Message, B: Message + Default>(message: &A) -> B {
    B::decode(message.encode_to_vec().as_slice()).unwrap()
}

/// Send `requests` on one stream of `version`; the responses, and the final status.
async fn exchange(
    channel: &Channel,
    version: Version,
    requests: Vec<MessageRequest>,
) -> (Vec<ServerReflectionResponse>, Result<(), h2grpc::Status>) {
    let requests: Vec<ServerReflectionRequest> = requests
        .into_iter()
        .map(|q| ServerReflectionRequest {
            host: "localhost".to_owned(),
            message_request: Some(q),
        })
        .collect();
    let mut responses = Vec::new();
    let end = match version {
        Version::V1 => {
            let client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
            match client.server_reflection_info(stream::iter(requests)).await {
                Ok(response) => {
                    let mut inbound = response.into_message();
                    loop {
                        match inbound.message().await {
                            Ok(Some(r)) => responses.push(r),
                            Ok(None) => break Ok(()),
                            Err(status) => break Err(status),
                        }
                    }
                }
                Err(status) => Err(status),
            }
        }
        Version::V1alpha => {
            let client =
                v1alpha::server_reflection_client::ServerReflectionClient::new(channel.clone());
            let requests: Vec<v1alpha::ServerReflectionRequest> =
                requests.iter().map(transcode).collect();
            match client.server_reflection_info(stream::iter(requests)).await {
                Ok(response) => {
                    let mut inbound = response.into_message();
                    loop {
                        match inbound.message().await {
                            Ok(Some(r)) => responses.push(transcode(&r)),
                            Ok(None) => break Ok(()),
                            Err(status) => break Err(status),
                        }
                    }
                }
                Err(status) => Err(status),
            }
        }
    };
    (responses, end)
}

/// The names of the files in a file descriptor response.
fn file_names(response: &ServerReflectionResponse) -> Vec<String> {
    match &response.message_response {
        Some(MessageResponse::FileDescriptorResponse(files)) => files
            .file_descriptor_proto
            .iter()
            .map(|f| {
                FileDescriptorProto::decode(f.as_slice())
                    .unwrap()
                    .name()
                    .to_owned()
            })
            .collect(),
        other => panic!("not a file descriptor response: {other:?}"),
    }
}

fn not_found(response: &ServerReflectionResponse) -> String {
    match &response.message_response {
        Some(MessageResponse::ErrorResponse(e)) => {
            assert_eq!(e.error_code, Code::NotFound as i32, "{e:?}");
            e.error_message.clone()
        }
        other => panic!("not an error response: {other:?}"),
    }
}

const VERSIONS: [Version; 2] = [Version::V1, Version::V1alpha];

#[tokio::test]
async fn list_services_names_every_described_service_including_health_and_reflection() {
    bounded(async {
        let server = server().await;
        let channel = Channel::connect(server.addr.to_string()).await.unwrap();
        for version in VERSIONS {
            let (responses, end) = exchange(
                &channel,
                version,
                vec![MessageRequest::ListServices(String::new())],
            )
            .await;
            end.unwrap();
            let Some(MessageResponse::ListServicesResponse(list)) = &responses[0].message_response
            else {
                panic!("{version:?}: not a list: {responses:?}");
            };
            let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(
                names,
                [
                    "app.App",
                    "demo.GRPCDemo",
                    "grpc.health.v1.Health",
                    "grpc.reflection.v1.ServerReflection",
                    "grpc.reflection.v1alpha.ServerReflection",
                ],
                "{version:?}"
            );
            assert_eq!(responses[0].valid_host, "localhost");
            let original = responses[0].original_request.as_ref().unwrap();
            assert_eq!(
                original.message_request,
                Some(MessageRequest::ListServices(String::new()))
            );
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_symbol_brings_its_file_and_imports_and_each_import_is_sent_once_per_stream() {
    bounded(async {
        let server = server().await;
        let channel = Channel::connect(server.addr.to_string()).await.unwrap();
        for version in VERSIONS {
            let (responses, end) = exchange(
                &channel,
                version,
                vec![
                    MessageRequest::FileContainingSymbol("app.App.Get".to_owned()),
                    MessageRequest::FileByFilename("app/types.proto".to_owned()),
                    MessageRequest::FileContainingSymbol("app.Item.id".to_owned()),
                    MessageRequest::FileContainingSymbol("no.Such".to_owned()),
                    MessageRequest::FileContainingSymbol("demo.GRPCDemo".to_owned()),
                    MessageRequest::FileByFilename("grpc/health/v1/health.proto".to_owned()),
                ],
            )
            .await;
            end.unwrap();
            assert_eq!(responses.len(), 6, "{version:?}");
            assert_eq!(
                file_names(&responses[0]),
                [
                    "app/app.proto",
                    "app/types.proto",
                    "google/protobuf/empty.proto"
                ],
                "{version:?}"
            );
            // Asked for again: sent again, but alone.
            assert_eq!(file_names(&responses[1]), ["app/types.proto"]);
            assert_eq!(file_names(&responses[2]), ["app/types.proto"]);
            // An unknown symbol is an answer; the stream goes on.
            assert!(not_found(&responses[3]).contains("no.Such"));
            assert_eq!(file_names(&responses[4]), ["demo.proto"]);
            assert_eq!(file_names(&responses[5]), ["grpc/health/v1/health.proto"]);

            // A new stream starts afresh.
            let (again, end) = exchange(
                &channel,
                version,
                vec![MessageRequest::FileByFilename("app/app.proto".to_owned())],
            )
            .await;
            end.unwrap();
            assert_eq!(file_names(&again[0]).len(), 3, "{version:?}");
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn extensions_are_found_by_type_and_number_and_unknown_ones_are_not_found() {
    bounded(async {
        let server = server().await;
        let channel = Channel::connect(server.addr.to_string()).await.unwrap();
        let extension = |containing_type: &str, extension_number| {
            MessageRequest::FileContainingExtension(ExtensionRequest {
                containing_type: containing_type.to_owned(),
                extension_number,
            })
        };
        for version in VERSIONS {
            let (responses, end) = exchange(
                &channel,
                version,
                vec![
                    extension("app.Base", 100),
                    MessageRequest::AllExtensionNumbersOfType("app.Base".to_owned()),
                    MessageRequest::AllExtensionNumbersOfType("app.Item".to_owned()),
                    extension("app.Base", 101),
                    MessageRequest::AllExtensionNumbersOfType("no.Such".to_owned()),
                    MessageRequest::FileByFilename("no/such.proto".to_owned()),
                ],
            )
            .await;
            end.unwrap();
            assert_eq!(file_names(&responses[0])[0], "app/app.proto", "{version:?}");
            let numbers = |r: &ServerReflectionResponse| match &r.message_response {
                Some(MessageResponse::AllExtensionNumbersResponse(n)) => {
                    (n.base_type_name.clone(), n.extension_number.clone())
                }
                other => panic!("{version:?}: not extension numbers: {other:?}"),
            };
            assert_eq!(numbers(&responses[1]), ("app.Base".to_owned(), vec![100]));
            assert_eq!(numbers(&responses[2]), ("app.Item".to_owned(), vec![]));
            assert!(not_found(&responses[3]).contains("101"));
            assert!(not_found(&responses[4]).contains("no.Such"));
            assert!(not_found(&responses[5]).contains("no/such.proto"));
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_request_with_no_question_ends_the_call_with_invalid_argument() {
    bounded(async {
        let server = server().await;
        let channel = Channel::connect(server.addr.to_string()).await.unwrap();
        let client = v1::server_reflection_client::ServerReflectionClient::new(channel);
        let requests = stream::iter(vec![
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            },
            ServerReflectionRequest::default(),
        ]);
        let mut inbound = client
            .server_reflection_info(requests)
            .await
            .unwrap()
            .into_message();
        assert!(inbound.message().await.unwrap().is_some());
        let status = inbound.message().await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        server.shutdown().await;
    })
    .await;
}

// ---- grpcio-reflection as the client

#[test]
fn grpcio_reflection_database_lists_and_resolves_over_v1_and_v1alpha() {
    let test = "grpcio_reflection_database_lists_and_resolves_over_v1_and_v1alpha";
    let Some(venv) = python::venv(test) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(server());
    let cwd = TempDir::new("reflection-python");
    let script = python::python_peers_dir().join("reflection_client.py");
    for version in ["v1", "v1alpha"] {
        let mut cmd = python::python_script_in(venv, cwd.path(), &script);
        cmd.arg("--port").arg(server.addr.port().to_string()).args([
            "--version",
            version,
            "--symbol",
            "app.App",
            "--missing",
            "no.Such",
        ]);
        let finished = run(cmd, Duration::from_secs(60)).unwrap();
        assert!(finished.success(), "{version}: {}", finished.dump());
        assert_eq!(
            finished.stdout.lines().collect::<Vec<_>>(),
            [
                "service app.App",
                "service demo.GRPCDemo",
                "service grpc.health.v1.Health",
                "service grpc.reflection.v1.ServerReflection",
                "service grpc.reflection.v1alpha.ServerReflection",
                "file app/app.proto",
                "file app/types.proto",
                "file google/protobuf/empty.proto",
                "symbol app.App: service",
                "method Get app.Item google.protobuf.Empty",
                "missing no.Such: not found",
            ],
            "{version}: {}",
            finished.dump()
        );

        let mut cmd = python::python_script_in(venv, cwd.path(), &script);
        cmd.arg("--port").arg(server.addr.port().to_string()).args([
            "--version",
            version,
            "--symbol",
            "demo.GRPCDemo",
        ]);
        let finished = run(cmd, Duration::from_secs(60)).unwrap();
        assert!(finished.success(), "{version}: {}", finished.dump());
        let lines: Vec<&str> = finished.stdout.lines().skip(5).collect();
        assert_eq!(
            lines,
            [
                "file demo.proto",
                "symbol demo.GRPCDemo: service",
                "method SimpleMethod demo.Request demo.Response",
                "method ClientStreamingMethod demo.Request demo.Response",
                "method ServerStreamingMethod demo.Request demo.Response",
                "method BidirectionalStreamingMethod demo.Request demo.Response",
            ],
            "{version}: {}",
            finished.dump()
        );
    }
    runtime.block_on(server.shutdown());
}
