//! The figures of a run: shared counters, the process's CPU time (getrusage), and the report
//! printed as text or JSON.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use h2grpc::Code;
use serde_json::{Value, json};

use crate::run::{CODES, Config, Length, Tally};
use crate::workload::Workload;

/// Counters shared by every call loop.
#[derive(Default)]
pub struct Counters {
    calls: AtomicU64,
    errors: AtomicU64,
    sent_messages: AtomicU64,
    sent_bytes: AtomicU64,
    received_messages: AtomicU64,
    received_bytes: AtomicU64,
}

/// The counters at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Snapshot {
    /// Calls ended OK.
    pub calls: u64,
    /// Calls ended with another status.
    pub errors: u64,
    /// Request messages handed to the channel.
    pub sent_messages: u64,
    /// Their encoded bytes.
    pub sent_bytes: u64,
    /// Response messages received.
    pub received_messages: u64,
    /// Their encoded bytes.
    pub received_bytes: u64,
}

impl Counters {
    /// One call ended.
    pub fn add_call(&self, ok: bool) {
        if ok {
            self.calls.fetch_add(1, Ordering::Relaxed);
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Messages sent.
    pub fn add_sent(&self, messages: u64, bytes: u64) {
        self.sent_messages.fetch_add(messages, Ordering::Relaxed);
        self.sent_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Messages received.
    pub fn add_received(&self, messages: u64, bytes: u64) {
        self.received_messages
            .fetch_add(messages, Ordering::Relaxed);
        self.received_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            sent_messages: self.sent_messages.load(Ordering::Relaxed),
            sent_bytes: self.sent_bytes.load(Ordering::Relaxed),
            received_messages: self.received_messages.load(Ordering::Relaxed),
            received_bytes: self.received_bytes.load(Ordering::Relaxed),
        }
    }
}

impl Snapshot {
    /// What happened between `earlier` and this one.
    pub fn minus(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            calls: self.calls - earlier.calls,
            errors: self.errors - earlier.errors,
            sent_messages: self.sent_messages - earlier.sent_messages,
            sent_bytes: self.sent_bytes - earlier.sent_bytes,
            received_messages: self.received_messages - earlier.received_messages,
            received_bytes: self.received_bytes - earlier.received_bytes,
        }
    }
}

/// The process's CPU time (all threads).
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu {
    /// User time.
    pub user: Duration,
    /// System time.
    pub system: Duration,
}

impl Cpu {
    /// The CPU time spent since `earlier`.
    pub fn since(&self, earlier: &Cpu) -> Cpu {
        Cpu {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// The process's CPU time so far (getrusage(RUSAGE_SELF)).
pub fn rusage_now() -> Cpu {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` into the pointer it is given.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return Cpu::default();
        }
        usage.assume_init()
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Cpu {
        user: time(usage.ru_utime),
        system: time(usage.ru_stime),
    }
}

/// Everything a run measured.
pub struct Report {
    json: Value,
}

/// Latency quantiles in microseconds from a histogram in nanoseconds.
fn latency(tally: &Tally) -> Value {
    let h = &tally.latency;
    let us = |ns: u64| ns as f64 / 1000.0;
    if h.is_empty() {
        return Value::Null;
    }
    json!({
        "p50": us(h.value_at_quantile(0.50)),
        "p90": us(h.value_at_quantile(0.90)),
        "p99": us(h.value_at_quantile(0.99)),
        "p99_9": us(h.value_at_quantile(0.999)),
        "max": us(h.max()),
        "mean": h.mean() / 1000.0,
    })
}

impl Report {
    /// The report of a run that measured `counted` over `elapsed`.
    pub fn new(
        config: &Config,
        work: &Workload,
        elapsed: Duration,
        counted: Snapshot,
        tally: Tally,
        cpu: Cpu,
    ) -> Report {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut errors = serde_json::Map::new();
        for code in 0..CODES {
            let n = tally.errors[code];
            if n > 0 {
                let name = Code::from_i32(code as i32).as_str();
                errors.insert(name.to_string(), json!(n));
            }
        }
        let examples: serde_json::Map<String, Value> = tally
            .examples
            .iter()
            .map(|(code, message)| (code.as_str().to_string(), json!(message)))
            .collect();
        let cpu_us = (cpu.user + cpu.system).as_secs_f64() * 1e6;
        let ended = counted.calls + counted.errors;
        let json = json!({
            "target": config.target,
            "service": work.service,
            "kind": work.kind.name(),
            "path": work.path.as_str(),
            "request_bytes": work.request_bytes(),
            "messages_per_call": work.messages,
            "connections": config.connections,
            "concurrency": config.concurrency,
            "threads": config.threads,
            "rate": config.rate,
            "warmup_s": config.warmup.as_secs_f64(),
            "total": match config.length { Length::Total(n) => Some(n), Length::Duration(_) => None },
            "elapsed_s": secs,
            "calls": counted.calls,
            "failed_calls": counted.errors,
            "calls_per_s": counted.calls as f64 / secs,
            "messages_per_s": (counted.sent_messages + counted.received_messages) as f64 / secs,
            "sent_messages_per_s": counted.sent_messages as f64 / secs,
            "received_messages_per_s": counted.received_messages as f64 / secs,
            "mb_per_s": (counted.sent_bytes + counted.received_bytes) as f64 / secs / 1e6,
            "sent_mb_per_s": counted.sent_bytes as f64 / secs / 1e6,
            "received_mb_per_s": counted.received_bytes as f64 / secs / 1e6,
            "latency_us": latency(&tally),
            "errors": errors,
            "error_examples": examples,
            "cpu": {
                "user_s": cpu.user.as_secs_f64(),
                "system_s": cpu.system.as_secs_f64(),
                "us_per_call": if ended > 0 { Some(cpu_us / ended as f64) } else { None },
                "utilisation": cpu_us / 1e6 / secs,
            },
        });
        Report { json }
    }

    /// The report as JSON.
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// The report as lines of text.
    pub fn text(&self) -> String {
        let j = &self.json;
        let f = |key: &str| j[key].as_f64().unwrap_or(0.0);
        let mut out = format!(
            "{} {} ({} bytes per request) on {}: {} connection(s) x {} in flight\n",
            j["kind"].as_str().unwrap_or(""),
            j["path"].as_str().unwrap_or(""),
            j["request_bytes"],
            j["target"].as_str().unwrap_or(""),
            j["connections"],
            j["concurrency"],
        );
        out += &format!(
            "calls      {} ok, {} failed in {:.2} s: {:.0} calls/s\n",
            j["calls"],
            j["failed_calls"],
            f("elapsed_s"),
            f("calls_per_s"),
        );
        out += &format!(
            "messages   {:.0}/s (out {:.0}/s, in {:.0}/s)\n",
            f("messages_per_s"),
            f("sent_messages_per_s"),
            f("received_messages_per_s"),
        );
        out += &format!(
            "MB/s       {:.2} (out {:.2}, in {:.2})\n",
            f("mb_per_s"),
            f("sent_mb_per_s"),
            f("received_mb_per_s"),
        );
        let l = &j["latency_us"];
        if l.is_null() {
            out += "latency    no call ended OK\n";
        } else {
            out += &format!(
                "latency us p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}\n",
                l["p50"].as_f64().unwrap_or(0.0),
                l["p90"].as_f64().unwrap_or(0.0),
                l["p99"].as_f64().unwrap_or(0.0),
                l["p99_9"].as_f64().unwrap_or(0.0),
                l["max"].as_f64().unwrap_or(0.0),
            );
        }
        if let Some(errors) = j["errors"].as_object().filter(|e| !e.is_empty()) {
            let list: Vec<String> = errors
                .iter()
                .map(|(code, n)| {
                    let example = j["error_examples"][code].as_str().unwrap_or("");
                    format!("{code} x{n} ({example})")
                })
                .collect();
            out += &format!("errors     {}\n", list.join(", "));
        }
        let cpu = &j["cpu"];
        out += &format!(
            "client CPU {:.2} s user + {:.2} s system ({:.0}% of one core){}\n",
            cpu["user_s"].as_f64().unwrap_or(0.0),
            cpu["system_s"].as_f64().unwrap_or(0.0),
            cpu["utilisation"].as_f64().unwrap_or(0.0) * 100.0,
            cpu["us_per_call"]
                .as_f64()
                .map_or(String::new(), |us| format!(", {us:.2} us per call")),
        );
        out
    }
}
