//! Properties over random DAGs (dask_testing::graphs::random_dag): the
//! reference evaluator and the sync scheduler agree with the generator's own
//! oracle; cull and fuse never change results; fuse keeps requested keys and
//! shortens chains; `order` is topological; `Graph::validate` accepts every
//! random DAG and rejects injected cycles and dangling references.

use dask_core::optimize::MAX_FUSED_CHAIN;
use dask_core::{
    cull, fuse, order, reference, Error, Graph, Key, KeySet, Result, Scheduler, Task, Value,
};
use dask_sync_scheduler::SyncScheduler;
use dask_testing::check_property;
use dask_testing::graphs::{chain, chain_expected, key_set, random_dag, u64s, Failures, RandomDag};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const CASES: u32 = 48;
const MAX_TASKS: usize = 1500;

/// Checks a compute outcome against the random DAG's oracle: the exact values,
/// or a failure of one of the failing tasks the outputs need. With `exact_key`,
/// the error must carry that key itself (no fusion renamed the task).
fn check_outcome(
    dag: &RandomDag,
    got: Result<Vec<Value>>,
    exact_key: bool,
) -> Result<(), TestCaseError> {
    match (dag.expected(), got) {
        (Ok(want), Ok(values)) => prop_assert_eq!(u64s(&values), want),
        (Err(needed), Err(err)) => {
            let Error::TaskFailed { key, message, .. } = &err else {
                return Err(TestCaseError::fail(format!(
                    "expected TaskFailed, got {err:?}"
                )));
            };
            prop_assert!(
                RandomDag::is_failure_of(message, &needed),
                "{err} is not a failure of {needed:?}"
            );
            if exact_key {
                prop_assert!(needed.contains(key), "{key} is not among {needed:?}");
            }
        }
        (Ok(want), Err(err)) => {
            return Err(TestCaseError::fail(format!(
                "expected {want:?}, got error {err}"
            )))
        }
        (Err(needed), Ok(_)) => {
            return Err(TestCaseError::fail(format!(
                "expected a failure of {needed:?}, got values"
            )))
        }
    }
    Ok(())
}

#[test]
fn reference_and_sync_agree_with_the_generator_oracle() {
    check_property(
        CASES,
        || random_dag(MAX_TASKS, Failures::AtMostOne),
        |dag| {
            let oracle = reference::get(&dag.graph, &dag.outputs);
            let sync = SyncScheduler::new().compute(&dag.graph, &dag.outputs);
            if let (Err(a), Err(b)) = (&oracle, &sync) {
                prop_assert_eq!(
                    a.failed_key(),
                    b.failed_key(),
                    "one failing task: the same key"
                );
            }
            check_outcome(&dag, oracle, true)?;
            check_outcome(&dag, sync, true)
        },
    );
}

#[test]
fn several_failures_report_a_needed_failing_task() {
    check_property(
        CASES,
        || random_dag(MAX_TASKS, Failures::Several),
        |dag| {
            check_outcome(&dag, reference::get(&dag.graph, &dag.outputs), true)?;
            check_outcome(
                &dag,
                SyncScheduler::new().compute(&dag.graph, &dag.outputs),
                true,
            )
        },
    );
}

#[test]
fn cull_keeps_exactly_what_outputs_need_and_never_changes_results() {
    check_property(
        CASES,
        || random_dag(MAX_TASKS, Failures::Several),
        |dag| {
            let culled = cull(&dag.graph, &dag.outputs).unwrap();
            let mut kept: Vec<Key> = culled.sorted_keys();
            kept.dedup();
            prop_assert_eq!(kept, dag.needed_keys());
            for (key, task) in culled.iter() {
                let original = dag.graph.get_shared(key).unwrap();
                prop_assert!(
                    std::sync::Arc::ptr_eq(original, culled.get_shared(key).unwrap()),
                    "{task:?} copied"
                );
            }
            let before = reference::get(&dag.graph, &dag.outputs);
            let after = reference::get(&culled, &dag.outputs);
            match (&before, &after) {
                (Ok(a), Ok(b)) => prop_assert_eq!(u64s(a), u64s(b)),
                (Err(a), Err(b)) => prop_assert_eq!(a.failed_key(), b.failed_key()),
                _ => return Err(TestCaseError::fail(format!("{before:?} vs {after:?}"))),
            }
            check_outcome(&dag, after, true)
        },
    );
}

