//! soak_client: mixed calls against a demo-server for a set time, for `scripts/soak.sh`.
//!
//! Workers make calls of every kind in turn (unary, server streaming, client streaming,
//! bidirectional, and calls dropped half-way so the server sees cancellations), each
//! worker on its own channel, replaced every `--churn-every` calls so connections come
//! and go. Prints progress every 10 s and a summary; exits 1 if any call failed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::stream;
use h2grpc::{Channel, Status};
use h2grpc_demo::pb::Request as DemoRequest;
use h2grpc_demo::pb::grpc_demo_client::GrpcDemoClient;
use tokio::sync::Mutex;

#[derive(Parser)]
struct Args {
    /// Server address (host:port).
    #[arg(long, default_value = "127.0.0.1:23333")]
    addr: String,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 600)]
    secs: u64,
    /// Concurrent workers, each with its own channel.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Calls a worker makes on one channel before replacing it with a new one.
    #[arg(long, default_value_t = 2000)]
    churn_every: u64,
    /// Pause after each call, per worker, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pause_ms: u64,
}

const KINDS: [&str; 6] = [
    "unary",
    "server_streaming",
    "client_streaming",
    "bidi",
    "server_streaming_dropped",
    "bidi_dropped",
];

fn req(i: u64, text: &str) -> DemoRequest {
    DemoRequest {
        client_id: i as i64,
        request_data: text.to_owned(),
    }
}

/// One call of kind `n % 6`, its answers checked.
async fn call(client: &GrpcDemoClient, n: u64) -> Result<(), Status> {
    let wrong = |what: String| Err(Status::internal(what));
    match n % 6 {
        0 => {
            let r = client.simple_method(req(n, "soak")).await?;
            if r.message().response_data != "Rust server SimpleMethod Ok!!!!" {
                return wrong(format!("unary answer {:?}", r.message().response_data));
            }
        }
        1 => {
            let mut s = client
                .server_streaming_method(req(n, "soak"))
                .await?
                .into_message();
            let mut count = 0;
            while s.message().await?.is_some() {
                count += 1;
            }
            if count != 5 {
                return wrong(format!("{count} streamed messages"));
            }
        }
        2 => {
            // 5 to 54 requests of up to 1 KiB: some variety for the allocator.
            let count = 5 + n % 50;
            let size = (n % 1024) as usize;
            let text = "x".repeat(size);
            let requests = stream::iter((0..count).map(move |i| req(i, &text)));
            client.client_streaming_method(requests).await?;
        }
        3 => {
            let requests = stream::iter((0..5).map(|i| req(i, "soak")));
            let mut s = client
                .bidirectional_streaming_method(requests)
                .await?
                .into_message();
            let mut count = 0;
            while s.message().await?.is_some() {
                count += 1;
            }
            if count != 5 {
                return wrong(format!("{count} bidi messages"));
            }
        }
        4 => {
            // Read one message, then drop the call: the stream is reset with CANCEL.
            let mut s = client
                .server_streaming_method(req(n, "soak"))
                .await?
                .into_message();
            s.message().await?;
        }
        _ => {
            // A bidi call whose request stream never ends, dropped after one answer.
            let requests =
                futures_util::StreamExt::chain(stream::iter([req(n, "soak")]), stream::pending());
            let mut s = client
                .bidirectional_streaming_method(requests)
                .await?
                .into_message();
            s.message().await?;
        }
    }
    Ok(())
}

#[derive(Default)]
struct Counts {
    ok: [AtomicU64; 6],
    failed: AtomicU64,
    channels: AtomicU64,
}

fn report(counts: &Counts, started: Instant) -> String {
    let ok: u64 = counts.ok.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    format!(
        "{:>5.0}s calls ok {ok} failed {} channels {}",
        started.elapsed().as_secs_f64(),
        counts.failed.load(Ordering::Relaxed),
        counts.channels.load(Ordering::Relaxed)
    )
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let counts = Arc::new(Counts::default());
    let errors = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let until = Instant::now() + Duration::from_secs(args.secs);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..args.workers {
        let (counts, errors, addr) = (counts.clone(), errors.clone(), args.addr.clone());
        let (churn_every, pause) = (args.churn_every, Duration::from_millis(args.pause_ms));
        workers.push(tokio::spawn(async move {
            let mut n = w as u64;
            while Instant::now() < until {
                let client = GrpcDemoClient::new(Channel::lazy(addr.clone()).expect("address"));
                counts.channels.fetch_add(1, Ordering::Relaxed);
                for _ in 0..churn_every {
                    if Instant::now() >= until {
                        break;
                    }
                    let result = tokio::time::timeout(Duration::from_secs(10), call(&client, n))
                        .await
                        .unwrap_or_else(|_| Err(Status::deadline_exceeded("hung for 10 s")));
                    match result {
                        Ok(()) => {
                            counts.ok[(n % 6) as usize].fetch_add(1, Ordering::Relaxed);
                        }
                        Err(status) => {
                            counts.failed.fetch_add(1, Ordering::Relaxed);
                            let key = format!(
                                "{}: {}: {}",
                                KINDS[(n % 6) as usize],
                                status.code(),
                                status.message()
                            );
                            *errors.lock().await.entry(key).or_insert(0) += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    n += 1;
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }));
    }
    let progress = {
        let counts = counts.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                eprintln!("soak_client: {}", report(&counts, started));
            }
        })
    };
    for w in workers {
        w.await.expect("worker");
    }
    progress.abort();
    println!("soak_client: done: {}", report(&counts, started));
    for (kind, c) in KINDS.iter().zip(&counts.ok) {
        println!("soak_client:   {kind:<26} {} ok", c.load(Ordering::Relaxed));
    }
    let errors = errors.lock().await;
    for (e, n) in errors.iter() {
        println!("soak_client:   FAILED x{n}: {e}");
    }
    if counts.failed.load(Ordering::Relaxed) > 0 {
        std::process::exit(1);
    }
}
