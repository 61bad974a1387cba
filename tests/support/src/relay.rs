//! A TCP relay in front of a backend, for fault tests: it carries every connection it
//! accepts to the backend until told to cut them all (both sides dropped at once) or to
//! stall them (nothing forwarded any more, nothing closed: a peer gone silent behind a
//! NAT), and can refuse new connections (accepted, then dropped) while told to. It counts
//! the connections it accepted and reads the HTTP/2 frames the backend sends (cleartext
//! only) as they pass, counting its RST_STREAMs by error code.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::raw::{FRAME_HEADER_LEN, RST_STREAM};

/// The HTTP/2 error codes (RFC 9113 §7) the relay counts apart; others count as the last.
const ERROR_CODES: usize = 14;

/// What the relay has seen.
#[derive(Default)]
struct Seen {
    accepted: AtomicUsize,
    /// RST_STREAM frames from the backend, by error code.
    resets: [AtomicUsize; ERROR_CODES],
}

/// A running relay on 127.0.0.1; it stops accepting when dropped.
pub struct Relay {
    /// Where clients connect.
    pub addr: SocketAddr,
    cut: watch::Sender<u64>,
    stall: watch::Sender<u64>,
    refuse: Arc<AtomicBool>,
    seen: Arc<Seen>,
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
        let seen = Arc::new(Seen::default());
        let seeing = seen.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                seeing.accepted.fetch_add(1, Ordering::SeqCst);
                if refusing.load(Ordering::SeqCst) {
                    continue; // dropped at once
                }
                let seeing = seeing.clone();
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                let mut stalls = stalls.clone();
                stalls.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let stalled = tokio::select! {
                        _ = carry(&mut inbound, &mut outbound, &seeing) => false,
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
            seen,
            accepting,
        }
    }

    /// The connections accepted so far (refused ones included).
    pub fn accepted(&self) -> usize {
        self.seen.accepted.load(Ordering::SeqCst)
    }

    /// The RST_STREAM frames with `reason` the backend has sent so far, on every
    /// connection.
    pub fn resets_from_backend(&self, reason: h2::Reason) -> usize {
        let code = (u32::from(reason) as usize).min(ERROR_CODES - 1);
        self.seen.resets[code].load(Ordering::SeqCst)
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

/// Carries one connection both ways until both directions end; what the backend sends is
/// read as HTTP/2 frames on the way.
async fn carry(inbound: &mut TcpStream, outbound: &mut TcpStream, seen: &Seen) {
    let (mut client_read, mut client_write) = inbound.split();
    let (mut backend_read, mut backend_write) = outbound.split();
    let up = async {
        let _ = tokio::io::copy(&mut client_read, &mut backend_write).await;
        let _ = backend_write.shutdown().await;
    };
    let down = async {
        let mut frames = FrameScan::default();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match backend_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            frames.feed(&buf[..n], seen);
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

/// Reads a server's byte stream as frames (it starts with a frame: the preface is the
/// client's), whatever the chunking.
#[derive(Default)]
struct FrameScan {
    /// The header being read, or the RST_STREAM payload being read.
    pending: Vec<u8>,
    /// Payload bytes still to skip.
    skip: usize,
    /// Reading an RST_STREAM's 4-byte error code.
    in_reset: bool,
}

impl FrameScan {
    fn feed(&mut self, mut bytes: &[u8], seen: &Seen) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let want = if self.in_reset { 4 } else { FRAME_HEADER_LEN };
            let n = (want - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.pending.len() < want {
                continue;
            }
            if self.in_reset {
                let code = u32::from_be_bytes(self.pending[..4].try_into().unwrap()) as usize;
                seen.resets[code.min(ERROR_CODES - 1)].fetch_add(1, Ordering::SeqCst);
                self.in_reset = false;
            } else {
                let len =
                    u32::from_be_bytes([0, self.pending[0], self.pending[1], self.pending[2]]);
                let len = len as usize;
                if self.pending[3] == RST_STREAM && len == 4 {
                    self.in_reset = true;
                } else {
                    self.skip = len;
                }
            }
            self.pending.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::{SETTINGS, frame, rst_stream};

    #[test]
    fn resets_are_counted_by_code_whatever_the_chunking() {
        let mut wire = frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 4]);
        wire.extend(rst_stream(1, h2::Reason::REFUSED_STREAM));
        wire.extend(frame(0, 0, 3, &[3, 0, 0, 0, 7, 1, 2, 3]));
        wire.extend(rst_stream(5, h2::Reason::CANCEL));
        wire.extend(rst_stream(7, h2::Reason::REFUSED_STREAM));
        for chunk in [1, 2, 5, 9, 13, wire.len()] {
            let seen = Seen::default();
            let mut scan = FrameScan::default();
            for part in wire.chunks(chunk) {
                scan.feed(part, &seen);
            }
            let count = |r: h2::Reason| seen.resets[u32::from(r) as usize].load(Ordering::SeqCst);
            assert_eq!(count(h2::Reason::REFUSED_STREAM), 2, "chunks of {chunk}");
            assert_eq!(count(h2::Reason::CANCEL), 1, "chunks of {chunk}");
        }
    }
}
