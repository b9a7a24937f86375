//! Blocking entry points for the `dask scheduler` and `dask worker` processes.

use std::io::Write;

use crate::{scheduler::server, worker, Error, Result};

/// The scheduler's default port, as in Dask.
pub const DEFAULT_SCHEDULER_PORT: u16 = 8786;

/// Runs a scheduler on `host:port` until the process is killed. If the port is
/// taken, listens on a free one instead and says so. Prints
/// `scheduler at HOST:PORT` on stdout once listening.
pub fn run_scheduler(host: &str, port: u16) -> Result<()> {
    run_scheduler_with_dashboard(host, port, Some(crate::dashboard::DEFAULT_DASHBOARD_PORT))
}

/// [`run_scheduler`] with the dashboard on `dashboard_port` (`None`: no
/// dashboard; a taken port falls back to a free one). Prints
/// `dashboard at http://HOST:PORT/status` on stdout.
pub fn run_scheduler_with_dashboard(
    host: &str,
    port: u16,
    dashboard_port: Option<u16>,
) -> Result<()> {
    let dashboard = dashboard_port.map(|p| (crate::dashboard::Dashboard::new(), p));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let plugins = || dashboard.iter().map(|(d, _)| d.plugin()).collect();
        let handle = match server::start_with_plugins(&format!("{host}:{port}"), plugins()).await {
            Ok(h) => h,
            Err(Error::Connect { .. }) if port != 0 => {
                let h = server::start_with_plugins(&format!("{host}:0"), plugins()).await?;
                eprintln!(
                    "port {port} is already in use (perhaps a scheduler is already running?); \
                     listening on port {} instead",
                    h.addr().port()
                );
                h
            }
            Err(e) => return Err(e),
        };
        let mut lines = format!("scheduler at {}\n", handle.addr());
        let _dashboard = match &dashboard {
            Some((d, port)) => {
                let served = crate::dashboard::serve(d, host, *port).await?;
                lines.push_str(&format!("dashboard at {}\n", served.link()));
                Some(served)
            }
            None => None,
        };
        // One write: a reader that takes the first line and closes the pipe
        // must not make a later line fail.
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(lines.as_bytes())?;
        stdout.flush()?;
        drop(stdout);
        std::future::pending::<()>().await;
        Ok(())
    })
}

/// Runs a worker with `nthreads` threads for the scheduler at `scheduler_addr`,
/// until the scheduler goes away. Prints `worker at DATA_ADDR` once connected.
pub fn run_worker(scheduler_addr: &str, nthreads: u32) -> Result<()> {
    if nthreads == 0 {
        return Err(Error::InvalidConfig {
            message: "--nthreads must be at least 1".into(),
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let handle = worker::start(scheduler_addr, nthreads).await?;
        println!("worker at {}", handle.data_addr());
        std::io::stdout().flush()?;
        handle.finished().await;
        eprintln!("the scheduler at {scheduler_addr} went away; worker exiting");
        Ok(())
    })
}
