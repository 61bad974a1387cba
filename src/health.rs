//! The standard health service, `grpc.health.v1.Health` (grpc/grpc doc/health-checking.md,
//! and `List` from gRFC A90): the statuses of a server's services, set through a
//! [`HealthReporter`] and served by [`HealthService`].
//!
//! ```no_run
//! # async fn run() -> Result<(), h2grpc::Error> {
//! use h2grpc::health::{HealthReporter, ServingStatus};
//! let health = HealthReporter::new(); // "" (the whole server) is SERVING
//! health.set_status("demo.GRPCDemo", ServingStatus::Serving);
//! h2grpc::Server::new()
//!     .add_service(health.service())
//!     .serve("127.0.0.1:50051")
//!     .await
//! # }
//! ```
//!
//! As in grpc-go: `Check` of an unregistered name is NOT_FOUND; `Watch` sends the current
//! status at once (SERVICE_UNKNOWN for an unregistered name, without ending the call) and
//! then each change; when the server's graceful shutdown begins, every service is set
//! NOT_SERVING and later changes are ignored until [`HealthReporter::resume`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::server::{Call, CallFuture, Service};
use crate::{Request, Response, ResponseStream, Status};

/// The messages and the generated server and client of `grpc.health.v1`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/grpc.health.v1.rs"));
}

pub use pb::FILE_DESCRIPTOR_SET;
pub use pb::health_check_response::ServingStatus;
pub use pb::health_client::HealthClient;
pub use pb::health_server::SERVICE_NAME;

/// Most services `List` answers for; beyond, it is RESOURCE_EXHAUSTED (grpc-go's limit).
pub const MAX_LISTED_SERVICES: usize = 100;

/// Sets the serving status of each service. Cheap to clone; every clone, and the
/// [`HealthService`] it made, shares one table.
#[derive(Clone)]
pub struct HealthReporter {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
}

struct State {
    /// One channel per name that is registered or watched; `ServiceUnknown` means not
    /// registered (only watched, or cleared).
    services: HashMap<String, watch::Sender<ServingStatus>>,
    /// Set by [`HealthReporter::shutdown`]: changes are ignored until `resume`.
    shut_down: bool,
}

impl Default for HealthReporter {
    fn default() -> Self {
        HealthReporter::new()
    }
}

impl std::fmt::Debug for HealthReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthReporter")
            .field("statuses", &self.statuses())
            .finish()
    }
}

