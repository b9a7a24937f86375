//! Random task graphs for property tests, and an independent evaluator for them.
//!
//! [`random_dag`] generates DAGs whose tasks are numbered in a topological
//! order: task `i` depends on 0 or more earlier tasks, some near (`i - 1`,
//! `i - 2`, ...: deep chains), some anywhere before it (fan-out), a few tasks
//! with many dependencies (wide fan-in). Arguments use the whole [`Arg`]
//! vocabulary (keys, literal values, nested tasks, lists, repeated keys), and
//! there are literal data tasks and aliases. Each op folds its inputs in order
//! (`acc * 31 + x` over `u64`), so any mix-up of arguments changes the result.
//!
//! ```
//! use dask_testing::graphs::{random_dag, Failures};
//! use proptest::strategy::{Strategy, ValueTree};
//! use proptest::test_runner::TestRunner;
//!
//! let mut runner = TestRunner::deterministic();
//! let dag = random_dag(200, Failures::None).new_tree(&mut runner).unwrap().current();
//! let got = dask_core::reference::get(&dag.graph, &dag.outputs).unwrap();
//! assert_eq!(dask_testing::graphs::u64s(&got), dag.expected().unwrap());
//! ```

use std::fmt;
use std::sync::Arc;

use dask_core::{op::Op, Arg, BoxError, Graph, Key, KeyMap, KeySet, Task, Value};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::rng::Rng;

/// How many tasks of a [`random_dag`] fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failures {
    /// No task fails.
    None,
    /// Zero or one task fails.
    AtMostOne,
    /// Two to six tasks fail (fewer in very small graphs).
    Several,
}

/// How a failing task of a [`random_dag`] fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FailMode {
    /// Its op returns an [`IntentionalFailure`].
    Error,
    /// Its op panics with a message containing
    /// [`INTENTIONAL_PANIC`](crate::INTENTIONAL_PANIC).
    Panic,
}

/// The error a failing task of a [`random_dag`] returns.
#[derive(Debug, Clone)]
pub struct IntentionalFailure {
    /// The key of the task that failed.
    pub key: Key,
}

impl fmt::Display for IntentionalFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "intentional failure in task {}", self.key)
    }
}

impl std::error::Error for IntentionalFailure {}

/// A random task graph, the outputs to ask for, and the tasks that fail.
#[derive(Clone)]
pub struct RandomDag {
    /// The graph.
    pub graph: Graph,
    /// The outputs to compute: never empty, sometimes with a repeated key.
    pub outputs: Vec<Key>,
    /// Keys whose op errors or panics (needed by the outputs or not).
    pub failing: Vec<Key>,
    /// Every key, in task order: a topological order (each task depends only on
    /// earlier ones).
    pub keys: Vec<Key>,
    kinds: Vec<Kind>,
    deps: Vec<Vec<u32>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Data,
    Alias,
    Mix,
    Fail(FailMode),
}

impl RandomDag {
    /// The outputs' values computed by a plain in-order evaluation that shares
    /// no code with dask-core's plan or reference evaluator; or, if the outputs
    /// need failing tasks, those failing keys (sorted).
    ///
    /// A correct scheduler either returns exactly these values, or fails with
    /// one of these keys.
    pub fn expected(&self) -> Result<Vec<u64>, Vec<Key>> {
        let needed = self.needed_failing();
        if !needed.is_empty() {
            return Err(needed);
        }
        let index: KeyMap<usize> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        let mut values: Vec<Option<Value>> = vec![None; self.keys.len()];
        let wanted = self.needed();
        for i in 0..self.keys.len() {
            if !wanted[i] {
                continue;
            }
            let task = self.graph.get(&self.keys[i]).expect("every key has a task");
            let lookup = |k: &Key| values[index[k]].clone().expect("dependency evaluated");
            values[i] = Some(eval_task(task, &lookup));
        }
        Ok(self
            .outputs
            .iter()
            .map(|k| {
                *values[index[k]]
                    .as_ref()
                    .expect("output evaluated")
                    .downcast_ref::<u64>()
                    .expect("random_dag values are u64")
            })
            .collect())
    }

    /// The failing keys the outputs need (directly or through other tasks), sorted.
    pub fn needed_failing(&self) -> Vec<Key> {
        let needed = self.needed();
        let mut keys: Vec<Key> = (0..self.keys.len())
            .filter(|&i| needed[i] && matches!(self.kinds[i], Kind::Fail(_)))
            .map(|i| self.keys[i].clone())
            .collect();
        keys.sort();
        keys
    }

