//! Load balancing: the channel's control task keeps one subchannel per resolved
//! address, runs the policy (`pick_first` or `round_robin`), derives the channel's
//! connectivity state, and publishes a picker that calls use to choose a connection.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Instant;

use super::ConnectivityState;
use super::backoff::{Backoff, ConnectBackoff};
use super::connect::{Connected, Connector};
use super::resolver::{Endpoint, Source, interleave_families};
use super::service_config::LoadBalancing;
use super::subchannel::{Shared, Snapshot, Subchannel};
use crate::keepalive::Calls;
use crate::status::Status;

/// Delay before pick_first also tries the next address while an attempt is still
/// under way (A61's Happy Eyeballs: 250 ms).
const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// One READY connection a call may use.
#[derive(Clone)]
pub(crate) struct Ready {
    pub(crate) send: SendRequest<Bytes>,
    pub(crate) sub: Arc<Shared>,
    pub(crate) generation: u64,
}

/// What calls see: the channel's state and, when READY, the connections to pick from.
#[derive(Clone)]
pub(crate) struct Picker {
    pub(crate) state: ConnectivityState,
    ready: Arc<[Ready]>,
    error: Option<Arc<str>>,
}

impl Picker {
    fn new(state: ConnectivityState, ready: Vec<Ready>, error: Option<Arc<str>>) -> Picker {
        Picker {
            state,
            ready: ready.into(),
            error,
        }
    }
}

/// Settings of the control task.
#[derive(Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) policy: LoadBalancing,
    pub(crate) backoff: ConnectBackoff,
    pub(crate) min_resolve_interval: Duration,
    pub(crate) idle_timeout: Option<Duration>,
}

