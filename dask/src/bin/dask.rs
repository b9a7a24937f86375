//! The `dask` command: run a scheduler or a worker as its own process.
//!
//! ```text
//! dask scheduler [--host 127.0.0.1] [--port 8786] [--dashboard-port 8787 | --no-dashboard]
//! dask worker SCHEDULER_ADDRESS [--nthreads N]
//! ```
//!
//! The binary links every collection crate, so the ops they register can run
//! on its workers.

use clap::{Parser, Subcommand};

// Link the collections so their registered ops and codecs are in this binary.
#[cfg(feature = "array")]
use dask::array as _;
#[cfg(feature = "bag")]
use dask::bag as _;
#[cfg(feature = "dataframe")]
use dask::dataframe as _;
use dask::distributed::process;

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
        /// Dashboard port (0: any free port; a taken port falls back to a free one).
        #[arg(long, default_value_t = dask::distributed::dashboard::DEFAULT_DASHBOARD_PORT)]
        dashboard_port: u16,
        /// Do not serve the dashboard.
        #[arg(long)]
        no_dashboard: bool,
    },
    /// Run a worker for the scheduler at ADDRESS (host:port).
    Worker {
        /// The scheduler's address.
        address: String,
        /// Task threads.
        #[arg(long, default_value_t = default_threads())]
        nthreads: u32,
    },
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
            dashboard_port,
            no_dashboard,
        } => process::run_scheduler_with_dashboard(
            &host,
            port,
            (!no_dashboard).then_some(dashboard_port),
        ),
        Command::Worker { address, nthreads } => process::run_worker(&address, nthreads),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
