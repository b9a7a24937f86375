//! [`Progress`]: a console progress bar over futures, fed by the scheduler's
//! reports of their keys, like Dask's `distributed.progress`.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dask_core::diagnostics::indicatif::{self, ProgressDrawTarget, ProgressStyle};
use tokio::task::{JoinHandle, JoinSet};

use crate::client::Reported;
use crate::{Client, Error, Future, Result};

/// How many of a [`Progress`]'s futures ended, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProgressCounts {
    /// Futures watched.
    pub total: u64,
    /// In memory on a worker.
    pub finished: u64,
    /// Failed (the task or one it depends on).
    pub erred: u64,
    /// Cancelled.
    pub cancelled: u64,
}

impl ProgressCounts {
    /// Futures that ended (finished, erred or cancelled).
    pub fn done(&self) -> u64 {
        self.finished + self.erred + self.cancelled
    }

    /// Whether every future ended.
    pub fn is_complete(&self) -> bool {
        self.done() >= self.total
    }
}

struct Shared {
    total: u64,
    finished: AtomicU64,
    erred: AtomicU64,
    cancelled: AtomicU64,
    /// The scheduler connection was lost before every future ended.
    lost: AtomicBool,
    /// Watching stopped: complete, lost or cancelled.
    ended: Mutex<bool>,
    wake: Condvar,
    bar: indicatif::ProgressBar,
}

impl Shared {
    fn counts(&self) -> ProgressCounts {
        ProgressCounts {
            total: self.total,
            finished: self.finished.load(Ordering::Acquire),
            erred: self.erred.load(Ordering::Acquire),
            cancelled: self.cancelled.load(Ordering::Acquire),
        }
    }

    fn count(&self, report: &Reported) {
        let counter = match report {
            Reported::Memory => &self.finished,
            Reported::Erred(_) => &self.erred,
            Reported::Cancelled => &self.cancelled,
        };
        counter.fetch_add(1, Ordering::AcqRel);
        self.bar.inc(1);
    }

    /// Stops watching: the bar finishes (all ended well) or is abandoned.
    fn end(&self) {
        let mut ended = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        if *ended {
            return;
        }
        *ended = true;
        let c = self.counts();
        if c.finished == c.total {
            self.bar.finish();
        } else {
            self.bar.abandon();
        }
        self.wake.notify_all();
    }
}

fn style() -> ProgressStyle {
    // A fixed template: it parses, so the fallback is never used.
    ProgressStyle::with_template("[{bar:40}] | {percent:>3}% Completed | {elapsed_precise}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#  ")
}

/// A progress bar over futures ([`Client::progress`]): counts them as the
/// scheduler reports them finished, erred or cancelled, and draws a bar
/// (on stderr by default; nothing when stderr is not a terminal). It does
/// not block: [`Progress::counts`] reads it, [`Progress::wait`] waits for the
/// end with a timeout, [`Progress::cancel`] stops watching. Holds the
/// futures, so their values stay on the cluster while it lives.
pub struct Progress {
    shared: Arc<Shared>,
    driver: Option<JoinHandle<()>>,
    _futures: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("counts", &self.counts())
            .finish()
    }
}

impl Progress {
    /// The counts now.
    pub fn counts(&self) -> ProgressCounts {
        self.shared.counts()
    }

    /// Whether watching ended: every future ended, the scheduler connection
    /// was lost, or [`Progress::cancel`] was called.
    pub fn is_finished(&self) -> bool {
        *self
            .shared
            .ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The bar's position and length (what it draws).
    pub fn bar_position(&self) -> (u64, u64) {
        let bar = &self.shared.bar;
        (bar.position(), bar.length().unwrap_or(0))
    }

    /// Waits until every future ended (finished, erred or cancelled) and
    /// gives the counts. Gives them early, incomplete, if [`Progress::cancel`]
    /// is called meanwhile; [`Error::Timeout`] after `limit`;
    /// [`Error::Closed`] if the scheduler connection was lost first.
    pub fn wait(&self, limit: Duration) -> Result<ProgressCounts> {
        let deadline = Instant::now() + limit;
        let mut ended = self
            .shared
            .ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while !*ended {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout {
                    what: format!(
                        "progress of {} futures ({} done)",
                        self.shared.total,
                        self.counts().done()
                    ),
                    seconds: limit.as_secs_f64(),
                });
            }
            ended = self
                .shared
                .wake
                .wait_timeout(ended, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(ended);
        if self.shared.lost.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(self.counts())
    }

    /// Stops watching: the bar is left as it is (abandoned), waits return.
    /// The futures are not cancelled.
    pub fn cancel(&self) {
        if let Some(d) = &self.driver {
            d.abort();
        }
        self.shared.end();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl Client {
    /// A progress bar over `futures`, drawn on stderr, like Dask's
    /// `progress(futures)`; returns at once (see [`Progress`]).
    pub fn progress<T: 'static>(&self, futures: &[Future<T>]) -> Result<Progress> {
        self.progress_with(futures, ProgressDrawTarget::stderr())
    }

    /// [`Client::progress`] drawing on `target`
    /// (`ProgressDrawTarget::hidden()` to only count).
    pub fn progress_with<T: 'static>(
        &self,
        futures: &[Future<T>],
        target: ProgressDrawTarget,
    ) -> Result<Progress> {
        let inner = self.inner().clone();
        let total = futures.len() as u64;
        let bar = indicatif::ProgressBar::with_draw_target(Some(total), target).with_style(style());
        let shared = Arc::new(Shared {
            total,
            finished: AtomicU64::new(0),
            erred: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            lost: AtomicBool::new(false),
            ended: Mutex::new(false),
            wake: Condvar::new(),
            bar,
        });
        let mut waiters = Vec::new();
        for f in futures {
            match inner.outcome_or_waiter(f.key())? {
                Ok(report) => shared.count(&report),
                Err(rx) => waiters.push(rx),
            }
        }
        let driver = if waiters.is_empty() {
            shared.end();
            None
        } else {
            let s = shared.clone();
            Some(inner.runtime_handle().spawn(async move {
                let mut set = JoinSet::new();
                for rx in waiters {
                    set.spawn(rx);
                }
                while let Some(ended) = set.join_next().await {
                    match ended {
                        Ok(Ok(report)) => s.count(&report),
                        // The client's connection ended: no report will come.
                        _ => s.lost.store(true, Ordering::Release),
                    }
                }
                s.end();
            }))
        };
        Ok(Progress {
            shared,
            driver,
            _futures: Box::new(futures.to_vec()),
        })
    }
}