/// The calls' side of the balancer.
pub(crate) struct Handle {
    picker: watch::Receiver<Picker>,
    kick: Arc<Notify>,
    next: AtomicUsize,
    /// The control task, until the first call starts it (a channel may be built
    /// outside a runtime).
    pending: Mutex<Option<Control>>,
    started: AtomicBool,
    _stop: oneshot::Sender<()>,
    stop_rx: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Handle {
    pub(crate) fn new(
        source: Source,
        settings: Settings,
        connector: Arc<Connector>,
        seed: Option<Connected>,
    ) -> Handle {
        let changed = Arc::new(Notify::new());
        let kick = Arc::new(Notify::new());
        let (publish, picker) = watch::channel(Picker::new(ConnectivityState::Idle, vec![], None));
        let (stop, stop_rx) = oneshot::channel();
        let seed = seed.map(|conn| {
            Subchannel::spawn(
                Endpoint::Given,
                connector.clone(),
                settings.backoff,
                changed.clone(),
                Some(conn),
            )
        });
        let control = Control {
            calls: connector.calls.clone(),
            source,
            settings,
            connector,
            changed,
            kick: kick.clone(),
            publish,
            subs: Vec::new(),
            seed,
            idle: true,
            resolved: false,
            resolving: None,
            news: None,
            resolve_error: None,
            resolve_requested: false,
            last_resolve: None,
            resolve_backoff: Backoff::new(settings.backoff),
            resolve_retry_at: None,
            selected: None,
            pass: None,
            sticky_failure: false,
            last_started: 0,
        };
        Handle {
            picker,
            kick,
            next: AtomicUsize::new(0),
            pending: Mutex::new(Some(control)),
            started: AtomicBool::new(false),
            _stop: stop,
            stop_rx: Mutex::new(Some(stop_rx)),
        }
    }

    fn start(&self) {
        if self.started.load(Ordering::Acquire) {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(control), Some(stop)) = (
            pending.take(),
            self.stop_rx
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        ) {
            tokio::spawn(control.run(stop));
        }
        self.started.store(true, Ordering::Release);
    }

    /// The channel's state; with `connect`, an IDLE channel starts connecting.
    pub(crate) fn state(&self, connect: bool) -> ConnectivityState {
        self.start();
        let state = self.picker.borrow().state;
        if connect && state == ConnectivityState::Idle {
            self.kick.notify_one();
        }
        state
    }

    /// Wait until the state differs from `from`.
    pub(crate) async fn changed(&self, from: ConnectivityState) -> ConnectivityState {
        self.start();
        let mut rx = self.picker.clone();
        loop {
            let state = rx.borrow_and_update().state;
            if state != from {
                return state;
            }
            if rx.changed().await.is_err() {
                return ConnectivityState::Shutdown;
            }
        }
    }

    /// The last connection error, if the channel is failing.
    pub(crate) fn error(&self) -> Option<Arc<str>> {
        self.picker.borrow().error.clone()
    }

    /// A READY connection for a call. Fail-fast calls fail `UNAVAILABLE` while the
    /// channel is in TRANSIENT_FAILURE; wait-for-ready ones wait for READY. `avoid` is a
    /// connection the call found unusable: not picked again.
    pub(crate) async fn pick(
        &self,
        wait_for_ready: bool,
        avoid: Option<&Ready>,
    ) -> Result<Ready, Status> {
        self.start();
        let mut rx = self.picker.clone();
        loop {
            {
                let picker = rx.borrow_and_update();
                match picker.state {
                    ConnectivityState::Ready => {
                        let usable = |r: &Ready| {
                            avoid.is_none_or(|a| {
                                !(Arc::ptr_eq(&a.sub, &r.sub) && a.generation == r.generation)
                            })
                        };
                        let n = picker.ready.len();
                        let start = if n <= 1 {
                            0
                        } else {
                            self.next.fetch_add(1, Ordering::Relaxed)
                        };
                        if let Some(r) = (0..n)
                            .map(|k| &picker.ready[(start + k) % n])
                            .find(|r| usable(r))
                        {
                            return Ok(r.clone());
                        }
                    }
                    ConnectivityState::Idle => self.kick.notify_one(),
                    ConnectivityState::TransientFailure if !wait_for_ready => {
                        let why = picker.error.as_deref().unwrap_or("no address is reachable");
                        return Err(Status::unavailable(why.to_string()));
                    }
                    ConnectivityState::Shutdown => {
                        return Err(Status::unavailable("the channel is shut down"));
                    }
                    _ => {}
                }
            }
            if rx.changed().await.is_err() {
                return Err(Status::unavailable("the channel is shut down"));
            }
        }
    }
}

/// pick_first's progress through the address list.
struct Pass {
    /// The last subchannel asked to connect.
    next: usize,
    /// When it was asked.
    asked: Instant,
    /// Each subchannel's connection count when the pass began.
    generations: Vec<u64>,
}

type Resolving =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Endpoint>, String>> + Send>>;

struct Control {
    calls: Arc<Calls>,
    source: Source,
    settings: Settings,
    connector: Arc<Connector>,
    changed: Arc<Notify>,
    kick: Arc<Notify>,
    publish: watch::Sender<Picker>,
    subs: Vec<Subchannel>,
    /// The connection given to the channel, while it lasts.
    seed: Option<Subchannel>,
    /// No connection wanted: the channel is IDLE.
    idle: bool,
    resolved: bool,
    resolving: Option<Resolving>,
    /// Completes when the resolver has news (asked for at each resolution).
    news: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
    resolve_error: Option<Arc<str>>,
    resolve_requested: bool,
    last_resolve: Option<Instant>,
    resolve_backoff: Backoff,
    resolve_retry_at: Option<Instant>,
    /// pick_first: the READY subchannel calls use.
    selected: Option<usize>,
    pass: Option<Pass>,
    /// TRANSIENT_FAILURE is left only for READY (A62).
    sticky_failure: bool,
    /// Calls started, at the last idle check.
    last_started: u64,
}

impl Control {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let idle_check = self.settings.idle_timeout;
        let mut idle_timer = idle_check.map(|d| Box::pin(tokio::time::sleep(d)));
        loop {
            self.maybe_resolve();
            self.update();
            let next_resolve = self.next_resolve_at();
            let eyeballs = self.happy_eyeballs_at();
            tokio::select! {
                _ = &mut stop => break,
                () = self.kick.notified() => {
                    if self.idle {
                        self.idle = false;
                        self.sticky_failure = false;
                    }
                }
                () = self.changed.notified() => {}
                result = async { self.resolving.as_mut().unwrap().await }, if self.resolving.is_some() => {
                    self.resolving = None;
                    self.resolved_with(result);
                }
                () = async { self.news.as_mut().unwrap().await }, if self.news.is_some() => {
                    self.news = None;
                    self.resolve_now();
                }
                () = sleep_until(next_resolve), if next_resolve.is_some() => {
                    self.resolve_retry_at = None;
                    self.resolve_now();
                }
                () = sleep_until(eyeballs), if eyeballs.is_some() => self.advance_pass(),
                () = async { idle_timer.as_mut().unwrap().await }, if idle_timer.is_some() => {
                    let period = idle_check.unwrap();
                    idle_timer = Some(Box::pin(tokio::time::sleep(period)));
                    self.check_idle();
                }
            }
        }
        self.subs.clear();
        self.seed = None;
        self.publish
            .send_replace(Picker::new(ConnectivityState::Shutdown, vec![], None));
    }

    /// Start a resolution when one is needed and allowed.
    fn maybe_resolve(&mut self) {
        if self.idle || self.resolving.is_some() || self.resolve_retry_at.is_some() {
            return;
        }
        if self.seed.is_some() {
            return;
        }
        let due = !self.resolved
            || (self.resolve_requested
                && self
                    .last_resolve
                    .is_none_or(|t| t.elapsed() >= self.settings.min_resolve_interval));
        if due {
            self.resolve_now();
        }
    }

