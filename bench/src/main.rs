//! h2grpc-bench: the load generator (the h2grpc_bench engine) on the two services it knows
//! without descriptors. Parses the flags, builds the workload (services.rs), runs it and
//! prints the report as text or JSON. `h2grpc bench` runs the same engine on any method.

mod services;

use std::process::ExitCode;

use clap::Parser;
use h2grpc_bench::{Config, Kind, LoadFlags};

use crate::services::Service;

/// Load generator for gRPC servers, on h2grpc's client.
///
/// Closed loop by default (each of the connections x concurrency call loops starts its next
/// call when the last one ends); with --rate, open loop at a fixed rate, latency counted from
/// each call's intended start. For any other method, `h2grpc bench` runs the same engine.
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
    /// Request payload in bytes (demo: request_data, by default the official client's
    /// "called by Python client", as in shared/peers/demo-request.grpc; test: the payload
    /// body and the response size asked for, by default 0).
    #[arg(long)]
    payload: Option<usize>,
    #[command(flatten)]
    load: LoadFlags,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match args
        .load
        .config(&args.addr, Config::plain_connector(&args.addr), args.kind)
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("h2grpc-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let mut work = services::workload(args.service, args.kind, args.payload, args.load.messages);
    work.interval = args.load.message_interval;
    match h2grpc_bench::run(&config, &work) {
        Ok(report) => {
            args.load.print(&report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("h2grpc-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
