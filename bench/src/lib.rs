//! h2grpc-bench: a gRPC load generator engine on h2grpc's `Channel`, for any method. A
//! caller describes the calls as a [`Workload`] (path, kind, request messages already
//! encoded, metadata, deadline), the run as a [`Config`] (usually from [`LoadFlags`]), and
//! gets a [`Report`]. Two front ends use it: the `h2grpc-bench` binary (demo.GRPCDemo and
//! grpc.testing.TestService, messages built from the generated types) and `h2grpc bench`
//! (any method, requests from JSON through the method's descriptors).
//!
//! Layout:
//! - `raw`: [`RawMessage`], one message's encoding carried as bytes (the requests of a
//!   run, and every message of the `h2grpc` tool's calls).
//! - `workload`: what one call sends; [`RawMessage`] requests and [`Skipped`] responses, which
//!   go through h2grpc's typed calls without protobuf work per call.
//! - `run`: connections over worker threads (a current-thread runtime each), closed or open
//!   loop, warm-up, the measured window, the progress line.
//! - `report`: shared counters, latency histograms, CPU time; the report as text or JSON.
//! - `flags`: the command-line flags both front ends share, checked into a [`Config`].

#![deny(missing_docs)]

mod flags;
mod raw;
mod report;
mod run;
mod workload;

pub use flags::{DEFAULT_DURATION, LoadFlags, parse_seconds};
pub use raw::RawMessage;
pub use report::{Cpu, Report, Snapshot};
pub use run::{CODES, Config, Connector, DEFAULT_CONNECT_TIMEOUT, Length, Tally, run};
pub use workload::{Kind, Skipped, Workload};
