//! PLACEHOLDER (the json branch replaces it).
#![allow(dead_code)]
use http::StatusCode;

use super::json::Descriptors;
use crate::metadata::Metadata;
use crate::status::{Code, Status};

pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

pub(crate) fn http_status(code: Code) -> StatusCode {
    let n = match code {
        Code::Ok => 200,
        Code::Cancelled => 499,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::DeadlineExceeded => 504,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::PermissionDenied => 403,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::Unauthenticated => 401,
        _ => 500,
    };
    StatusCode::from_u16(n).unwrap()
}

pub(crate) fn error_json(status: &Status, _descriptors: Option<&Descriptors>) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!({"code": code_name(status.code()), "message": status.message()}),
    )
    .unwrap()
}

pub(crate) fn end_stream_json(status: &Status, trailers: &Metadata) -> Vec<u8> {
    let _ = trailers;
    if status.is_ok() {
        return b"{}".to_vec();
    }
    let mut out = b"{\"error\":".to_vec();
    out.extend(error_json(status, None));
    out.push(b'}');
    out
}
