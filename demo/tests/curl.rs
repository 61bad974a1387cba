//! `curl` against the real `demo-server`: the README's lines, asserted. Connect with JSON over
//! HTTP/1.1 (the default server, no flag), an error with its details and a deadline
//! (`--web`), a CORS preflight from another origin (`--web`), HTTP/2 without TLS
//! (`--http2-prior-knowledge`), and plain gRPC over HTTP/1.1 refused with 505.
//!
//! `curl` missing: the test fails saying what to install (or prints NOT RUN with
//! `H2GRPC_SKIP_MISSING_PEERS=1`, never under `CI=true`).

use std::process::Command;
use std::time::Duration;

use h2grpc_test_support::demo_process::DemoServer;
use h2grpc_test_support::ports::free_port;

const DEMO_SERVER: &str = env!("CARGO_BIN_EXE_demo-server");
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// `curl -s -i ARGS...`: the status line, the headers (lower-cased names) and the body.
fn curl(args: &[&str]) -> (String, Vec<(String, String)>, String) {
    let output = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(output.status.success(), "curl {args:?}: {output:?}");
    let text = String::from_utf8(output.stdout).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn curl_available() -> bool {
    if Command::new("curl").arg("--version").output().is_ok() {
        return true;
    }
    h2grpc_test_support::missing(
        "curl",
        "curl is not installed",
        "install it (Debian: `apt-get install -y curl`)",
    );
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_calls_the_demo_server_with_json() {
    if !curl_available() {
        return;
    }
    tokio::time::timeout(TEST_TIMEOUT, async {
        // The default server: gRPC-Web and Connect on, no page, no CORS.
        let server = DemoServer::start(DEMO_SERVER, free_port(), 7).await;
        let url = format!("http://{}/demo.GRPCDemo/SimpleMethod", server.addr());
        let json = r#"{"clientId":"1","requestData":"hi"}"#;
        let ct = "content-type: application/json";
        let (status, headers, body) = tokio::task::spawn_blocking({
            let url = url.clone();
            move || curl(&["-H", ct, "-d", json, &url])
        })
        .await
        .unwrap();
        eprintln!("Connect JSON over HTTP/1.1: {status}\n{body}");
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert_eq!(header(&headers, "content-type"), Some("application/json"));
        assert_eq!(
            body,
            r#"{"serverId":"7","responseData":"Rust server SimpleMethod Ok!!!!"}"#
        );
        // The same over HTTP/2 without TLS.
        let (status, _, body) = tokio::task::spawn_blocking({
            let url = url.clone();
            move || curl(&["--http2-prior-knowledge", "-H", ct, "-d", json, &url])
        })
        .await
        .unwrap();
        assert!(status.starts_with("HTTP/2 200"), "{status}");
        assert!(body.contains("SimpleMethod Ok"), "{body}");
        // Without --web there is no error path, no page and no CORS.
        let (status, headers, _) = tokio::task::spawn_blocking({
            let url = url.clone();
            move || {
                curl(&[
                    "-X",
                    "OPTIONS",
                    "-H",
                    "origin: http://localhost:5173",
                    "-H",
                    "access-control-request-method: POST",
                    &url,
                ])
            }
        })
        .await
        .unwrap();
        assert!(!status.contains(" 204"), "{status}");
        assert_eq!(header(&headers, "access-control-allow-origin"), None);
        // gRPC itself needs HTTP/2: over HTTP/1.1 it is refused at once.
        let (status, _, _) = tokio::task::spawn_blocking({
            let url = url.clone();
            move || curl(&["-H", "content-type: application/grpc", "-d", "", &url])
        })
        .await
        .unwrap();
        assert!(status.starts_with("HTTP/1.1 505"), "{status}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_sees_errors_deadlines_and_cors_of_demo_server_web() {
    if !curl_available() {
        return;
    }
    tokio::time::timeout(TEST_TIMEOUT, async {
        let server = DemoServer::start_with_args(
            DEMO_SERVER,
            h2grpc_test_support::ports::local(free_port()),
            1,
            &["--web"],
        )
        .await;
        let base = format!("http://{}", server.addr());
        let url = format!("{base}/demo.GRPCDemo/SimpleMethod");
        let ct = "content-type: application/json";
        let (status, headers, body) = tokio::task::spawn_blocking({
            let url = url.clone();
            move || {
                curl(&[
                    "-H",
                    ct,
                    "-d",
                    r#"{"clientId":"1","requestData":"error"}"#,
                    &url,
                ])
            }
        })
        .await
        .unwrap();
        eprintln!("an error: {status}\n{body}");
        assert!(status.starts_with("HTTP/1.1 400"), "{status}");
        assert_eq!(header(&headers, "content-type"), Some("application/json"));
        let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
        assert_eq!(error["code"], "invalid_argument");
        assert_eq!(
            error["message"],
            "request_data \"error\" makes SimpleMethod fail"
        );
        assert_eq!(error["details"][0]["type"], "google.rpc.BadRequest");
        assert!(
            error["details"][0]["value"]
                .as_str()
                .is_some_and(|v| !v.is_empty())
        );
        // A deadline shorter than the handler: deadline_exceeded (HTTP 504).
        let (status, _, body) = tokio::task::spawn_blocking({
            let url = url.clone();
            move || {
                curl(&[
                    "-H",
                    ct,
                    "-H",
                    "connect-timeout-ms: 100",
                    "-d",
                    r#"{"requestData":"sleep:2000"}"#,
                    &url,
                ])
            }
        })
        .await
        .unwrap();
        assert!(status.starts_with("HTTP/1.1 504"), "{status}");
        assert!(body.contains(r#""code":"deadline_exceeded""#), "{body}");
        // A CORS preflight from another origin, then the call it allows.
        let origin = "http://localhost:5173";
        let (status, headers, _) = tokio::task::spawn_blocking({
            let url = url.clone();
            move || {
                curl(&[
                    "-X",
                    "OPTIONS",
                    "-H",
                    &format!("origin: {origin}"),
                    "-H",
                    "access-control-request-method: POST",
                    "-H",
                    "access-control-request-headers: content-type,connect-protocol-version",
                    &url,
                ])
            }
        })
        .await
        .unwrap();
        eprintln!("a preflight: {status}\n{headers:?}");
        assert!(status.starts_with("HTTP/1.1 204"), "{status}");
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some(origin)
        );
        let allowed = header(&headers, "access-control-allow-headers").unwrap_or_default();
        for name in [
            "content-type",
            "connect-protocol-version",
            "x-grpc-web",
            "grpc-timeout",
        ] {
            assert!(
                allowed.split(", ").any(|h| h == name),
                "{name} in {allowed}"
            );
        }
        assert!(
            header(&headers, "access-control-allow-methods").is_some_and(|m| m.contains("POST"))
        );
        let (status, headers, _) = tokio::task::spawn_blocking({
            let url = url.clone();
            move || {
                curl(&[
                    "-H",
                    ct,
                    "-H",
                    &format!("origin: {origin}"),
                    "-d",
                    r#"{"requestData":"hi"}"#,
                    &url,
                ])
            }
        })
        .await
        .unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some(origin)
        );
        assert!(
            header(&headers, "access-control-expose-headers")
                .is_some_and(|e| e.contains("grpc-status")),
            "{headers:?}"
        );
        // The page, through the plain HTTP handler.
        let (status, headers, body) = tokio::task::spawn_blocking({
            let base = base.clone();
            move || curl(&[&format!("{base}/")])
        })
        .await
        .unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert!(header(&headers, "content-type").is_some_and(|c| c.starts_with("text/html")));
        assert!(body.contains("<html"), "{body}");
        let (status, _, _) =
            tokio::task::spawn_blocking(move || curl(&[&format!("{base}/nowhere")]))
                .await
                .unwrap();
        assert!(status.starts_with("HTTP/1.1 404"), "{status}");
    })
    .await
    .expect("test timed out");
}
