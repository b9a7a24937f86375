//! Futures: [`Client::submit`] runs a function on the cluster now and returns a
//! [`Future`] at once; its value stays on a worker until asked for, and other
//! submits can take it as an argument without it coming back to the client.

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use dask_core::op::IntoOp;
use dask_core::{Arg, Key, Task, Value};

use crate::client::{Inner, NewTask, Reported};
use crate::{Client, Error, Result, SubmitOptions};

/// Where a [`Future`]'s task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FutureStatus {
    /// Not finished yet (waiting, queued or running).
    Pending,
    /// The value is in memory on a worker.
    Finished,
    /// The task, or one it depends on, failed.
    Error,
    /// The task was cancelled ([`Future::cancel`]).
    Cancelled,
}

/// A value being computed on the cluster, like Dask's `Future`.
///
/// Holding a future keeps its value on the cluster; when the last clone is
/// dropped, the scheduler forgets it.
pub struct Future<T> {
    pub(crate) key: Key,
    pub(crate) inner: Arc<Inner>,
    pub(crate) _type: PhantomData<fn() -> T>,
}

impl<T> Future<T> {
    /// The key of the task.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The current status, without waiting.
    pub fn status(&self) -> FutureStatus {
        match self.inner.outcome(&self.key) {
            None => FutureStatus::Pending,
            Some(Reported::Memory) => FutureStatus::Finished,
            Some(Reported::Erred(_)) => FutureStatus::Error,
            Some(Reported::Cancelled) => FutureStatus::Cancelled,
        }
    }

    /// Whether the task has finished (with a value or an error) or was cancelled.
    pub fn done(&self) -> bool {
        self.status() != FutureStatus::Pending
    }

    /// Cancels the task: the status becomes [`FutureStatus::Cancelled`] at
    /// once, [`result`](Future::result) gives [`Error::Cancelled`], and the
    /// scheduler releases the task and its dependents (unless another client
    /// also holds them: then only this client lets go).
    pub fn cancel(&self) -> Result<()> {
        self.inner.cancel(vec![self.key.clone()])
    }

    /// Reruns the task if it erred, with the erred tasks it depends on, like
    /// Dask's `Future.retry`; the status is pending again. Does nothing to a
    /// task that did not err.
    pub fn retry(&self) -> Result<()> {
        self.inner.retry(vec![self.key.clone()])
    }
}

impl<T: Any + Clone + Send + Sync> Future<T> {
    /// Waits for the value and brings it to this process. A failed task gives
    /// the same typed error a local scheduler would
    /// ([`dask_core::Error::TaskFailed`]); a lost scheduler gives an error too,
    /// never a hang. Blocking: from async code, `.await` the future instead.
    pub fn result(&self) -> Result<T> {
        self.inner
            .look_before_sleep(&self.key, std::time::Duration::MAX);
        self.inner
            .wait_on(fetch_result::<T>(self.inner.clone(), self.key.clone()))?
    }

    /// [`result`](Future::result), giving [`Error::Timeout`] if the value is
    /// not here within `limit` (a task waiting for a worker that never comes,
    /// say). The task keeps running; ask again later.
    pub fn result_timeout(&self, limit: std::time::Duration) -> Result<T> {
        self.inner.look_before_sleep(&self.key, limit);
        let fetch = fetch_result::<T>(self.inner.clone(), self.key.clone());
        self.inner
            .wait_on(async move { tokio::time::timeout(limit, fetch).await })?
            .map_err(|_| Error::Timeout {
                what: format!("the result of {}", self.key),
                seconds: limit.as_secs_f64(),
            })?
    }
}

pub(crate) async fn fetch_result<T: Any + Clone + Send + Sync>(
    inner: Arc<Inner>,
    key: Key,
) -> Result<T> {
    Ok(fetch_value(inner, key).await?.take::<T>()?)
}

/// Waits for `key`'s report, then brings its value here.
pub(crate) async fn fetch_value(inner: Arc<Inner>, key: Key) -> Result<Value> {
    let outcome = match inner.outcome_or_waiter(&key)? {
        Ok(outcome) => outcome,
        Err(waiter) => waiter.await.map_err(|_| inner.lost())?,
    };
    match outcome {
        Reported::Erred(e) => return Err(inner.task_error(e)),
        Reported::Cancelled => return Err(Error::Cancelled { key }),
        Reported::Memory => {}
    }
    let mut values = inner.gather(std::slice::from_ref(&key)).await?;
    values.remove(&key).ok_or_else(|| Error::Malformed {
        what: "gather",
        detail: format!("no value for {key}"),
    })
}

