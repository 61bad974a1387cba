//! A subchannel: the channel's link to one address. It holds at most one connection and
//! moves through the connectivity states: IDLE until asked to connect, CONNECTING,
//! READY while connected, back to IDLE when the connection is lost, and
//! TRANSIENT_FAILURE after a failed attempt, from which it tries again after the
//! backoff (`connection-backoff.md`) for as long as it is wanted.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::ConnectivityState;
use super::backoff::{Backoff, ConnectBackoff};
use super::connect::{Connected, Connector, Link};
use super::resolver::Endpoint;

/// What the channel asks of a subchannel: the latest wish (connected or idle) wins; the
/// epoch counts wishes, so none is missed between two looks.
#[derive(Debug, Clone, Copy, Default)]
struct Orders {
    want: bool,
    epoch: u64,
    /// The generation of a connection a call found unusable (GOAWAY, closed).
    broken: u64,
    shutdown: bool,
}

/// A subchannel's state as the channel sees it.
#[derive(Clone)]
pub(crate) struct Snapshot {
    pub(crate) state: ConnectivityState,
    /// While READY: the connection.
    pub(crate) send: Option<SendRequest<Bytes>>,
    /// Counts connections made; names the current one.
    pub(crate) generation: u64,
    /// Whether an attempt failed since the last READY.
    pub(crate) failed: bool,
    /// The last attempt's error.
    pub(crate) error: Option<Arc<str>>,
}

pub(crate) struct Shared {
    pub(crate) endpoint: Endpoint,
    orders: watch::Sender<Orders>,
    snapshot: Mutex<Snapshot>,
    /// The channel's wake-up: any state change.
    changed: Arc<Notify>,
}

impl Shared {
    /// Report that the connection of `generation` cannot take new calls.
    pub(crate) fn broken(&self, generation: u64) {
        self.orders
            .send_modify(|o| o.broken = o.broken.max(generation));
    }

    fn set(&self, update: impl FnOnce(&mut Snapshot)) {
        update(&mut self.snapshot.lock().unwrap_or_else(|p| p.into_inner()));
        self.changed.notify_one();
    }
}

/// The channel's handle on a subchannel; dropping it shuts the subchannel down
/// (a connection still carrying calls finishes them first).
pub(crate) struct Subchannel {
    pub(crate) shared: Arc<Shared>,
}

