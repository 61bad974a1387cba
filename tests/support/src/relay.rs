//! A TCP relay in front of a backend, for fault tests: it carries every connection it
//! accepts to the backend until told to cut them all (both sides dropped at once) or to
//! stall them (nothing forwarded any more, nothing closed: a peer gone silent behind a
//! NAT), and can refuse new connections (accepted, then dropped) while told to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running relay on 127.0.0.1; it stops accepting when dropped.
pub struct Relay {
    /// Where clients connect.
    pub addr: SocketAddr,
    cut: watch::Sender<u64>,
    stall: watch::Sender<u64>,
    refuse: Arc<AtomicBool>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Starts a relay to `backend` on a free port of 127.0.0.1.
    pub async fn start(backend: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let addr = listener.local_addr().expect("the relay's address");
        let (cut, cuts) = watch::channel(0u64);
        let (stall, stalls) = watch::channel(0u64);
        let refuse = Arc::new(AtomicBool::new(false));
        let refusing = refuse.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if refusing.load(Ordering::SeqCst) {
                    continue; // dropped at once
                }
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                let mut stalls = stalls.clone();
                stalls.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let stalled = tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => false,
                        _ = cuts.changed() => false,
                        _ = stalls.changed() => true,
                    };
                    if stalled {
                        // Hold both sockets open, forwarding nothing, until cut.
                        let _ = cuts.changed().await;
                    }
                    drop((inbound, outbound));
                });
            }
        });
        Relay {
            addr,
            cut,
            stall,
            refuse,
            accepting,
        }
    }

    /// Drops both sides of every connection carried now.
    pub fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// Stops forwarding on every connection carried now, without closing any: both
    /// ends see silence, no FIN, no RST (until [`Relay::cut_all`]).
    pub fn stall_all(&self) {
        self.stall.send_modify(|n| *n += 1);
    }

    /// While `refuse` is true, new connections are accepted and dropped at once; the
    /// ones already carried are not touched.
    pub fn refuse(&self, refuse: bool) {
        self.refuse.store(refuse, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}
