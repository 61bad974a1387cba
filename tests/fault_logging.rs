//! Whoever connects does not decide how much the server logs: 1,000 bad handshakes (TLS
//! garbage on a TLS port, a plaintext HTTP/1.1 request on an HTTP/2 port) give 1,000 DEBUG
//! lines and one WARN summary with the counts, and the server serves on.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use h2grpc::{Server, ServerTls};
use h2grpc_test_support::service::{TestServer, bounded, req};
use h2grpc_test_support::tls::TestCerts;
use tokio::io::AsyncWriteExt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

#[derive(Default)]
struct Counts {
    debug: AtomicUsize,
    warn: Mutex<Vec<String>>,
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

struct Count(Arc<Counts>);

impl<S: Subscriber> Layer<S> for Count {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if !meta.target().starts_with("h2grpc") {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        match *meta.level() {
            Level::DEBUG
                if message.0.contains("handshake failed")
                    || message.0.contains("TLS handshake") =>
            {
                self.0.debug.fetch_add(1, Ordering::Relaxed);
            }
            Level::WARN | Level::ERROR => self.0.warn.lock().unwrap().push(message.0),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_bad_handshakes_give_debug_lines_and_one_warn_summary_per_server() {
    let counts = Arc::new(Counts::default());
    let subscriber = tracing_subscriber::registry().with(Count(counts.clone()));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    bounded(async {
        let certs = TestCerts::generate();
        let tls = ServerTls::from_pem_files(&certs.server_cert, &certs.server_key).unwrap();
        let tls_server = TestServer::start_with(Server::new().tls(tls)).await;
        // gRPC only: with the web protocols on, that HTTP/1.1 request would be served
        // (a 404), not a failed HTTP/2 handshake.
        let plain = TestServer::start_with(Server::new().web_protocols(false)).await;
        const EACH: usize = 500;
        for (addr, garbage) in [
            (tls_server.addr, &b"\x16\x03\x01\x00\x05hello, not TLS"[..]),
            (plain.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ] {
            for _ in 0..EACH {
                let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
                let _ = socket.write_all(garbage).await;
                let _ = socket.shutdown().await;
            }
        }
        // Each failure is logged at DEBUG as the server sees it.
        let started = std::time::Instant::now();
        while counts.debug.load(Ordering::Relaxed) < 2 * EACH {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "DEBUG lines: {} of {}",
                counts.debug.load(Ordering::Relaxed),
                2 * EACH
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(counts.debug.load(Ordering::Relaxed), 2 * EACH);
        // One WARN per server (its first failure), then nothing for a minute.
        let warns = std::mem::take(&mut *counts.warn.lock().unwrap());
        assert_eq!(
            warns.len(),
            2,
            "one WARN summary a minute per server: {warns:#?}"
        );
        assert!(
            warns
                .iter()
                .any(|w| w.ends_with(": 1 TLS handshake failed")),
            "{warns:?}"
        );
        assert!(
            warns
                .iter()
                .any(|w| w.ends_with(": 1 HTTP/2 handshake failed")),
            "{warns:?}"
        );

        // The next summary counts what the interval held back.
        let interval = Duration::from_millis(300);
        let counted = TestServer::start_with(
            Server::new()
                .fault_summary_interval(interval)
                .web_protocols(false),
        )
        .await;
        let bad = || async {
            let mut socket = tokio::net::TcpStream::connect(counted.addr).await.unwrap();
            let _ = socket.write_all(b"not a preface at all!!!!!").await;
            let _ = socket.shutdown().await;
        };
        bad().await; // summarised at once
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..99 {
            bad().await;
        }
        tokio::time::sleep(interval * 2).await;
        bad().await; // past the interval: the summary of the 100 since the first
        let started = std::time::Instant::now();
        while counts.warn.lock().unwrap().len() < 2 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no second summary"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let warns = counts.warn.lock().unwrap().clone();
        assert!(
            warns[0].ends_with(": 1 HTTP/2 handshake failed"),
            "{warns:?}"
        );
        assert!(
            warns[1].ends_with(": 100 HTTP/2 handshake failed"),
            "{warns:?}"
        );
        // Both servers serve on.
        plain
            .client()
            .await
            .simple_method(req("echo:a"))
            .await
            .unwrap();
    })
    .await
}