    /// Every key the outputs need (themselves included), sorted: what culling
    /// to the outputs must keep, from the generator's own dependency lists.
    pub fn needed_keys(&self) -> Vec<Key> {
        let needed = self.needed();
        let mut keys: Vec<Key> = (0..self.keys.len())
            .filter(|&i| needed[i])
            .map(|i| self.keys[i].clone())
            .collect();
        keys.sort();
        keys
    }

    /// Whether `message` is the failure message of one of `keys` (an
    /// [`IntentionalFailure`] or an intentional panic): how to check an error
    /// when fusion may have renamed the failing task.
    pub fn is_failure_of(message: &str, keys: &[Key]) -> bool {
        keys.iter().any(|k| {
            message == IntentionalFailure { key: k.clone() }.to_string()
                || message.ends_with(&format!("{} in task {k}", crate::INTENTIONAL_PANIC))
        })
    }

    /// How a failing key fails, or `None` if it does not fail.
    pub fn fail_mode(&self, key: &Key) -> Option<FailMode> {
        let i = self.keys.iter().position(|k| k == key)?;
        match self.kinds[i] {
            Kind::Fail(mode) => Some(mode),
            _ => None,
        }
    }

    /// The distinct dependencies of each task, by task number.
    pub fn dependencies(&self) -> &[Vec<u32>] {
        &self.deps
    }

    /// The tasks the outputs need, by task number.
    fn needed(&self) -> Vec<bool> {
        let index: KeyMap<usize> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        let mut needed = vec![false; self.keys.len()];
        let mut stack: Vec<usize> = self.outputs.iter().map(|k| index[k]).collect();
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut needed[i], true) {
                continue;
            }
            stack.extend(self.deps[i].iter().map(|&d| d as usize));
        }
        needed
    }
}

impl fmt::Debug for RandomDag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "RandomDag {{ {} tasks, outputs: {:?}, failing: {:?}",
            self.keys.len(),
            self.outputs,
            self.failing
        )?;
        for (i, key) in self.keys.iter().enumerate() {
            let deps: Vec<String> = self.deps[i]
                .iter()
                .map(|&d| self.keys[d as usize].to_string())
                .collect();
            writeln!(f, "  {key} = {:?} <- [{}]", self.kinds[i], deps.join(", "))?;
        }
        write!(f, "}}")
    }
}

/// Folds a task's resolved arguments the way every op of a [`random_dag`] does.
fn fold(seed: u64, args: &[Value]) -> Result<u64, BoxError> {
    let mut acc = seed;
    for a in args {
        let x = if let Ok(x) = a.downcast_ref::<u64>() {
            *x
        } else if let Ok(items) = a.downcast_ref::<Vec<Value>>() {
            fold(LIST_SEED, items)?
        } else {
            return Err(format!("random_dag op got a `{}`", a.type_name()).into());
        };
        acc = acc.wrapping_mul(31).wrapping_add(x);
    }
    Ok(acc)
}

const LIST_SEED: u64 = 0x9e37_79b9;

/// Evaluates a task from its dependencies' values, walking its arguments
/// itself (independent of `Task::execute`); nested ops are called directly.
fn eval_task(task: &Task, lookup: &dyn Fn(&Key) -> Value) -> Value {
    let args: Vec<Value> = task.args.iter().map(|a| eval_arg(a, lookup)).collect();
    task.op
        .call(&args)
        .unwrap_or_else(|e| panic!("random_dag op failed in the oracle: {e}"))
}

fn eval_arg(arg: &Arg, lookup: &dyn Fn(&Key) -> Value) -> Value {
    match arg {
        Arg::Key(k) => lookup(k),
        Arg::Value(v) => v.clone(),
        Arg::Task(t) => eval_task(t, lookup),
        Arg::List(items) => Value::new(
            items
                .iter()
                .map(|a| eval_arg(a, lookup))
                .collect::<Vec<_>>(),
        ),
    }
}

/// The op of every computing task of a [`random_dag`]; registered, so
/// worker processes of a test binary rebuild it from its parameters.
#[derive(serde::Serialize, serde::Deserialize)]
struct Mix {
    seed: u64,
    fail: Option<(FailMode, Key)>,
}

impl Op for Mix {
    fn name(&self) -> &str {
        match self.fail {
            None => "mix",
            Some((FailMode::Error, _)) => "fail-error",
            Some((FailMode::Panic, _)) => "fail-panic",
        }
    }

    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        match &self.fail {
            None => Ok(Value::new(fold(self.seed, args)?)),
            Some((FailMode::Error, key)) => Err(Box::new(IntentionalFailure { key: key.clone() })),
            Some((FailMode::Panic, key)) => {
                panic!("{} in task {key}", crate::INTENTIONAL_PANIC)
            }
        }
    }
}
dask_core::register_op_type!(Mix);

