//! A scripted h2 server (the `h2` crate's, no gRPC library behind it) whose every stream
//! gets what the test says, for checking how the client reads answers: statuses, missing
//! trailers, resets, refused streams.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use crate::demo::grpc_demo_client::GrpcDemoClient;

/// A scripted h2 server: `answer` decides what each stream gets.
pub async fn scripted(
    answer: impl Fn(h2::server::SendResponse<Bytes>) + Send + Sync + 'static,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(socket).await else {
                    return;
                };
                while let Some(Ok((request, respond))) = conn.accept().await {
                    let mut body = request.into_body();
                    while let Some(Ok(chunk)) = body.data().await {
                        let _ = body.flow_control().release_capacity(chunk.len());
                    }
                    answer(respond);
                }
            });
        }
    });
    addr
}

/// Response headers of a gRPC answer (status 200, `content-type: application/grpc`).
pub fn grpc_response() -> http::Response<()> {
    http::Response::builder()
        .header("content-type", "application/grpc")
        .body(())
        .unwrap()
}

/// A header map of `pairs` (trailers, usually).
pub fn trailers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (k, v) in pairs {
        map.insert(*k, v.parse().unwrap());
    }
    map
}

/// One `SimpleMethod` call (request `x`) on a fresh channel to `addr`.
pub async fn simple_call(
    addr: SocketAddr,
) -> Result<h2grpc::Response<crate::demo::Response>, h2grpc::Status> {
    GrpcDemoClient::connect(addr.to_string())
        .await
        .unwrap()
        .simple_method(crate::service::req("x"))
        .await
}