impl Subchannel {
    /// A subchannel for `endpoint`, IDLE; with `connected`, READY on that connection
    /// (which, once lost, is not replaced: the subchannel stays IDLE until asked).
    pub(crate) fn spawn(
        endpoint: Endpoint,
        connector: Arc<Connector>,
        backoff: ConnectBackoff,
        changed: Arc<Notify>,
        connected: Option<Connected>,
    ) -> Subchannel {
        let (orders, rx) = watch::channel(Orders::default());
        let shared = Arc::new(Shared {
            endpoint,
            orders,
            snapshot: Mutex::new(Snapshot {
                state: ConnectivityState::Idle,
                send: None,
                generation: 0,
                failed: false,
                error: None,
            }),
            changed,
        });
        tokio::spawn(run(shared.clone(), rx, connector, backoff, connected));
        Subchannel { shared }
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        self.shared
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Connect if not connected or connecting.
    pub(crate) fn connect(&self) {
        self.shared.orders.send_modify(|o| {
            o.want = true;
            o.epoch += 1;
        });
    }

    /// Close the connection (or stop trying) and go IDLE.
    pub(crate) fn idle(&self) {
        self.shared.orders.send_modify(|o| {
            o.want = false;
            o.epoch += 1;
        });
    }
}

impl Drop for Subchannel {
    fn drop(&mut self) {
        self.shared.orders.send_modify(|o| o.shutdown = true);
    }
}

/// What the subchannel's task saw in its orders.
#[derive(Default)]
struct Seen {
    epoch: u64,
    broken: u64,
}

enum Order {
    Connect,
    Idle,
    Broken(u64),
    Shutdown,
}

impl Seen {
    /// Wait for the next order not yet seen.
    async fn next(&mut self, rx: &mut watch::Receiver<Orders>) -> Order {
        loop {
            let orders = *rx.borrow_and_update();
            if orders.shutdown {
                return Order::Shutdown;
            }
            if orders.epoch != self.epoch {
                self.epoch = orders.epoch;
                return if orders.want {
                    Order::Connect
                } else {
                    Order::Idle
                };
            }
            if orders.broken > self.broken {
                self.broken = orders.broken;
                return Order::Broken(orders.broken);
            }
            if rx.changed().await.is_err() {
                return Order::Shutdown;
            }
        }
    }
}

async fn run(
    shared: Arc<Shared>,
    mut rx: watch::Receiver<Orders>,
    connector: Arc<Connector>,
    config: ConnectBackoff,
    mut connected: Option<Connected>,
) {
    let mut seen = Seen::default();
    let mut backoff = Backoff::new(config);
    let mut generation = 0u64;
    // Whether to (keep) trying: set by a connect order, cleared by an idle order and by
    // the loss of a connection.
    let mut wanted = false;
    loop {
        if let Some((send, link)) = connected.take() {
            generation += 1;
            backoff.reset();
            shared.set(|s| {
                s.state = ConnectivityState::Ready;
                s.send = Some(send);
                s.generation = generation;
                s.failed = false;
                s.error = None;
            });
            let Link { close, mut ended } = link;
            let shutdown = loop {
                tokio::select! {
                    _ = &mut ended => break false,
                    order = seen.next(&mut rx) => match order {
                        Order::Shutdown => break true,
                        Order::Idle => {
                            let _ = close.send(());
                            break false;
                        }
                        // The connection takes no new calls (GOAWAY): leave it to
                        // finish the ones it has.
                        Order::Broken(g) if g == generation => break false,
                        Order::Broken(_) | Order::Connect => {}
                    },
                }
            };
            wanted = false;
            if shutdown {
                return shut(&shared);
            }
            tracing::debug!(endpoint = %shared.endpoint, "connection lost; subchannel idle");
            shared.set(|s| {
                s.state = ConnectivityState::Idle;
                s.send = None;
            });
        }
        while !wanted {
            match seen.next(&mut rx).await {
                Order::Shutdown => return shut(&shared),
                Order::Connect => wanted = true,
                Order::Idle | Order::Broken(_) => {}
            }
        }
        // Attempts, with backoff between them, until one succeeds or we are told to stop.
        let mut first = true;
        while wanted {
            shared.set(|s| s.state = ConnectivityState::Connecting);
            let attempt = backoff.next_attempt(first);
            first = false;
            let started = Instant::now();
            let endpoint = shared.endpoint.clone();
            let connecting = tokio::time::timeout(attempt.timeout, connector.connect(&endpoint));
            tokio::pin!(connecting);
            let outcome = loop {
                tokio::select! {
                    r = &mut connecting => break Some(r),
                    order = seen.next(&mut rx) => match order {
                        Order::Shutdown => return shut(&shared),
                        Order::Idle => break None,
                        Order::Connect | Order::Broken(_) => {}
                    },
                }
            };
            let error = match outcome {
                None => {
                    wanted = false;
                    break;
                }
                Some(Ok(Ok(conn))) => {
                    connected = Some(conn);
                    break;
                }
                Some(Ok(Err(e))) => format!("{e} (at {endpoint})"),
                Some(Err(_)) => format!(
                    "connecting to {endpoint} timed out after {:?}",
                    attempt.timeout
                ),
            };
            tracing::debug!(%endpoint, %error, "connection attempt failed");
            shared.set(|s| {
                s.state = ConnectivityState::TransientFailure;
                s.failed = true;
                s.error = Some(error.into());
            });
            let wait = tokio::time::sleep_until(started + attempt.backoff);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    order = seen.next(&mut rx) => match order {
                        Order::Shutdown => return shut(&shared),
                        Order::Idle => { wanted = false; break }
                        Order::Connect | Order::Broken(_) => {}
                    },
                }
            }
        }
        if connected.is_none() {
            shared.set(|s| s.state = ConnectivityState::Idle);
        }
    }
}

fn shut(shared: &Shared) {
    shared.set(|s| {
        s.state = ConnectivityState::Shutdown;
        s.send = None;
    });
}
