//! A FullDuplexCall that fails before its first response is answered Trailers-Only (one
//! HEADERS frame with END_STREAM carrying `grpc-status`), as grpc-go and grpc's C core
//! answer: tonic's interop client fails `status_code_and_message` otherwise. Driven with
//! the bare `h2` client against the real `interop-server` binary, so the frames are seen
//! as they are on the wire.

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use h2grpc_interop::pb::{EchoStatus, StreamingOutputCallRequest};
use h2grpc_test_support::lpm;
use h2grpc_test_support::process::Process;

/// The interop server on a port the OS picks; the port it printed.
fn start_server() -> (Process, u16) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_interop-server"));
    cmd.args(["--port", "0", "--host", "127.0.0.1"]);
    let mut server = Process::spawn("interop-server", cmd).expect("start interop-server");
    let port = server.wait_for_listening(Duration::from_secs(30));
    (server, port)
}

#[tokio::test]
async fn full_duplex_call_failing_before_its_first_response_is_trailers_only() {
    let (_server, port) = start_server();
    let body = async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let (client, connection) = h2::client::handshake(tcp).await?;
        tokio::spawn(connection);
        let mut client = client.ready().await?;
        let request = http::Request::builder()
            .method("POST")
            .uri(format!(
                "http://127.0.0.1:{port}/grpc.testing.TestService/FullDuplexCall"
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())?;
        let (response, mut send) = client.send_request(request, false)?;
        let echo = StreamingOutputCallRequest {
            response_status: Some(EchoStatus {
                code: 2,
                message: "test status message".into(),
            }),
            ..Default::default()
        };
        send.send_data(Bytes::from(lpm::encode(&echo)), true)?;
        let response = response.await?;
        let (parts, body) = response.into_parts();
        assert_eq!(parts.status, 200);
        assert!(
            body.is_end_stream(),
            "the status must come in the response HEADERS frame itself (END_STREAM), \
             not in trailers after headers: {:?}",
            parts.headers
        );
        assert_eq!(parts.headers["content-type"], "application/grpc");
        assert_eq!(parts.headers["grpc-status"], "2");
        assert_eq!(parts.headers["grpc-message"], "test status message");
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    tokio::time::timeout(Duration::from_secs(30), body)
        .await
        .expect("test timed out")
        .unwrap();
}
