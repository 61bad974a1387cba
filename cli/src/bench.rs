//! `bench`: load on one method of any kind, run by the h2grpc_bench engine (the one behind
//! `h2grpc-bench`). The method is resolved and the `-d` JSON encoded with its input
//! descriptor once, before the run; every call then sends those bytes with the `-H`
//! metadata and the `--timeout` deadline, and its responses are counted and sized, not
//! decoded.

use std::sync::Arc;

use h2grpc::Metadata;
use h2grpc_bench::{Config, Kind, LoadFlags, RawMessage, Workload};
use http::uri::PathAndQuery;
use prost_reflect::MethodDescriptor;

use crate::args::Common;
use crate::call;
use crate::connect::Dial;
use crate::failure::Failure;
use crate::source::{self, Source};

/// What `bench` was given besides the shared flags.
pub struct BenchArgs<'a> {
    pub addr: &'a str,
    pub method: &'a str,
    pub data: Option<&'a str>,
    pub load: &'a LoadFlags,
}

/// A run ready to start: connections and calls as the flags say, requests encoded.
pub struct Plan {
    config: Config,
    work: Workload,
    load: LoadFlags,
}

/// Resolves the method (from the descriptor files, or by reflection on a connection of its
/// own, closed before the run), encodes the requests and checks the load flags.
pub async fn prepare(
    args: BenchArgs<'_>,
    flags: &Common,
    metadata: Metadata,
) -> Result<Plan, Failure> {
    let dial = Dial::new(args.addr, flags)?;
    let files = source::from_files(flags)?;
    let method = {
        let mut source = match files {
            Some(pool) => Source::Files(pool),
            None => {
                let channel = crate::connect::channel(args.addr, flags).await?;
                Source::reflection(crate::open_reflection(&channel, flags, &metadata).await?)
            }
        };
        call::resolve(&mut source, args.method).await?
    };
    let kind = Kind::of(method.is_client_streaming(), method.is_server_streaming());
    let requests = requests(args.data, &method, kind)?;
    let path = PathAndQuery::try_from(format!(
        "/{}/{}",
        method.parent_service().full_name(),
        method.name()
    ))
    .map_err(|e| Failure::Other(format!("bad method path: {e}")))?;
    let service = method.parent_service().full_name().to_string();
    let mut work = Workload::new(service, kind, path, requests, args.load.messages);
    work.interval = args.load.message_interval;
    work.metadata = metadata;
    work.timeout = flags.timeout;
    let connect_timeout = dial.connect_timeout();
    let mut config = args
        .load
        .config(args.addr, Arc::new(move || dial.builder()), kind)
        .map_err(Failure::Usage)?;
    config.connect_timeout = connect_timeout;
    if flags.verbose {
        eprintln!(
            "{} {}: {} {}, {} request{} of {} bytes on average",
            kind.name(),
            work.path,
            method.input().full_name(),
            method.output().full_name(),
            work.requests.len(),
            if work.requests.len() == 1 { "" } else { "s" },
            work.request_bytes(),
        );
    }
    Ok(Plan {
        config,
        work,
        load: args.load.clone(),
    })
}

impl Plan {
    /// Runs the load (blocking: the engine has its own threads and runtimes) and prints
    /// the report on stdout.
    pub fn run(self) -> Result<(), Failure> {
        let report = h2grpc_bench::run(&self.config, &self.work).map_err(Failure::Connect)?;
        self.load.print(&report);
        Ok(())
    }
}

/// The request messages of the run: the `-d` documents encoded as the method's input; one
/// at most for a method that takes one request.
fn requests(
    data: Option<&str>,
    method: &MethodDescriptor,
    kind: Kind,
) -> Result<Vec<RawMessage>, Failure> {
    let text = match data {
        None => return Ok(Vec::new()),
        Some("@") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text).map_err(
                |e| Failure::Other(format!("Failed to read request data from stdin: {e}")),
            )?;
            text
        }
        Some(text) => text.to_string(),
    };
    let requests =
        call::documents(text.as_bytes(), &method.input()).collect::<Result<Vec<_>, _>>()?;
    if requests.len() > 1 && !kind.streams_requests() {
        return Err(Failure::Usage(format!(
            "the method takes one request ({}), and the data holds {} JSON documents",
            method.input().full_name(),
            requests.len()
        )));
    }
    Ok(requests)
}
