//! hello-server: serves `hello.Greeter`, with the standard health and reflection services
//! beside it, until Ctrl-C or SIGTERM.
//!
//! ```text
//! hello-server [ADDR]        ADDR defaults to 127.0.0.1:50051; port 0 lets the OS pick one
//! ```
//!
//! Its first line of output is `listening on <address>`, with the port it got.

use futures_util::{StreamExt, stream};
use h2grpc::health::HealthReporter;
use h2grpc::reflection::ReflectionService;
use h2grpc::status::details::BadRequest;
use h2grpc::{Code, Request, Response, ResponseStream, Server, Status, Streaming};
use hello_h2grpc::hello::greeter_server::{Greeter, GreeterServer, SERVICE_NAME};
use hello_h2grpc::hello::{FILE_DESCRIPTOR_SET, HelloReply, HelloRequest, RepeatRequest};

const DEFAULT_ADDR: &str = "127.0.0.1:50051";
/// The most greetings `SayHelloRepeatedly` sends.
const MAX_TIMES: u32 = 10;

/// Refuses bad input the way gRPC APIs do: INVALID_ARGUMENT, and a `BadRequest` detail
/// naming the field, which a client reads back with `status.detail::<BadRequest>()`.
fn bad_field(field: &str, description: String) -> Status {
    Status::with_details(
        Code::InvalidArgument,
        format!("invalid {field}"),
        [BadRequest::with_violation(field, description).into()],
    )
}

fn check_name(name: &str) -> Result<(), Status> {
    if name.is_empty() {
        return Err(bad_field("name", "must not be empty".into()));
    }
    Ok(())
}

fn greeting(name: &str) -> Result<HelloReply, Status> {
    check_name(name)?;
    Ok(HelloReply {
        message: format!("Hello, {name}!"),
    })
}

/// The service: the generated trait `Greeter` has one `async fn` per method. Each returns
/// a `Response` or a `Status`; a `Status` is what the client's call fails with.
struct Hello;

impl Greeter for Hello {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        greeting(&request.message().name).map(Response::new)
    }

    async fn say_hello_repeatedly(
        &self,
        request: Request<RepeatRequest>,
    ) -> Result<Response<ResponseStream<HelloReply>>, Status> {
        let RepeatRequest { name, times } = request.into_message();
        check_name(&name)?;
        if !(1..=MAX_TIMES).contains(&times) {
            return Err(bad_field("times", format!("must be from 1 to {MAX_TIMES}")));
        }
        // A streaming response is any stream of `Result<message, Status>`, boxed.
        let replies = (1..=times).map(move |i| {
            Ok(HelloReply {
                message: format!("Hello #{i}, {name}!"),
            })
        });
        Ok(Response::new(Box::pin(stream::iter(replies))))
    }

    async fn say_hello_to_all(
        &self,
        request: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<HelloReply>, Status> {
        let mut requests = request.into_message();
        let mut names = Vec::new();
        // `message()` gives `Ok(None)` once the client has sent its last request.
        while let Some(request) = requests.message().await? {
            check_name(&request.name)?;
            names.push(request.name);
        }
        if names.is_empty() {
            return Err(Status::invalid_argument("no names were sent"));
        }
        Ok(Response::new(HelloReply {
            message: format!("Hello, {}!", names.join(" and ")),
        }))
    }

    async fn chat(
        &self,
        request: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<ResponseStream<HelloReply>>, Status> {
        // A reply to each request as it arrives: `Streaming` is a `Stream`, so map it. An
        // `Err` item (a bad name, or the client's side failing) ends the call with it.
        let replies = request
            .into_message()
            .map(|request| request.and_then(|request| greeting(&request.name)));
        Ok(Response::new(Box::pin(replies)))
    }
}

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1);
    if let Err(e) = serve(addr.as_deref().unwrap_or(DEFAULT_ADDR)).await {
        eprintln!("hello-server: {e}");
        std::process::exit(1);
    }
}

async fn serve(addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    // Health (grpc.health.v1): the whole server ("") is SERVING from the start; report our
    // service by name too. On shutdown every service turns NOT_SERVING.
    let health = HealthReporter::new();
    health.set_serving(SERVICE_NAME);
    // Reflection (v1 and v1alpha) over our descriptors, so that tools (grpcurl,
    // `h2grpc list`) can list and call the services without the .proto files. Health's
    // descriptors are built in: it is listed because the server serves it.
    let reflection = ReflectionService::builder()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build()?;

    let listening = Server::new()
        .add_service(GreeterServer::new(Hello))
        .add_service(health.service())
        .add_service(reflection)
        .bind(addr)
        .await?;
    // With port 0 the bound address is the only way to learn the port.
    let addrs: Vec<String> = listening
        .local_addrs()
        .iter()
        .map(|a| a.to_string())
        .collect();
    println!("listening on {}", addrs.join(", "));
    // Ctrl-C or SIGTERM (feature `signal`) starts a graceful shutdown: no new calls, the
    // calls in flight get to finish.
    listening
        .serve_with_shutdown(h2grpc::server::shutdown_signal())
        .await?;
    Ok(())
}