impl HealthReporter {
    /// A table holding only the whole server (`""`), SERVING.
    pub fn new() -> HealthReporter {
        let reporter = HealthReporter {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    services: HashMap::new(),
                    shut_down: false,
                }),
            }),
        };
        reporter.set_status("", ServingStatus::Serving);
        reporter
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The table stays consistent whatever panicked while holding the lock.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register `service` (`""` is the whole server) with `status`, telling its watchers.
    /// `ServiceUnknown` unregisters it, as [`HealthReporter::clear`] does. Ignored after
    /// [`HealthReporter::shutdown`] (until [`HealthReporter::resume`]).
    pub fn set_status(&self, service: &str, status: ServingStatus) {
        let mut state = self.state();
        if state.shut_down {
            tracing::debug!(service, ?status, "health: shut down, status change ignored");
            return;
        }
        set_locked(&mut state, service, status);
    }

    /// [`HealthReporter::set_status`] `SERVING`.
    pub fn set_serving(&self, service: &str) {
        self.set_status(service, ServingStatus::Serving);
    }

    /// [`HealthReporter::set_status`] `NOT_SERVING`.
    pub fn set_not_serving(&self, service: &str) {
        self.set_status(service, ServingStatus::NotServing);
    }

    /// Unregister `service`: `Check` is NOT_FOUND again, its watchers get SERVICE_UNKNOWN.
    pub fn clear(&self, service: &str) {
        self.set_status(service, ServingStatus::ServiceUnknown);
    }

    /// The status of a registered `service`; `None` when it is not registered.
    pub fn status(&self, service: &str) -> Option<ServingStatus> {
        let state = self.state();
        let status = *state.services.get(service)?.borrow();
        (status != ServingStatus::ServiceUnknown).then_some(status)
    }

    /// Every registered service with its status, sorted by name.
    pub fn statuses(&self) -> Vec<(String, ServingStatus)> {
        let state = self.state();
        let mut all: Vec<(String, ServingStatus)> = state
            .services
            .iter()
            .map(|(name, tx)| (name.clone(), *tx.borrow()))
            .filter(|(_, status)| *status != ServingStatus::ServiceUnknown)
            .collect();
        all.sort();
        all
    }

    /// Set every registered service NOT_SERVING and ignore changes from now on (until
    /// [`HealthReporter::resume`]). The server calls this when its graceful shutdown begins.
    pub fn shutdown(&self) {
        let mut state = self.state();
        state.shut_down = true;
        for tx in state.services.values() {
            tx.send_if_modified(|status| {
                let registered = *status != ServingStatus::ServiceUnknown;
                let change = registered && *status != ServingStatus::NotServing;
                if change {
                    *status = ServingStatus::NotServing;
                }
                change
            });
        }
    }

    /// Undo [`HealthReporter::shutdown`]: accept changes again, and set every registered
    /// service SERVING.
    pub fn resume(&self) {
        let mut state = self.state();
        state.shut_down = false;
        let names: Vec<String> = state.services.keys().cloned().collect();
        for name in names {
            let registered = *state.services[&name].borrow() != ServingStatus::ServiceUnknown;
            if registered {
                set_locked(&mut state, &name, ServingStatus::Serving);
            }
        }
    }

    /// The `grpc.health.v1.Health` service answering from this table; add it to a server
    /// (`Server::add_service`).
    pub fn service(&self) -> HealthService {
        HealthService {
            reporter: self.clone(),
            inner: pb::health_server::HealthServer::new(Health {
                reporter: self.clone(),
            }),
        }
    }

    /// A receiver of `service`'s status, registering a SERVICE_UNKNOWN entry for it when
    /// there is none (removed again when its last watcher goes, see `Watcher`).
    fn watch(&self, service: &str) -> watch::Receiver<ServingStatus> {
        let mut state = self.state();
        match state.services.get(service) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(ServingStatus::ServiceUnknown);
                state.services.insert(service.to_owned(), tx);
                rx
            }
        }
    }

    /// Forget `service` if it is unregistered and nobody watches it any more.
    fn forget_if_unwatched(&self, service: &str) {
        let mut state = self.state();
        let unused = state.services.get(service).is_some_and(|tx| {
            *tx.borrow() == ServingStatus::ServiceUnknown && tx.receiver_count() == 0
        });
        if unused {
            state.services.remove(service);
        }
    }
}

/// Set `service` to `status` in a locked table, telling its watchers when it changed.
fn set_locked(state: &mut State, service: &str, status: ServingStatus) {
    match state.services.get(service) {
        Some(tx) => {
            tx.send_if_modified(|current| {
                let changed = *current != status;
                *current = status;
                changed
            });
            if status == ServingStatus::ServiceUnknown && tx.receiver_count() == 0 {
                state.services.remove(service);
            }
        }
        None if status == ServingStatus::ServiceUnknown => {}
        None => {
            state
                .services
                .insert(service.to_owned(), watch::channel(status).0);
        }
    }
}

/// `grpc.health.v1.Health` as a server sees it: the generated adapter over the table,
/// plus the shutdown hook that sets every service NOT_SERVING.
#[derive(Clone)]
pub struct HealthService {
    reporter: HealthReporter,
    inner: pb::health_server::HealthServer<Health>,
}

impl std::fmt::Debug for HealthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthService")
            .field("reporter", &self.reporter)
            .finish()
    }
}

impl HealthService {
    /// The reporter setting the statuses this service answers with.
    pub fn reporter(&self) -> &HealthReporter {
        &self.reporter
    }
}

impl Service for HealthService {
    fn name(&self) -> &'static str {
        SERVICE_NAME
    }

    fn call(&self, method: &str, call: Call) -> Result<CallFuture, Call> {
        self.inner.call(method, call)
    }

    fn file_descriptor_set(&self) -> Option<&'static [u8]> {
        Some(FILE_DESCRIPTOR_SET)
    }

    fn on_shutdown(&self) {
        tracing::debug!("health: graceful shutdown, every service NOT_SERVING");
        self.reporter.shutdown();
    }
}

/// The handlers of the three methods.
struct Health {
    reporter: HealthReporter,
}

impl pb::health_server::Health for Health {
    async fn check(
        &self,
        request: Request<pb::HealthCheckRequest>,
    ) -> Result<Response<pb::HealthCheckResponse>, Status> {
        let service = &request.message().service;
        match self.reporter.status(service) {
            Some(status) => Ok(Response::new(pb::HealthCheckResponse {
                status: status as i32,
            })),
            None => Err(Status::not_found(format!("unknown service {service:?}"))),
        }
    }

