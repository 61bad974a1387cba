//! `health`: `grpc.health.v1.Health/Check` through the library's `HealthClient`, with
//! grpc_health_probe's exit statuses and messages.

use std::time::{Duration, Instant};

use h2grpc::health::{HealthClient, ServingStatus, pb::HealthCheckRequest};
use h2grpc::{Channel, Code, Metadata, Request};

use crate::connect::seconds;
use crate::failure::Failure;

/// grpc_health_probe's default -rpc-timeout.
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(1);

/// Checks `service` ("" for the whole server); `Ok` holds the line to print.
pub async fn check(
    channel: &Channel,
    service: &str,
    metadata: Metadata,
    timeout: Option<Duration>,
    verbose: bool,
) -> Result<String, Failure> {
    let timeout = timeout.unwrap_or(DEFAULT_RPC_TIMEOUT);
    let client = HealthClient::new(channel.clone());
    let request = Request::from_parts(
        metadata,
        HealthCheckRequest {
            service: service.to_string(),
        },
        Some(timeout),
    );
    let started = Instant::now();
    let response = client.check(request).await.map_err(|status| {
        let why = match status.code() {
            Code::Unimplemented => {
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health)"
                    .to_string()
            }
            Code::DeadlineExceeded => {
                format!("timeout: health rpc did not complete within {}", seconds(timeout))
            }
            _ => format!(
                "error: health rpc failed: {}",
                crate::failure::go_error(&status)
            ),
        };
        Failure::Other(why)
    })?;
    let status =
        ServingStatus::try_from(response.message().status).unwrap_or(ServingStatus::Unknown);
    if status != ServingStatus::Serving {
        return Err(Failure::Unhealthy(format!(
            "service unhealthy (responded with \"{}\")",
            status.as_str_name()
        )));
    }
    if verbose {
        eprintln!("time elapsed: rpc={}", seconds(started.elapsed()));
    }
    Ok(format!("status: {}", status.as_str_name()))
}
