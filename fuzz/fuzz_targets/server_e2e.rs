//! Fuzz target: a real server fed arbitrary client bytes.
//! After a valid client preface, the input is written into an in-memory duplex that the
//! server reads in pseudo-randomly sized pieces; its output is drained, and the client
//! side closes (at once, or once the server has answered what it could). Invariants: no panic; the connection ends within a bound (on a paused
//! clock, so a wait with nothing left to happen is caught at once); the server writes
//! at most a bounded multiple of what it was sent (no amplification), and memory stays
//! under libFuzzer's limits.
#![no_main]

mod common;

use std::sync::LazyLock;
use std::time::Duration;

use common::{Chopped, HANG_BOUND, PREFACE, Trivial, runtime};
use h2grpc::Server;
use h2grpc_demo::pb::grpc_demo_server::GrpcDemoServer;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static SERVER: LazyLock<Server> =
    LazyLock::new(|| Server::new().add_service(GrpcDemoServer::new(Trivial)));

/// Output allowed per input byte, on top of a fixed allowance for settings, window
/// updates and a few answers. A request is at least a 9-byte HEADERS frame and its answer
/// at most a few hundred bytes, so honest traffic stays far below this.
const OUTPUT_PER_INPUT_BYTE: usize = 100;
const OUTPUT_ALLOWANCE: usize = 1 << 20;

fuzz_target!(|input: &[u8]| {
    let Some((&seed, data)) = input.split_first() else {
        return;
    };
    let linger = seed & 0x04 != 0;
    runtime().block_on(async {
        let (client, server_io) = tokio::io::duplex(16 * 1024);
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let serve = SERVER.serve_io(Chopped::new(server_io, seed));
        let feed = async {
            // The server may close first: a failed write is the end of the feed.
            let _ = to_server.write_all(PREFACE).await;
            let _ = to_server.write_all(data).await;
            if linger {
                // Let the server answer before the close (the clock moves once all is idle).
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let _ = to_server.shutdown().await;
        };
        let drain = async {
            let mut buf = vec![0u8; 16 * 1024];
            let mut total = 0usize;
            while let Ok(n) = from_server.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                total += n;
            }
            total
        };
        let ((), (), written) =
            tokio::time::timeout(HANG_BOUND, async { tokio::join!(serve, feed, drain) })
                .await
                .expect("the server did not finish the connection after the client closed it");
        let limit = OUTPUT_ALLOWANCE + OUTPUT_PER_INPUT_BYTE * input.len();
        assert!(
            written <= limit,
            "{written} bytes written for {} bytes read",
            input.len()
        );
    });
});
