//! The router: `:path` `/package.Service/Method` to the service that owns it. It sits
//! above the call (`call.rs`), which names the [`Service`] seam and asks a `Route`.

use std::sync::Arc;

use super::call::Route;
pub use super::call::Service;
use crate::status::Status;

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

    /// The descriptors of every service that gives them, for JSON.
    pub(crate) fn descriptors(&self) -> crate::protocol::json::Descriptors {
        let mut descriptors = crate::protocol::json::Descriptors::new();
        for service in &self.services {
            if let Some(set) = service.file_descriptor_set()
                && let Err(e) = descriptors.add_encoded_set(set)
            {
                tracing::warn!(service = service.name(), error = %e, "descriptors not usable for JSON");
            }
        }
        descriptors
    }

    /// Tell every service that the graceful shutdown begins.
    pub(crate) fn on_shutdown(&self) {
        for service in &self.services {
            service.on_shutdown();
        }
    }
}

impl Route for Router {
    fn route<'p>(&self, path: &'p str) -> Result<(&dyn Service, &'p str), Status> {
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