/// One generated task: its dependency picks `(near, raw)` and a seed for the rest.
type TaskSpec = (Vec<(bool, u32)>, u64);

/// The key of task `i` of a [`random_dag`]: mostly `("t", i)`, every fifth a
/// plain name, so both key shapes occur.
fn task_key(i: usize) -> Key {
    if i % 5 == 4 {
        Key::named(format!("t-{i}"))
    } else {
        Key::new("t", [i as u64])
    }
}

/// A strategy for random DAGs of 1 to `max_tasks` tasks, with failing tasks as
/// `failures` says (each failing task errors or panics, at random).
///
/// Generating is linear in the number of tasks, fast enough for thousands.
/// Shrinking bisects the number of tasks, then drops single tasks and
/// dependencies.
pub fn random_dag(max_tasks: usize, failures: Failures) -> impl Strategy<Value = RandomDag> {
    let max_tasks = max_tasks.max(1);
    // Picks and seeds do not shrink (a smaller number is not a simpler graph);
    // what shrinks is the number of tasks and of dependencies.
    let dep = (prop::bool::weighted(0.7), any::<u32>()).no_shrink();
    let deps = prop_oneof![
        1 => vec(dep, 0..=0),
        8 => vec(dep, 1..=3),
        1 => vec(dep, 4..=32),
    ];
    // The number of tasks is also drawn on its own and the specs cut to it:
    // an integer shrinks by bisection, so a failing graph of thousands of
    // tasks shrinks in a few steps (the vector alone drops one task at a time).
    let tasks = (
        1..=max_tasks,
        vec((deps, any::<u64>().no_shrink()), 1..=max_tasks),
    );
    let outputs = (
        vec((prop::bool::weighted(0.5), any::<u32>()), 1..=6),
        prop::option::weighted(0.2, any::<u32>()),
    );
    let failing = match failures {
        Failures::None => vec((any::<u32>(), any::<bool>()), 0..=0),
        Failures::AtMostOne => vec((any::<u32>(), any::<bool>()), 0..=1),
        Failures::Several => vec((any::<u32>(), any::<bool>()), 2..=6),
    };
    (tasks, outputs, failing).prop_map(|((n, tasks), (outputs, duplicate), failing)| {
        build(
            &tasks[..n.min(tasks.len()).max(1)],
            &outputs,
            duplicate,
            &failing,
        )
    })
}

fn build(
    specs: &[TaskSpec],
    outputs: &[(bool, u32)],
    duplicate: Option<u32>,
    failing: &[(u32, bool)],
) -> RandomDag {
    let n = specs.len();
    let keys: Vec<Key> = (0..n).map(task_key).collect();
    let mut fail_modes: Vec<Option<FailMode>> = vec![None; n];
    let mut failing_keys = Vec::new();
    for &(raw, panics) in failing {
        let i = raw as usize % n;
        if fail_modes[i].is_none() {
            fail_modes[i] = Some(if panics {
                FailMode::Panic
            } else {
                FailMode::Error
            });
            failing_keys.push(keys[i].clone());
        }
    }

    let mut graph = Graph::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut all_deps = Vec::with_capacity(n);
    for (i, (dep_specs, seed)) in specs.iter().enumerate() {
        let mut rng = Rng::new(*seed);
        let deps: Vec<usize> = if i == 0 {
            Vec::new()
        } else {
            dep_specs
                .iter()
                .map(|&(near, raw)| {
                    if near {
                        i - 1 - raw as usize % i.min(3)
                    } else {
                        raw as usize % i
                    }
                })
                .collect()
        };
        let mut distinct: Vec<u32> = Vec::new();
        for &d in &deps {
            if !distinct.contains(&(d as u32)) {
                distinct.push(d as u32);
            }
        }
        let fail = fail_modes[i];
        let (kind, task) = if let Some(mode) = fail {
            let op = Arc::new(Mix {
                seed: rng.next_u64(),
                fail: Some((mode, keys[i].clone())),
            });
            (
                Kind::Fail(mode),
                Task::new(op, mix_args(&mut rng, &deps, &keys)),
            )
        } else if deps.is_empty() && rng.one_in(2) {
            (Kind::Data, Task::data(Value::new(rng.next_u64())))
        } else if distinct.len() == 1 && rng.one_in(6) {
            (Kind::Alias, Task::alias(keys[deps[0]].clone()))
        } else {
            let op = Arc::new(Mix {
                seed: rng.next_u64(),
                fail: None,
            });
            (Kind::Mix, Task::new(op, mix_args(&mut rng, &deps, &keys)))
        };
        graph.insert(keys[i].clone(), task);
        kinds.push(kind);
        all_deps.push(distinct);
    }

    let mut outs: Vec<Key> = outputs
        .iter()
        .map(|&(near_end, raw)| {
            let i = if near_end {
                n - 1 - raw as usize % n.min(4)
            } else {
                raw as usize % n
            };
            keys[i].clone()
        })
        .collect();
    if let Some(raw) = duplicate {
        let again = outs[raw as usize % outs.len()].clone();
        let at = raw as usize % (outs.len() + 1);
        outs.insert(at, again);
    }
    RandomDag {
        graph,
        outputs: outs,
        failing: failing_keys,
        keys,
        kinds,
        deps: all_deps,
    }
}

