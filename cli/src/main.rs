//! `h2grpc`: a grpcurl-class command-line client (and ghz-class load generator) on
//! h2grpc's `Channel`. Thin: parse the arguments, pick the descriptor source, run the
//! subcommand, exit with its status.
//!
//! Layout: `args` (the command line), `connect` (flags to a channel and metadata),
//! `source` (descriptors from files or reflection), `reflection` (the reflection client),
//! `describe` (descriptors printed as .proto text), `call` (dynamic calls of the four
//! kinds), `health` (the health check), `bench` (load on any method, through the
//! h2grpc_bench engine, whose `RawMessage` carries every message through the typed API),
//! `failure` (error text and exit statuses).

mod args;
mod bench;
mod call;
mod connect;
mod describe;
mod failure;
mod health;
mod reflection;
mod source;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, Common};
use failure::Failure;
use source::Source;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Usage errors exit 1, as grpcurl's own checks and grpc_health_probe do.
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let health = matches!(cli.command, Command::Health { .. });
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{}", failure.report());
            let code = if health {
                failure.health_exit_code()
            } else {
                failure.exit_code()
            };
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let flags = cli.common;
    let metadata = connect::metadata(&flags.headers)?;
    match cli.command {
        Command::Health { addr, service } => {
            let channel = connect::channel(&addr, &flags).await?;
            let line =
                health::check(&channel, &service, metadata, flags.timeout, flags.verbose).await?;
            println!("{line}");
            Ok(())
        }
        Command::List { addr, service } => {
            let mut source = open_source(&addr, &flags, &metadata).await?;
            match service {
                None => {
                    for name in source.list_services().await? {
                        println!("{name}");
                    }
                }
                Some(service) => {
                    let pool = source.pool_with(&service).await?;
                    let found = pool.get_service_by_name(&service).ok_or_else(|| {
                        Failure::Other(format!(
                            "Failed to list methods for service \"{service}\": Service not found: {service}"
                        ))
                    })?;
                    let mut methods: Vec<String> =
                        found.methods().map(|m| m.full_name().to_string()).collect();
                    methods.sort();
                    for m in methods {
                        println!("{m}");
                    }
                }
            }
            Ok(())
        }
        Command::Describe { addr, symbol } => {
            let mut source = open_source(&addr, &flags, &metadata).await?;
            let symbols = match symbol {
                Some(symbol) => vec![symbol],
                None => source.list_services().await?,
            };
            for symbol in symbols {
                let symbol = symbol.trim_start_matches('.').to_string();
                let pool = source.pool_with(&symbol).await.map_err(|e| {
                    Failure::Other(format!(
                        "Failed to resolve symbol \"{symbol}\": {}",
                        e.report()
                    ))
                })?;
                let text = describe::describe(pool, &symbol).ok_or_else(|| {
                    Failure::Other(format!(
                        "Failed to resolve symbol \"{symbol}\": Symbol not found: {symbol}"
                    ))
                })?;
                print!("{text}");
            }
            Ok(())
        }
        Command::Bench {
            addr,
            method,
            data,
            load,
        } => {
            let args = bench::BenchArgs {
                addr: &addr,
                method: &method,
                data: data.as_deref(),
                load: &load,
            };
            let plan = bench::prepare(args, &flags, metadata).await?;
            // The engine blocks (its own threads, each with a runtime): off this one.
            tokio::task::spawn_blocking(move || plan.run())
                .await
                .map_err(|e| Failure::Other(format!("the run stopped: {e}")))?
        }
        Command::Call {
            addr,
            method,
            data,
            emit_defaults,
        } => {
            let files = source::from_files(&flags)?;
            let channel = connect::channel(&addr, &flags).await?;
            let mut source = match files {
                Some(pool) => Source::Files(pool),
                None => Source::reflection(open_reflection(&channel, &flags, &metadata).await?),
            };
            let resolved = call::resolve(&mut source, &method).await?;
            call::call(
                &channel,
                &resolved,
                call::CallArgs {
                    data: data.as_deref(),
                    emit_defaults,
                    metadata,
                    timeout: flags.timeout,
                    verbose: flags.verbose,
                },
            )
            .await
        }
    }
}

/// Descriptor files when given (no connection needed), else reflection on a new connection.
async fn open_source(
    addr: &str,
    flags: &Common,
    metadata: &h2grpc::Metadata,
) -> Result<Source, Failure> {
    if let Some(pool) = source::from_files(flags)? {
        return Ok(Source::Files(pool));
    }
    let channel = connect::channel(addr, flags).await?;
    Ok(Source::reflection(
        open_reflection(&channel, flags, metadata).await?,
    ))
}

/// A reflection stream (v1, else v1alpha); `-v` names the version that answered.
async fn open_reflection(
    channel: &h2grpc::Channel,
    flags: &Common,
    metadata: &h2grpc::Metadata,
) -> Result<reflection::Reflection, Failure> {
    let session = reflection::Reflection::open(channel, metadata, flags.timeout).await?;
    if flags.verbose {
        eprintln!("using {}", session.version().service());
    }
    Ok(session)
}
