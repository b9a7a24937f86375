//! Waiting on several futures: [`Client::wait`] (all, or the first, with a
//! timeout) and [`Client::as_completed`] (a blocking iterator in completion
//! order). A cancelled future counts as completed, so cancelling from another
//! thread always ends a wait.

use std::any::Any;
use std::sync::mpsc;
use std::time::Duration;

use tokio::task::JoinSet;

use futures_core::Stream as _;

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
        let waiters = waiters_of(futures, return_when)?;
        if let Some(waiters) = waiters {
            inner.wait_on(wait_for(waiters, futures.len(), timeout, return_when))??;
        }
        split_done(futures, return_when)
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

/// The waiters of `futures` not done yet, or `None` if `return_when` is
/// met already.
pub(crate) fn waiters_of<T>(
    futures: &[Future<T>],
    return_when: ReturnWhen,
) -> Result<Option<Vec<tokio::sync::oneshot::Receiver<crate::client::Reported>>>> {
    let mut waiters = Vec::new();
    let mut any_done = futures.is_empty();
    for f in futures {
        match f.inner.outcome_or_waiter(&f.key)? {
            Ok(_) => any_done = true,
            Err(rx) => waiters.push(rx),
        }
    }
    let satisfied = match return_when {
        ReturnWhen::AllCompleted => waiters.is_empty(),
        ReturnWhen::FirstCompleted => any_done,
    };
    Ok((!satisfied).then_some(waiters))
}

/// Waits until all (or the first) of `waiters` fire, or `timeout`.
pub(crate) async fn wait_for(
    waiters: Vec<tokio::sync::oneshot::Receiver<crate::client::Reported>>,
    n: usize,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> Result<()> {
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
        Some(limit) => tokio::time::timeout(limit, condition)
            .await
            .map_err(|_| Error::Timeout {
                what: format!("waiting for {n} futures"),
                seconds: limit.as_secs_f64(),
            }),
    }
}

/// The futures split by whether they are done; with `AllCompleted`, one not
/// done means its waiter ended without a report: the connection is gone.
pub(crate) fn split_done<T>(
    futures: &[Future<T>],
    return_when: ReturnWhen,
) -> Result<DoneAndNotDone<T>> {
    let (done, not_done): (Vec<_>, Vec<_>) = futures.iter().cloned().partition(|f| f.done());
    if return_when == ReturnWhen::AllCompleted {
        if let Some(f) = not_done.first() {
            return Err(f.inner.lost());
        }
    }
    Ok(DoneAndNotDone { done, not_done })
}

/// [`Client::as_completed`] as an async [`Stream`](futures_core::Stream)
/// (see [`as_completed_stream`]).
impl Client {
    /// Yields `futures` as they finish, as a [`futures_core::Stream`] for
    /// async code: [`as_completed_stream`].
    pub fn as_completed_stream<T: Send + 'static>(
        &self,
        futures: Vec<Future<T>>,
    ) -> AsCompletedStream<T> {
        as_completed_stream(futures)
    }
}

/// Yields `futures` (of any clients) as they finish, fail or are cancelled,
/// in completion order, as a [`futures_core::Stream`]; it ends once every
/// future was yielded. Never blocks: each future is watched by a small task
/// on its client's runtime. If a scheduler connection is lost, its futures
/// are yielded at once (their results give the error).
/// [`AsCompletedStream::with_results`] yields each with its result.
pub fn as_completed_stream<T: Send + 'static>(futures: Vec<Future<T>>) -> AsCompletedStream<T> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut slots = Vec::with_capacity(futures.len());
    for (i, f) in futures.into_iter().enumerate() {
        match f.inner.outcome_or_waiter(&f.key) {
            Ok(Err(waiter)) => {
                let tx = tx.clone();
                f.inner.spawn(async move {
                    let _ = waiter.await;
                    let _ = tx.send(i);
                });
            }
            // Done already, or its connection is gone.
            Ok(Ok(_)) | Err(_) => {
                let _ = tx.send(i);
            }
        }
        slots.push(Some(f));
    }
    AsCompletedStream {
        remaining: slots.len(),
        slots,
        rx,
    }
}

/// The stream of [`as_completed_stream`] and
/// [`AsyncClient::as_completed`](crate::AsyncClient::as_completed).
pub struct AsCompletedStream<T> {
    slots: Vec<Option<Future<T>>>,
    remaining: usize,
    rx: tokio::sync::mpsc::UnboundedReceiver<usize>,
}

impl<T> std::fmt::Debug for AsCompletedStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AsCompletedStream({} remaining)", self.remaining)
    }
}

impl<T> AsCompletedStream<T> {
    /// Futures not yielded yet.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// The next finished future (`None` once all were yielded): the
    /// stream's `next` without `futures_util::StreamExt`.
    pub async fn next(&mut self) -> Option<Future<T>> {
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Yields each future with its result (`Err` items for failed,
    /// cancelled or lost ones), fetched on its client's runtime.
    pub fn with_results(self) -> ResultsStream<T> {
        ResultsStream {
            inner: self,
            fetching: None,
        }
    }

    fn take(&mut self, i: usize) -> Option<Future<T>> {
        let f = self.slots.get_mut(i).and_then(Option::take);
        if f.is_some() {
            self.remaining -= 1;
        }
        f
    }
}

impl<T> Unpin for AsCompletedStream<T> {}

impl<T> futures_core::Stream for AsCompletedStream<T> {
    type Item = Future<T>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Future<T>>> {
        use std::task::Poll;
        loop {
            if self.remaining == 0 {
                return Poll::Ready(None);
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(i)) => {
                    if let Some(f) = self.take(i) {
                        return Poll::Ready(Some(f));
                    }
                }
                Poll::Ready(None) => {
                    // A client's runtime stopped: what is left comes at once.
                    let i = self.slots.iter().position(Option::is_some);
                    return Poll::Ready(i.and_then(|i| self.take(i)));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

/// The stream of [`AsCompletedStream::with_results`]: each future with its
/// result, in completion order.
pub struct ResultsStream<T> {
    inner: AsCompletedStream<T>,
    fetching: Option<Fetching<T>>,
}

type Fetching<T> = (
    Future<T>,
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send>>,
);

impl<T> Unpin for ResultsStream<T> {}

impl<T: Any + Clone + Send + Sync> ResultsStream<T> {
    /// The next finished future with its result (`None` once all were
    /// yielded): the stream's `next` without `futures_util::StreamExt`.
    pub async fn next(&mut self) -> Option<(Future<T>, Result<T>)> {
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<T: Any + Clone + Send + Sync> futures_core::Stream for ResultsStream<T> {
    type Item = (Future<T>, Result<T>);

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        loop {
            if let Some((_, fetch)) = &mut self.fetching {
                let result = std::task::ready!(fetch.as_mut().poll(cx));
                let (future, _) = self.fetching.take().expect("just polled");
                return Poll::Ready(Some((future, result)));
            }
            let next = std::task::ready!(std::pin::Pin::new(&mut self.inner).poll_next(cx));
            let Some(future) = next else {
                return Poll::Ready(None);
            };
            let inner = future.inner.clone();
            let fetch = crate::futures::fetch_result::<T>(inner.clone(), future.key.clone());
            let fetch =
                Box::pin(async move { crate::async_client::on_runtime(&inner, fetch).await });
            self.fetching = Some((future, fetch));
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.inner.remaining + usize::from(self.fetching.is_some());
        (n, Some(n))
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
