//! [`AsyncClient`]: the futures API for async code, usable inside any tokio
//! runtime (multi-threaded or current-thread) without blocking it.
//!
//! It shares everything with the blocking [`Client`]: the connection, the
//! per-key reference counts, the futures (a [`Future`] made here is the same
//! type, `.await`-able and gatherable by either API). The connection and
//! every wait run on the client's own small runtime (one thread), and the
//! async methods hand their waits to it and `.await` the answer, so the
//! caller's runtime needs no I/O or timer driver and is never blocked. The
//! few heavier one-off calls that are blocking at heart (connect, scatter,
//! persist, creating an actor, starting or stopping a cluster) run on a
//! short-lived plain thread.
//!
//! The blocking API called inside a runtime gives [`Error::InsideRuntime`]
//! (never a panic); use this type there.
//!
//! ```
//! use dask_distributed::{AsyncClient, LocalCluster};
//! # fn inc(x: i64) -> i64 { x + 1 }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let client = AsyncClient::start_local(LocalCluster::builder().n_workers(1)).await?;
//! let x = client.submit(inc, (1i64,)).await?;
//! assert_eq!(x.await?, 2);
//! let futures = client.map(inc, 0..10i64).await?;
//! // A futures_core::Stream in completion order (`next` without StreamExt).
//! let mut completed = client.as_completed(futures).with_results();
//! let mut done = Vec::new();
//! while let Some((_future, result)) = completed.next().await {
//!     done.push(result?);
//! }
//! done.sort();
//! assert_eq!(done, (1..=10).collect::<Vec<_>>());
//! client.shutdown().await;
//! # Ok::<(), dask_distributed::Error>(())
//! # }).unwrap();
//! ```

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use dask_core::op::IntoOp;
use dask_core::{Collection, Graph, Key, Value};

use crate::actor::ActorHandle;
use crate::client::{finish_compute, Inner, WorkerInfo};
use crate::coordination::{CoordinationTarget, Coordinator};
use crate::futures::{check_map_options, gather_values, take_gathered, SubmitArgs};
use crate::waiting::{split_done, wait_for, waiters_of, AsCompletedStream, DoneAndNotDone};
use crate::{Client, Error, Future, Result, ReturnWhen, ScatterOptions, SubmitOptions};

/// A connection to a scheduler for async code; see the [module docs](self).
/// Cheap to share by reference; dropping it (or [`AsyncClient::close`])
/// closes the connection once its futures are gone too.
pub struct AsyncClient {
    /// Always `Some` until dropped (taken by `close` and `Drop`).
    client: Option<Client>,
}

impl std::fmt::Debug for AsyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AsyncClient(scheduler={})",
            self.client().scheduler_addr()
        )
    }
}

/// Runs `f` on the client's runtime and waits for it without blocking the
/// caller; dropping the returned future aborts `f`.
pub(crate) async fn on_runtime<T: Send + 'static>(
    inner: &Inner,
    f: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    struct AbortOnDrop(tokio::task::AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort(); // a no-op once finished
        }
    }
    let handle = inner.runtime_handle().spawn(f);
    let _abort = AbortOnDrop(handle.abort_handle());
    match handle.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(Error::Malformed {
            what: "client",
            detail: "a client task panicked (bug)".into(),
        }),
        Err(_) => Err(inner.lost()), // the client's runtime stopped
    }
}

/// Runs blocking client code on a fresh plain thread (outside any runtime)
/// and waits for it without blocking the caller.
async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("dask-client-call".into())
        .spawn(move || {
            let _ = tx.send(f());
        })?;
    rx.await.map_err(|_| Error::Malformed {
        what: "client",
        detail: "a blocking client call panicked (bug)".into(),
    })?
}

impl AsyncClient {
    /// Connects to the scheduler at `addr` (`host:port`), without token or TLS.
    pub async fn connect(addr: &str) -> Result<AsyncClient> {
        AsyncClient::connect_with(addr, crate::Security::default()).await
    }

    /// Connects to the scheduler at `addr` with a token and/or TLS (see
    /// [`Client::connect_with`] for the errors).
    pub async fn connect_with(addr: &str, security: crate::Security) -> Result<AsyncClient> {
        let addr = addr.to_owned();
        let client = off_runtime(move || Client::connect_with(&addr, security)).await?;
        Ok(AsyncClient::from(client))
    }

    /// Starts a [`LocalCluster`](crate::LocalCluster) from `builder` and
    /// connects to it, owning it (like [`Client::with_cluster`]: tasks and
    /// values are handed over in-process, closures work); it stops with
    /// the client.
    pub async fn start_local(builder: crate::LocalClusterBuilder) -> Result<AsyncClient> {
        let client = off_runtime(move || Client::with_cluster(builder.start()?)).await?;
        Ok(AsyncClient::from(client))
    }

