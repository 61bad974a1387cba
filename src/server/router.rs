//! The router: `:path` `/package.Service/Method` to the service that owns it.

use std::sync::Arc;

use super::call::{Call, CallFuture};
use crate::status::Status;

/// A gRPC service as the server sees it: a name and a way to start each of its methods.
/// Generated code implements it (`GrpcDemoServer<T>` for a trait `GrpcDemo`).
pub trait Service: Send + Sync + 'static {
    /// The fully qualified service name, e.g. `demo.GRPCDemo`.
    fn name(&self) -> &'static str;

    /// Start `method` (the part of the path after the service name) for `call`, or hand
    /// the call back when the service has no such method.
    #[allow(clippy::result_large_err)] // moved once per call, on the error path only
    fn call(&self, method: &str, call: Call) -> Result<CallFuture, Call>;

    /// Called once when the server's graceful shutdown begins, before any connection is
    /// told to drain (the health service sets every status NOT_SERVING here, as grpc-go's
    /// does). Does nothing by default; a service wrapping another must forward it.
    fn on_shutdown(&self) {}

    /// Called when the server starts serving, with the name of every service it serves
    /// (reflection lists them). Does nothing by default; a service wrapping another must
    /// forward it.
    fn on_serve(&self, services: &[&'static str]) {
        let _ = services;
    }

    /// The services [`Server::add_service`](crate::Server::add_service) adds for this one:
    /// itself by default. A value standing for several services returns them all (the
    /// built [`Reflection`](crate::reflection::Reflection) adds reflection v1 and v1alpha).
    fn into_services(self) -> Vec<Arc<dyn Service>>
    where
        Self: Sized,
    {
        vec![Arc::new(self)]
    }
}

/// The services of a server, looked up by name.
#[derive(Clone, Default)]
pub(crate) struct Router {
    services: Vec<Arc<dyn Service>>,
}

impl Router {
    pub(crate) fn add(&mut self, service: Arc<dyn Service>) {
        self.services.retain(|s| s.name() != service.name());
        self.services.push(service);
    }

    /// Tell every service which services the server serves.
    pub(crate) fn on_serve(&self) {
        let names: Vec<&'static str> = self.services.iter().map(|s| s.name()).collect();
        for service in &self.services {
            service.on_serve(&names);
        }
    }

    /// Tell every service that the graceful shutdown begins.
    pub(crate) fn on_shutdown(&self) {
        for service in &self.services {
            service.on_shutdown();
        }
    }

    /// The service owning `path` (`/package.Service/Method`) and the method's name;
    /// `UNIMPLEMENTED` for a malformed path or an unknown service.
    pub(crate) fn route<'p>(&self, path: &'p str) -> Result<(&dyn Service, &'p str), Status> {
        let Some((service_name, method)) = path.strip_prefix('/').and_then(|p| p.split_once('/'))
        else {
            return Err(Status::unimplemented(format!(
                "malformed method path {path:?}"
            )));
        };
        match self.services.iter().find(|s| s.name() == service_name) {
            Some(service) => Ok((service.as_ref(), method)),
            None => Err(Status::unimplemented(format!(
                "unknown service {service_name}"
            ))),
        }
    }
}
