//! Per-call `tracing` spans: a subscriber that captures spans and their fields sees one
//! span per call on each side, with the service, method, peer or target, and, recorded at
//! the end, the status, duration and (for streams) the message counts; and one DEBUG
//! "call ended" event per call per side.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use h2grpc::Code;
use h2grpc_test_support::service::{TestServer, bounded, req};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as it closed: its name and every field it was given.
#[derive(Debug, Clone)]
struct Closed {
    name: &'static str,
    fields: HashMap<String, String>,
}

#[derive(Default)]
struct Captured {
    open: Mutex<HashMap<u64, Closed>>,
    closed: Mutex<Vec<Closed>>,
    /// Names of the spans "call ended" events belong to.
    ended: Mutex<Vec<&'static str>>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
}

struct Capture(Arc<Captured>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let span = Closed {
            name: attrs.metadata().name(),
            fields,
        };
        self.0.open.lock().unwrap().insert(id.into_u64(), span);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(span) = self.0.open.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        if fields.get("message").map(String::as_str) != Some("call ended") {
            return;
        }
        if let Some(span) = ctx.event_span(event) {
            self.0.ended.lock().unwrap().push(span.name());
        }
    }
    fn on_close(&self, id: Id, _: Context<'_, S>) {
        if let Some(span) = self.0.open.lock().unwrap().remove(&id.into_u64()) {
            self.0.closed.lock().unwrap().push(span);
        }
    }
}

fn captured() -> Arc<Captured> {
    static CAPTURED: OnceLock<Arc<Captured>> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Arc::new(Captured::default());
            let subscriber = tracing_subscriber::registry().with(Capture(captured.clone()));
            tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
            captured
        })
        .clone()
}

impl Captured {
    /// The closed spans named `name`, once there are `n` of them.
    async fn spans(&self, name: &str, n: usize) -> Vec<Closed> {
        for _ in 0..500 {
            let spans: Vec<Closed> = self
                .closed
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s.name == name)
                .cloned()
                .collect();
            if spans.len() >= n {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "fewer than {n} closed {name} spans: {:#?}",
            self.closed.lock().unwrap()
        )
    }
}

fn field<'a>(span: &'a Closed, name: &str) -> &'a str {
    span.fields
        .get(name)
        .unwrap_or_else(|| panic!("span without {name}: {span:#?}"))
}

#[tokio::test]
async fn each_call_has_one_span_per_side_with_its_method_peer_status_and_counts() {
    bounded(async {
        let captured = captured();
        let server = TestServer::start().await;
        let client = server.client().await;

        client.simple_method(req("echo:hi")).await.unwrap();
        let failed = client.simple_method(req("fail:5:gone")).await.unwrap_err();
        assert_eq!(failed.code(), Code::NotFound);
        let mut responses = client
            .server_streaming_method(req("count:3"))
            .await
            .unwrap()
            .into_message();
        while responses.message().await.unwrap().is_some() {}
        drop(responses);

        let mut servers = captured.spans("grpc.server.call", 3).await;
        assert_eq!(servers.len(), 3, "one server span per call: {servers:#?}");
        servers.sort_by_key(|s| {
            (
                field(s, "method").to_string(),
                field(s, "grpc.status").to_string(),
            )
        });
        for span in &servers {
            assert_eq!(field(span, "service"), "demo.GRPCDemo");
            assert!(
                field(span, "peer").starts_with("127.0.0.1:"),
                "peer: {span:#?}"
            );
            assert!(!field(span, "duration").is_empty());
        }
        let summary: Vec<(&str, &str)> = servers
            .iter()
            .map(|s| (field(s, "method"), field(s, "grpc.status")))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("ServerStreamingMethod", "OK"),
                ("SimpleMethod", "NOT_FOUND"),
                ("SimpleMethod", "OK"),
            ]
        );
        assert_eq!(field(&servers[0], "messages_sent"), "3");
        assert_eq!(field(&servers[0], "messages_received"), "1");

        let mut clients = captured.spans("grpc.client.call", 3).await;
        assert_eq!(clients.len(), 3, "one client span per call: {clients:#?}");
        clients.sort_by_key(|s| {
            (
                field(s, "method").to_string(),
                field(s, "grpc.status").to_string(),
            )
        });
        let summary: Vec<(&str, &str)> = clients
            .iter()
            .map(|s| (field(s, "method"), field(s, "grpc.status")))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("demo.GRPCDemo/ServerStreamingMethod", "OK"),
                ("demo.GRPCDemo/SimpleMethod", "NOT_FOUND"),
                ("demo.GRPCDemo/SimpleMethod", "OK"),
            ]
        );
        let target = server.addr.to_string();
        for span in &clients {
            assert_eq!(field(span, "target"), target);
            assert!(!field(span, "duration").is_empty());
        }
        assert_eq!(field(&clients[0], "messages_received"), "3");

        let ended = captured.ended.lock().unwrap().clone();
        let count = |name: &str| ended.iter().filter(|n| **n == name).count();
        assert_eq!(count("grpc.server.call"), 3, "{ended:?}");
        assert_eq!(count("grpc.client.call"), 3, "{ended:?}");

        server.shutdown().await;
    })
    .await
}
