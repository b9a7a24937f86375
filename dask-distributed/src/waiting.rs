//! Waiting on several futures: [`Client::wait`] (all, or the first, with a
//! timeout) and [`Client::as_completed`] (a blocking iterator in completion
//! order). A cancelled future counts as completed, so cancelling from another
//! thread always ends a wait.

use std::any::Any;
use std::sync::mpsc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::{Client, Error, Future, Result};

/// When [`Client::wait`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnWhen {
    /// Once every future is done.
    AllCompleted,
    /// Once at least one future is done.
    FirstCompleted,
}

/// The futures of a [`Client::wait`], split by whether they were done when it
/// returned (clones of the futures given, in their order).
#[derive(Debug)]
pub struct DoneAndNotDone<T> {
    /// Finished, failed or cancelled.
    pub done: Vec<Future<T>>,
    /// Still pending.
    pub not_done: Vec<Future<T>>,
}

impl Client {
    /// Waits until all (or the first) of `futures` are done, like
    /// `distributed.wait`. With a `timeout`, gives [`Error::Timeout`] if the
    /// condition is not met in time; without one, waits as long as it takes
    /// (cancelling a future from another thread ends the wait).
    pub fn wait<T>(
        &self,
        futures: &[Future<T>],
        timeout: Option<Duration>,
        return_when: ReturnWhen,
    ) -> Result<DoneAndNotDone<T>> {
        let inner = self.inner().clone();
        let mut waiters = Vec::new();
        let mut any_done = futures.is_empty();
        for f in futures {
            match inner.outcome_or_waiter(&f.key)? {
                Ok(_) => any_done = true,
                Err(rx) => waiters.push(rx),
            }
        }
        let satisfied = match return_when {
            ReturnWhen::AllCompleted => waiters.is_empty(),
            ReturnWhen::FirstCompleted => any_done,
        };
        if !satisfied {
            inner.wait_on(async move {
                let mut set = JoinSet::new();
                for rx in waiters {
                    set.spawn(async move {
                        let _ = rx.await;
                    });
                }
                let condition = async {
                    match return_when {
                        ReturnWhen::AllCompleted => while set.join_next().await.is_some() {},
                        ReturnWhen::FirstCompleted => {
                            set.join_next().await;
                        }
                    }
                };
                match timeout {
                    None => {
                        condition.await;
                        Ok(())
                    }
                    Some(limit) => {
                        tokio::time::timeout(limit, condition)
                            .await
                            .map_err(|_| Error::Timeout {
                                what: format!("waiting for {} futures", futures.len()),
                                seconds: limit.as_secs_f64(),
                            })
                    }
                }
            })??;
        }
        let (done, not_done) = futures.iter().cloned().partition(|f| f.done());
        let result = DoneAndNotDone { done, not_done };
        if return_when == ReturnWhen::AllCompleted && !result.not_done.is_empty() {
            // A waiter ended without a report: the scheduler connection is gone.
            return Err(inner.lost());
        }
        Ok(result)
    }

    /// Yields `futures` as they finish (fail, or are cancelled), like
    /// `distributed.as_completed`. Blocking: iterate from a plain thread.
    /// If the scheduler connection is lost, the remaining futures are yielded
    /// at once (their results give the error).
    pub fn as_completed<T: Send + 'static>(
        &self,
        futures: Vec<Future<T>>,
    ) -> Result<AsCompleted<T>> {
        let inner = self.inner().clone();
        let (tx, rx) = mpsc::channel();
        let mut slots = Vec::with_capacity(futures.len());
        for (i, f) in futures.into_iter().enumerate() {
            match inner.outcome_or_waiter(&f.key)? {
                Ok(_) => {
                    let _ = tx.send(i);
                }
                Err(waiter) => {
                    let tx = tx.clone();
                    inner.spawn(async move {
                        let _ = waiter.await;
                        let _ = tx.send(i);
                    });
                }
            }
            slots.push(Some(f));
        }
        Ok(AsCompleted {
            remaining: slots.len(),
            slots,
            rx,
            inner,
        })
    }
}

/// Iterator of [`Client::as_completed`].
pub struct AsCompleted<T> {
    slots: Vec<Option<Future<T>>>,
    remaining: usize,
    rx: mpsc::Receiver<usize>,
    /// The client, for the error when its connection is gone.
    inner: std::sync::Arc<crate::client::Inner>,
}

impl<T> AsCompleted<T> {
    /// The next finished future, waiting at most `limit`: `Ok(None)` once
    /// every future was yielded, [`Error::Timeout`] if none finished in time.
    pub fn next_timeout(&mut self, limit: Duration) -> Result<Option<Future<T>>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let _seceded = crate::worker_client::WaitGuard::enter();
        match self.rx.recv_timeout(limit) {
            Ok(i) => Ok(self.take(i)),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::Timeout {
                what: "the next completed future".into(),
                seconds: limit.as_secs_f64(),
            }),
            // Every waiter gone without a word: the client's connection
            // (and its runtime) ended.
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(if self.inner.is_closed() {
                self.inner.lost()
            } else {
                Error::Closed
            }),
        }
    }

    /// Futures not yielded yet.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// Yields each future with its result.
    pub fn with_results(self) -> WithResults<T> {
        WithResults(self)
    }

    fn take(&mut self, i: usize) -> Option<Future<T>> {
        let f = self.slots.get_mut(i).and_then(Option::take);
        if f.is_some() {
            self.remaining -= 1;
        }
        f
    }
}

impl<T> Iterator for AsCompleted<T> {
    type Item = Future<T>;

    fn next(&mut self) -> Option<Future<T>> {
        if self.remaining == 0 {
            return None;
        }
        // Senders live until each future is yielded (or the client's runtime
        // stops, which ends the iteration).
        let _seceded = crate::worker_client::WaitGuard::enter();
        let i = self.rx.recv().ok()?;
        self.take(i)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

/// Iterator of [`AsCompleted::with_results`]: each future with its result.
pub struct WithResults<T>(AsCompleted<T>);

impl<T: Any + Clone + Send + Sync> Iterator for WithResults<T> {
    type Item = (Future<T>, Result<T>);

    fn next(&mut self) -> Option<Self::Item> {
        let f = self.0.next()?;
        let r = f.result();
        Some((f, r))
    }
}
