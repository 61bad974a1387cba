//! The replay buffer of a streaming call under a retry or hedging policy (gRFC A6,
//! "Memory Management (Buffering)"): the request messages the call has sent, encoded
//! once and held as `Bytes`, so that a new attempt can send them again from the first.
//!
//! Each attempt has a writer (a task of its own) that sends the held messages from its
//! own position, and pulls the next message from the caller's stream when it is the
//! furthest along. A message that would take the call past its buffer limit (its own, or
//! the channel's) commits the call to the attempt that pulled it; so do the response
//! headers of an attempt. Once committed, the held messages that attempt has sent are
//! freed, later ones are freed as it sends them, and the other attempts' writers stop
//! (resetting their streams with `CANCEL`).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, ready};

use bytes::Bytes;
use futures_core::Stream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::status::Status;
use crate::stream::{COALESCE_BYTES, Sender, poll_source};

/// Default limit on the bytes one call may hold for replay (grpc-java's
/// `perRpcBufferLimit`, 1 MiB).
pub const DEFAULT_PER_RPC_BUFFER_LIMIT: usize = 1024 * 1024;
/// Default limit on the bytes all the calls of a channel may hold for replay
/// (grpc-java's `retryBufferSize`, 16 MiB).
pub const DEFAULT_RETRY_BUFFER_SIZE: usize = 16 * 1024 * 1024;

/// The channel-wide account of bytes held for replay.
#[derive(Debug)]
pub(crate) struct RetryBuffer {
    used: AtomicUsize,
    limit: usize,
}

