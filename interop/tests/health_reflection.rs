//! The interop server's health and reflection, asked by grpcio-health-checking and by
//! grpcio-reflection's ProtoReflectionDescriptorDatabase (v1 and v1alpha): the test
//! service is SERVING, reflection lists what is served (not `UnimplementedService`, which
//! shares test.proto) and `grpc.testing.TestService` comes with test.proto's imports.

use std::process::Command;
use std::time::Duration;

use h2grpc_test_support::process::{Process, TempDir, run};
use h2grpc_test_support::python;

const SERVER_START: Duration = Duration::from_secs(60);
const CLIENT_RUN: Duration = Duration::from_secs(60);

#[test]
fn grpcio_checks_the_interop_servers_health_and_reflects_its_test_service() {
    let test = "grpcio_checks_the_interop_servers_health_and_reflects_its_test_service";
    let Some(venv) = python::venv(test) else {
        return;
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_interop-server"));
    cmd.args(["--port", "0", "--host", "127.0.0.1"]);
    let mut server = Process::spawn("interop-server", cmd).unwrap();
    let port = server.wait_for_listening(SERVER_START).to_string();
    let cwd = TempDir::new("interop-health-reflection");
    let peers = python::python_peers_dir();

    let mut check = python::python_script_in(venv, cwd.path(), &peers.join("health_client.py"));
    check.args(["--port", &port, "check", "\"\"", "grpc.testing.TestService"]);
    let checked = run(check, CLIENT_RUN).unwrap();
    assert!(checked.success(), "{}", checked.dump());
    assert_eq!(
        checked.stdout.lines().collect::<Vec<_>>(),
        [
            "check \"\": SERVING",
            "check grpc.testing.TestService: SERVING"
        ],
        "{}",
        checked.dump()
    );

    for version in ["v1", "v1alpha"] {
        let script = peers.join("reflection_client.py");
        let mut reflect = python::python_script_in(venv, cwd.path(), &script);
        reflect.args(["--port", &port, "--version", version]);
        reflect.args(["--symbol", "grpc.testing.TestService"]);
        reflect.args(["--missing", "grpc.testing.NoSuchService"]);
        let reflected = run(reflect, CLIENT_RUN).unwrap();
        assert!(reflected.success(), "{version}: {}", reflected.dump());
        let lines: Vec<&str> = reflected.stdout.lines().collect();
        let expected_head = [
            "service grpc.health.v1.Health",
            "service grpc.reflection.v1.ServerReflection",
            "service grpc.reflection.v1alpha.ServerReflection",
            "service grpc.testing.TestService",
            "file grpc/testing/test.proto",
            "file grpc/testing/empty.proto",
            "file grpc/testing/messages.proto",
            "symbol grpc.testing.TestService: service",
            "method EmptyCall grpc.testing.Empty grpc.testing.Empty",
            "method UnaryCall grpc.testing.SimpleRequest grpc.testing.SimpleResponse",
        ];
        assert_eq!(
            lines[..expected_head.len()],
            expected_head,
            "{version}: {}",
            reflected.dump()
        );
        assert_eq!(
            lines.last(),
            Some(&"missing grpc.testing.NoSuchService: not found"),
            "{version}: {}",
            reflected.dump()
        );
    }
    server.stop();
}