#[test]
fn fuse_never_changes_results_and_keeps_requested_keys() {
    check_property(
        CASES,
        || random_dag(MAX_TASKS, Failures::AtMostOne),
        |dag| {
            let culled = cull(&dag.graph, &dag.outputs).unwrap();
            let fused = fuse(&dag.graph, &dag.outputs).unwrap();
            fused.validate().unwrap();
            prop_assert!(fused.len() <= culled.len());
            for out in &dag.outputs {
                prop_assert!(fused.contains(out), "fuse dropped output {out}");
            }
            let originals = key_set(&dag.graph);
            for key in fused.keys() {
                prop_assert!(originals.contains(key), "fuse made up key {key}");
            }
            let before = reference::get(&dag.graph, &dag.outputs);
            let after = reference::get(&fused, &dag.outputs);
            match (&before, &after) {
                (Ok(a), Ok(b)) => prop_assert_eq!(u64s(a), u64s(b)),
                (Err(a), Err(b)) => {
                    // One failing task: the same failure, whatever key fusion gave it.
                    let (
                        Error::TaskFailed { message: ma, .. },
                        Error::TaskFailed { message: mb, .. },
                    ) = (a, b)
                    else {
                        return Err(TestCaseError::fail(format!("{a:?} vs {b:?}")));
                    };
                    prop_assert_eq!(ma, mb);
                }
                _ => return Err(TestCaseError::fail(format!("{before:?} vs {after:?}"))),
            }
            check_outcome(&dag, after, false)?;
            check_outcome(
                &dag,
                SyncScheduler::new().compute(&fused, &dag.outputs),
                false,
            )
        },
    );
}

#[test]
fn fuse_with_several_failures_still_fails_on_a_needed_task() {
    check_property(
        CASES,
        || random_dag(MAX_TASKS, Failures::Several),
        |dag| {
            let fused = fuse(&dag.graph, &dag.outputs).unwrap();
            check_outcome(&dag, reference::get(&fused, &dag.outputs), false)
        },
    );
}

#[test]
fn fuse_shortens_chains_and_keeps_kept_keys() {
    for n in [
        1usize,
        2,
        3,
        10,
        MAX_FUSED_CHAIN - 1,
        MAX_FUSED_CHAIN,
        MAX_FUSED_CHAIN + 1,
        300,
        1000,
    ] {
        let (g, last) = chain(n);
        let fused = fuse(&g, std::slice::from_ref(&last)).unwrap();
        assert!(fused.contains(&last));
        if n >= 2 {
            assert!(
                fused.len() < n,
                "a chain of {n} was not shortened: {} tasks",
                fused.len()
            );
        }
        if n <= MAX_FUSED_CHAIN {
            assert_eq!(fused.len(), 1, "a chain of {n} fits in one fused task");
        }
        // Each fused task covers a bounded chain (fusion bounds nesting).
        for (key, task) in fused.iter() {
            assert!(
                task.depth() <= MAX_FUSED_CHAIN + 1,
                "{key}: depth {}",
                task.depth()
            );
        }
        assert!(fused.len() >= n.div_ceil(MAX_FUSED_CHAIN + 1));
        let got = reference::get(&fused, std::slice::from_ref(&last)).unwrap();
        assert_eq!(u64s(&got), vec![chain_expected(n)]);
        let got = SyncScheduler::new()
            .compute(&fused, std::slice::from_ref(&last))
            .unwrap();
        assert_eq!(u64s(&got), vec![chain_expected(n)]);

        // A key asked for in the middle survives fusion, with its own value.
        if n >= 3 {
            let mid = Key::new("chain", [n as u64 / 2]);
            let fused = fuse(&g, &[mid.clone(), last.clone()]).unwrap();
            assert!(fused.contains(&mid) && fused.contains(&last));
            let got = reference::get(&fused, &[mid, last]).unwrap();
            assert_eq!(
                u64s(&got),
                vec![chain_expected(n / 2 + 1), chain_expected(n)]
            );
        }
    }
}

#[test]
fn order_is_topological() {
    check_property(
        CASES,
        || random_dag(MAX_TASKS, Failures::None),
        |dag| {
            let priorities = order(&dag.graph, &dag.outputs).unwrap();
            let mut keys: Vec<Key> = priorities.keys().cloned().collect();
            keys.sort();
            prop_assert_eq!(keys, dag.needed_keys());
            let mut seen: Vec<u32> = priorities.values().copied().collect();
            seen.sort_unstable();
            prop_assert_eq!(
                seen,
                (0..priorities.len() as u32).collect::<Vec<_>>(),
                "priorities are 0..n"
            );
            for (key, &p) in &priorities {
                for dep in dag.graph.get(key).unwrap().dependencies() {
                    prop_assert!(
                        priorities[&dep] < p,
                        "{dep} (priority {}) runs after its dependent {key} ({p})",
                        priorities[&dep]
                    );
                }
            }
            Ok(())
        },
    );
}

