//! The command line: five subcommands in grpcurl's (and, for bench, ghz's) shape, and the flags they share
//! (accepted before or after the positional arguments).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Exit statuses, shown under every `--help`.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0        success
  1        bad arguments, unreadable descriptors or input, connection failure
  64 + N   the RPC ended with gRPC status code N (as grpcurl): 68 DEADLINE_EXCEEDED,
           69 NOT_FOUND, 76 UNIMPLEMENTED, 78 UNAVAILABLE, ...
  health:  grpc_health_probe's: 0 SERVING, 1 bad arguments, 2 connection failure,
           3 RPC failure, 4 not SERVING
  bench:   0 when the run ends (failed calls are counted in the report), 1 when it
           cannot run (bad arguments, unknown method, connection failure)

Errors go to stderr; an RPC error as one line (line breaks in the message escaped):
  ERROR: code = Unimplemented, message = Method not found!";

#[derive(Debug, Parser)]
#[command(
    name = "h2grpc",
    version,
    about = "List, describe, call, health-check and load-test gRPC services (grpcurl's shape, on h2grpc)",
    long_about = "List, describe, call, health-check and load-test gRPC services.\n\n\
        Descriptors come from server reflection (grpc.reflection.v1, falling back to \
        v1alpha), or from --proto files (compiled in-process) or --protoset files (an \
        encoded FileDescriptorSet). Messages are read and written as JSON.",
    after_help = EXIT_STATUS_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Plain-text HTTP/2 (no TLS). Without it, TLS with the system's roots.
    #[arg(long, global = true)]
    pub plaintext: bool,
    /// PEM file of the CA certificates that verify the server (instead of the system's).
    #[arg(long, global = true, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// PEM file of the client certificate chain to present (with --key).
    #[arg(long, global = true, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// PEM file of the client's private key (with --cert).
    #[arg(long, global = true, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The name the server certificate must carry (default: the host of ADDR, or --authority).
    #[arg(long, global = true, value_name = "NAME")]
    pub servername: Option<String>,
    /// The :authority of the calls (default: ADDR).
    #[arg(long, global = true, value_name = "NAME")]
    pub authority: Option<String>,
    /// A .proto source file to take descriptors from instead of reflection (repeatable).
    #[arg(long = "proto", global = true, value_name = "FILE")]
    pub protos: Vec<PathBuf>,
    /// Where --proto files and their imports are found (repeatable; default: each
    /// file's own directory).
    #[arg(long = "import-path", short = 'I', global = true, value_name = "DIR")]
    pub import_paths: Vec<PathBuf>,
    /// A file holding an encoded FileDescriptorSet (repeatable), e.g. from
    /// `protoc --include_imports -o FILE`.
    #[arg(long = "protoset", global = true, value_name = "FILE")]
    pub protosets: Vec<PathBuf>,
    /// Request metadata 'name: value' (repeatable). Values of names ending in -bin are
    /// base64 (standard or URL-safe, padded or not). Also sent with reflection requests.
    #[arg(
        short = 'H',
        long = "header",
        global = true,
        value_name = "'NAME: VALUE'"
    )]
    pub headers: Vec<String>,
    /// How long to wait for the connection: 10s, 500ms, 1.5 (seconds).
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub connect_timeout: Duration,
    /// The deadline of each RPC (sent as grpc-timeout): 5s, 250ms, 2m, 1.5 (seconds).
    /// `health` defaults to 1s, as grpc_health_probe's -rpc-timeout.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Verbose: on stderr, the resolved method, request metadata, response headers and
    /// trailers, counts and elapsed times. Stdout keeps only the responses.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the services of the server (or of the descriptor files), or the methods of one.
    #[command(after_help = LIST_HELP)]
    List {
        /// host:port, unix:PATH or another h2grpc target.
        #[arg(value_name = "ADDR")]
        addr: String,
        /// A fully qualified service name: list its methods.
        #[arg(value_name = "SERVICE")]
        service: Option<String>,
    },
    /// Print the definition of a service, method, message, enum or field as it would be
    /// written in a .proto file.
    #[command(after_help = DESCRIBE_HELP)]
    Describe {
        /// host:port, unix:PATH or another h2grpc target.
        #[arg(value_name = "ADDR")]
        addr: String,
        /// A fully qualified name (pkg.Service, pkg.Service.Method, pkg.Message, ...);
        /// without it, every service.
        #[arg(value_name = "SYMBOL")]
        symbol: Option<String>,
    },
    /// Call a method of any of the four kinds with JSON requests; print each response as JSON.
    #[command(after_help = CALL_HELP)]
    Call {
        /// host:port, unix:PATH or another h2grpc target.
        #[arg(value_name = "ADDR")]
        addr: String,
        /// The method: pkg.Service/Method (or pkg.Service.Method).
        #[arg(value_name = "METHOD")]
        method: String,
        /// The request as JSON. For client-streaming and bidi methods, any number of JSON
        /// documents one after another. `@` reads them from stdin as they come (one
        /// request per document). Without -d: one empty request for unary and
        /// server-streaming methods, none for the others.
        #[arg(short = 'd', long = "data", value_name = "JSON|@")]
        data: Option<String>,
        /// Print fields that hold their default value too.
        #[arg(long)]
        emit_defaults: bool,
    },
    /// Load-test a method of any of the four kinds: connections x calls in flight, for a
    /// duration or a number of calls, closed loop or at a fixed rate; reports calls/s,
    /// messages/s, MB/s, latency quantiles, errors by status code and the client's CPU.
    #[command(after_help = BENCH_HELP)]
    Bench {
        /// host:port, unix:PATH or another h2grpc target.
        #[arg(value_name = "ADDR")]
        addr: String,
        /// The method: pkg.Service/Method (or pkg.Service.Method).
        #[arg(value_name = "METHOD")]
        method: String,
        /// The request as JSON, encoded once before the run. For client-streaming and bidi
        /// methods, one or more JSON documents, sent in turn (--messages per call, starting
        /// over after the last). `@` reads them from stdin. Without -d: an empty request.
        #[arg(short = 'd', long = "data", value_name = "JSON|@")]
        data: Option<String>,
        #[command(flatten)]
        load: h2grpc_bench::LoadFlags,
    },
    /// Check a server's health with grpc.health.v1.Health/Check, with grpc_health_probe's
    /// exit statuses.
    #[command(after_help = HEALTH_HELP)]
    Health {
        /// host:port, unix:PATH or another h2grpc target.
        #[arg(value_name = "ADDR")]
        addr: String,
        /// The service to check; without it, the server as a whole ("").
        #[arg(value_name = "SERVICE", default_value = "")]
        service: String,
    },
}

