//! demo-server: the `demo.GRPCDemo` service of gRPC's Python example
//! "data_transmission", behaving like its `server.py` (our server named in the replies).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use futures_util::StreamExt;
use futures_util::stream;
use h2grpc::health::HealthReporter;
use h2grpc::reflection::ReflectionService;
use h2grpc::server::{Cors, http_fn};
use h2grpc::status::details::BadRequest;
use h2grpc::{Request, Response, ResponseStream, Server, ServerTls, Status, Streaming};
use h2grpc_demo::pb::grpc_demo_server::{GrpcDemo, GrpcDemoServer};
use h2grpc_demo::pb::{Request as DemoRequest, Response as DemoResponse};
use tracing::info;

/// Serve demo.GRPCDemo like the official data_transmission server.py.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; every address the host resolves to is bound.
    #[arg(long, default_value = "localhost:23333")]
    addr: String,
    /// Server id put in every response.
    #[arg(long, default_value_t = 1)]
    server_id: i64,
    /// Do not print a line per message (for benchmarks).
    #[arg(long, short)]
    quiet: bool,
    /// Seconds in-flight calls get to finish after Ctrl-C or SIGTERM.
    #[arg(long, default_value_t = 10)]
    grace_secs: u64,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Require `authorization: Bearer TOKEN` on every call (UNAUTHENTICATED otherwise).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Also serve the demo page at `/` (it calls the service from the browser), allow
    /// cross-origin calls from any origin, and let SimpleMethod show errors and deadlines:
    /// request_data `error` fails with INVALID_ARGUMENT and a BadRequest detail, `sleep:N`
    /// answers after N ms (at most 10 s). gRPC-Web and Connect are served either way.
    #[arg(long)]
    web: bool,
}

/// The demo page, built by demo/web/build.sh (connect-web, bundled by esbuild).
const PAGE_HTML: &[u8] = include_bytes!("../../web/dist/index.html");
const PAGE_JS: &[u8] = include_bytes!("../../web/dist/app.js");

/// The page's files; anything else is 404.
async fn page(request: http::Request<()>) -> http::Response<bytes::Bytes> {
    let (content_type, body) = match (request.method(), request.uri().path()) {
        (&http::Method::GET, "/" | "/index.html") => ("text/html; charset=utf-8", PAGE_HTML),
        (&http::Method::GET, "/app.js") => ("text/javascript; charset=utf-8", PAGE_JS),
        _ => ("text/plain; charset=utf-8", &b"not found\n"[..]),
    };
    let mut response = http::Response::new(bytes::Bytes::from_static(body));
    if body.as_ptr() != PAGE_HTML.as_ptr() && body.as_ptr() != PAGE_JS.as_ptr() {
        *response.status_mut() = http::StatusCode::NOT_FOUND;
    }
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

/// The server's TLS from the flags, if any.
fn tls(args: &Args) -> Result<Option<ServerTls>, h2grpc::Error> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let tls = ServerTls::from_pem_files(cert, key)?;
    match &args.tls_client_ca {
        None => Ok(Some(tls)),
        Some(ca) => {
            let ca = std::fs::read(ca).map_err(h2grpc::Error::Io)?;
            tls.require_client_cert(&ca).map(Some)
        }
    }
}

struct Demo {
    server_id: i64,
    /// `--web`: SimpleMethod's `error` and `sleep:N` requests.
    web: bool,
}

impl Demo {
    fn reply(&self, text: String) -> DemoResponse {
        DemoResponse {
            server_id: self.server_id,
            response_data: text,
        }
    }
}

