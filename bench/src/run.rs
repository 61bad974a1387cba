//! The run: connections spread over worker threads (each a current-thread tokio runtime),
//! `concurrency` call loops per connection, closed loop or open loop at a fixed rate, warm-up,
//! then a measured window whose counters, histograms and CPU time make the report.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use futures_util::stream;
use h2grpc::client::ChannelBuilder;
use h2grpc::{Channel, Code, Request, Status};
use hdrhistogram::Histogram;

use crate::raw::RawMessage;
use crate::report::{Counters, Report, rusage_now};
use crate::workload::{Kind, Skipped, Workload};

/// Highest latency the histograms hold, in nanoseconds (an hour).
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;
/// How long calls in flight get to end after the measured window, before the run gives up
/// on them (their figures are not counted either way).
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// Number of gRPC status codes (0..=16).
pub const CODES: usize = 17;

/// How long the measured part lasts.
#[derive(Clone, Copy, Debug)]
pub enum Length {
    /// For this long.
    Duration(Duration),
    /// Until this many calls have ended.
    Total(u64),
}

/// Makes the builder of one connection's channel; called once per connection, on the
/// worker thread that owns it (so TLS, authority and other channel settings are the
/// caller's to choose).
pub type Connector = Arc<dyn Fn() -> ChannelBuilder + Send + Sync>;

/// How long a connection may take to become READY by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the run needs.
#[derive(Clone)]
pub struct Config {
    /// The channel target (`host:port`, `ipv4:...`, `unix:path`, ...), for reports and errors.
    pub target: String,
    /// The builder of each connection's channel.
    pub connect: Connector,
    /// How long each connection may take to become READY.
    pub connect_timeout: Duration,
    /// Connections (one Channel each).
    pub connections: usize,
    /// Calls in flight per connection; 0: connections only, held idle.
    pub concurrency: usize,
    /// The measured part.
    pub length: Length,
    /// Calls before measuring.
    pub warmup: Duration,
    /// Open loop: calls started per second over all connections.
    pub rate: Option<f64>,
    /// Worker threads, each with a current-thread runtime.
    pub threads: usize,
    /// A progress line on stderr each second.
    pub progress: bool,
}

impl Config {
    /// A channel with the default settings to `target` (`host:port`, `unix:path`, ...).
    pub fn plain_connector(target: &str) -> Connector {
        let target = target.to_string();
        Arc::new(move || Channel::builder(target.clone()))
    }
}

/// What every thread shares: the phase and the counters of the measured window.
struct Shared {
    recording: AtomicBool,
    stop: AtomicBool,
    /// Calls still to start in `Length::Total` mode.
    tickets: AtomicU64,
    counted: Counters,
    /// Calls and errors of every phase, for the progress line.
    progress: Counters,
}

impl Shared {
    fn counting(&self) -> bool {
        self.recording.load(Ordering::Relaxed) && !self.stop.load(Ordering::Relaxed)
    }

    fn sent(&self, messages: u64, bytes: u64) {
        self.progress.add_sent(messages, bytes);
        if self.counting() {
            self.counted.add_sent(messages, bytes);
        }
    }

    fn received(&self, messages: u64, bytes: u64) {
        self.progress.add_received(messages, bytes);
        if self.counting() {
            self.counted.add_received(messages, bytes);
        }
    }
}

/// What one thread's call loops saw: latencies of OK calls, failures by code.
pub struct Tally {
    /// Latency of every OK call in the window, nanoseconds.
    pub latency: Histogram<u64>,
    /// Failed calls in the window, by status code.
    pub errors: [u64; CODES],
    /// One example message per code seen.
    pub examples: Vec<(Code, String)>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("valid histogram bounds"),
            errors: [0; CODES],
            examples: Vec::new(),
        }
    }

    fn merge(&mut self, other: &Tally) {
        // Both have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors) {
            *mine += theirs;
        }
        for (code, message) in &other.examples {
            if !self.examples.iter().any(|(c, _)| c == code) {
                self.examples.push((*code, message.clone()));
            }
        }
    }

    fn failed(&mut self, status: &Status) {
        let code = status.code();
        self.errors[code as usize] += 1;
        if !self.examples.iter().any(|(c, _)| *c == code) {
            self.examples.push((code, status.message().to_string()));
        }
    }
}