    fn resolve_now(&mut self) {
        if self.resolving.is_some() {
            return;
        }
        self.resolve_requested = false;
        self.last_resolve = Some(Instant::now());
        // Before resolving, so an update made meanwhile shows as news.
        self.news = Some(self.source.changed());
        let source = self.source.clone();
        self.resolving = Some(Box::pin(async move { source.resolve().await }));
    }

    /// When a requested re-resolution may run (rate limit), or a failed one is retried.
    fn next_resolve_at(&self) -> Option<Instant> {
        if self.resolving.is_some() || self.idle {
            return None;
        }
        if let Some(at) = self.resolve_retry_at {
            return Some(at);
        }
        if self.resolve_requested {
            return self
                .last_resolve
                .map(|t| t + self.settings.min_resolve_interval);
        }
        None
    }

    fn resolved_with(&mut self, result: Result<Vec<Endpoint>, String>) {
        match result {
            Ok(endpoints) => {
                self.resolve_backoff.reset();
                self.resolve_error = None;
                self.resolved = true;
                self.apply(endpoints);
            }
            Err(error) => {
                tracing::debug!(%error, "name resolution failed");
                let wait = self.resolve_backoff.next_attempt(false).backoff;
                self.resolve_retry_at = Some(Instant::now() + wait);
                if !self.resolved {
                    self.resolve_error = Some(error.into());
                }
            }
        }
    }

    /// A new address list: keep the subchannels of addresses that remain (their calls
    /// go on), add new ones, drop the others (their connections finish their calls).
    fn apply(&mut self, endpoints: Vec<Endpoint>) {
        let mut endpoints = match self.settings.policy {
            LoadBalancing::PickFirst {
                shuffle_address_list,
            } => {
                let mut endpoints = endpoints;
                if shuffle_address_list {
                    crate::random::shuffle(&mut endpoints);
                }
                interleave_families(endpoints)
            }
            LoadBalancing::RoundRobin => endpoints,
        };
        let mut seen = std::collections::HashSet::new();
        endpoints.retain(|e| seen.insert(e.clone()));
        let selected = self.selected.map(|i| self.subs[i].shared.endpoint.clone());
        let mut old: Vec<Option<Subchannel>> = self.subs.drain(..).map(Some).collect();
        for endpoint in endpoints {
            let kept = old
                .iter_mut()
                .find(|s| s.as_ref().is_some_and(|s| s.shared.endpoint == endpoint))
                .and_then(Option::take);
            let sub = kept.unwrap_or_else(|| {
                Subchannel::spawn(
                    endpoint,
                    self.connector.clone(),
                    self.settings.backoff,
                    self.changed.clone(),
                    None,
                )
            });
            self.subs.push(sub);
        }
        self.selected =
            selected.and_then(|e| self.subs.iter().position(|s| s.shared.endpoint == e));
        if self.selected.is_none() {
            self.pass = None;
        }
    }

    fn check_idle(&mut self) {
        let (in_flight, started) = self.calls.counts();
        let quiet = in_flight == 0 && started == self.last_started;
        self.last_started = started;
        if quiet && !self.idle {
            tracing::debug!("channel idle: closing its connections");
            self.go_idle();
            // Leaving IDLE resolves the target afresh.
            self.resolved = false;
        }
    }

    fn go_idle(&mut self) {
        for sub in &self.subs {
            sub.idle();
        }
        self.seed = None;
        self.selected = None;
        self.pass = None;
        self.idle = true;
    }

    /// Derive the state from the subchannels, act on it, and publish the picker.
    fn update(&mut self) {
        let picker = self.pick_state();
        let same = {
            let current = self.publish.borrow();
            current.state == picker.state
                && current.error == picker.error
                && current.ready.len() == picker.ready.len()
                && current
                    .ready
                    .iter()
                    .zip(picker.ready.iter())
                    .all(|(a, b)| Arc::ptr_eq(&a.sub, &b.sub) && a.generation == b.generation)
        };
        if !same {
            self.publish.send_replace(picker);
        }
    }

