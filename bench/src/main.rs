//! h2grpc-bench: a gRPC load generator on h2grpc's `Channel`. Parses the flags, runs the
//! calls (run.rs) and prints the report (report.rs) as text or JSON.

mod report;
mod run;
mod workload;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::run::{Config, Length};
use crate::workload::{Kind, Service, Workload};

/// Load generator for gRPC servers, on h2grpc's client.
///
/// Closed loop by default (each of the connections x concurrency call loops starts its next
/// call when the last one ends); with --rate, open loop at a fixed rate, latency counted from
/// each call's intended start.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Target: host:port, ipv4:addr:port, unix:path, ...
    #[arg(long, default_value = "127.0.0.1:23333")]
    addr: String,
    /// Service: demo (demo.GRPCDemo) or test (grpc.testing.TestService, the interop server).
    #[arg(long, value_enum, default_value = "demo")]
    service: Service,
    /// Call kind.
    #[arg(long, value_enum, default_value = "unary")]
    kind: Kind,
    /// Connections, each its own channel.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Calls in flight per connection (0: open the connections and hold them idle).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Seconds measured (after the warm-up). Default 10 unless --total is given.
    #[arg(long, conflicts_with = "total")]
    duration: Option<f64>,
    /// Calls measured (after the warm-up), instead of a duration.
    #[arg(long)]
    total: Option<u64>,
    /// Seconds of calls before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Open loop: calls started per second, over all connections.
    #[arg(long)]
    rate: Option<f64>,
    /// Request payload in bytes (demo: request_data, by default the official client's
    /// "called by Python client", as in shared/peers/demo-request.grpc; test: the payload
    /// body and the response size asked for, by default 0).
    #[arg(long)]
    payload: Option<usize>,
    /// Requests per client-streaming or bidi call, responses per server-streaming call on
    /// the test service; 0 (client-stream, bidi): one call for the whole run.
    #[arg(long, default_value_t = 100)]
    messages: u64,
    /// Seconds between two requests of a client-streaming or bidi call (with --messages 0:
    /// streams held open and nearly idle, to count what open streams cost a server).
    #[arg(long, default_value_t = 0.0)]
    message_interval: f64,
    /// Worker threads, each a current-thread runtime with its share of the connections.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress line on stderr.
    #[arg(long)]
    quiet: bool,
}

fn seconds(name: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("--{name} {s}: not a number of seconds"))
}

fn config(args: &Args) -> Result<(Config, Workload), String> {
    if args.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    if let Some(rate) = args.rate
        && (!rate.is_finite() || rate <= 0.0)
    {
        return Err(format!(
            "--rate {rate}: must be a positive number of calls per second"
        ));
    }
    if args.rate.is_some() && args.concurrency == 0 {
        return Err("--rate needs --concurrency of at least 1".into());
    }
    if args.messages == 0 && args.kind == Kind::ServerStream {
        return Err(
            "--messages 0 (one call for the whole run) is for client-stream and bidi".into(),
        );
    }
    let length = match (args.total, args.duration) {
        (Some(0), _) => return Err("--total must be at least 1".into()),
        (Some(n), _) => Length::Total(n),
        (None, d) => Length::Duration(seconds("duration", d.unwrap_or(10.0))?),
    };
    let config = Config {
        target: args.addr.clone(),
        connections: args.connections,
        concurrency: args.concurrency,
        length,
        warmup: seconds("warmup", args.warmup)?,
        rate: args.rate,
        threads: args.threads.max(1),
        progress: !args.quiet,
    };
    let mut work = Workload::new(args.service, args.kind, args.payload, args.messages);
    work.interval = seconds("message-interval", args.message_interval)?;
    Ok((config, work))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (config, work) = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("h2grpc-bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run::run(&config, &work) {
        Ok(report) => {
            if args.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("h2grpc-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
