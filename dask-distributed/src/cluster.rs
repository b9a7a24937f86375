//! [`LocalCluster`]: a scheduler and workers in this process, talking over real
//! TCP on 127.0.0.1, for a laptop with zero setup and for tests.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use tokio::runtime::Runtime;

use crate::dashboard::{self, Dashboard, DashboardHandle};
use crate::metrics::WorkerMetrics;
use crate::scheduler::server::{self, SchedulerHandle, SchedulerOptions};
use crate::spill::MemoryThresholds;
use crate::worker::{self, WorkerHandle, WorkerOptions};
use crate::{Client, Error, Result};

/// Settings for a [`LocalCluster`].
#[derive(Debug, Clone)]
pub struct LocalClusterBuilder {
    n_workers: usize,
    threads_per_worker: u32,
    scheduler_addr: String,
    memory_limit: Option<u64>,
    thresholds: MemoryThresholds,
    local_directory: Option<PathBuf>,
    heartbeat_interval: Duration,
    scheduler: SchedulerOptions,
    /// Dashboard port (`None`: no dashboard).
    dashboard_port: Option<u16>,
}

impl Default for LocalClusterBuilder {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        LocalClusterBuilder {
            n_workers: 1,
            threads_per_worker: cores,
            scheduler_addr: "127.0.0.1:0".into(),
            memory_limit: None,
            thresholds: MemoryThresholds::default(),
            local_directory: None,
            heartbeat_interval: worker::DEFAULT_HEARTBEAT_INTERVAL,
            scheduler: SchedulerOptions::default(),
            dashboard_port: Some(dashboard::DEFAULT_DASHBOARD_PORT),
        }
    }
}

impl LocalClusterBuilder {
    /// Number of workers (default 1).
    pub fn n_workers(mut self, n: usize) -> Self {
        self.n_workers = n;
        self
    }

    /// Task threads per worker (default: the machine's cores).
    pub fn threads_per_worker(mut self, n: u32) -> Self {
        self.threads_per_worker = n;
        self
    }

    /// Where the scheduler listens (default `127.0.0.1:0`: a port the OS picks).
    pub fn scheduler_addr(mut self, addr: impl Into<String>) -> Self {
        self.scheduler_addr = addr.into();
        self
    }

    /// Memory limit per worker in bytes: beyond its target fraction a worker
    /// spills values to disk (default: no limit).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// The spill, pause and terminate fractions of the memory limit (default
    /// Dask's 0.6 / 0.7 / 0.8 / 0.95).
    pub fn memory_thresholds(mut self, thresholds: MemoryThresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    /// Where workers create their spill directories (default: the system's
    /// temporary directory).
    pub fn local_directory(mut self, dir: impl Into<PathBuf>) -> Self {
        self.local_directory = Some(dir.into());
        self
    }

    /// How often workers send heartbeats (default 500 ms).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// How long a worker may stay silent before the scheduler removes it
    /// (default 5 minutes).
    pub fn worker_ttl(mut self, ttl: Duration) -> Self {
        self.scheduler.worker_ttl = ttl;
        self
    }

    /// Whether idle workers steal tasks from busy ones (default true).
    pub fn work_stealing(mut self, on: bool) -> Self {
        self.scheduler.work_stealing = on;
        self
    }

    /// How many workers may die while running one task before it errs as
    /// suspicious (default 3).
    pub fn allowed_failures(mut self, n: u32) -> Self {
        self.scheduler.allowed_failures = n;
        self
    }

    /// How long the scheduler keeps a disconnected client's futures for it
    /// to reconnect (default 30 s; zero: released at once).
    pub fn client_reconnect_timeout(mut self, timeout: Duration) -> Self {
        self.scheduler.client_reconnect_timeout = timeout;
        self
    }

    /// A token and/or TLS for every connection of the cluster (scheduler,
    /// workers, and the clients made by [`LocalCluster::client`] and
    /// [`Client::with_cluster`]); other clients need
    /// [`Client::connect_with`] and the same credentials.
    pub fn security(mut self, security: crate::Security) -> Self {
        self.scheduler.security = security;
        self
    }

    fn worker_options(&self) -> WorkerOptions {
        WorkerOptions {
            memory_limit: self.memory_limit,
            thresholds: self.thresholds,
            local_directory: self.local_directory.clone(),
            heartbeat_interval: self.heartbeat_interval,
            // Workers share this process: its memory says nothing about one.
            monitor_process_memory: false,
            security: self.scheduler.security.clone(),
            ..WorkerOptions::new(self.threads_per_worker)
        }
    }

    /// Serves the dashboard on `port` of the scheduler's host (default 8787;
    /// 0: any free port). A taken port falls back to a free one, with a
    /// message on stderr saying which.
    pub fn dashboard_port(mut self, port: u16) -> Self {
        self.dashboard_port = Some(port);
        self
    }

    /// How many task-stream records the scheduler keeps (the newest; default
    /// [`DEFAULT_TASK_STREAM_CAPACITY`](crate::task_stream::DEFAULT_TASK_STREAM_CAPACITY);
    /// 0: records none, and workers' timings are dropped on arrival).
    pub fn task_stream_capacity(mut self, records: usize) -> Self {
        self.scheduler.task_stream_capacity = records;
        self
    }

    /// Runs without a dashboard (no scheduler plugin, no HTTP server).
    pub fn no_dashboard(mut self) -> Self {
        self.dashboard_port = None;
        self
    }

    /// Starts the scheduler and the workers.
    pub fn start(self) -> Result<LocalCluster> {
        if self.n_workers == 0 || self.threads_per_worker == 0 {
            return Err(Error::InvalidConfig {
                message: format!(
                    "a cluster needs at least 1 worker with at least 1 thread, got {} workers x {} threads",
                    self.n_workers, self.threads_per_worker
                ),
            });
        }
        let options = self.worker_options();
        options.validate()?;
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::InsideRuntime);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("dask-cluster")
            .enable_all()
            .build()?;
        let (scheduler, workers, dashboard) = runtime.block_on(async {
            let dashboard = self.dashboard_port.map(|port| (Dashboard::new(), port));
            let plugins = dashboard.iter().map(|(d, _)| d.plugin()).collect();
            let scheduler =
                server::start_full(&self.scheduler_addr, self.scheduler.clone(), plugins).await?;
            let dashboard = match dashboard {
                Some((d, port)) => {
                    d.attach_task_stream(scheduler.task_stream());
                    let host = scheduler.addr().ip().to_string();
                    Some(dashboard::serve(&d, &host, port).await?)
                }
                None => None,
            };
            let addr = scheduler.addr().to_string();
            let mut workers = Vec::with_capacity(self.n_workers);
            for _ in 0..self.n_workers {
                workers.push(worker::start_with(&addr, options.clone()).await?);
            }
            Ok::<_, Error>((scheduler, workers, dashboard))
        })?;
        // Its workers are all in this process: tasks' worker clients hand
        // tasks over in-process (closures work in tasks too).
        crate::worker_client::register_local_scheduler(&scheduler.addr().to_string());
        Ok(LocalCluster {
            runtime,
            scheduler,
            workers,
            dashboard,
            threads_per_worker: self.threads_per_worker,
            memory_limit: self.memory_limit,
            security: self.scheduler.security,
        })
    }
}