    async fn list(
        &self,
        _request: Request<pb::HealthListRequest>,
    ) -> Result<Response<pb::HealthListResponse>, Status> {
        let statuses = self.reporter.statuses();
        if statuses.len() > MAX_LISTED_SERVICES {
            return Err(Status::resource_exhausted(format!(
                "server health list exceeds maximum capacity: {MAX_LISTED_SERVICES}"
            )));
        }
        let statuses = statuses
            .into_iter()
            .map(|(name, status)| {
                let status = pb::HealthCheckResponse {
                    status: status as i32,
                };
                (name, status)
            })
            .collect();
        Ok(Response::new(pb::HealthListResponse { statuses }))
    }

    async fn watch(
        &self,
        request: Request<pb::HealthCheckRequest>,
    ) -> Result<Response<ResponseStream<pb::HealthCheckResponse>>, Status> {
        let service = request.into_message().service;
        let rx = self.reporter.watch(&service);
        let watcher = Watcher {
            reporter: self.reporter.clone(),
            service,
            rx: Some(rx),
            last_sent: None,
        };
        let stream = futures_util::stream::unfold(watcher, |mut watcher| async move {
            let status = watcher.next().await?;
            let message = pb::HealthCheckResponse {
                status: status as i32,
            };
            Some((Ok(message), watcher))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// One `Watch` call's view of a status; dropping it (the call ended) forgets a name that
/// was only watched, so unknown names asked for do not pile up.
struct Watcher {
    reporter: HealthReporter,
    service: String,
    rx: Option<watch::Receiver<ServingStatus>>,
    last_sent: Option<ServingStatus>,
}

impl Watcher {
    /// The current status first, then each status unlike the last one sent.
    async fn next(&mut self) -> Option<ServingStatus> {
        let rx = self.rx.as_mut()?;
        loop {
            if self.last_sent.is_some() {
                rx.changed().await.ok()?;
            }
            let status = *rx.borrow_and_update();
            if self.last_sent != Some(status) {
                self.last_sent = Some(status);
                return Some(status);
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.rx.take());
        self.reporter.forget_if_unwatched(&self.service);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_server_starts_serving_and_unknown_names_have_no_status() {
        let health = HealthReporter::new();
        assert_eq!(health.status(""), Some(ServingStatus::Serving));
        assert_eq!(health.status("a.B"), None);
        health.set_not_serving("a.B");
        assert_eq!(health.status("a.B"), Some(ServingStatus::NotServing));
        health.clear("a.B");
        assert_eq!(health.status("a.B"), None);
        assert_eq!(health.statuses(), [(String::new(), ServingStatus::Serving)]);
    }

    #[test]
    fn shutdown_sets_all_not_serving_and_ignores_changes_until_resume() {
        let health = HealthReporter::new();
        health.set_serving("a.B");
        health.shutdown();
        health.set_serving("a.B");
        health.set_serving("c.D");
        assert_eq!(
            health.statuses(),
            [
                (String::new(), ServingStatus::NotServing),
                ("a.B".to_owned(), ServingStatus::NotServing),
            ]
        );
        health.resume();
        assert_eq!(health.status("a.B"), Some(ServingStatus::Serving));
        assert_eq!(health.status(""), Some(ServingStatus::Serving));
    }

    #[tokio::test]
    async fn a_watcher_of_an_unknown_name_sees_its_registration_and_is_forgotten_after() {
        let health = HealthReporter::new();
        let mut watcher = Watcher {
            reporter: health.clone(),
            service: "late.Service".to_owned(),
            rx: Some(health.watch("late.Service")),
            last_sent: None,
        };
        assert_eq!(watcher.next().await, Some(ServingStatus::ServiceUnknown));
        health.set_serving("late.Service");
        assert_eq!(watcher.next().await, Some(ServingStatus::Serving));
        health.set_serving("late.Service"); // no change: nothing sent
        health.set_not_serving("late.Service");
        assert_eq!(watcher.next().await, Some(ServingStatus::NotServing));
        health.clear("late.Service");
        assert_eq!(watcher.next().await, Some(ServingStatus::ServiceUnknown));
        drop(watcher);
        assert!(!health.state().services.contains_key("late.Service"));
    }
}