impl GrpcDemo for Demo {
    async fn simple_method(
        &self,
        request: Request<DemoRequest>,
    ) -> Result<Response<DemoResponse>, Status> {
        let r = request.message();
        info!(
            "SimpleMethod called by client({}) the message: {}",
            r.client_id, r.request_data
        );
        if self.web && r.request_data == "error" {
            return Err(
                Status::invalid_argument("request_data \"error\" makes SimpleMethod fail")
                    .with_detail(BadRequest::with_violation(
                        "request_data",
                        "the value \"error\" asks for an error",
                    )),
            );
        }
        if self.web
            && let Some(ms) = r.request_data.strip_prefix("sleep:")
        {
            let ms = ms.parse::<u64>().unwrap_or(0).min(10_000);
            // The call's deadline and the client's cancel end the call (the server
            // supervises the handler); this only waits.
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Ok(Response::new(
            self.reply("Rust server SimpleMethod Ok!!!!".into()),
        ))
    }

    async fn client_streaming_method(
        &self,
        request: Request<Streaming<DemoRequest>>,
    ) -> Result<Response<DemoResponse>, Status> {
        info!("ClientStreamingMethod called by client...");
        let mut requests = request.into_message();
        while let Some(r) = requests.message().await? {
            info!(
                "recv from client({}), message= {}",
                r.client_id, r.request_data
            );
        }
        Ok(Response::new(
            self.reply("Rust server ClientStreamingMethod ok".into()),
        ))
    }

    async fn server_streaming_method(
        &self,
        request: Request<DemoRequest>,
    ) -> Result<Response<ResponseStream<DemoResponse>>, Status> {
        let r = request.message();
        info!(
            "ServerStreamingMethod called by client({}), message= {}",
            r.client_id, r.request_data
        );
        let responses: Vec<_> = (0..5)
            .map(|i| Ok(self.reply(format!("send by Rust server, message={i}"))))
            .collect();
        Ok(Response::new(Box::pin(stream::iter(responses))))
    }

    async fn bidirectional_streaming_method(
        &self,
        request: Request<Streaming<DemoRequest>>,
    ) -> Result<Response<ResponseStream<DemoResponse>>, Status> {
        info!("BidirectionalStreamingMethod called by client...");
        // Read the requests on the side, as server.py does with a thread.
        let mut requests = request.into_message();
        let reader = tokio::spawn(async move {
            while let Ok(Some(r)) = requests.message().await {
                info!(
                    "recv from client({}), message= {}",
                    r.client_id, r.request_data
                );
            }
        });
        let responses: Vec<_> = (0..5)
            .map(|i| Ok(self.reply(format!("send by Rust server, message= {i}"))))
            .collect();
        // Then end the call once the client has finished sending, like server.py's join.
        let end = stream::once(async move {
            let _ = reader.await;
        })
        .filter_map(|()| async { None });
        Ok(Response::new(Box::pin(stream::iter(responses).chain(end))))
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_max_level(if args.quiet {
            tracing::Level::WARN
        } else {
            tracing::Level::INFO
        })
        .without_time()
        .with_target(false)
        .with_level(false)
        .init();
    // Health: the whole server and demo.GRPCDemo SERVING (NOT_SERVING once draining);
    // reflection (v1 and v1alpha) of both, for grpcurl and grpc_cli: health's descriptors are
    // built in, and it is listed because the server serves it.
    let health = HealthReporter::new();
    health.set_serving(h2grpc_demo::pb::grpc_demo_server::SERVICE_NAME);
    let reflection = ReflectionService::builder()
        .register_encoded_file_descriptor_set(h2grpc_demo::pb::FILE_DESCRIPTOR_SET)
        .build()
        .expect("the generated descriptor sets decode");
    let mut server = Server::new()
        .grace_period(Duration::from_secs(args.grace_secs))
        .add_service(GrpcDemoServer::new(Demo {
            server_id: args.server_id,
            web: args.web,
        }))
        .add_service(health.service())
        .add_service(reflection);
    if args.web {
        server = server
            .http_handler(http_fn(page))
            .cors(Cors::allow_any_origin());
    }
    if let Some(token) = &args.token {
        server = server.interceptor(h2grpc_demo::auth::RequireBearer::new(token.clone()));
    }
    match tls(&args) {
        Ok(Some(tls)) => server = server.tls(tls),
        Ok(None) => {}
        Err(e) => {
            eprintln!("demo-server: {e}");
            std::process::exit(2);
        }
    }
    let listening = match server.bind(&args.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo-server: cannot listen on {}: {e}", args.addr);
            std::process::exit(1);
        }
    };
    let addrs: Vec<String> = listening
        .local_addrs()
        .iter()
        .map(|a| a.to_string())
        .collect();
    println!(
        "------------------start Rust GRPC server on {}",
        addrs.join(", ")
    );
    if let Err(e) = listening
        .serve_with_shutdown(h2grpc::server::shutdown_signal())
        .await
    {
        eprintln!("demo-server: {e}");
        std::process::exit(1);
    }
}