const LIST_HELP: &str = "\
Examples:
  h2grpc list --plaintext localhost:23333
  h2grpc list localhost:23333 demo.GRPCDemo --plaintext
  h2grpc list --proto proto/demo.proto --plaintext localhost:23333

Exit status: 0 on success, 1 on any failure (the reason on stderr).";

const DESCRIBE_HELP: &str = "\
Examples:
  h2grpc describe --plaintext localhost:23333 demo.GRPCDemo
  h2grpc describe --plaintext localhost:23333 demo.Request
  h2grpc describe --protoset demo.protoset --plaintext localhost:23333 demo.GRPCDemo.SimpleMethod

Exit status: 0 on success, 1 on any failure (the reason on stderr).";

const CALL_HELP: &str = "\
Examples:
  h2grpc call --plaintext localhost:23333 demo.GRPCDemo/SimpleMethod -d '{\"client_id\": 1, \"request_data\": \"hi\"}'
  h2grpc call --plaintext localhost:23333 demo.GRPCDemo/ServerStreamingMethod -d '{}' --emit-defaults
  printf '{\"client_id\":1}\\n{\"client_id\":2}\\n' | h2grpc call --plaintext localhost:23333 demo.GRPCDemo/ClientStreamingMethod -d @
  h2grpc call --plaintext -v -H 'x-user: ann' -H 'token-bin: AAEC' --timeout 2s localhost:23333 demo.GRPCDemo/SimpleMethod

Exit status: 0 when the RPC ends OK; 64 + the gRPC status code when it fails (68 for
DEADLINE_EXCEEDED, 76 for UNIMPLEMENTED, ...), with on stderr one line:
  ERROR: code = DeadlineExceeded, message = deadline exceeded
1 for anything else (bad arguments or JSON, unknown method, connection failure).";

const BENCH_HELP: &str = "\
Examples:
  h2grpc bench --plaintext localhost:23333 demo.GRPCDemo/SimpleMethod -d '{\"client_id\": 1, \"request_data\": \"hi\"}' --connections 4 --concurrency 64 --duration 10s
  h2grpc bench --plaintext localhost:23333 demo.GRPCDemo/SimpleMethod --rate 5000 --concurrency 32 --total 100000 --json
  h2grpc bench --plaintext --proto demo.proto localhost:23333 demo.GRPCDemo/ClientStreamingMethod -d '{\"request_data\": \"a\"} {\"request_data\": \"b\"}' --messages 10
  h2grpc bench --plaintext -H 'authorization: Bearer TOKEN' --timeout 100ms localhost:23333 demo.GRPCDemo/ServerStreamingMethod -d '{}'

Descriptors come from reflection, --proto or --protoset, as for `call`; -H metadata and the
--timeout deadline go with every call. Responses are counted and sized (their protobuf wire
form checked), not decoded. A progress line goes to stderr each second (--quiet: none); the
report to stdout, as text or, with --json, as one JSON object.

Exit status: 0 when the run ends, whatever the calls' statuses (the report counts them by
code); 1 when it cannot run (bad arguments or JSON, unknown method, connection failure).";

const HEALTH_HELP: &str = "\
Examples:
  h2grpc health --plaintext localhost:50051
  h2grpc health --plaintext localhost:50051 demo.GRPCDemo --timeout 250ms

Prints `status: SERVING` on stdout, or the failure on stderr.
Exit status (grpc_health_probe's):
  0 SERVING, 1 bad arguments, 2 connection failure, 3 RPC failure (an unknown service
  is NOT_FOUND, a server without the health service UNIMPLEMENTED), 4 not SERVING.";

/// `10s`, `250ms`, `2m`, `1h`, `1.5` (seconds), `1.5s`, `100us`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    // The units are h2grpc-bench's (one parser for both tools); a timeout must be positive.
    let duration = h2grpc_bench::parse_seconds(text)?;
    if duration.is_zero() {
        return Err(format!(
            "`{}`: a duration must be greater than zero",
            text.trim()
        ));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn durations_take_units_or_plain_seconds() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_go_before_or_after_the_positional_arguments() {
        let before = Cli::try_parse_from(["h2grpc", "--plaintext", "-v", "list", "a:1", "s.S"]);
        let after = Cli::try_parse_from(["h2grpc", "list", "a:1", "--plaintext", "s.S", "-v"]);
        for parsed in [before.unwrap(), after.unwrap()] {
            assert!(parsed.common.plaintext && parsed.common.verbose);
            assert!(
                matches!(parsed.command, Command::List { ref service, .. } if service.as_deref() == Some("s.S"))
            );
        }
    }
}
