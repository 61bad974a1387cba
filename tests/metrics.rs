//! The gRFC A66 metrics (feature `metrics`): a recorder of our own, installed once for this
//! test binary, sees the counts, durations, sizes and labels of a known set of calls made
//! over real sockets, on both sides.
#![cfg(feature = "metrics")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use h2grpc::http::uri::PathAndQuery;
use h2grpc::prost::Message;
use h2grpc::{Channel, Code, Request};
use h2grpc_test_support::demo::grpc_demo_client::GrpcDemoClient;
use h2grpc_test_support::demo::{Request as DemoRequest, Response as DemoResponse};
use h2grpc_test_support::service::{TestServer, bounded, reply, req};
use metrics::{Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata};
use metrics::{Recorder, SharedString, Unit};

/// Every value recorded, by `name{label=value,...}` (labels sorted).
#[derive(Default)]
struct Store {
    counters: Mutex<HashMap<String, u64>>,
    histograms: Mutex<HashMap<String, Vec<f64>>>,
    units: Mutex<HashMap<String, Unit>>,
}

fn key_string(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

struct Handle {
    key: String,
    store: Arc<Store>,
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        *self
            .store
            .counters
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += value;
    }
    fn absolute(&self, value: u64) {
        self.store
            .counters
            .lock()
            .unwrap()
            .insert(self.key.clone(), value);
    }
}

impl HistogramFn for Handle {
    fn record(&self, value: f64) {
        self.store
            .histograms
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default()
            .push(value);
    }
}

struct TestRecorder(Arc<Store>);

impl Recorder for TestRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        if let Some(unit) = unit {
            self.0
                .units
                .lock()
                .unwrap()
                .insert(key.as_str().into(), unit);
        }
    }
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        if let Some(unit) = unit {
            self.0
                .units
                .lock()
                .unwrap()
                .insert(key.as_str().into(), unit);
        }
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Handle {
            key: key_string(key),
            store: self.0.clone(),
        }))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Handle {
            key: key_string(key),
            store: self.0.clone(),
        }))
    }
}

/// The store of the recorder installed for this binary (once).
fn store() -> Arc<Store> {
    static STORE: OnceLock<Arc<Store>> = OnceLock::new();
    STORE
        .get_or_init(|| {
            let store = Arc::new(Store::default());
            metrics::set_global_recorder(TestRecorder(store.clone())).expect("one recorder");
            h2grpc::telemetry::record_metrics(true);
            store
        })
        .clone()
}