#[test]
fn validate_accepts_dags_and_rejects_cycles_and_dangling_keys() {
    let strategy = || (random_dag(MAX_TASKS, Failures::None), any::<u32>());
    check_property(CASES, strategy, |(dag, pick)| {
        dag.graph.validate().unwrap();
        // Tasks with a dependency: redirect one of its dependencies to it (a
        // cycle), or remove that dependency (a dangling reference).
        let with_deps: Vec<usize> = (0..dag.keys.len())
            .filter(|&i| !dag.dependencies()[i].is_empty())
            .collect();
        if with_deps.is_empty() {
            return Ok(());
        }
        let i = with_deps[pick as usize % with_deps.len()];
        let deps = &dag.dependencies()[i];
        let d = deps[(pick as usize / 7) % deps.len()] as usize;
        let (key, dep) = (&dag.keys[i], &dag.keys[d]);

        let mut cyclic: Graph = dag.graph.clone();
        cyclic.insert(dep.clone(), Task::alias(key.clone()));
        match cyclic.validate() {
            Err(Error::Cycle { keys }) => {
                prop_assert_eq!(keys.first(), keys.last());
                for pair in keys.windows(2) {
                    let reads = cyclic.get(&pair[0]).unwrap().dependencies();
                    prop_assert!(
                        reads.contains(&pair[1]),
                        "{} does not read {}: {:?}",
                        pair[0],
                        pair[1],
                        keys
                    );
                }
                let on_cycle: KeySet = keys.iter().cloned().collect();
                prop_assert!(
                    on_cycle.contains(key) && on_cycle.contains(dep),
                    "{keys:?} misses {key} or {dep}"
                );
            }
            other => {
                return Err(TestCaseError::fail(format!(
                    "expected a cycle, got {other:?}"
                )))
            }
        }

        let mut dangling = dag.graph.clone();
        dangling.remove(dep);
        match dangling.validate() {
            Err(Error::MissingDependency {
                key: holder,
                missing,
            }) => {
                prop_assert_eq!(&missing, dep);
                prop_assert!(dangling.get(&holder).unwrap().dependencies().contains(dep));
            }
            other => {
                return Err(TestCaseError::fail(format!(
                    "expected MissingDependency, got {other:?}"
                )))
            }
        }
        Ok(())
    });
}

#[test]
fn generator_exercises_the_whole_arg_vocabulary() {
    // Guards the strategy itself: over a few graphs, every argument kind,
    // data tasks, aliases, repeated keys and deep chains occur.
    use dask_core::Arg;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut keys, mut values, mut tasks, mut lists, mut data, mut aliases, mut repeats) =
        (0, 0, 0, 0, 0, 0, 0);
    let mut longest = 0usize;
    let mut widest = 0usize;
    fn walk(args: &[Arg], c: &mut [usize; 4]) {
        for a in args {
            match a {
                Arg::Key(_) => c[0] += 1,
                Arg::Value(_) => c[1] += 1,
                Arg::Task(t) => {
                    c[2] += 1;
                    walk(&t.args, c);
                }
                Arg::List(items) => {
                    c[3] += 1;
                    walk(items, c);
                }
            }
        }
    }
    for _ in 0..20 {
        let dag = random_dag(MAX_TASKS, Failures::None)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let mut depth = vec![0usize; dag.keys.len()];
        for (i, key) in dag.keys.iter().enumerate() {
            let task = dag.graph.get(key).unwrap();
            let mut c = [0; 4];
            walk(&task.args, &mut c);
            keys += c[0];
            values += c[1];
            tasks += c[2];
            lists += c[3];
            data += usize::from(task.as_data().is_some());
            aliases += usize::from(task.op.name() == "identity" && task.as_data().is_none());
            let mut read = 0;
            task.for_each_key(&mut |_| read += 1);
            repeats += usize::from(read > task.dependencies().len());
            let deps = &dag.dependencies()[i];
            widest = widest.max(deps.len());
            depth[i] = deps
                .iter()
                .map(|&d| depth[d as usize] + 1)
                .max()
                .unwrap_or(0);
            longest = longest.max(depth[i]);
        }
    }
    for (what, n) in [
        ("keys", keys),
        ("values", values),
        ("nested tasks", tasks),
        ("lists", lists),
        ("data", data),
        ("aliases", aliases),
        ("repeated keys", repeats),
    ] {
        assert!(n > 0, "no {what} generated");
    }
    eprintln!("longest path {longest}, widest fan-in {widest}");
    assert!(longest >= 200, "no deep chain: longest path {longest}");
    assert!(widest >= 16, "no wide fan-in: widest {widest}");
}