/// Run the benchmark and report on it.
pub fn run(config: &Config, work: &Workload) -> Result<Report, String> {
    let threads = config.threads.clamp(1, config.connections.max(1));
    let workers_total = config.connections * config.concurrency;
    let shared = Arc::new(Shared {
        recording: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        tickets: AtomicU64::new(match config.length {
            Length::Total(n) => n,
            Length::Duration(_) => u64::MAX,
        }),
        counted: Counters::default(),
        progress: Counters::default(),
    });
    // Everyone (threads and this one) meets once every connection is READY.
    let ready = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::new();
    for t in 0..threads {
        let connections: Vec<usize> = (t..config.connections).step_by(threads).collect();
        let (config, work, shared, ready) =
            (config.clone(), work.clone(), shared.clone(), ready.clone());
        handles.push(thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot build a runtime: {e}"))?;
            runtime.block_on(thread_main(
                config,
                work,
                connections,
                shared,
                ready,
                workers_total,
            ))
        }));
    }
    ready.wait();
    let begun = Instant::now();
    let mut progress = Progress::new(config.progress, &shared);
    wait_until(&mut progress, &shared, begun + config.warmup, "warmup");
    let cpu_before = rusage_now();
    let measured_from = Instant::now();
    shared.recording.store(true, Ordering::Relaxed);
    match config.length {
        Length::Duration(d) => wait_until(&mut progress, &shared, measured_from + d, ""),
        Length::Total(_) => {
            while !handles.iter().all(|h| h.is_finished()) && !shared.stop.load(Ordering::Relaxed) {
                progress.tick(&shared, "", Duration::from_millis(50));
                if config.concurrency == 0 {
                    break;
                }
            }
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    let elapsed = measured_from.elapsed();
    let cpu_after = rusage_now();
    let counted = shared.counted.snapshot();
    let mut tally = Tally::new();
    let mut failure = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(t)) => tally.merge(&t),
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some("a worker thread panicked".to_string()),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(Report::new(
        config,
        work,
        elapsed,
        counted,
        tally,
        cpu_after.since(&cpu_before),
    ))
}

/// Sleeps until `until`, printing progress each second, or returns early once stopped.
fn wait_until(progress: &mut Progress, shared: &Shared, until: Instant, phase: &str) {
    loop {
        let now = Instant::now();
        if now >= until || shared.stop.load(Ordering::Relaxed) {
            return;
        }
        progress.tick(shared, phase, (until - now).min(Duration::from_millis(100)));
    }
}

/// The progress line: rates over the last second, on stderr.
struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    last_counts: crate::report::Snapshot,
}

impl Progress {
    fn new(enabled: bool, shared: &Shared) -> Progress {
        let now = Instant::now();
        Progress {
            enabled,
            started: now,
            last: now,
            last_counts: shared.progress.snapshot(),
        }
    }

    fn tick(&mut self, shared: &Shared, phase: &str, sleep: Duration) {
        thread::sleep(sleep);
        let now = Instant::now();
        let since = now - self.last;
        if !self.enabled || since < Duration::from_secs(1) {
            return;
        }
        let counts = shared.progress.snapshot();
        let secs = since.as_secs_f64();
        let d = counts.minus(&self.last_counts);
        eprintln!(
            "[{:5.1}s]{} calls/s {:.0}  msgs/s out {:.0} in {:.0}  MB/s out {:.2} in {:.2}  errors {}",
            (now - self.started).as_secs_f64(),
            if phase.is_empty() {
                String::new()
            } else {
                format!(" {phase}")
            },
            d.calls as f64 / secs,
            d.sent_messages as f64 / secs,
            d.received_messages as f64 / secs,
            d.sent_bytes as f64 / secs / 1e6,
            d.received_bytes as f64 / secs / 1e6,
            d.errors,
        );
        self.last = now;
        self.last_counts = counts;
    }
}

/// One thread: connect its channels, then run `concurrency` call loops on each.
async fn thread_main(
    config: Config,
    work: Workload,
    connections: Vec<usize>,
    shared: Arc<Shared>,
    ready: Arc<Barrier>,
    workers_total: usize,
) -> Result<Tally, String> {
    let mut channels = Vec::new();
    let mut error = None;
    for _ in &connections {
        let connecting = (config.connect)().connect();
        match tokio::time::timeout(config.connect_timeout, connecting).await {
            Ok(Ok(channel)) => channels.push(channel),
            Ok(Err(e)) => {
                error = Some(format!("cannot connect to {}: {e}", config.target));
                break;
            }
            Err(_) => {
                error = Some(format!(
                    "cannot connect to {}: not READY within {:?}",
                    config.target, config.connect_timeout
                ));
                break;
            }
        }
    }
    if error.is_some() {
        shared.stop.store(true, Ordering::Relaxed);
    }
    // Meet the others even on failure, so that no one waits for ever.
    ready.wait();
    if let Some(e) = error {
        return Err(e);
    }
    let begun = Instant::now();
    let mut loops = Vec::new();
    for (c, channel) in connections.iter().zip(&channels) {
        for m in 0..config.concurrency {
            // Spread the open-loop schedules of the loops evenly over one interval.
            let index = c * config.concurrency + m;
            let schedule = config.rate.map(|rate| {
                let interval = Duration::from_secs_f64(workers_total as f64 / rate);
                let offset = interval.mul_f64(index as f64 / workers_total as f64);
                (begun + offset, interval)
            });
            loops.push(tokio::spawn(call_loop(
                channel.clone(),
                work.clone(),
                shared.clone(),
                schedule,
                config.length,
            )));
        }
    }
    let mut tally = Tally::new();
    let stopped_then_grace = async {
        while !shared.stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(DRAIN_GRACE).await;
    };
    if loops.is_empty() {
        // Idle connections: held until the run ends.
        while !shared.stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    } else {
        tokio::select! {
            () = async {
                for handle in loops.iter_mut() {
                    if let Ok(t) = handle.await {
                        tally.merge(&t);
                    }
                }
            } => {}
            () = stopped_then_grace => {
                // Calls still in flight after the grace: given up (their figures were not
                // counted, since they had not ended in the window).
                for handle in &loops {
                    handle.abort();
                }
            }
        }
    }
    drop(channels);
    Ok(tally)
}

