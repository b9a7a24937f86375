//! Blocking entry points for the `dask scheduler` and `dask worker` processes.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::scheduler::server::{self, SchedulerOptions};
use crate::worker::{self, WorkerOptions};
use crate::{Error, Result, Security};

/// The scheduler's default port, as in Dask.
pub const DEFAULT_SCHEDULER_PORT: u16 = 8786;

/// Runs a scheduler on `host:port` until the process is killed. If the port is
/// taken, listens on a free one instead and says so. Prints
/// `scheduler at HOST:PORT` on stdout once listening.
pub fn run_scheduler(host: &str, port: u16) -> Result<()> {
    run_scheduler_with(
        host,
        port,
        SchedulerOptions::default(),
        Some(crate::dashboard::DEFAULT_DASHBOARD_PORT),
    )
}

/// [`run_scheduler`] with settings (worker heartbeat timeout, work stealing)
/// and the dashboard on `dashboard_port` (`None`: no dashboard; a taken port
/// falls back to a free one). Prints `dashboard at http://HOST:PORT/status`
/// on stdout.
pub fn run_scheduler_with(
    host: &str,
    port: u16,
    options: SchedulerOptions,
    dashboard_port: Option<u16>,
) -> Result<()> {
    let dashboard = dashboard_port.map(|p| (crate::dashboard::Dashboard::new(), p));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let plugins = || dashboard.iter().map(|(d, _)| d.plugin()).collect();
        let addr = format!("{host}:{port}");
        let handle = match server::start_full(&addr, options.clone(), plugins()).await {
            Ok(h) => h,
            Err(Error::Connect { .. }) if port != 0 => {
                let h = server::start_full(&format!("{host}:0"), options, plugins()).await?;
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
                d.attach_task_stream(handle.task_stream());
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
    run_worker_with(scheduler_addr, WorkerOptions::new(nthreads))
}

/// [`run_worker`] with settings (memory limit, thresholds, spill directory).
/// The worker is alone in its process, so it also watches the process's
/// resident memory against its spill and terminate thresholds.
pub fn run_worker_with(scheduler_addr: &str, options: WorkerOptions) -> Result<()> {
    if options.nthreads == 0 {
        return Err(Error::InvalidConfig {
            message: "--nthreads must be at least 1".into(),
        });
    }
    options.validate()?;
    crate::alloc::tune_for_worker_process();
    let options = WorkerOptions {
        monitor_process_memory: true,
        ..options
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let handle = worker::start_with(scheduler_addr, options).await?;
        println!("worker at {}", handle.data_addr());
        std::io::stdout().flush()?;
        handle.finished().await?;
        eprintln!(
            "dask-rs worker: lost the connection to the scheduler at {scheduler_addr} \
             (it stopped, restarted or is unreachable); exiting: start the worker again \
             once the scheduler runs"
        );
        Ok(())
    })
}

/// The [`Security`] of a `dask scheduler` or `dask worker` process: the
/// token from `--token`, else from the `DASK_TOKEN` environment variable
/// (preferred: a command line is visible to other users), and TLS from the
/// CA, certificate and key files, all three or none.
pub fn security_from_flags(
    token: Option<String>,
    tls_ca_file: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
) -> Result<Security> {
    let security = match token {
        Some(token) => Security::new().with_token(token)?,
        None => Security::from_env()?,
    };
    match (tls_ca_file, tls_cert, tls_key) {
        (None, None, None) => Ok(security),
        (Some(ca), Some(cert), Some(key)) => security.with_tls_files(&ca, &cert, &key),
        (ca, cert, key) => {
            let missing: Vec<&str> = [
                ("--tls-ca-file", ca.is_none()),
                ("--tls-cert", cert.is_none()),
                ("--tls-key", key.is_none()),
            ]
            .into_iter()
            .filter(|(_, m)| *m)
            .map(|(flag, _)| flag)
            .collect();
            Err(Error::InvalidConfig {
                message: format!(
                    "TLS needs --tls-ca-file, --tls-cert and --tls-key together; missing {}",
                    missing.join(", ")
                ),
            })
        }
    }
}

/// An op that aborts the process running it (`std::process::abort`), for
/// failure tests of `dask worker` processes: the scheduler errs a task that
/// keeps killing its workers as suspicious. Never run it on a LocalCluster
/// of threads: it would abort the client's process.
pub fn abort_process(_marker: u64) -> u64 {
    std::process::abort()
}
dask_core::register_op!(abort_process);

/// Parses a byte count as Dask does: a plain number of bytes, or a number
/// with a unit (`kB`, `MB`, `GB`, `TB` powers of 1000; `KiB`, `MiB`, `GiB`,
/// `TiB` powers of 1024; case-insensitive, `B` optional, spaces allowed).
pub fn parse_bytes(text: &str) -> Result<u64> {
    let bad = |why: &str| {
        Error::InvalidConfig {
        message: format!(
            "cannot read {text:?} as a number of bytes ({why}): write e.g. 4000000000, 4GB or 3.5GiB"
        ),
    }
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad("no number"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let scale: f64 = match unit {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "ki" => 1024.0,
        "mi" => 1024.0 * 1024.0,
        "gi" => 1024.0 * 1024.0 * 1024.0,
        "ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad("unknown unit")),
    };
    let bytes = number * scale;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(bad("out of range"));
    }
    Ok(bytes as u64)
}

/// Exit status of a worker process that stopped above its terminate
/// threshold; its nanny ([`supervise`]) restarts it.
pub const EXIT_MEMORY_EXCEEDED: i32 = 3;

/// Pause between a worker's death and its restart by [`supervise`].
const RESTART_DELAY: Duration = Duration::from_millis(200);

/// Dask's nanny: runs the process `spawn` starts, and starts it again when it
/// exits with [`EXIT_MEMORY_EXCEEDED`] or dies by a signal. Any other exit
/// ends the supervision with that exit code (0: the scheduler went away;
/// other: an error the worker printed, which a restart would not fix).
pub fn supervise(mut spawn: impl FnMut() -> std::io::Result<std::process::Child>) -> Result<i32> {
    loop {
        let mut child = spawn()?;
        // `wait` closes the child's stdin: keep it open, the child watches it.
        let stdin = child.stdin.take();
        let status = child.wait()?;
        drop(stdin);
        match status.code() {
            Some(EXIT_MEMORY_EXCEEDED) => {
                eprintln!("nanny: the worker went above its memory limit; restarting it")
            }
            Some(code) => return Ok(code),
            None => eprintln!("nanny: the worker died ({status}); restarting it"),
        }
        std::thread::sleep(RESTART_DELAY);
    }
}

/// Exits this process as soon as its standard input closes: a worker started
/// by a nanny (with a pipe as stdin) does not outlive it.
pub fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 64];
        loop {
            match std::io::Read::read(&mut stdin, &mut buf) {
                Ok(0) | Err(_) => std::process::exit(1),
                Ok(_) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_parse_like_dask() {
        assert_eq!(parse_bytes("4000").unwrap(), 4000);
        assert_eq!(parse_bytes("4GB").unwrap(), 4_000_000_000);
        assert_eq!(parse_bytes("1.5 GiB").unwrap(), 3 * 512 * 1024 * 1024);
        assert_eq!(parse_bytes("200mb").unwrap(), 200_000_000);
        assert_eq!(parse_bytes("2KiB").unwrap(), 2048);
        for bad in ["", "GB", "12 parsecs", "0", "-3GB"] {
            let err = parse_bytes(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { .. }), "{bad}: {err}");
        }
    }
}
