//! The `dask` command: run a scheduler or a worker as its own process.
//!
//! ```text
//! dask scheduler [--host 127.0.0.1] [--port 8786] [--dashboard-port 8787 | --no-dashboard]
//!                [--worker-ttl SECONDS] [--no-work-stealing] [--allowed-failures 3]
//!                [SECURITY]
//! dask worker SCHEDULER_ADDRESS [--nthreads N] [--memory-limit 4GB] [--local-directory DIR]
//!             [--memory-{target,spill,pause,terminate}-fraction F] [--no-nanny]
//!             [SECURITY]
//! SECURITY: [--token SECRET] [--tls-ca-file CA.pem --tls-cert CERT.pem --tls-key KEY.pem]
//! ```
//!
//! The token may also come from the `DASK_TOKEN` environment variable
//! (better: a command line is visible to other users of the machine).
//!
//! The binary links every collection crate, so the ops they register can run
//! on its workers.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

// Link the collections so their registered ops and codecs are in this binary.
#[cfg(feature = "array")]
use dask::array as _;
#[cfg(feature = "bag")]
use dask::bag as _;
#[cfg(feature = "dataframe")]
use dask::dataframe as _;
use dask::distributed::process;
use dask::distributed::scheduler::server::SchedulerOptions;
use dask::distributed::spill::MemoryThresholds;
use dask::distributed::worker::WorkerOptions;

/// Large blocks (array chunks, frames) on huge pages, as NumPy does.
#[global_allocator]
static ALLOC: dask::core::alloc::HugePageAlloc = dask::core::alloc::HugePageAlloc;

#[derive(Parser)]
#[command(name = "dask", version, about = "dask-rs: run a scheduler or a worker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scheduler; prints `scheduler at HOST:PORT`.
    Scheduler {
        /// Interface to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port (0: any free port; a taken port falls back to a free one).
        #[arg(long, default_value_t = process::DEFAULT_SCHEDULER_PORT)]
        port: u16,
        /// Seconds a worker may go without a heartbeat before it is removed
        /// and its data recomputed.
        #[arg(long, default_value_t = 300.0)]
        worker_ttl: f64,
        /// Do not move queued tasks from busy workers to idle ones.
        #[arg(long)]
        no_work_stealing: bool,
        /// Dashboard port (0: any free port; a taken port falls back to a free one).
        #[arg(long, default_value_t = dask::distributed::dashboard::DEFAULT_DASHBOARD_PORT)]
        dashboard_port: u16,
        /// Do not serve the dashboard.
        #[arg(long)]
        no_dashboard: bool,
        /// Workers that may die while running one task before it errs as suspicious.
        #[arg(long, default_value_t = 3)]
        allowed_failures: u32,
        /// Seconds a disconnected client's futures are kept for it to
        /// reconnect (0: released at once).
        #[arg(long, default_value_t = 30.0)]
        client_reconnect_timeout: f64,
        #[command(flatten)]
        security: SecurityArgs,
    },
    /// Run a worker for the scheduler at ADDRESS (host:port).
    Worker {
        /// The scheduler's address.
        address: String,
        /// Task threads.
        #[arg(long, default_value_t = default_threads())]
        nthreads: u32,
        /// Memory limit (bytes, or with a unit: 4GB, 3.5GiB); values beyond 60%
        /// of it are spilled to disk, tasks pause at 80%, the worker stops at 95%.
        #[arg(long)]
        memory_limit: Option<String>,
        /// Where to create the spill directory (default: the temporary directory).
        #[arg(long)]
        local_directory: Option<PathBuf>,
        /// Fraction of the memory limit beyond which values spill to disk.
        #[arg(long, default_value_t = 0.6)]
        memory_target_fraction: f64,
        /// Fraction of the limit of process memory beyond which values spill.
        #[arg(long, default_value_t = 0.7)]
        memory_spill_fraction: f64,
        /// Fraction of the limit beyond which the worker starts no task.
        #[arg(long, default_value_t = 0.8)]
        memory_pause_fraction: f64,
        /// Fraction of the limit of process memory beyond which the worker stops
        /// (and its nanny starts a fresh one).
        #[arg(long, default_value_t = 0.95)]
        memory_terminate_fraction: f64,
        /// Run the worker in this process, without a nanny process that
        /// restarts it when it dies or exceeds its memory.
        #[arg(long)]
        no_nanny: bool,
        /// Started by a nanny: exit when standard input closes.
        #[arg(long, hide = true)]
        supervised: bool,
        #[command(flatten)]
        security: SecurityArgs,
    },
}