/// `map` takes no explicit key.
pub(crate) fn check_map_options(options: &SubmitOptions) -> Result<()> {
    if options.key.is_some() {
        return Err(Error::InvalidConfig {
            message: "map got an explicit key, but every task needs its own: \
                      leave `key` out (keys are then computed per input)"
                .into(),
        });
    }
    Ok(())
}

/// The gathered values of `keys`, in order, as `T`s (a key listed twice is
/// cloned, its last use takes the value).
pub(crate) fn take_gathered<T: Any + Clone + Send + Sync>(
    keys: &[Key],
    mut values: HashMap<Key, Value>,
) -> Result<Vec<T>> {
    let mut left: HashMap<&Key, usize> = HashMap::new();
    for k in keys {
        *left.entry(k).or_default() += 1;
    }
    keys.iter()
        .map(|k| {
            let n = left.get_mut(k).map_or(0, |n| {
                *n -= 1;
                *n
            });
            let value = if n == 0 {
                values.remove(k)
            } else {
                values.get(k).cloned()
            };
            let value = value.ok_or_else(|| Error::Malformed {
                what: "gather",
                detail: format!("no value for {k}"),
            })?;
            Ok(value.take::<T>()?)
        })
        .collect()
}

/// Waits for the reports of `keys` (one wake for the whole batch; the first
/// failure in the list is the error), then brings all their values here in
/// one batch.
pub(crate) async fn gather_values(
    inner: Arc<Inner>,
    keys: Vec<Key>,
) -> Result<HashMap<Key, Value>> {
    loop {
        let (outcomes, waiter) = inner.outcomes_or_batch_waiter(&keys)?;
        for (key, outcome) in keys.iter().zip(&outcomes) {
            match outcome {
                Some(Reported::Erred(e)) => return Err(inner.task_error(e.clone())),
                Some(Reported::Cancelled) => return Err(Error::Cancelled { key: key.clone() }),
                Some(Reported::Memory) | None => {}
            }
        }
        match waiter {
            // Woken: every key in memory, or one failed (read again above).
            Some(waiter) => waiter.await.map_err(|_| inner.lost())?,
            None => break,
        }
    }
    let mut unique = keys;
    unique.sort();
    unique.dedup();
    inner.gather(&unique).await
}

/// `fut.await` (or `(&fut).await`) inside a tokio runtime gives the value
/// without blocking the runtime; the future stays usable afterwards. The
/// wait and the transfer run on the client's own runtime.
impl<'a, T: Any + Clone + Send + Sync> std::future::IntoFuture for &'a Future<T> {
    type Output = Result<T>;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        let inner = self.inner.clone();
        let fetch = fetch_result::<T>(inner.clone(), self.key.clone());
        Box::pin(async move { crate::async_client::on_runtime(&inner, fetch).await })
    }
}

/// `fut.await` consuming the future.
impl<T: Any + Clone + Send + Sync> std::future::IntoFuture for Future<T> {
    type Output = Result<T>;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let fetch = fetch_result::<T>(self.inner.clone(), self.key.clone());
            let value = crate::async_client::on_runtime(&self.inner, fetch).await;
            drop(self);
            value
        })
    }
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        self.inner.retain(&self.key);
        Future {
            key: self.key.clone(),
            inner: self.inner.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> Drop for Future<T> {
    fn drop(&mut self) {
        self.inner.release(std::slice::from_ref(&self.key));
    }
}

impl<T> std::fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Future({}, {:?})", self.key, self.status())
    }
}

/// One argument of [`Client::submit`]: a plain value of the parameter's type,
/// or a `&Future` of it (the value stays on the cluster).
pub trait IntoSubmitArg<T> {
    /// The task argument and, for a future, the key it depends on.
    fn into_submit_arg(self) -> (Arg, Option<Key>);
}

impl<T: Any + Send + Sync> IntoSubmitArg<T> for T {
    fn into_submit_arg(self) -> (Arg, Option<Key>) {
        (Arg::Value(Value::new(self)), None)
    }
}

impl<T> IntoSubmitArg<T> for &Future<T> {
    fn into_submit_arg(self) -> (Arg, Option<Key>) {
        (Arg::Key(self.key.clone()), Some(self.key.clone()))
    }
}

