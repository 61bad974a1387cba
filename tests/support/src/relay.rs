//! A TCP relay in front of a backend, for fault tests: it carries every connection it
//! accepts to the backend until told to cut them all (both sides dropped at once) or to
//! stall them (nothing forwarded any more, nothing closed: a peer gone silent behind a
//! NAT), and can refuse new connections (accepted, then dropped) while told to. It counts
//! the connections it accepted and reads the HTTP/2 frames the backend sends (cleartext
//! only) as they pass, counting its RST_STREAMs by error code; it can hide the backend's
//! SETTINGS_MAX_CONCURRENT_STREAMS from the client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::raw::{FRAME_HEADER_LEN, RST_STREAM, SETTINGS, SETTINGS_MAX_CONCURRENT_STREAMS};

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
        Relay::start_with(backend, false).await
    }

    /// Starts a relay to `backend` that hides the backend's
    /// SETTINGS_MAX_CONCURRENT_STREAMS from the client (the setting's id is rewritten to
    /// one no peer knows, which the client ignores): the client opens streams past the
    /// backend's limit, and the backend refuses them.
    pub async fn start_hiding_stream_limit(backend: SocketAddr) -> Relay {
        Relay::start_with(backend, true).await
    }

    async fn start_with(backend: SocketAddr, hide_stream_limit: bool) -> Relay {
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
                        _ = carry(&mut inbound, &mut outbound, &seeing, hide_stream_limit) => false,
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
/// read as HTTP/2 frames on the way (and its stream limit hidden, if told).
async fn carry(inbound: &mut TcpStream, outbound: &mut TcpStream, seen: &Seen, hide_limit: bool) {
    let (mut client_read, mut client_write) = inbound.split();
    let (mut backend_read, mut backend_write) = outbound.split();
    let up = async {
        let _ = tokio::io::copy(&mut client_read, &mut backend_write).await;
        let _ = backend_write.shutdown().await;
    };
    let down = async {
        let mut frames = FrameScan {
            hide_limit,
            ..FrameScan::default()
        };
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match backend_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            frames.feed(&mut buf[..n], seen);
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

/// Reads a server's byte stream as frames (it starts with a frame: the preface is the
/// client's), whatever the chunking: counts RST_STREAMs by code, and rewrites the id of
/// SETTINGS_MAX_CONCURRENT_STREAMS when told to hide it.
#[derive(Default)]
struct FrameScan {
    hide_limit: bool,
    /// The frame header being read.
    header: Vec<u8>,
    /// The type of the frame whose payload is being read.
    kind: u8,
    /// Payload bytes of the current frame still to come, and how many came.
    left: usize,
    at: usize,
    /// An RST_STREAM's error code, as it comes.
    code: Vec<u8>,
    /// The high byte of the setting id being read.
    id_high: u8,
}

impl FrameScan {
    fn feed(&mut self, bytes: &mut [u8], seen: &Seen) {
        let mut i = 0;
        while i < bytes.len() {
            if self.left == 0 {
                let n = (FRAME_HEADER_LEN - self.header.len()).min(bytes.len() - i);
                self.header.extend_from_slice(&bytes[i..i + n]);
                i += n;
                if self.header.len() == FRAME_HEADER_LEN {
                    let h = &self.header;
                    self.left = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
                    self.kind = h[3];
                    self.at = 0;
                    self.code.clear();
                    self.header.clear();
                }
                continue;
            }
            let watched = self.kind == RST_STREAM || (self.kind == SETTINGS && self.hide_limit);
            if !watched {
                let n = self.left.min(bytes.len() - i);
                self.left -= n;
                i += n;
                continue;
            }
            let byte = &mut bytes[i];
            if self.kind == RST_STREAM {
                self.code.push(*byte);
                if self.code.len() == 4 {
                    let code = u32::from_be_bytes(self.code[..4].try_into().unwrap()) as usize;
                    seen.resets[code.min(ERROR_CODES - 1)].fetch_add(1, Ordering::SeqCst);
                }
            } else {
                // Six bytes a setting: a 16-bit id, a 32-bit value.
                match self.at % 6 {
                    0 => self.id_high = *byte,
                    1 if u16::from_be_bytes([self.id_high, *byte])
                        == SETTINGS_MAX_CONCURRENT_STREAMS =>
                    {
                        *byte = 0xff;
                    }
                    _ => {}
                }
            }
            self.at += 1;
            self.left -= 1;
            i += 1;
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
            for part in wire.clone().chunks_mut(chunk) {
                scan.feed(part, &seen);
            }
            let count = |r: h2::Reason| seen.resets[u32::from(r) as usize].load(Ordering::SeqCst);
            assert_eq!(count(h2::Reason::REFUSED_STREAM), 2, "chunks of {chunk}");
            assert_eq!(count(h2::Reason::CANCEL), 1, "chunks of {chunk}");
        }
    }

    #[test]
    fn the_stream_limit_is_hidden_whatever_the_chunking() {
        // SETTINGS: HEADER_TABLE_SIZE 4096, MAX_CONCURRENT_STREAMS 4; then a DATA frame
        // whose payload looks like that setting, which must stay as it is.
        let settings = [0, 1, 0, 0, 16, 0, 0, 3, 0, 0, 0, 4];
        let mut wire = frame(SETTINGS, 0, 0, &settings);
        wire.extend(frame(0, 0, 1, &[0, 3, 0, 0, 0, 4]));
        let mut hidden = settings;
        hidden[7] = 0xff;
        let mut expected = frame(SETTINGS, 0, 0, &hidden);
        expected.extend(frame(0, 0, 1, &[0, 3, 0, 0, 0, 4]));
        for chunk in [1, 2, 5, 7, 9, 13, wire.len()] {
            let mut bytes = wire.clone();
            let mut scan = FrameScan {
                hide_limit: true,
                ..FrameScan::default()
            };
            for part in bytes.chunks_mut(chunk) {
                scan.feed(part, &Seen::default());
            }
            assert_eq!(bytes, expected, "chunks of {chunk}");
        }
    }
}