/// One call loop: call, record, repeat until the run stops.
async fn call_loop(
    channel: Channel,
    work: Workload,
    shared: Arc<Shared>,
    schedule: Option<(Instant, Duration)>,
    length: Length,
) -> Tally {
    let mut tally = Tally::new();
    let mut next = schedule.map(|(first, _)| first);
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        if matches!(length, Length::Total(_))
            && shared.recording.load(Ordering::Relaxed)
            && shared
                .tickets
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_err()
        {
            break;
        }
        // Open loop: latency counts from the intended start, so a call held up by a slow
        // server is charged the wait (no coordinated omission).
        let intended = match (&mut next, schedule) {
            (Some(at), Some((_, interval))) => {
                let this = *at;
                *at += interval;
                tokio::time::sleep_until(this.into()).await;
                this
            }
            _ => Instant::now(),
        };
        let counting = shared.counting();
        let outcome = call(&channel, &work, &shared).await;
        let end = Instant::now();
        shared.progress.add_call(outcome.is_ok());
        if counting && shared.counting() {
            shared.counted.add_call(outcome.is_ok());
            match outcome {
                Ok(()) => {
                    let ns = u64::try_from((end - intended).as_nanos()).unwrap_or(u64::MAX);
                    tally.latency.saturating_record(ns.clamp(1, MAX_LATENCY_NS));
                }
                Err(status) => tally.failed(&status),
            }
        }
    }
    tally
}

/// The request messages of a streaming call: `work.messages` of them (the workload's
/// requests in turn), or (0) until the run stops, `work.interval` apart; each one counted as
/// it is handed to the channel.
fn requests(
    work: &Workload,
    shared: &Arc<Shared>,
) -> impl futures_util::Stream<Item = RawMessage> + use<> {
    let list = work.requests.clone();
    let interval = work.interval;
    let unlimited = work.messages == 0;
    let left = work.messages;
    let shared = shared.clone();
    stream::unfold((left, 0usize), move |(left, sent)| {
        let (list, shared) = (list.clone(), shared.clone());
        async move {
            if sent > 0 && !interval.is_zero() {
                // Hold the stream open, but wake up for the end of the run.
                let until = tokio::time::Instant::now() + interval;
                while tokio::time::Instant::now() < until && !shared.stop.load(Ordering::Relaxed) {
                    tokio::time::sleep_until(
                        until.min(tokio::time::Instant::now() + Duration::from_millis(50)),
                    )
                    .await;
                }
            }
            let left = if unlimited {
                if shared.stop.load(Ordering::Relaxed) {
                    return None;
                }
                left
            } else if left == 0 {
                return None;
            } else {
                left - 1
            };
            let request = list[sent % list.len()].clone();
            shared.sent(1, request.0.len() as u64);
            Some((request, (left, sent.wrapping_add(1))))
        }
    })
}

/// The request of a call: the message with the workload's metadata and deadline.
fn request<T>(work: &Workload, message: T) -> Request<T> {
    if work.metadata.is_empty() && work.timeout.is_none() {
        Request::new(message)
    } else {
        Request::from_parts(work.metadata.clone(), message, work.timeout)
    }
}

/// One call of the workload's kind; every message in and out counted.
async fn call(channel: &Channel, work: &Workload, shared: &Arc<Shared>) -> Result<(), Status> {
    let path = work.path.clone();
    match work.kind {
        Kind::Unary => {
            let message = work.first().clone();
            shared.sent(1, message.0.len() as u64);
            let response = channel
                .unary::<RawMessage, Skipped>(path, request(work, message))
                .await?;
            shared.received(1, response.message().len as u64);
        }
        Kind::ClientStream => {
            let response = channel
                .client_streaming::<RawMessage, Skipped, _>(
                    path,
                    request(work, requests(work, shared)),
                )
                .await?;
            shared.received(1, response.message().len as u64);
        }
        Kind::ServerStream => {
            let message = work.first().clone();
            shared.sent(1, message.0.len() as u64);
            let mut responses = channel
                .server_streaming::<RawMessage, Skipped>(path, request(work, message))
                .await?
                .into_message();
            while let Some(message) = responses.message().await? {
                shared.received(1, message.len as u64);
            }
        }
        Kind::Bidi => {
            let mut responses = channel
                .streaming::<RawMessage, Skipped, _>(path, request(work, requests(work, shared)))
                .await?
                .into_message();
            while let Some(message) = responses.message().await? {
                shared.received(1, message.len as u64);
            }
        }
    }
    Ok(())
}
