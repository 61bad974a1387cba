//! Fuzz target: a real client fed arbitrary server bytes.
//! A channel is made over an in-memory duplex (`ChannelBuilder::connect_with`); the fake
//! server sends a valid empty SETTINGS frame, then the input, read by the client in
//! pseudo-randomly sized pieces, and then closes or stays silent. A unary or
//! server-streaming call runs under a deadline. Invariants: no panic; the call ends (a
//! response or a `Status`) by its deadline; on a paused clock, so a wait past it is
//! caught at once.
#![no_main]

mod common;

use std::time::Duration;

use common::{Chopped, HANG_BOUND, runtime};
use h2grpc_demo::pb::Request as DemoRequest;
use h2grpc_demo::pb::grpc_demo_client::GrpcDemoClient;
use h2grpc::{Channel, Request};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An empty SETTINGS frame: what a server sends first.
const SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];
const DEADLINE: Duration = Duration::from_secs(5);

fuzz_target!(|input: &[u8]| {
    let Some((&seed, data)) = input.split_first() else {
        return;
    };
    let close_after = seed & 0x10 != 0;
    let streaming = seed & 0x20 != 0;
    runtime().block_on(async {
        let (client_io, server) = tokio::io::duplex(16 * 1024);
        let (mut from_client, mut to_client) = tokio::io::split(server);
        // Nothing listens on port 1: should the channel try to reconnect, it fails fast.
        let Ok(channel) = Channel::builder("127.0.0.1:1")
            .connect_with(Chopped::new(client_io, seed))
            .await
        else {
            return;
        };
        let client = GrpcDemoClient::new(channel);
        let feed = async {
            let _ = to_client.write_all(SETTINGS).await;
            let _ = to_client.write_all(data).await;
            if close_after {
                let _ = to_client.shutdown().await;
            }
            std::future::pending::<()>().await;
        };
        let drain = async {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = from_client.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
            std::future::pending::<()>().await;
        };
        let request = Request::new(DemoRequest {
            client_id: 1,
            request_data: "fuzz".into(),
        })
        .with_timeout(DEADLINE);
        let call = async {
            if streaming {
                match client.server_streaming_method(request).await {
                    Ok(response) => {
                        let mut messages = response.into_message();
                        while let Ok(Some(_)) = messages.message().await {}
                    }
                    Err(_status) => {}
                }
            } else {
                let _ = client.simple_method(request).await;
            }
        };
        let started = tokio::time::Instant::now();
        tokio::time::timeout(HANG_BOUND, async {
            tokio::select! {
                () = call => {}
                () = feed => unreachable!("the feed never ends"),
                () = drain => unreachable!("the drain never ends"),
            }
        })
        .await
        .expect("the call did not end");
        // A little slack for the connection attempt a dead channel makes.
        assert!(
            started.elapsed() <= DEADLINE + Duration::from_secs(1),
            "call ran past its deadline"
        );
    });
});
