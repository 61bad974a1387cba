//! hello-client: calls each method of `hello.Greeter` and prints what comes back, then
//! makes a call the server refuses and prints the error with its detail.
//!
//! ```text
//! hello-client [ADDR]        ADDR defaults to 127.0.0.1:50051
//! ```

use std::time::Duration;

use futures_util::stream;
use h2grpc::Request;
use h2grpc::status::details::BadRequest;
use hello_h2grpc::hello::greeter_client::GreeterClient;
use hello_h2grpc::hello::{HelloRequest, RepeatRequest};

const DEFAULT_ADDR: &str = "127.0.0.1:50051";

fn hello(name: &str) -> HelloRequest {
    HelloRequest { name: name.into() }
}

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1);
    if let Err(e) = run(addr.as_deref().unwrap_or(DEFAULT_ADDR)).await {
        eprintln!("hello-client: {e}");
        std::process::exit(1);
    }
}

async fn run(addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    // One connection (a `Channel`) carries every call; clones of the client share it.
    let client = GreeterClient::connect(addr).await?;

    // Unary. A call takes a message, or a `Request` to add metadata or a deadline.
    let request = Request::new(hello("Ada")).with_timeout(Duration::from_secs(5));
    let reply = client.say_hello(request).await?;
    println!("SayHello: {}", reply.message().message);

    // Server streaming: read replies until `message()` gives `Ok(None)`.
    let request = RepeatRequest {
        name: "Grace".into(),
        times: 3,
    };
    let mut replies = client.say_hello_repeatedly(request).await?.into_message();
    while let Some(reply) = replies.message().await? {
        println!("SayHelloRepeatedly: {}", reply.message);
    }

    // Client streaming: the requests are any `Stream`; the call ends when it does.
    let names = stream::iter([hello("Ada"), hello("Grace"), hello("Barbara")]);
    let reply = client.say_hello_to_all(names).await?;
    println!("SayHelloToAll: {}", reply.message().message);

    // Bidirectional streaming: requests go out as the stream yields them while replies
    // are read as they arrive.
    let names = stream::iter([hello("Ken"), hello("Dennis")]);
    let mut replies = client.chat(names).await?.into_message();
    while let Some(reply) = replies.message().await? {
        println!("Chat: {}", reply.message);
    }

    // A refused call: the error is a `Status`, with a code, a message and typed details.
    // It displays as `CODE: message (details: their types)`.
    match client.say_hello(hello("")).await {
        Ok(reply) => return Err(format!("an empty name was accepted: {reply:?}").into()),
        Err(status) => {
            println!("SayHello(\"\"): {status}");
            if let Some(bad_request) = status.detail::<BadRequest>() {
                for violation in &bad_request.field_violations {
                    println!("  field {}: {}", violation.field, violation.description);
                }
            }
        }
    }
    Ok(())
}
