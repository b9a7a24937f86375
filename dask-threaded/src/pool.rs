//! The pool: threads that wait for help requests and work on the run they name.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use dask_core::{Error, Result};

use crate::run::Run;

/// Pool threads get a large stack: fused tasks nest, and user ops may recurse.
const STACK_SIZE: usize = 16 << 20;

thread_local! {
    /// This thread's number in callbacks' task events: 0 for callers, pool
    /// threads from 1.
    pub(crate) static SLOT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Shared between the pool threads and every scheduler handle.
pub(crate) struct Pool {
    helpers: usize,
    queue: Mutex<Queue>,
    available: Condvar,
}

struct Queue {
    requests: VecDeque<Arc<Run>>,
    shutdown: bool,
}

impl Pool {
    /// Starts `helpers` threads.
    pub(crate) fn start(helpers: usize) -> Result<Arc<Pool>> {
        let pool = Arc::new(Pool {
            helpers,
            queue: Mutex::new(Queue {
                requests: VecDeque::new(),
                shutdown: false,
            }),
            available: Condvar::new(),
        });
        for i in 0..helpers {
            let pool = pool.clone();
            std::thread::Builder::new()
                .name(format!("dask-threaded-{i}"))
                .stack_size(STACK_SIZE)
                .spawn(move || {
                    SLOT.set(i + 1);
                    pool.serve()
                })
                .map_err(|e| Error::Scheduler {
                    scheduler: "threaded".into(),
                    message: format!("could not start pool thread {i}: {e}"),
                })?;
        }
        Ok(pool)
    }

    /// Number of pool threads.
    pub(crate) fn helpers(&self) -> usize {
        self.helpers
    }

    /// Asks `n` pool threads to help with `run`.
    pub(crate) fn request_help(&self, run: &Arc<Run>, n: usize) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        for _ in 0..n {
            queue.requests.push_back(run.clone());
        }
        drop(queue);
        if n == 1 {
            self.available.notify_one();
        } else {
            self.available.notify_all();
        }
    }

    fn serve(self: Arc<Self>) {
        loop {
            let run = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if queue.shutdown {
                        return;
                    }
                    if let Some(run) = queue.requests.pop_front() {
                        break run;
                    }
                    queue = self
                        .available
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            run.help(&self);
        }
    }

    fn shutdown(&self) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .shutdown = true;
        self.available.notify_all();
    }
}

/// Owned by the scheduler handles: stops the pool threads when the last handle
/// drops (the threads hold the `Pool`, not the `Handle`).
pub(crate) struct Handle(Arc<Pool>);

impl Handle {
    pub(crate) fn new(pool: Arc<Pool>) -> Handle {
        Handle(pool)
    }

    pub(crate) fn pool(&self) -> &Arc<Pool> {
        &self.0
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}
