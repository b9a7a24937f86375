//! [`Tracked`] values and their [`LiveCounter`]: measure, from outside a
//! scheduler, how many intermediate values it keeps alive at once.
//!
//! Every test makes its own counter, so tests running in parallel do not see
//! each other's values.
//!
//! ```
//! use dask_testing::{LiveCounter, Tracked};
//! let counter = LiveCounter::new();
//! let a = Tracked::new(&counter, 1);
//! let b = a.clone();
//! assert_eq!((counter.live(), counter.peak()), (2, 2));
//! drop((a, b));
//! assert_eq!((counter.live(), counter.peak()), (0, 2));
//! ```

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use dask_core::{op::Op, Arg, BoxError, Graph, Key, Task, Value};

/// Counts the [`Tracked`] values alive now, the most alive at once, and how
/// many were ever made.
#[derive(Debug, Default)]
pub struct LiveCounter {
    live: AtomicUsize,
    peak: AtomicUsize,
    created: AtomicUsize,
}

impl LiveCounter {
    /// A new counter at zero, to share with the values it counts.
    pub fn new() -> Arc<LiveCounter> {
        Arc::new(LiveCounter::default())
    }

    /// Values alive now.
    pub fn live(&self) -> usize {
        self.live.load(SeqCst)
    }

    /// The most values alive at once since creation (or [`reset_peak`](Self::reset_peak)).
    pub fn peak(&self) -> usize {
        self.peak.load(SeqCst)
    }

    /// Values made so far (clones included).
    pub fn created(&self) -> usize {
        self.created.load(SeqCst)
    }

    /// Restarts the peak from the number alive now.
    pub fn reset_peak(&self) {
        self.peak.store(self.live(), SeqCst);
    }

    fn acquire(&self) {
        let now = self.live.fetch_add(1, SeqCst) + 1;
        self.peak.fetch_max(now, SeqCst);
        self.created.fetch_add(1, SeqCst);
    }

    fn release(&self) {
        self.live.fetch_sub(1, SeqCst);
    }
}

/// A `u64` that counts itself in a [`LiveCounter`] while it is alive (a clone
/// is another live value).
pub struct Tracked {
    value: u64,
    counter: Arc<LiveCounter>,
}

impl Tracked {
    /// A new live value, counted in `counter`.
    pub fn new(counter: &Arc<LiveCounter>, value: u64) -> Tracked {
        counter.acquire();
        Tracked {
            value,
            counter: counter.clone(),
        }
    }

    /// The number held.
    pub fn value(&self) -> u64 {
        self.value
    }

    /// The counter this value counts in.
    pub fn counter(&self) -> &Arc<LiveCounter> {
        &self.counter
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Tracked {
        Tracked::new(&self.counter, self.value)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.counter.release();
    }
}

impl fmt::Debug for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tracked({})", self.value)
    }
}

/// An op taking one `u64` argument and returning it as a [`Tracked`] counted in `counter`.
pub fn make_op(counter: &Arc<LiveCounter>) -> Arc<dyn Op> {
    Arc::new(Make(counter.clone()))
}

/// An op returning the sum of its [`Tracked`] arguments as a new [`Tracked`];
/// it reads its arguments by reference, so a call adds only its result to the count.
pub fn sum_op(counter: &Arc<LiveCounter>) -> Arc<dyn Op> {
    Arc::new(Sum(counter.clone()))
}

struct Make(Arc<LiveCounter>);

impl Op for Make {
    fn name(&self) -> &str {
        "make-tracked"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let [v] = args else {
            return Err(format!("make-tracked takes 1 argument, got {}", args.len()).into());
        };
        Ok(Value::new(Tracked::new(&self.0, *v.downcast_ref::<u64>()?)))
    }
}

struct Sum(Arc<LiveCounter>);

impl Op for Sum {
    fn name(&self) -> &str {
        "sum-tracked"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let mut total = 0u64;
        for a in args {
            total = total.wrapping_add(a.downcast_ref::<Tracked>()?.value());
        }
        Ok(Value::new(Tracked::new(&self.0, total)))
    }
}

/// A binary tree reduction: `leaves` tasks each make a [`Tracked`] from their
/// index (no literal data held by the graph), pairs are summed level by level.
///
/// Returns the graph, the root's key and the number of sum levels
/// (`ceil(log2(leaves))`). The root's value is `0 + 1 + ... + (leaves - 1)`.
/// Panics if `leaves` is 0.
pub fn tree_reduction(counter: &Arc<LiveCounter>, leaves: usize) -> (Graph, Key, usize) {
    assert!(leaves > 0, "a tree reduction needs at least one leaf");
    let make = make_op(counter);
    let sum = sum_op(counter);
    let mut graph = Graph::with_capacity(2 * leaves);
    let mut level: Vec<Key> = (0..leaves as u64)
        .map(|i| {
            let key = Key::new("leaf", [i]);
            graph.insert(key.clone(), Task::new(make.clone(), vec![Arg::value(i)]));
            key
        })
        .collect();
    let mut depth = 0;
    while level.len() > 1 {
        depth += 1;
        level = level
            .chunks(2)
            .enumerate()
            .map(|(j, pair)| {
                let key = Key::new(format!("sum-{depth}"), [j as u64]);
                let args = pair.iter().cloned().map(Arg::Key).collect();
                graph.insert(key.clone(), Task::new(sum.clone(), args));
                key
            })
            .collect();
    }
    (graph, level.pop().expect("one root"), depth)
}
