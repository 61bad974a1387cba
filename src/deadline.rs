//! `Deadline`: a call's deadline on either side. It owns the timer, and the one rule
//! that turns what a deadline causes into `DEADLINE_EXCEEDED`: a cancellation seen
//! once the deadline has passed is the deadline's doing (the peer gave up on it).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::status::{Code, Status};

/// A call's deadline, or none. The timer is allocated only when there is a deadline.
#[derive(Debug, Default)]
pub(crate) struct Deadline {
    timer: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    /// No deadline.
    pub(crate) fn none() -> Deadline {
        Deadline { timer: None }
    }

    /// The deadline `timeout` from now, if any.
    pub(crate) fn after(timeout: Option<Duration>) -> Deadline {
        Deadline::at(timeout.map(|t| Instant::now() + t))
    }

    /// The deadline at `instant`, if any.
    pub(crate) fn at(instant: Option<Instant>) -> Deadline {
        Deadline {
            timer: instant.map(|at| Box::pin(tokio::time::sleep_until(at))),
        }
    }

    /// Whether there is a deadline.
    pub(crate) fn is_set(&self) -> bool {
        self.timer.is_some()
    }

    /// `Ready` once the deadline has passed (never, without one).
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.timer {
            Some(timer) => timer.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }

    /// Whether the deadline has passed.
    pub(crate) fn is_expired(&self) -> bool {
        self.timer
            .as_ref()
            .is_some_and(|t| t.is_elapsed() || Instant::now() >= t.deadline())
    }

    /// `status` as the caller should see it: a `CANCELLED` that arrives once the deadline
    /// has passed is `DEADLINE_EXCEEDED`, as the spec says; anything else is unchanged.
    pub(crate) fn explain(&self, status: Status) -> Status {
        if status.code() == Code::Cancelled && self.is_expired() {
            Status::deadline_exceeded(format!("deadline exceeded ({})", status.message()))
        } else {
            status
        }
    }

    /// Run `work` until it ends or the deadline passes (then `expired()`), explaining
    /// its error by [`Deadline::explain`].
    pub(crate) async fn run<T>(
        &mut self,
        work: impl Future<Output = Result<T, Status>>,
        expired: impl FnOnce() -> Status,
    ) -> Result<T, Status> {
        if !self.is_set() {
            return work.await;
        }
        let mut work = std::pin::pin!(work);
        let outcome = std::future::poll_fn(|cx| {
            if let Poll::Ready(result) = work.as_mut().poll(cx) {
                return Poll::Ready(Some(result));
            }
            self.poll_expired(cx).map(|()| None)
        })
        .await;
        match outcome {
            Some(Err(status)) => Err(self.explain(status)),
            Some(ok) => ok,
            None => Err(expired()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_cancellation_after_the_deadline_is_the_deadline() {
        let d = Deadline::after(Some(Duration::from_millis(10)));
        let cancelled = || Status::cancelled("stream reset");
        assert_eq!(d.explain(cancelled()).code(), Code::Cancelled);
        tokio::time::sleep(Duration::from_millis(11)).await;
        assert!(d.is_expired());
        assert_eq!(d.explain(cancelled()).code(), Code::DeadlineExceeded);
        assert_eq!(d.explain(Status::internal("x")).code(), Code::Internal);
        let never = std::future::pending::<Result<(), Status>>();
        let mut d = Deadline::after(Some(Duration::from_millis(5)));
        let r = d.run(never, || Status::deadline_exceeded("late")).await;
        assert_eq!(r.unwrap_err().code(), Code::DeadlineExceeded);
        assert!(!Deadline::none().is_expired());
        assert_eq!(
            Deadline::none().explain(cancelled()).code(),
            Code::Cancelled
        );
    }
}