/// A future of `T` for a parameter of type [`Shared<T>`](dask_core::value::Shared):
/// the task reads the value in place on the worker, without a copy.
impl<T> IntoSubmitArg<dask_core::value::Shared<T>> for &Future<T> {
    fn into_submit_arg(self) -> (Arg, Option<Key>) {
        (Arg::Key(self.key.clone()), Some(self.key.clone()))
    }
}

/// A tuple of [`IntoSubmitArg`]s matching a function's argument tuple.
pub trait SubmitArgs<Args> {
    /// The arguments, in order.
    fn into_submit_args(self) -> Vec<(Arg, Option<Key>)>;
}

macro_rules! submit_args {
    ($(($($n:tt $a:ident $x:ident),*))*) => {$(
        impl<$($a, $x: IntoSubmitArg<$a>,)*> SubmitArgs<($($a,)*)> for ($($x,)*) {
            #[allow(clippy::unused_unit)]
            fn into_submit_args(self) -> Vec<(Arg, Option<Key>)> {
                vec![$(self.$n.into_submit_arg()),*]
            }
        }
    )*};
}
submit_args! {
    ()
    (0 A0 X0)
    (0 A0 X0, 1 A1 X1)
    (0 A0 X0, 1 A1 X1, 2 A2 X2)
    (0 A0 X0, 1 A1 X1, 2 A2 X2, 3 A3 X3)
}

impl Client {
    /// Runs `f(args)` on the cluster and returns a future at once, like
    /// `client.submit(f, *args)`. Arguments are plain values or `&Future`s.
    /// Pure by default, as in Dask: the same registered op on the same
    /// encodable arguments gets the same key and runs once (see
    /// [`SubmitOptions`] for this and the other options).
    ///
    /// On worker processes `f` must be registered
    /// ([`register_op!`](dask_core::register_op)); with in-process workers
    /// ([`Client::new`]) closures work too.
    pub fn submit<F, M, X>(&self, f: F, args: X) -> Result<Future<F::Output>>
    where
        F: IntoOp<M>,
        X: SubmitArgs<F::Args>,
    {
        self.submit_with(f, args, &SubmitOptions::default())
    }

    /// [`submit`](Client::submit) with options: purity, priority, retries,
    /// worker restrictions, an explicit key.
    ///
    /// Errors: [`Error::UnknownWorker`] if a `workers` address names no
    /// connected worker; an unregistered op or an argument without a codec on
    /// a cluster of other processes is refused before anything is sent.
    pub fn submit_with<F, M, X>(
        &self,
        f: F,
        args: X,
        options: &SubmitOptions,
    ) -> Result<Future<F::Output>>
    where
        F: IntoOp<M>,
        X: SubmitArgs<F::Args>,
    {
        if let Some(addrs) = &options.workers {
            self.inner().block_on(self.inner().check_workers(addrs))??;
        }
        self.submit_checked(f, args, options)
    }

    /// [`submit_with`](Client::submit_with) after the `workers` check.
    pub(crate) fn submit_checked<F, M, X>(
        &self,
        f: F,
        args: X,
        options: &SubmitOptions,
    ) -> Result<Future<F::Output>>
    where
        F: IntoOp<M>,
        X: SubmitArgs<F::Args>,
    {
        let task = self.new_task(f, args, options)?;
        let key = task.key.clone();
        self.inner()
            .submit_tasks(vec![task], &options.task_options())?;
        Ok(self.future_of(key))
    }

    /// The task of a call, named by `options`; a cancelled future as an
    /// argument is refused.
    fn new_task<F, M, X>(&self, f: F, args: X, options: &SubmitOptions) -> Result<NewTask>
    where
        F: IntoOp<M>,
        X: SubmitArgs<F::Args>,
    {
        let op = f.into_op();
        let mut task_args = Vec::new();
        let mut dependencies: Vec<Key> = Vec::new();
        for (arg, dep) in args.into_submit_args() {
            task_args.push(arg);
            if let Some(dep) = dep {
                if !dependencies.contains(&dep) {
                    dependencies.push(dep);
                }
            }
        }
        if let Some(dep) = dependencies
            .iter()
            .find(|d| self.inner().outcome(d) == Some(Reported::Cancelled))
        {
            return Err(Error::Cancelled { key: dep.clone() });
        }
        let key = options.key_for(&*op, &task_args);
        Ok(NewTask {
            key,
            task: Task::new(op, task_args),
            dependencies,
        })
    }