impl Store {
    fn counter(&self, key: &str) -> u64 {
        self.counters.lock().unwrap().get(key).copied().unwrap_or(0)
    }
    fn values(&self, key: &str) -> Vec<f64> {
        self.histograms
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .unwrap_or_default()
    }
    /// Wait until `key` holds `n` values (a server records a call as its task ends, which
    /// may be just after the client has its answer).
    async fn wait_values(&self, key: &str, n: usize) -> Vec<f64> {
        for _ in 0..500 {
            let values = self.values(key);
            if values.len() >= n {
                return values;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let known: Vec<String> = self.histograms.lock().unwrap().keys().cloned().collect();
        panic!("{key}: fewer than {n} values; recorded: {known:#?}")
    }
}

fn len(message: &impl Message) -> f64 {
    message.encoded_len() as f64
}

fn assert_durations(what: &str, values: &[f64]) {
    for v in values {
        assert!(*v > 0.0 && *v < 20.0, "{what}: duration {v} s out of range");
    }
}

const SIMPLE: &str = "demo.GRPCDemo/SimpleMethod";
const STREAMING: &str = "demo.GRPCDemo/ServerStreamingMethod";

#[tokio::test]
async fn a_known_set_of_calls_gives_the_a66_metrics_on_both_sides() {
    bounded(async {
        let store = store();
        let server = TestServer::start().await;
        let client = server.client().await;
        let target = format!("dns:///{}", server.addr);

        // 3 OK unary calls, 1 failing with NOT_FOUND, 1 server-streaming call of 4 messages,
        // 1 call to a method the server does not have.
        for _ in 0..3 {
            client.simple_method(req("echo:abc")).await.unwrap();
        }
        let failed = client.simple_method(req("fail:5:nope")).await.unwrap_err();
        assert_eq!(failed.code(), Code::NotFound);
        let mut responses = client
            .server_streaming_method(req("count:4"))
            .await
            .unwrap()
            .into_message();
        let mut got = 0;
        while responses.message().await.unwrap().is_some() {
            got += 1;
        }
        assert_eq!(got, 4);
        let unknown = client
            .channel()
            .unary::<DemoRequest, DemoResponse>(
                PathAndQuery::from_static("/no.Such/Method"),
                Request::new(req("x")),
            )
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), Code::Unimplemented);

        // The server.
        let s = |name: &str, method: &str, status: &str| {
            format!("grpc.server.call.{name}{{grpc.method={method},grpc.status={status}}}")
        };
        let durations = store.wait_values(&s("duration", SIMPLE, "OK"), 3).await;
        assert_eq!(durations.len(), 3);
        assert_durations("server unary", &durations);
        assert_eq!(
            store.values(&s("sent_total_compressed_message_size", SIMPLE, "OK")),
            vec![len(&reply("abc")); 3]
        );
        assert_eq!(
            store.values(&s("rcvd_total_compressed_message_size", SIMPLE, "OK")),
            vec![len(&req("echo:abc")); 3]
        );
        store.wait_values(&s("duration", SIMPLE, "NOT_FOUND"), 1).await;
        assert_eq!(
            store.values(&s("sent_total_compressed_message_size", SIMPLE, "NOT_FOUND")),
            vec![0.0]
        );
        assert_eq!(
            store.values(&s("rcvd_total_compressed_message_size", SIMPLE, "NOT_FOUND")),
            vec![len(&req("fail:5:nope"))]
        );
        store.wait_values(&s("duration", STREAMING, "OK"), 1).await;
        let streamed: f64 = (0..4).map(|i| len(&reply(i.to_string()))).sum();
        assert_eq!(
            store.values(&s("sent_total_compressed_message_size", STREAMING, "OK")),
            vec![streamed]
        );
        assert_eq!(
            store.values(&s("rcvd_total_compressed_message_size", STREAMING, "OK")),
            vec![len(&req("count:4"))]
        );
        // A66: a method the server did not register is labelled "other".
        assert_eq!(
            store
                .wait_values(&s("duration", "other", "UNIMPLEMENTED"), 1)
                .await
                .len(),
            1
        );
        let started = |method: &str| {
            store.counter(&format!("grpc.server.call.started{{grpc.method={method}}}"))
        };
        assert_eq!(started(SIMPLE), 4);
        assert_eq!(started(STREAMING), 1);
        assert_eq!(started("other"), 1);

        // The client: one attempt per call here, and one call metric per call.
        let c = |name: &str, method: &str, status: &str| {
            format!("grpc.client.{name}{{grpc.method={method},grpc.status={status},grpc.target={target}}}")
        };
        let attempts = |method: &str| {
            store.counter(&format!(
                "grpc.client.attempt.started{{grpc.method={method},grpc.target={target}}}"
            ))
        };
        assert_eq!(attempts(SIMPLE), 4);
        assert_eq!(attempts(STREAMING), 1);
        assert_eq!(attempts("no.Such/Method"), 1);
        let ok = store.values(&c("attempt.duration", SIMPLE, "OK"));
        assert_eq!(ok.len(), 3);
        assert_durations("client attempt", &ok);
        assert_eq!(store.values(&c("call.duration", SIMPLE, "OK")).len(), 3);
        assert_eq!(
            store.values(&c("attempt.sent_total_compressed_message_size", SIMPLE, "OK")),
            vec![len(&req("echo:abc")); 3]
        );
        assert_eq!(
            store.values(&c("attempt.rcvd_total_compressed_message_size", SIMPLE, "OK")),
            vec![len(&reply("abc")); 3]
        );
        assert_eq!(store.values(&c("attempt.duration", SIMPLE, "NOT_FOUND")).len(), 1);
        assert_eq!(store.values(&c("call.duration", SIMPLE, "NOT_FOUND")).len(), 1);
        assert_eq!(
            store.values(&c("attempt.rcvd_total_compressed_message_size", SIMPLE, "NOT_FOUND")),
            vec![0.0]
        );
        assert_eq!(store.values(&c("call.duration", STREAMING, "OK")).len(), 1);
        assert_eq!(
            store.values(&c("attempt.rcvd_total_compressed_message_size", STREAMING, "OK")),
            vec![streamed]
        );
        assert_eq!(
            store.values(&c("attempt.sent_total_compressed_message_size", STREAMING, "OK")),
            vec![len(&req("count:4"))]
        );
        assert_eq!(
            store
                .values(&c("call.duration", "no.Such/Method", "UNIMPLEMENTED"))
                .len(),
            1
        );

        // Units, as A66 names them: seconds and bytes.
        let units = store.units.lock().unwrap().clone();
        assert_eq!(units.get("grpc.client.attempt.duration"), Some(&Unit::Seconds));
        assert_eq!(units.get("grpc.server.call.duration"), Some(&Unit::Seconds));
        assert_eq!(
            units.get("grpc.server.call.sent_total_compressed_message_size"),
            Some(&Unit::Bytes)
        );

        // Retries: a call retried twice is three attempts and one call.
        let retry_server = TestServer::start().await;
        let retry_target = format!("dns:///{}", retry_server.addr);
        let retrying = GrpcDemoClient::new(
            Channel::builder(retry_server.addr.to_string())
                .service_config(
                    r#"{"methodConfig": [{"name": [{"service": "demo.GRPCDemo"}],
                        "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s",
                        "maxBackoff": "0.02s", "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
                )
                .lazy()
                .unwrap(),
        );
        let down = retrying
            .simple_method(req("fail:14:down"))
            .await
            .unwrap_err();
        assert_eq!(down.code(), Code::Unavailable);
        let rc = |name: &str| {
            format!(
                "grpc.client.{name}{{grpc.method={SIMPLE},grpc.status=UNAVAILABLE,grpc.target={retry_target}}}"
            )
        };
        assert_eq!(
            store.counter(&format!(
                "grpc.client.attempt.started{{grpc.method={SIMPLE},grpc.target={retry_target}}}"
            )),
            3
        );
        assert_eq!(store.values(&rc("attempt.duration")).len(), 3);
        assert_eq!(
            store.values(&rc("attempt.sent_total_compressed_message_size")),
            vec![len(&req("fail:14:down")); 3]
        );
        assert_eq!(store.values(&rc("call.duration")).len(), 1);
        assert_eq!(
            store
                .wait_values(&s("duration", SIMPLE, "UNAVAILABLE"), 3)
                .await
                .len(),
            3
        );

        retry_server.shutdown().await;
        server.shutdown().await;
    })
    .await
}