    /// The blocking client sharing this connection (for the calls that
    /// never wait, or to hand to a plain thread).
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("taken only when dropped")
    }

    fn inner(&self) -> &Arc<Inner> {
        self.client().inner()
    }

    /// The scheduler's address.
    pub fn scheduler_addr(&self) -> &str {
        self.client().scheduler_addr()
    }

    /// [`Client::submit`]: runs `f(args)` on the cluster and gives its future.
    pub async fn submit<F, M, X>(&self, f: F, args: X) -> Result<Future<F::Output>>
    where
        F: IntoOp<M>,
        X: SubmitArgs<F::Args>,
    {
        self.client()
            .submit_checked(f, args, &SubmitOptions::default())
    }

    /// [`Client::submit_with`]: [`AsyncClient::submit`] with options.
    pub async fn submit_with<F, M, X>(
        &self,
        f: F,
        args: X,
        options: &SubmitOptions,
    ) -> Result<Future<F::Output>>
    where
        F: IntoOp<M>,
        X: SubmitArgs<F::Args>,
    {
        self.check_workers(options).await?;
        self.client().submit_checked(f, args, options)
    }

    /// [`Client::map`]: `f(x)` for every `x`, one future each, one message.
    pub async fn map<F, M, A, I>(&self, f: F, inputs: I) -> Result<Vec<Future<F::Output>>>
    where
        F: IntoOp<M, Args = (A,)> + Clone,
        A: Any + Send + Sync,
        I: IntoIterator<Item = A>,
    {
        self.client()
            .map_checked(f, inputs, &SubmitOptions::default())
    }

    /// [`Client::map_with`]: [`AsyncClient::map`] with options.
    pub async fn map_with<F, M, A, I>(
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
        self.check_workers(options).await?;
        self.client().map_checked(f, inputs, options)
    }

    async fn check_workers(&self, options: &SubmitOptions) -> Result<()> {
        if let Some(addrs) = options.workers.clone() {
            let inner = self.inner().clone();
            let check = async move { inner.check_workers(&addrs).await };
            on_runtime(self.inner(), check).await?;
        }
        Ok(())
    }

    /// [`Client::gather`]: the values of `futures`, in order; the first
    /// failed one in the list gives its error. Batched as there.
    pub async fn gather<T: Any + Clone + Send + Sync>(
        &self,
        futures: &[Future<T>],
    ) -> Result<Vec<T>> {
        if futures.iter().any(|f| !Arc::ptr_eq(&f.inner, self.inner())) {
            let mut values = Vec::with_capacity(futures.len());
            for f in futures {
                values.push(f.await?);
            }
            return Ok(values);
        }
        let keys: Vec<Key> = futures.iter().map(|f| f.key.clone()).collect();
        let inner = self.inner().clone();
        let values = on_runtime(self.inner(), gather_values(inner, keys.clone())).await?;
        take_gathered(&keys, values)
    }

    /// [`Client::scatter`]: `values` onto the workers, one future each.
    pub async fn scatter<T: Any + Send + Sync>(&self, values: Vec<T>) -> Result<Vec<Future<T>>> {
        self.scatter_with(values, ScatterOptions::default()).await
    }

    /// [`Client::scatter_with`]: [`AsyncClient::scatter`] with options.
    pub async fn scatter_with<T: Any + Send + Sync>(
        &self,
        values: Vec<T>,
        options: ScatterOptions,
    ) -> Result<Vec<Future<T>>> {
        let client = Client::from_inner(self.inner().clone());
        off_runtime(move || client.scatter_with(values, &options)).await
    }

    /// Computes `outputs` of `graph` on the cluster ([`Client::compute_graph`]).
    pub async fn compute_graph(&self, graph: &Graph, outputs: &[Key]) -> Result<Vec<Value>> {
        let started = self.inner().start_compute(graph, outputs)?;
        let inner = self.inner().clone();
        on_runtime(self.inner(), finish_compute(inner, started)).await
    }

    /// Computes a collection (an array, a bag, a `Delayed`, ...) on the
    /// cluster, like `collection.compute_with(&client)`.
    pub async fn compute<C: Collection>(&self, collection: &C) -> Result<C::Output> {
        let keys = collection.keys();
        let values = self
            .compute_graph(&collection.optimized_graph()?, &keys)
            .await?;
        Ok(collection.finalize(values)?)
    }

    /// [`Client::persist_graph`]: runs `graph` for `outputs` and gives a graph
    /// whose outputs refer to the values kept on the cluster.
    pub async fn persist_graph(&self, graph: &Graph, outputs: &[Key]) -> Result<Graph> {
        let client = Client::from_inner(self.inner().clone());
        let (graph, outputs) = (graph.clone(), outputs.to_vec());
        off_runtime(move || client.persist_graph(&graph, &outputs)).await
    }

    /// [`Client::cancel`]. Never waits.
    pub fn cancel<T>(&self, futures: &[Future<T>]) -> Result<()> {
        self.client().cancel(futures)
    }

    /// [`Client::retry`]. Never waits.
    pub fn retry<T>(&self, futures: &[Future<T>]) -> Result<()> {
        self.client().retry(futures)
    }

    /// [`Client::fire_and_forget`]. Never waits.
    pub fn fire_and_forget<T>(&self, future: &Future<T>) -> Result<()> {
        self.client().fire_and_forget(future)
    }

    /// [`Client::wait`]: until all (or the first) of `futures` are done,
    /// [`Error::Timeout`] past `timeout`.
    pub async fn wait<T>(
        &self,
        futures: &[Future<T>],
        timeout: Option<Duration>,
        return_when: ReturnWhen,
    ) -> Result<DoneAndNotDone<T>> {
        if let Some(waiters) = waiters_of(futures, return_when)? {
            let n = futures.len();
            let wait = async move { wait_for(waiters, n, timeout, return_when).await };
            on_runtime(self.inner(), wait).await?;
        }
        split_done(futures, return_when)
    }

    /// `futures` as they finish, as a [`futures_core::Stream`]
    /// ([`crate::waiting::as_completed_stream`]); `.with_results()` yields
    /// each with its result.
    pub fn as_completed<T: Send + 'static>(&self, futures: Vec<Future<T>>) -> AsCompletedStream<T> {
        crate::waiting::as_completed_stream(futures)
    }

    /// [`Client::workers`]: the workers connected to the scheduler.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>> {
        let inner = self.inner().clone();
        on_runtime(self.inner(), async move { inner.workers().await }).await
    }

    /// The total number of task threads of the connected workers (Dask's
    /// `nthreads`, summed).
    pub async fn total_threads(&self) -> Result<u64> {
        Ok(self
            .workers()
            .await?
            .iter()
            .map(|w| u64::from(w.nthreads))
            .sum())
    }

    /// [`Client::who_has`]: the data addresses holding each key.
    pub async fn who_has(&self, keys: &[Key]) -> Result<Vec<(Key, Vec<String>)>> {
        let client = Client::from_inner(self.inner().clone());
        let keys = keys.to_vec();
        off_runtime(move || client.who_has(&keys)).await
    }

    /// [`Client::task_state`]: the scheduler-side state of `key`.
    pub async fn task_state(&self, key: &Key) -> Result<Option<crate::scheduler::state::Status>> {
        let client = Client::from_inner(self.inner().clone());
        let key = key.clone();
        off_runtime(move || client.task_state(&key)).await
    }

    /// [`Client::submit_actor`]: creates an actor on one worker and gives
    /// its handle once it exists; `handle.call(..)?.await` calls it.
    pub async fn submit_actor<A: Send + 'static>(&self, init: A) -> Result<ActorHandle<A>> {
        let client = Client::from_inner(self.inner().clone());
        off_runtime(move || client.submit_actor(init)).await
    }

    /// Closes this client's side: futures still held keep the connection
    /// until they are dropped. A cluster the client owns stops.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = off_runtime(move || {
                drop(client);
                Ok(())
            })
            .await;
        }
    }

    /// Stops the cluster this client owns, if any ([`Client::shutdown`]),
    /// and closes the client.
    pub async fn shutdown(mut self) {
        if let Some(client) = self.client.take() {
            let _ = off_runtime(move || {
                client.shutdown();
                Ok(())
            })
            .await;
        }
    }
}

impl From<Client> for AsyncClient {
    /// Shares a blocking client's connection (and the cluster it owns).
    fn from(client: Client) -> AsyncClient {
        AsyncClient {
            client: Some(client),
        }
    }
}

impl Drop for AsyncClient {
    fn drop(&mut self) {
        // A cluster's runtime cannot be dropped inside async code.
        if let Some(client) = self.client.take() {
            if client.cluster().is_some() && tokio::runtime::Handle::try_current().is_ok() {
                std::thread::spawn(move || drop(client));
            }
        }
    }
}

impl CoordinationTarget for AsyncClient {
    fn coordinator(&self) -> Result<Coordinator> {
        Ok(Coordinator::from_client(self.client()))
    }
}
