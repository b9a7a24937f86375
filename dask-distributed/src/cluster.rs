//! [`LocalCluster`]: a scheduler and workers in this process, talking over real
//! TCP on 127.0.0.1, for a laptop with zero setup and for tests.

use std::fmt;

use tokio::runtime::Runtime;

use crate::dashboard::{self, Dashboard, DashboardHandle};
use crate::scheduler::server::{self, SchedulerHandle};
use crate::worker::{self, WorkerHandle};
use crate::{Client, Error, Result};

/// Settings for a [`LocalCluster`].
#[derive(Debug, Clone)]
pub struct LocalClusterBuilder {
    n_workers: usize,
    threads_per_worker: u32,
    scheduler_addr: String,
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

    /// Serves the dashboard on `port` of the scheduler's host (default 8787;
    /// 0: any free port). A taken port falls back to a free one, with a
    /// message on stderr saying which.
    pub fn dashboard_port(mut self, port: u16) -> Self {
        self.dashboard_port = Some(port);
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
            let scheduler = server::start_with_plugins(&self.scheduler_addr, plugins).await?;
            let dashboard = match dashboard {
                Some((d, port)) => {
                    let host = scheduler.addr().ip().to_string();
                    Some(dashboard::serve(&d, &host, port).await?)
                }
                None => None,
            };
            let addr = scheduler.addr().to_string();
            let mut workers = Vec::with_capacity(self.n_workers);
            for _ in 0..self.n_workers {
                workers.push(worker::start(&addr, self.threads_per_worker).await?);
            }
            Ok::<_, Error>((scheduler, workers, dashboard))
        })?;
        Ok(LocalCluster {
            runtime,
            scheduler,
            workers,
            dashboard,
            threads_per_worker: self.threads_per_worker,
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

    /// The data addresses of the workers started, in order.
    pub fn worker_addrs(&self) -> Vec<String> {
        self.workers
            .iter()
            .map(|w| w.data_addr().to_owned())
            .collect()
    }

    /// A client connected to this cluster.
    pub fn client(&self) -> Result<Client> {
        Client::connect(&self.scheduler_addr())
    }

    /// Number of workers started.
    pub fn n_workers(&self) -> usize {
        self.workers.len()
    }

    /// Total task threads.
    pub fn total_threads(&self) -> u64 {
        self.workers.len() as u64 * u64::from(self.threads_per_worker)
    }

    /// Kills worker `i` as a crash would (for failure tests); false if no such worker.
    pub fn kill_worker(&self, i: usize) -> bool {
        self.workers.get(i).map(WorkerHandle::kill).is_some()
    }

    /// Stops the workers and the scheduler.
    pub fn shutdown(&self) {
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
        if let Some(link) = self.dashboard_link() {
            write!(f, ", dashboard={link}")?;
        }
        write!(f, ")")
    }
}
