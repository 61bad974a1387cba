// The README's server: `cargo run -p hello-h2grpc --example helloworld-server`.
pub mod helloworld {
    include!(concat!(env!("OUT_DIR"), "/helloworld.rs"));
}
use h2grpc::{Request, Response, Server, Status};
use helloworld::greeter_server::{Greeter, GreeterServer};
use helloworld::{HelloReply, HelloRequest};

struct MyGreeter;

impl Greeter for MyGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = request.into_inner().name;
        if name.is_empty() {
            return Err(Status::invalid_argument("name must not be empty"));
        }
        Ok(Response::new(HelloReply {
            message: format!("Hello {name}!"),
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = "127.0.0.1:50051"; // or a SocketAddr: "[::1]:50051".parse::<SocketAddr>()?
    let health = h2grpc::health::HealthReporter::new();
    let reflection = h2grpc::reflection::ReflectionService::builder()
        .register_encoded_file_descriptor_set(helloworld::FILE_DESCRIPTOR_SET)
        .build()?;
    println!("GreeterServer listening on {addr}");
    Server::new()
        .add_service(GreeterServer::new(MyGreeter))
        .add_service(health.service()) // grpc.health.v1.Health
        .add_service(reflection) // grpc.reflection.v1 and v1alpha
        .serve_with_shutdown(addr, h2grpc::server::shutdown_signal()) // Ctrl-C or SIGTERM
        .await?;
    Ok(())
}
