//! Bearer-token authentication for the demo, both halves as interceptors: the server's
//! [`RequireBearer`] refuses every call without `authorization: Bearer <token>` with
//! `UNAUTHENTICATED`, and the client's [`SendBearer`] adds that header to every call.

use h2grpc::Status;
use h2grpc::client::{self, Outgoing};
use h2grpc::server::{self, CallContext};

/// The metadata key of the credential (HTTP's `Authorization` header, RFC 6750).
pub const AUTHORIZATION: &str = "authorization";

/// The authentication scheme, compared without regard to case (RFC 9110 §11.1).
const SCHEME: &str = "Bearer";

/// A server interceptor that admits only calls bearing `token`.
pub struct RequireBearer {
    token: String,
}

impl RequireBearer {
    /// Require `authorization: Bearer <token>` on every call.
    pub fn new(token: impl Into<String>) -> RequireBearer {
        RequireBearer {
            token: token.into(),
        }
    }

    /// `Ok` when `authorization` (the header's value, if any) bears the token.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), Status> {
        let Some(value) = authorization else {
            return Err(Status::unauthenticated(
                "missing authorization metadata: this server requires \"authorization: Bearer <token>\"",
            ));
        };
        let presented = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(SCHEME))
            .map(|(_, token)| token.trim_start_matches(' '));
        match presented {
            None => Err(Status::unauthenticated(
                "authorization metadata is not a Bearer token (expected \"Bearer <token>\")",
            )),
            Some(token) if same(token.as_bytes(), self.token.as_bytes()) => Ok(()),
            Some(_) => Err(Status::unauthenticated("invalid bearer token")),
        }
    }
}

/// Whether `a == b`, in a time that depends on their lengths only (not on where they
/// differ), so a caller cannot guess the token byte by byte from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

impl server::Interceptor for RequireBearer {
    fn intercept<'a>(&'a self, call: &'a mut CallContext<'_>) -> server::InterceptFuture<'a> {
        let checked = self.check(call.metadata().get(AUTHORIZATION));
        match &checked {
            // The handler has no use for the credential: keep it out of its metadata.
            Ok(()) => call.metadata_mut().remove(AUTHORIZATION),
            Err(status) => tracing::warn!(
                "refused {} from {:?}: {}",
                call.path(),
                call.peer().addr(),
                status.message()
            ),
        }
        Box::pin(std::future::ready(checked))
    }
}

/// A client interceptor that sends `authorization: Bearer <token>` with every call.
pub struct SendBearer {
    value: String,
}

impl SendBearer {
    /// Send `token` with every call.
    pub fn new(token: &str) -> SendBearer {
        SendBearer {
            value: format!("{SCHEME} {token}"),
        }
    }
}

impl client::Interceptor for SendBearer {
    fn before<'a>(&'a self, call: &'a mut Outgoing<'_>) -> client::InterceptFuture<'a> {
        let inserted = call
            .metadata()
            .insert(AUTHORIZATION, &self.value)
            .map_err(|e| Status::invalid_argument(format!("cannot send the token: {e}")));
        Box::pin(std::future::ready(inserted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use h2grpc::Code;

    #[test]
    fn only_the_right_bearer_token_passes() {
        let auth = RequireBearer::new("s3cret");
        assert!(auth.check(Some("Bearer s3cret")).is_ok());
        assert!(auth.check(Some("bearer s3cret")).is_ok());
        for (value, says) in [
            (None, "missing authorization"),
            (Some("Bearer wrong"), "invalid bearer token"),
            (Some("Bearer s3cre"), "invalid bearer token"),
            (Some("Bearer s3crets"), "invalid bearer token"),
            (Some("Basic s3cret"), "not a Bearer token"),
            (Some("s3cret"), "not a Bearer token"),
            (Some("Bearer"), "not a Bearer token"),
        ] {
            let err = auth.check(value).unwrap_err();
            assert_eq!(err.code(), Code::Unauthenticated, "{value:?}");
            assert!(err.message().contains(says), "{value:?}: {err:?}");
        }
    }
}
