//! How a command fails: the text on stderr and the exit status. `list`, `describe` and
//! `call` print an RPC error as one line, `ERROR: code = <Name>, message = <msg>` (the
//! issue's contract, with grpc-go's code names), and exit with grpcurl's 64 + code;
//! `health` keeps grpc_health_probe's messages and exit statuses.

use h2grpc::{Code, Status};

/// grpcurl adds this to a status code so that 1 and 2 stay free for its own errors.
pub const STATUS_CODE_OFFSET: i32 = 64;

/// grpc_health_probe's exit statuses (0 is SERVING).
pub mod health_exit {
    pub const INVALID_ARGUMENTS: i32 = 1;
    pub const CONNECTION_FAILURE: i32 = 2;
    pub const RPC_FAILURE: i32 = 3;
    pub const UNHEALTHY: i32 = 4;
}

#[derive(Debug)]
pub enum Failure {
    /// Bad arguments.
    Usage(String),
    /// No connection to the target.
    Connect(String),
    /// The RPC ended with a status other than OK.
    Rpc(Status),
    /// Health: the RPC answered, but not SERVING.
    Unhealthy(String),
    /// Reflection does not know a symbol or file (its error response).
    NotFound(String),
    /// Anything else: descriptors, input, reflection.
    Other(String),
}

impl Failure {
    /// The exit status of `list`, `describe` and `call`.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Rpc(status) => STATUS_CODE_OFFSET + status.code().as_i32(),
            _ => 1,
        }
    }

    /// The exit status of `health`.
    pub fn health_exit_code(&self) -> i32 {
        match self {
            Failure::Usage(_) => health_exit::INVALID_ARGUMENTS,
            Failure::Connect(_) => health_exit::CONNECTION_FAILURE,
            Failure::Rpc(_) | Failure::NotFound(_) | Failure::Other(_) => health_exit::RPC_FAILURE,
            Failure::Unhealthy(_) => health_exit::UNHEALTHY,
        }
    }

    /// What goes to stderr.
    pub fn report(&self) -> String {
        match self {
            Failure::Rpc(status) => rpc_error(status),
            Failure::Usage(m) => format!("{m}\nTry 'h2grpc --help' for more information."),
            Failure::Connect(m)
            | Failure::Unhealthy(m)
            | Failure::NotFound(m)
            | Failure::Other(m) => m.clone(),
        }
    }
}

/// An RPC error on one line: `ERROR: code = DeadlineExceeded, message = deadline exceeded`.
/// Line breaks in the server's message are escaped (`\n`, `\r`) so that the error stays
/// one line.
pub fn rpc_error(status: &Status) -> String {
    format!(
        "ERROR: code = {}, message = {}",
        go_name(status.code()),
        one_line(status.message())
    )
}

/// `text` with backslash, CR and LF escaped, so that it cannot span lines.
fn one_line(text: &str) -> String {
    if !text.contains(['\n', '\r']) {
        return text.to_string();
    }
    text.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

/// A status as grpc-go's `status.Error` prints it (what grpc_health_probe and grpcurl
/// show inside their own messages): `rpc error: code = NotFound desc = unknown service`.
pub fn go_error(status: &Status) -> String {
    format!(
        "rpc error: code = {} desc = {}",
        go_name(status.code()),
        status.message()
    )
}

/// The names grpc-go's `codes.Code.String()` gives, which grpcurl prints.
pub fn go_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_errors_print_on_one_line_and_exit_as_grpcurl() {
        let f = Failure::Rpc(Status::new(Code::DeadlineExceeded, "deadline exceeded"));
        assert_eq!(f.exit_code(), 68);
        assert_eq!(f.health_exit_code(), 3);
        assert_eq!(
            f.report(),
            "ERROR: code = DeadlineExceeded, message = deadline exceeded"
        );
        let f = Failure::Rpc(Status::new(Code::Unimplemented, ""));
        assert_eq!(f.exit_code(), 76);
        assert_eq!(f.report(), "ERROR: code = Unimplemented, message = ");
    }

    #[test]
    fn line_breaks_in_a_message_are_escaped() {
        let f = Failure::Rpc(Status::new(Code::Internal, "a\nb\r\\c"));
        assert_eq!(f.exit_code(), 77);
        assert_eq!(
            f.report(),
            "ERROR: code = Internal, message = a\\nb\\r\\\\c"
        );
        assert_eq!(f.report().lines().count(), 1);
        // A message without line breaks is printed as it is, backslashes included.
        let f = Failure::Rpc(Status::new(Code::Internal, "C:\\x"));
        assert_eq!(f.report(), "ERROR: code = Internal, message = C:\\x");
    }

    #[test]
    fn every_code_has_a_go_name() {
        for n in 0..=16 {
            let name = go_name(Code::from_i32(n));
            assert!(!name.is_empty() && !name.contains('_'));
        }
    }
}