impl RetryBuffer {
    pub(crate) fn new(limit: usize) -> RetryBuffer {
        RetryBuffer {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// Take `bytes` from the channel's allowance, if it has that much left.
    fn reserve(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&n| n <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Hold `bytes` of a call's one request message for its retries or hedges, if the
    /// call's limit and the channel's allowance admit them; given back on drop.
    pub(crate) fn hold(self: &Arc<Self>, bytes: usize, per_rpc_limit: usize) -> Option<Held> {
        (bytes <= per_rpc_limit && self.reserve(bytes)).then(|| Held {
            buffer: self.clone(),
            bytes,
        })
    }

    /// Bytes held for replay by all the channel's calls now.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// Bytes of the channel's retry buffer a unary or server-streaming call holds.
pub(crate) struct Held {
    buffer: Arc<RetryBuffer>,
    bytes: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.buffer.release(self.bytes);
    }
}

/// A call's request messages, already encoded (or the status their encoding failed with).
pub(crate) type Encoded = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

/// One call's replay buffer, shared by its attempts' writers.
pub(crate) struct Replay {
    state: Mutex<State>,
    /// The caller's messages; the writer holding it pulls the next one.
    source: tokio::sync::Mutex<Encoded>,
    /// Woken when a message is held, the messages end, or the call commits.
    changed: Notify,
    per_rpc_limit: usize,
    channel: Arc<RetryBuffer>,
}

struct State {
    /// Messages from index `base` on (those before were freed on commit).
    messages: VecDeque<Bytes>,
    base: usize,
    /// Bytes held and counted against the limits (zero once committed).
    held: usize,
    /// The end of the caller's messages: `OK`, or why they could not be sent.
    end: Option<Status>,
    /// Each writer's attempt and the index of the next message it sends.
    writers: Vec<(u32, usize)>,
    /// The writer (and its attempt) the call is committed to.
    committed: Option<(usize, u32)>,
}

/// What a writer is to do next.
enum Take {
    /// Messages were queued on its sender.
    Queued,
    /// Nothing held beyond its position: the next message is to be pulled.
    Empty,
    /// It has sent every message; the messages ended with this status.
    End(Status),
    /// The call is committed to another attempt.
    Gone,
}

impl Replay {
    pub(crate) fn new(
        source: Encoded,
        per_rpc_limit: usize,
        channel: Arc<RetryBuffer>,
    ) -> Arc<Replay> {
        Arc::new(Replay {
            state: Mutex::new(State {
                messages: VecDeque::new(),
                base: 0,
                held: 0,
                end: None,
                writers: Vec::new(),
                committed: None,
            }),
            source: tokio::sync::Mutex::new(source),
            changed: Notify::new(),
            per_rpc_limit,
            channel,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The attempt the call is committed to, if it is.
    pub(crate) fn committed(&self) -> Option<u32> {
        self.state().committed.map(|(_, attempt)| attempt)
    }

    /// Start a writer for `attempt` on `sender`, sending from the first message; `None`
    /// when the call is committed (the buffer no longer holds every message).
    pub(crate) fn writer(self: &Arc<Self>, attempt: u32, sender: Sender) -> Option<Writer> {
        let id = {
            let mut state = self.state();
            if state.committed.is_some() {
                return None;
            }
            state.writers.push((attempt, 0));
            state.writers.len() - 1
        };
        let task = tokio::spawn(write(self.clone(), id, sender));
        Some(Writer { id, task })
    }

    /// Commit the call to `writer`'s attempt (its response headers came): free what it
    /// has sent and stop the others. False when the call is committed to another
    /// attempt already (whose messages outgrew the buffer): this one's writer stopped.
    pub(crate) fn commit(&self, writer: &Writer) -> bool {
        let mut state = self.state();
        let committed = match state.committed {
            None => {
                self.commit_locked(&mut state, writer.id);
                true
            }
            Some((id, _)) => id == writer.id,
        };
        drop(state);
        self.changed.notify_waiters();
        committed
    }

    fn commit_locked(&self, state: &mut State, id: usize) {
        let (attempt, position) = state.writers[id];
        state.committed = Some((id, attempt));
        while state.base < position && state.messages.pop_front().is_some() {
            state.base += 1;
        }
        self.channel.release(state.held);
        state.held = 0;
        tracing::debug!(attempt, "streaming call committed");
    }

    /// Queue on `sender` the held messages after writer `id`'s position, up to a DATA
    /// frame's worth.
    fn take(&self, id: usize, sender: &mut Sender) -> Take {
        let mut state = self.state();
        let mine = match state.committed {
            Some((c, _)) if c != id => return Take::Gone,
            Some(_) => true,
            None => false,
        };
        let position = state.writers[id].1;
        let Some(from) = position.checked_sub(state.base) else {
            return Take::Gone;
        };
        let mut taken = 0;
        let mut bytes = 0;
        while bytes < COALESCE_BYTES {
            let Some(message) = state.messages.get(from + taken) else {
                break;
            };
            bytes += message.len();
            sender.push(message.clone());
            taken += 1;
        }
        if taken == 0 {
            return match &state.end {
                Some(end) => Take::End(end.clone()),
                None => Take::Empty,
            };
        }
        state.writers[id].1 += taken;
        if mine {
            // Committed: what this writer has sent is needed no more.
            for _ in 0..taken {
                state.messages.pop_front();
            }
            state.base += taken;
        }
        Take::Queued
    }

    /// Hold the message writer `id` pulled (or the end of the messages). A message past
    /// the call's or the channel's limit commits the call to that writer's attempt.
    fn hold(&self, id: usize, next: Option<Result<Bytes, Status>>) {
        let mut state = self.state();
        match next {
            Some(Ok(message)) => {
                if state.committed.is_none() {
                    let len = message.len();
                    let fits = state.held.saturating_add(len) <= self.per_rpc_limit
                        && self.channel.reserve(len);
                    if fits {
                        state.held += len;
                    } else {
                        tracing::debug!(
                            held = state.held,
                            len,
                            "request messages outgrow the retry buffer"
                        );
                        self.commit_locked(&mut state, id);
                    }
                }
                state.messages.push_back(message);
            }
            Some(Err(status)) => state.end = Some(status),
            None => state.end = Some(Status::ok()),
        }
        drop(state);
        self.changed.notify_waiters();
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        let held = self.state().held;
        self.channel.release(held);
    }
}

/// One attempt's writer task; dropping it stops the task (and so resets its stream,
/// once the attempt's response side is gone too).
pub(crate) struct Writer {
    id: usize,
    task: JoinHandle<()>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a writer waiting for the next message saw first.
enum Woke {
    Pulled(Option<Result<Bytes, Status>>),
    Changed,
    Reset,
}

/// Send the call's messages on one attempt's stream, from the first, then END_STREAM.
async fn write(replay: Arc<Replay>, id: usize, mut sender: Sender) {
    loop {
        let mut changed = pin!(replay.changed.notified());
        changed.as_mut().enable();
        match replay.take(id, &mut sender) {
            Take::Queued => {
                if sender.send_queued(false).await.is_err() {
                    return;
                }
            }
            Take::End(status) if status.is_ok() => {
                let _ = sender.send_queued(true).await;
                return;
            }
            Take::End(status) => {
                tracing::warn!(%status, "request message not sent; cancelling the call");
                sender.reset(h2::Reason::CANCEL);
                return;
            }
            Take::Gone => {
                sender.reset(h2::Reason::CANCEL);
                return;
            }
            Take::Empty => {
                // Become the writer that pulls the next message (waiting, if another
                // one is pulling, for either its message or the lock), while watching
                // for this stream's reset and for the call committing elsewhere.
                let mut lock = pin!(replay.source.lock());
                let mut source = None;
                let woke = poll_fn(|cx| {
                    if sender.poll_reset(cx).is_ready() {
                        return Poll::Ready(Woke::Reset);
                    }
                    if changed.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Woke::Changed);
                    }
                    let source = match &mut source {
                        Some(source) => source,
                        None => source.insert(ready!(lock.as_mut().poll(cx))),
                    };
                    poll_source(source.as_mut(), cx).map(Woke::Pulled)
                })
                .await;
                match woke {
                    Woke::Pulled(next) => replay.hold(id, next),
                    Woke::Changed => {}
                    Woke::Reset => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(per_rpc: usize, channel: &Arc<RetryBuffer>, messages: Vec<Bytes>) -> Arc<Replay> {
        let source = futures_util::stream::iter(messages.into_iter().map(Ok));
        Replay::new(Box::pin(source), per_rpc, channel.clone())
    }

    #[test]
    fn held_messages_count_against_both_limits_and_commit_frees_them() {
        let channel = Arc::new(RetryBuffer::new(100));
        let r = replay(30, &channel, vec![]);
        r.state().writers.push((0, 0));
        r.hold(0, Some(Ok(Bytes::from(vec![1; 20]))));
        assert_eq!((channel.used(), r.committed()), (20, None));
        // 20 + 20 > 30: the call commits to the puller; nothing counted any more.
        r.hold(0, Some(Ok(Bytes::from(vec![2; 20]))));
        assert_eq!((channel.used(), r.committed()), (0, Some(0)));
        assert_eq!(r.state().messages.len(), 2, "still to be sent once");
        r.hold(0, None);
        assert!(r.state().end.as_ref().is_some_and(Status::is_ok));
    }

    #[test]
    fn the_channel_limit_commits_a_call_that_fits_its_own() {
        let channel = Arc::new(RetryBuffer::new(50));
        let a = replay(1000, &channel, vec![]);
        let b = replay(1000, &channel, vec![]);
        a.state().writers.push((0, 0));
        b.state().writers.push((2, 0));
        a.hold(0, Some(Ok(Bytes::from(vec![0; 40]))));
        b.hold(0, Some(Ok(Bytes::from(vec![0; 20]))));
        assert_eq!((a.committed(), b.committed()), (None, Some(2)));
        assert_eq!(channel.used(), 40);
        drop(a);
        assert_eq!(channel.used(), 0, "a dropped call gives its bytes back");
    }
}