    /// A future for a key just submitted (its count is already taken).
    pub(crate) fn future_of<T>(&self, key: Key) -> Future<T> {
        Future {
            key,
            inner: self.inner().clone(),
            _type: PhantomData,
        }
    }

    /// Submits `f(x)` for every `x`, like `client.map(f, xs)`: one future each.
    pub fn map<F, M, A, I>(&self, f: F, inputs: I) -> Result<Vec<Future<F::Output>>>
    where
        F: IntoOp<M, Args = (A,)> + Clone,
        A: Any + Send + Sync,
        I: IntoIterator<Item = A>,
    {
        self.map_with(f, inputs, &SubmitOptions::default())
    }

    /// [`map`](Client::map) with options for every task. An explicit `key`
    /// is refused ([`Error::InvalidConfig`]): every task needs its own.
    pub fn map_with<F, M, A, I>(
        &self,
        f: F,
        inputs: I,
        options: &SubmitOptions,
    ) -> Result<Vec<Future<F::Output>>>
    where
        F: IntoOp<M, Args = (A,)> + Clone,
        A: Any + Send + Sync,
        I: IntoIterator<Item = A>,
    {
        check_map_options(options)?;
        if let Some(addrs) = &options.workers {
            self.inner().block_on(self.inner().check_workers(addrs))??;
        }
        self.map_checked(f, inputs, options)
    }

    /// [`map_with`](Client::map_with) after the key and `workers` checks.
    pub(crate) fn map_checked<F, M, A, I>(
        &self,
        f: F,
        inputs: I,
        options: &SubmitOptions,
    ) -> Result<Vec<Future<F::Output>>>
    where
        F: IntoOp<M, Args = (A,)> + Clone,
        A: Any + Send + Sync,
        I: IntoIterator<Item = A>,
    {
        // One message for the whole batch.
        let tasks = inputs
            .into_iter()
            .map(|x| self.new_task(f.clone(), (x,), options))
            .collect::<Result<Vec<_>>>()?;
        let keys: Vec<Key> = tasks.iter().map(|t| t.key.clone()).collect();
        self.inner().submit_tasks(tasks, &options.task_options())?;
        Ok(keys.into_iter().map(|k| self.future_of(k)).collect())
    }

    /// The values of several futures, in order, like `client.gather(futures)`
    /// (with Dask's `errors="raise"`): the first future in the list that
    /// failed gives its task's error ([`dask_core::Error::TaskFailed`]), a
    /// cancelled one [`Error::Cancelled`].
    ///
    /// Batched: one wait for every report, one who-has question for all keys,
    /// and one data request per holding worker, sent to all of them at once
    /// (in-process workers hand their values over without copying). A value
    /// lost with its worker meanwhile is waited for while the scheduler
    /// recomputes it.
    pub fn gather<T: Any + Clone + Send + Sync>(&self, futures: &[Future<T>]) -> Result<Vec<T>> {
        // Futures of another client go through their own connection.
        if futures.iter().any(|f| !Arc::ptr_eq(&f.inner, self.inner())) {
            return futures.iter().map(Future::result).collect();
        }
        let keys: Vec<Key> = futures.iter().map(|f| f.key.clone()).collect();
        let inner = self.inner().clone();
        let values = inner.wait_on(gather_values(inner.clone(), keys.clone()))??;
        take_gathered(&keys, values)
    }

    /// Reruns several erred futures (see [`Future::retry`]).
    pub fn retry<T>(&self, futures: &[Future<T>]) -> Result<()> {
        self.inner()
            .retry(futures.iter().map(|f| f.key.clone()).collect())
    }

    /// Cancels several futures at once (see [`Future::cancel`]).
    pub fn cancel<T>(&self, futures: &[Future<T>]) -> Result<()> {
        self.inner()
            .cancel(futures.iter().map(|f| f.key.clone()).collect())
    }

    /// Lets the task run to the end even when every handle to it is dropped,
    /// like Dask's `fire_and_forget`: for tasks run for their side effects.
    /// The scheduler lets go of it once it finished or failed.
    pub fn fire_and_forget<T>(&self, future: &Future<T>) -> Result<()> {
        self.inner().fire_and_forget(vec![future.key.clone()])
    }
}