    fn pick_state(&mut self) -> Picker {
        if let Some(seed) = &self.seed {
            let snap = seed.snapshot();
            match snap.state {
                ConnectivityState::Ready => {
                    return Picker::new(ConnectivityState::Ready, vec![ready(seed, &snap)], None);
                }
                ConnectivityState::Idle if snap.generation == 0 => {
                    return Picker::new(ConnectivityState::Connecting, vec![], None);
                }
                _ => {
                    // The given connection is gone: from now on, the target's addresses.
                    self.seed = None;
                    self.idle = true;
                }
            }
        }
        if self.idle {
            return Picker::new(ConnectivityState::Idle, vec![], None);
        }
        if !self.resolved {
            return match &self.resolve_error {
                Some(e) => {
                    Picker::new(ConnectivityState::TransientFailure, vec![], Some(e.clone()))
                }
                None => Picker::new(ConnectivityState::Connecting, vec![], None),
            };
        }
        let snaps: Vec<Snapshot> = self.subs.iter().map(Subchannel::snapshot).collect();
        if snaps.iter().any(|s| {
            s.state == ConnectivityState::TransientFailure
                || (s.state == ConnectivityState::Idle && s.generation > 0)
        }) {
            self.resolve_requested = true;
        }
        match self.settings.policy {
            LoadBalancing::PickFirst { .. } => self.pick_first(&snaps),
            LoadBalancing::RoundRobin => self.round_robin(&snaps),
        }
    }

    fn failing(&mut self, snaps: &[Snapshot]) -> Picker {
        let all_failed = !snaps.is_empty() && snaps.iter().all(|s| s.failed);
        if all_failed || self.sticky_failure {
            self.sticky_failure = true;
            let error = snaps.iter().rev().find_map(|s| s.error.clone());
            return Picker::new(ConnectivityState::TransientFailure, vec![], error);
        }
        Picker::new(ConnectivityState::Connecting, vec![], None)
    }

    fn pick_first(&mut self, snaps: &[Snapshot]) -> Picker {
        if let Some(i) = self.selected {
            if snaps[i].state == ConnectivityState::Ready {
                return Picker::new(
                    ConnectivityState::Ready,
                    vec![ready(&self.subs[i], &snaps[i])],
                    None,
                );
            }
            // The connection was lost: IDLE, re-resolve, and start over on the next call.
            tracing::debug!(endpoint = %self.subs[i].shared.endpoint, "pick_first: connection lost; channel idle");
            self.go_idle();
            self.resolve_requested = true;
            return Picker::new(ConnectivityState::Idle, vec![], None);
        }
        if let Some(i) = snaps
            .iter()
            .position(|s| s.state == ConnectivityState::Ready)
        {
            self.selected = Some(i);
            self.pass = None;
            self.sticky_failure = false;
            for (j, sub) in self.subs.iter().enumerate() {
                if j != i {
                    sub.idle();
                }
            }
            return Picker::new(
                ConnectivityState::Ready,
                vec![ready(&self.subs[i], &snaps[i])],
                None,
            );
        }
        if self.subs.is_empty() {
            return Picker::new(ConnectivityState::Connecting, vec![], None);
        }
        if let Some(pass) = &self.pass
            && snaps
                .iter()
                .zip(&pass.generations)
                .any(|(s, g)| s.generation > *g)
        {
            // Connected and lost before it could be picked: as a lost connection.
            self.go_idle();
            self.resolve_requested = true;
            return Picker::new(ConnectivityState::Idle, vec![], None);
        }
        match &mut self.pass {
            None => {
                self.subs[0].connect();
                self.pass = Some(Pass {
                    next: 0,
                    asked: Instant::now(),
                    generations: snaps.iter().map(|s| s.generation).collect(),
                });
            }
            Some(pass) => {
                // Past a failed address, on to the next.
                while snaps[pass.next].failed && pass.next + 1 < self.subs.len() {
                    pass.next += 1;
                    pass.asked = Instant::now();
                    self.subs[pass.next].connect();
                }
            }
        }
        self.failing(snaps)
    }

    /// pick_first: when to start the next address while the current one still connects.
    fn happy_eyeballs_at(&self) -> Option<Instant> {
        let pass = self.pass.as_ref()?;
        (self.selected.is_none() && pass.next + 1 < self.subs.len())
            .then(|| pass.asked + CONNECTION_ATTEMPT_DELAY)
    }

    fn advance_pass(&mut self) {
        if let Some(pass) = &mut self.pass
            && pass.next + 1 < self.subs.len()
        {
            pass.next += 1;
            pass.asked = Instant::now();
            self.subs[pass.next].connect();
        }
    }

    fn round_robin(&mut self, snaps: &[Snapshot]) -> Picker {
        let mut list = Vec::new();
        for (sub, snap) in self.subs.iter().zip(snaps) {
            match snap.state {
                ConnectivityState::Idle => sub.connect(),
                ConnectivityState::Ready => list.push(ready(sub, snap)),
                _ => {}
            }
        }
        if !list.is_empty() {
            self.sticky_failure = false;
            return Picker::new(ConnectivityState::Ready, list, None);
        }
        self.failing(snaps)
    }
}

fn ready(sub: &Subchannel, snap: &Snapshot) -> Ready {
    Ready {
        send: snap
            .send
            .clone()
            .expect("a READY subchannel has a connection"),
        sub: sub.shared.clone(),
        generation: snap.generation,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