/// The arguments of a computing task reading `deps` (repeats kept): keys placed
/// directly, in a list, in a nested task or in a list inside a nested task,
/// with literals in between, and now and then a key read twice.
fn mix_args(rng: &mut Rng, deps: &[usize], keys: &[Key]) -> Vec<Arg> {
    let mut direct: Vec<Arg> = Vec::new();
    let mut list: Vec<Arg> = Vec::new();
    let mut nested: Vec<Arg> = Vec::new();
    let mut nested_list: Vec<Arg> = Vec::new();
    let insert = |rng: &mut Rng, args: &mut Vec<Arg>, arg: Arg| {
        let at = rng.below(args.len() + 1);
        args.insert(at, arg);
    };
    for &d in deps {
        let key = Arg::Key(keys[d].clone());
        let times = if rng.one_in(10) { 2 } else { 1 };
        for _ in 0..times {
            match rng.below(8) {
                0..=4 => direct.push(key.clone()),
                5 => list.push(key.clone()),
                6 => nested.push(key.clone()),
                _ => nested_list.push(key.clone()),
            }
        }
    }
    for _ in 0..rng.below(3) {
        let literal = Arg::value(rng.next_u64() % 1000);
        insert(rng, &mut direct, literal);
    }
    if rng.one_in(3) {
        let literal = Arg::value(rng.next_u64() % 1000);
        insert(rng, &mut list, literal);
    }
    if !nested_list.is_empty() {
        insert(rng, &mut nested, Arg::List(nested_list));
    }
    if !nested.is_empty() || rng.one_in(20) {
        if rng.one_in(2) {
            let literal = Arg::value(rng.next_u64() % 1000);
            insert(rng, &mut nested, literal);
        }
        let op = Arc::new(Mix {
            seed: rng.next_u64(),
            fail: None,
        });
        let task = Arg::Task(Box::new(Task::new(op, nested)));
        insert(rng, &mut direct, task);
    }
    if !list.is_empty() || rng.one_in(20) {
        insert(rng, &mut direct, Arg::List(list));
    }
    direct
}

/// The `u64`s held by values (panics on another type): compare scheduler output
/// with [`RandomDag::expected`].
pub fn u64s(values: &[Value]) -> Vec<u64> {
    values
        .iter()
        .map(|v| *v.downcast_ref::<u64>().expect("a u64 value"))
        .collect()
}

/// A linear chain of `n` tasks, `("chain", 0)` a literal and each next one
/// `prev * 31 + i`; returns the graph and the last key. The expected last value
/// is [`chain_expected`].
pub fn chain(n: usize) -> (Graph, Key) {
    assert!(n > 0, "a chain needs at least one task");
    let step: Arc<dyn Op> =
        dask_core::op::fn_op(|prev: u64, i: u64| prev.wrapping_mul(31).wrapping_add(i));
    let mut graph = Graph::with_capacity(n);
    graph.insert_data(Key::new("chain", [0]), Value::new(0u64));
    for i in 1..n as u64 {
        graph.insert(
            Key::new("chain", [i]),
            Task::new(
                step.clone(),
                vec![Arg::Key(Key::new("chain", [i - 1])), Arg::value(i)],
            ),
        );
    }
    (graph, Key::new("chain", [n as u64 - 1]))
}

/// The last value of [`chain`]`(n)`, computed with a plain loop.
pub fn chain_expected(n: usize) -> u64 {
    (1..n as u64).fold(0u64, |prev, i| prev.wrapping_mul(31).wrapping_add(i))
}

/// The set of keys of a graph, for comparing graphs' key sets.
pub fn key_set(graph: &Graph) -> KeySet {
    graph.keys().cloned().collect()
}
