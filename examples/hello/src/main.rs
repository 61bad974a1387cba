//! hello-h2grpc: the smallest complete use of h2grpc, as a downstream crate writes it.
//! Its Cargo.toml names only `h2grpc` and `tokio` (no `prost`: the generated code uses the
//! one h2grpc re-exports). It serves `hello.Greeter` on a port the OS picks, calls it once
//! and prints the reply.
//!
//!     cargo run -p hello-h2grpc

/// The code generated from `proto/hello.proto` (package `hello`).
pub mod hello {
    include!(concat!(env!("OUT_DIR"), "/hello.rs"));
}

use h2grpc::{Request, Response, Server, Status};
use hello::greeter_client::GreeterClient;
use hello::greeter_server::{Greeter, GreeterServer};
use hello::{HelloReply, HelloRequest};

struct Hello;

impl Greeter for Hello {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = &request.message().name;
        Ok(Response::new(HelloReply {
            message: format!("Hello, {name}!"),
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listening = Server::new()
        .add_service(GreeterServer::new(Hello))
        .bind("127.0.0.1:0")
        .await?;
    let addr = listening.local_addrs()[0];
    tokio::spawn(listening.serve_with_shutdown(std::future::pending()));

    let client = GreeterClient::connect(addr.to_string()).await?;
    let reply = client
        .say_hello(HelloRequest {
            name: "world".into(),
        })
        .await?;
    println!("{}", reply.message().message);
    Ok(())
}
