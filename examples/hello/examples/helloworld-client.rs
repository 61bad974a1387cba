// The README's client: `cargo run -p hello-h2grpc --example helloworld-client`.
pub mod helloworld {
    include!(concat!(env!("OUT_DIR"), "/helloworld.rs"));
}
use h2grpc::Request;
use helloworld::HelloRequest;
use helloworld::greeter_client::GreeterClient;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A `Channel` underneath: cheap to clone, reconnects, balances; `https://` for TLS.
    let client = GreeterClient::connect("http://127.0.0.1:50051").await?;

    let request = Request::new(HelloRequest {
        name: "Tonic".into(),
    });
    let response = client.say_hello(request).await?;
    println!("RESPONSE={:?}", response.into_inner());

    // A plain message works too; an error is a `Status`: `CODE: message` when printed.
    match client
        .say_hello(HelloRequest {
            name: String::new(),
        })
        .await
    {
        Ok(response) => println!("unexpected: {:?}", response.into_inner()),
        Err(status) => println!("ERROR={status}"),
    }
    Ok(())
}