/// A scheduler and workers running in this process.
pub struct LocalCluster {
    runtime: Runtime,
    scheduler: SchedulerHandle,
    workers: Vec<WorkerHandle>,
    dashboard: Option<DashboardHandle>,
    threads_per_worker: u32,
    memory_limit: Option<u64>,
    security: crate::Security,
}

impl LocalCluster {
    /// Settings, to start a cluster with [`LocalClusterBuilder::start`].
    pub fn builder() -> LocalClusterBuilder {
        LocalClusterBuilder::default()
    }

    /// The scheduler's address (`127.0.0.1:port`).
    pub fn scheduler_addr(&self) -> String {
        self.scheduler.addr().to_string()
    }

    /// The dashboard's address (`127.0.0.1:port`), if it has one.
    pub fn dashboard_address(&self) -> Option<String> {
        self.dashboard.as_ref().map(|d| d.addr().to_string())
    }

    /// The dashboard's status page, `http://127.0.0.1:port/status`, if any.
    pub fn dashboard_link(&self) -> Option<String> {
        self.dashboard.as_ref().map(DashboardHandle::link)
    }

    /// A client connected to this cluster (with its credentials).
    pub fn client(&self) -> Result<Client> {
        Client::connect_with(&self.scheduler_addr(), self.security.clone())
    }

    /// The cluster's token and TLS settings.
    pub fn security(&self) -> &crate::Security {
        &self.security
    }

    /// Number of workers started.
    pub fn n_workers(&self) -> usize {
        self.workers.len()
    }

    /// The data addresses of the workers, in start order (what `workers`
    /// restrictions name; [`LocalCluster::kill_worker`] takes the same index).
    pub fn worker_addrs(&self) -> Vec<String> {
        self.workers
            .iter()
            .map(|w| w.data_addr().to_owned())
            .collect()
    }

    /// Total task threads.
    pub fn total_threads(&self) -> u64 {
        self.workers.len() as u64 * u64::from(self.threads_per_worker)
    }

    /// Kills worker `i` as a crash would (for failure tests); false if no such worker.
    pub fn kill_worker(&self, i: usize) -> bool {
        self.workers.get(i).map(WorkerHandle::kill).is_some()
    }

    /// Worker `i`, to read its metrics or simulate failures.
    pub fn worker(&self, i: usize) -> Option<&WorkerHandle> {
        self.workers.get(i)
    }

    /// Every worker's metrics (memory, spilling, tasks), in start order.
    pub fn worker_metrics(&self) -> Vec<WorkerMetrics> {
        self.workers.iter().map(WorkerHandle::metrics).collect()
    }

    /// The memory limit per worker, if any.
    pub fn memory_limit(&self) -> Option<u64> {
        self.memory_limit
    }

    /// Stops the workers and the scheduler.
    pub fn shutdown(&self) {
        crate::worker_client::unregister_local_scheduler(&self.scheduler_addr());
        for w in &self.workers {
            w.kill();
        }
        if let Some(d) = &self.dashboard {
            d.shutdown();
        }
        self.scheduler.shutdown();
    }

    /// The runtime the cluster runs on (to start more workers, say).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Display for LocalCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LocalCluster(scheduler=tcp://{}, workers={}, threads={}",
            self.scheduler_addr(),
            self.n_workers(),
            self.total_threads()
        )?;
        if let Some(limit) = self.memory_limit {
            write!(
                f,
                ", memory={}",
                format_bytes(limit * self.n_workers() as u64)
            )?;
        }
        if let Some(link) = self.dashboard_link() {
            write!(f, ", dashboard={link}")?;
        }
        write!(f, ")")
    }
}

/// Bytes in Dask's style: `1.50 GiB`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}
