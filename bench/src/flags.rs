//! The load flags both front ends take (`h2grpc-bench` and `h2grpc bench`): connections and
//! calls in flight, duration or count, warm-up, open-loop rate, messages per streaming call,
//! worker threads, and how the report is shown; checked and turned into a [`Config`].

use std::time::Duration;

use crate::report::Report;
use crate::run::{Config, Connector, DEFAULT_CONNECT_TIMEOUT, Length};
use crate::workload::Kind;

/// How long the run measures when neither `--duration` nor `--total` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// The flags of a run (flatten into a clap command).
#[derive(clap::Args, Clone, Debug)]
pub struct LoadFlags {
    /// Connections, each its own channel.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Calls in flight per connection (0: open the connections and hold them idle).
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// How long to measure, after the warm-up: 10s, 500ms, 2m, 1.5 (seconds). Default 10 s
    /// unless --total is given.
    #[arg(long, value_name = "DURATION", value_parser = parse_seconds, conflicts_with = "total")]
    pub duration: Option<Duration>,
    /// Calls measured (after the warm-up), instead of a duration.
    #[arg(long, value_name = "CALLS")]
    pub total: Option<u64>,
    /// How long to make calls before measuring: 1s, 200ms, 0.
    #[arg(long, value_name = "DURATION", value_parser = parse_seconds, default_value = "1")]
    pub warmup: Duration,
    /// Open loop: calls started per second, over all connections; latency counts from
    /// each call's intended start.
    #[arg(long, value_name = "CALLS_PER_S")]
    pub rate: Option<f64>,
    /// Requests per client-streaming or bidi call (with h2grpc-bench's test service, also
    /// the responses asked of each server-streaming call); 0 (client-stream, bidi): one
    /// call for the whole run.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub messages: u64,
    /// Pause between two requests of a client-streaming or bidi call: 1s, 10ms (with
    /// --messages 0: streams held open and nearly idle, to count what open streams cost a
    /// server).
    #[arg(long, value_name = "DURATION", value_parser = parse_seconds, default_value = "0")]
    pub message_interval: Duration,
    /// Worker threads, each a current-thread runtime with its share of the connections.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl LoadFlags {
    /// The run's configuration for calls of `kind` to `target`, each connection built by
    /// `connect`; an error names the flag at fault.
    pub fn config(&self, target: &str, connect: Connector, kind: Kind) -> Result<Config, String> {
        if self.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        if let Some(rate) = self.rate
            && (!rate.is_finite() || rate <= 0.0)
        {
            return Err(format!(
                "--rate {rate}: must be a positive number of calls per second"
            ));
        }
        if self.rate.is_some() && self.concurrency == 0 {
            return Err("--rate needs --concurrency of at least 1".into());
        }
        if self.messages == 0 && !kind.streams_requests() {
            return Err(format!(
                "--messages 0 (one call for the whole run) is for client-stream and bidi, not {}",
                kind.name()
            ));
        }
        let length = match (self.total, self.duration) {
            (Some(0), _) => return Err("--total must be at least 1".into()),
            (Some(n), _) => Length::Total(n),
            (None, d) => Length::Duration(d.unwrap_or(DEFAULT_DURATION)),
        };
        Ok(Config {
            target: target.to_string(),
            connect,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            connections: self.connections,
            concurrency: self.concurrency,
            length,
            warmup: self.warmup,
            rate: self.rate,
            threads: self.threads.max(1),
            progress: !self.quiet,
        })
    }

    /// Prints the report on stdout, as JSON with --json, else as text.
    pub fn print(&self, report: &Report) {
        if self.json {
            println!("{}", report.json());
        } else {
            print!("{}", report.text());
        }
    }
}

/// A duration: a number of seconds (`1.5`, `0`), or with a unit (`250ms`, `10s`, `2m`,
/// `1h`, `500us`).
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}`: not a duration (say 10s, 500ms, 1.5)"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "ns" => value / 1e9,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use h, m, s, ms, us, ns)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadFlags,
    }

    fn parse(args: &[&str]) -> Result<LoadFlags, clap::Error> {
        Cli::try_parse_from(std::iter::once("test").chain(args.iter().copied())).map(|c| c.load)
    }

    fn connector() -> Connector {
        Config::plain_connector("127.0.0.1:1")
    }

    #[test]
    fn durations_are_seconds_or_carry_a_unit() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_seconds("0"), Ok(Duration::ZERO));
        assert_eq!(parse_seconds("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_seconds("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_seconds("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_seconds("ten").is_err());
        assert!(parse_seconds("5d").is_err());
        assert!(parse_seconds("-1").is_err());
    }

    #[test]
    fn defaults_measure_ten_seconds_after_one_of_warm_up() {
        let flags = parse(&[]).unwrap();
        let config = flags.config("a:1", connector(), Kind::Unary).unwrap();
        assert!(matches!(config.length, Length::Duration(d) if d == DEFAULT_DURATION));
        assert_eq!(config.warmup, Duration::from_secs(1));
        assert_eq!((config.connections, config.concurrency), (1, 1));
        assert!(config.progress);
    }

    #[test]
    fn total_and_duration_exclude_each_other() {
        assert!(parse(&["--total", "5", "--duration", "1"]).is_err());
        let flags = parse(&["--total", "5"]).unwrap();
        let config = flags.config("a:1", connector(), Kind::Unary).unwrap();
        assert!(matches!(config.length, Length::Total(5)));
    }

    #[test]
    fn impossible_runs_are_refused_with_the_flag_named() {
        let refused = |args: &[&str], kind: Kind| {
            parse(args)
                .unwrap()
                .config("a:1", connector(), kind)
                .err()
                .unwrap_or_else(|| panic!("{args:?} accepted"))
        };
        assert!(refused(&["--connections", "0"], Kind::Unary).contains("--connections"));
        assert!(refused(&["--rate", "0"], Kind::Unary).contains("--rate"));
        assert!(refused(&["--rate", "5", "--concurrency", "0"], Kind::Unary).contains("--rate"));
        assert!(refused(&["--total", "0"], Kind::Unary).contains("--total"));
        assert!(refused(&["--messages", "0"], Kind::ServerStream).contains("--messages"));
        assert!(
            parse(&["--messages", "0"])
                .unwrap()
                .config("a:1", connector(), Kind::Bidi)
                .is_ok()
        );
    }
}