/// The token and TLS flags, the same for the scheduler and its workers.
#[derive(clap::Args)]
struct SecurityArgs {
    /// Shared secret every peer must present (default: $DASK_TOKEN, else none).
    #[arg(long)]
    token: Option<String>,
    /// PEM file of the CA that signs every certificate of the cluster (mutual TLS).
    #[arg(long)]
    tls_ca_file: Option<PathBuf>,
    /// PEM file of this process's certificate, signed by the CA.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM file of this process's private key.
    #[arg(long)]
    tls_key: Option<PathBuf>,
}

impl SecurityArgs {
    fn security(self) -> dask::distributed::Result<dask::distributed::Security> {
        process::security_from_flags(self.token, self.tls_ca_file, self.tls_cert, self.tls_key)
    }
}

fn scheduler_options(
    worker_ttl: f64,
    work_stealing: bool,
    allowed_failures: u32,
    client_reconnect_timeout: f64,
    security: dask::distributed::Security,
) -> dask::distributed::Result<SchedulerOptions> {
    if !(worker_ttl.is_finite() && worker_ttl > 0.0) {
        return Err(dask::distributed::Error::InvalidConfig {
            message: format!("--worker-ttl must be a positive number of seconds, got {worker_ttl}"),
        });
    }
    if !(client_reconnect_timeout.is_finite() && client_reconnect_timeout >= 0.0) {
        return Err(dask::distributed::Error::InvalidConfig {
            message: format!(
                "--client-reconnect-timeout must be a number of seconds >= 0, got \
                 {client_reconnect_timeout}"
            ),
        });
    }
    Ok(SchedulerOptions {
        worker_ttl: Duration::from_secs_f64(worker_ttl),
        client_reconnect_timeout: Duration::from_secs_f64(client_reconnect_timeout),
        work_stealing,
        allowed_failures,
        security,
        ..SchedulerOptions::default()
    })
}

/// `dask worker` with a nanny: this process runs the same command with
/// `--no-nanny --supervised` as a child, and restarts it when it dies.
fn run_nanny() -> dask::distributed::Result<()> {
    let program = std::env::current_exe()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = process::supervise(|| {
        std::process::Command::new(&program)
            .args(&args)
            .args(["--no-nanny", "--supervised"])
            .stdin(std::process::Stdio::piped())
            .spawn()
    })?;
    std::process::exit(code);
}

fn default_threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scheduler {
            host,
            port,
            worker_ttl,
            no_work_stealing,
            dashboard_port,
            no_dashboard,
            allowed_failures,
            client_reconnect_timeout,
            security,
        } => security
            .security()
            .and_then(|security| {
                scheduler_options(
                    worker_ttl,
                    !no_work_stealing,
                    allowed_failures,
                    client_reconnect_timeout,
                    security,
                )
            })
            .and_then(|options| {
                process::run_scheduler_with(
                    &host,
                    port,
                    options,
                    (!no_dashboard).then_some(dashboard_port),
                )
            }),
        Command::Worker {
            address,
            nthreads,
            memory_limit,
            local_directory,
            memory_target_fraction,
            memory_spill_fraction,
            memory_pause_fraction,
            memory_terminate_fraction,
            no_nanny,
            supervised,
            security,
        } if no_nanny || supervised => memory_limit
            .as_deref()
            .map(process::parse_bytes)
            .transpose()
            .and_then(|memory_limit| {
                let security = security.security()?;
                let options = WorkerOptions {
                    security,
                    memory_limit,
                    local_directory,
                    thresholds: MemoryThresholds {
                        target: memory_target_fraction,
                        spill: memory_spill_fraction,
                        pause: memory_pause_fraction,
                        terminate: memory_terminate_fraction,
                    },
                    ..WorkerOptions::new(nthreads)
                };
                if supervised {
                    process::exit_when_stdin_closes();
                }
                process::run_worker_with(&address, options)
            }),
        Command::Worker { .. } => run_nanny(),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        let code = match e {
            dask::distributed::Error::MemoryExceeded { .. } => process::EXIT_MEMORY_EXCEEDED,
            _ => 1,
        };
        std::process::exit(code);
    }
}
