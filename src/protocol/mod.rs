//! The protocols beside gRPC (Connect, gRPC-Web): their JSON and their error bodies.

pub(crate) mod connect_error;
pub(crate) mod json;
