//! `Error`: what can go wrong outside a call (binding, connecting, resolving).
//! Inside a call every failure is a [`Status`](crate::Status).

use std::fmt;
use std::io;

/// A transport-level error: binding a server, resolving or connecting a channel.
///
/// Printed without layers of prefixes: an I/O error reads as the OS says it, a failed
/// connection names the target and the last attempt's error once.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A socket operation failed.
    Io(io::Error),
    /// The HTTP/2 handshake or connection failed.
    H2(h2::Error),
    /// An address did not parse or resolved to nothing.
    Address(String),
    /// Connecting to the target (named) failed.
    Connect(String, Box<Error>),
    /// No connection to the target could be made: the last attempt's error, as text
    /// (the channel keeps it for the calls it fails `UNAVAILABLE`).
    Unreachable(String),
    /// A certificate, a key or a TLS handshake was refused.
    Tls(String),
    /// A channel's service config did not parse or holds an invalid value.
    ServiceConfig(ServiceConfigError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::H2(e) => write!(f, "HTTP/2: {e}"),
            Error::Address(a) => write!(f, "bad address: {a}"),
            Error::Connect(target, e) => write!(f, "cannot reach {target}: {e}"),
            Error::Unreachable(why) => f.write_str(why),
            Error::Tls(e) => write!(f, "TLS: {e}"),
            // It names the service config itself when it has no path to name.
            Error::ServiceConfig(e) if e.path.is_empty() => write!(f, "{e}"),
            Error::ServiceConfig(e) => write!(f, "service config: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::H2(e) => Some(e),
            Error::Address(_) | Error::Tls(_) | Error::Unreachable(_) => None,
            Error::Connect(_, e) => Some(e),
            Error::ServiceConfig(e) => Some(e),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<h2::Error> for Error {
    fn from(e: h2::Error) -> Error {
        Error::H2(e)
    }
}

impl From<ServiceConfigError> for Error {
    fn from(e: ServiceConfigError) -> Error {
        Error::ServiceConfig(e)
    }
}

/// A service config that did not parse or is not valid: where (a JSON path such as
/// `methodConfig[0].retryPolicy.maxAttempts`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfigError {
    pub(crate) path: String,
    pub(crate) message: String,
}

impl ServiceConfigError {
    /// The JSON path of the bad value; empty for the document itself (bad JSON, say).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong with the value.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ServiceConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "service config: {}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ServiceConfigError {}
