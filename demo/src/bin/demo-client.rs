//! demo-client: the four calls of gRPC's Python example "data_transmission",
//! behaving like its `client.py`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use futures_util::stream;
use h2grpc::client::LoadBalancing;
use h2grpc::{ClientTls, Status};
use h2grpc_demo::pb::Request as DemoRequest;
use h2grpc_demo::pb::grpc_demo_client::GrpcDemoClient;

/// Call demo.GRPCDemo like the official data_transmission client.py.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Target: host:port, dns:[//]host[:port], ipv4:addr[:port],...,
    /// ipv6:[addr]:port,..., unix:path or unix-abstract:name.
    #[arg(long, default_value = "localhost:23333")]
    addr: String,
    /// How calls are spread over the addresses the target names.
    #[arg(long, value_enum, default_value_t = Lb::PickFirst)]
    lb: Lb,
    /// Make the unary call this many times (printing each reply), then a count per server.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Client id put in every request.
    #[arg(long, default_value_t = 1)]
    client_id: i64,
    /// Milliseconds between the bidirectional call's requests.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Seconds to wait for the server to accept connections before the first call (so
    /// `cargo run --bin demo-server & cargo run --bin demo-client` does not race a cold
    /// build); 0 calls at once.
    #[arg(long, default_value_t = 30)]
    wait_secs: u64,
    /// Call over TLS, trusting the system's root certificates (or --tls-ca).
    #[arg(long)]
    tls: bool,
    /// Call over TLS, trusting only this CA bundle (PEM).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Verify the server under this name (and send it as SNI), e.g. when --addr is an IP.
    #[arg(long)]
    tls_server_name: Option<String>,
    /// Present this client certificate chain (PEM) for mutual TLS; needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Send `authorization: Bearer TOKEN` with every call.
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
}

/// `--lb`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Lb {
    /// One connection, to the first address that answers.
    #[value(name = "pick_first")]
    PickFirst,
    /// A connection to every address, calls in turn.
    #[value(name = "round_robin")]
    RoundRobin,
}

impl From<Lb> for LoadBalancing {
    fn from(lb: Lb) -> LoadBalancing {
        match lb {
            Lb::PickFirst => LoadBalancing::PICK_FIRST,
            Lb::RoundRobin => LoadBalancing::RoundRobin,
        }
    }
}

/// The channel's TLS from the flags, if any.
fn tls(args: &Args) -> Result<Option<ClientTls>, h2grpc::Error> {
    let mut tls = match (&args.tls_ca, args.tls || args.tls_cert.is_some()) {
        (Some(ca), _) => ClientTls::with_ca_file(ca)?,
        (None, true) => ClientTls::with_native_roots()?,
        (None, false) => return Ok(None),
    };
    if let Some(name) = &args.tls_server_name {
        tls = tls.server_name(name.clone());
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        tls = tls.identity_files(cert, key)?;
    }
    Ok(Some(tls))
}

/// A channel to `addr`, connected: retried every 100 ms for up to `wait`.
async fn connect(
    addr: &str,
    lb: Lb,
    wait: Duration,
    tls: Option<ClientTls>,
    token: Option<&str>,
) -> Result<h2grpc::Channel, Status> {
    let give_up = tokio::time::Instant::now() + wait;
    loop {
        let mut builder = h2grpc::Channel::builder(addr).load_balancing(lb.into());
        if let Some(tls) = &tls {
            builder = builder.tls(tls.clone());
        }
        if let Some(token) = token {
            builder = builder.interceptor(h2grpc_demo::auth::SendBearer::new(token));
        }
        match builder.connect().await {
            Ok(channel) => return Ok(channel),
            Err(e) if tokio::time::Instant::now() >= give_up => {
                return Err(Status::unavailable(e.to_string()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn request(client_id: i64, text: String) -> DemoRequest {
    DemoRequest {
        client_id,
        request_data: text,
    }
}

async fn run(args: &Args) -> Result<(), Status> {
    let wait = Duration::from_secs(args.wait_secs);
    let tls = tls(args).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let client =
        GrpcDemoClient::new(connect(&args.addr, args.lb, wait, tls, args.token.as_deref()).await?);
    let id = args.client_id;

    println!("--------------Call SimpleMethod Begin--------------");
    let mut per_server = std::collections::BTreeMap::<i64, u32>::new();
    for _ in 0..args.repeat {
        let response = client
            .simple_method(request(id, "called by Rust client".into()))
            .await?
            .into_message();
        println!(
            "resp from server({}), the message={}",
            response.server_id, response.response_data
        );
        *per_server.entry(response.server_id).or_default() += 1;
    }
    if args.repeat > 1 {
        let counts: Vec<String> = per_server
            .iter()
            .map(|(server, n)| format!("server({server}): {n}"))
            .collect();
        println!("calls per server: {}", counts.join(", "));
    }
    println!("--------------Call SimpleMethod Over---------------");

    println!("--------------Call ClientStreamingMethod Begin--------------");
    let requests = stream::iter(
        (0..5).map(move |i| request(id, format!("called by Rust client, message:{i}"))),
    );
    let response = client
        .client_streaming_method(requests)
        .await?
        .into_message();
    println!(
        "resp from server({}), the message={}",
        response.server_id, response.response_data
    );
    println!("--------------Call ClientStreamingMethod Over---------------");

    println!("--------------Call ServerStreamingMethod Begin--------------");
    let mut responses = client
        .server_streaming_method(request(id, "called by Rust client".into()))
        .await?
        .into_message();
    while let Some(response) = responses.message().await? {
        println!(
            "recv from server({}), message={}",
            response.server_id, response.response_data
        );
    }
    println!("--------------Call ServerStreamingMethod Over---------------");

    println!("--------------Call BidirectionalStreamingMethod Begin---------------");
    // Five requests, each followed by a pause, as client.py's generator does.
    let interval = Duration::from_millis(args.interval_ms);
    let requests = stream::unfold(0, move |i| async move {
        if i > 0 {
            tokio::time::sleep(interval).await;
        }
        (i < 5).then(|| {
            (
                request(id, format!("called by Rust client, message: {i}")),
                i + 1,
            )
        })
    });
    let mut responses = client
        .bidirectional_streaming_method(requests)
        .await?
        .into_message();
    while let Some(response) = responses.message().await? {
        println!(
            "recv from server({}), message={}",
            response.server_id, response.response_data
        );
    }
    println!("--------------Call BidirectionalStreamingMethod Over---------------");
    Ok(())
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(status) = run(&args).await {
        eprintln!("demo-client: call failed: {status}");
        std::process::exit(1);
    }
}
