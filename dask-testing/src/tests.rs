//! Tests of the test support itself: the watchdog, the counters, and that the
//! random-DAG oracle catches a scheduler that mixes up arguments.

use std::time::Duration;

use dask_core::{reference, Arg, Graph, Key, Result, Scheduler, Task, Value};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

use crate::graphs::{chain, chain_expected, random_dag, u64s, Failures, RandomDag};
use crate::tracked::tree_reduction;
use crate::{within, LiveCounter, Tracked};

fn dags(n: usize, max_tasks: usize, failures: Failures) -> Vec<RandomDag> {
    let mut runner = TestRunner::deterministic();
    let strategy = random_dag(max_tasks, failures);
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

#[test]
fn within_returns_the_result() {
    assert_eq!(within(Duration::from_secs(10), || "done"), "done");
}

#[test]
#[should_panic(expected = "did not finish within")]
fn within_fails_a_hanging_body() {
    within(Duration::from_millis(50), || {
        std::thread::sleep(Duration::from_secs(3));
    });
}

#[test]
#[should_panic(expected = "intentional panic: from the body")]
fn within_propagates_the_body_panic() {
    crate::silence_intentional_panics();
    within(Duration::from_secs(10), || -> () {
        panic!("intentional panic: from the body");
    });
}

#[test]
fn tracked_counts_live_values_and_peak() {
    let c = LiveCounter::new();
    let other = LiveCounter::new();
    let a = Tracked::new(&c, 1);
    let b = a.clone();
    let _x = Tracked::new(&other, 9);
    assert_eq!((c.live(), c.peak(), c.created()), (2, 2, 2));
    drop(a);
    let d = Tracked::new(&c, 2);
    assert_eq!((c.live(), c.peak(), c.created()), (2, 2, 3));
    drop((b, d));
    assert_eq!((c.live(), c.peak()), (0, 2));
    c.reset_peak();
    assert_eq!(c.peak(), 0);
    assert_eq!(other.live(), 1, "counters are independent");
}

#[test]
fn tree_reduction_shape_and_value() {
    for leaves in [1usize, 2, 3, 8, 100] {
        let c = LiveCounter::new();
        let (g, root, depth) = tree_reduction(&c, leaves);
        if leaves.is_power_of_two() {
            assert_eq!(g.len(), 2 * leaves - 1);
            assert_eq!(1usize << depth, leaves);
        }
        assert!(1usize << depth >= leaves && (depth == 0 || 1usize << (depth - 1) < leaves));
        let out = reference::get(&g, &[root]).unwrap();
        let v = out[0].downcast_ref::<Tracked>().unwrap().value();
        assert_eq!(v, (0..leaves as u64).sum::<u64>());
    }
}

#[test]
fn chain_matches_its_plain_loop() {
    for n in [1, 2, 5, 100] {
        let (g, last) = chain(n);
        let out = reference::get(&g, &[last]).unwrap();
        assert_eq!(u64s(&out), vec![chain_expected(n)]);
    }
}

#[test]
fn generator_oracle_agrees_with_reference() {
    for dag in dags(30, 500, Failures::AtMostOne) {
        assert!(!dag.outputs.is_empty());
        dag.graph.validate().unwrap();
        match (dag.expected(), reference::get(&dag.graph, &dag.outputs)) {
            (Ok(want), Ok(got)) => assert_eq!(u64s(&got), want),
            (Err(needed), Err(e)) => assert!(needed.contains(e.failed_key().unwrap())),
            (a, b) => panic!("oracle {a:?} vs reference {b:?}"),
        }
    }
}

#[test]
fn failures_are_as_asked() {
    for dag in dags(30, 300, Failures::None) {
        assert!(dag.failing.is_empty());
    }
    for dag in dags(30, 300, Failures::AtMostOne) {
        assert!(dag.failing.len() <= 1);
    }
    let several = dags(30, 300, Failures::Several);
    assert!(several.iter().any(|d| d.failing.len() >= 2));
    assert!(several.iter().any(|d| !d.needed_failing().is_empty()));
    for dag in &several {
        for key in &dag.failing {
            assert!(dag.fail_mode(key).is_some());
        }
    }
    let modes: Vec<_> = several
        .iter()
        .flat_map(|d| d.failing.iter().map(|k| d.fail_mode(k).unwrap()))
        .collect();
    assert!(modes.contains(&crate::graphs::FailMode::Error));
    assert!(modes.contains(&crate::graphs::FailMode::Panic));
}

/// A wrong scheduler: evaluates a copy of the graph whose lists are reversed.
struct ReversesLists;

fn reverse(arg: &mut Arg) {
    match arg {
        Arg::List(items) => {
            items.reverse();
            items.iter_mut().for_each(reverse);
        }
        Arg::Task(t) => t.args.iter_mut().for_each(reverse),
        _ => {}
    }
}

impl Scheduler for ReversesLists {
    fn name(&self) -> &str {
        "reverses-lists"
    }
    fn compute(&self, graph: &Graph, outputs: &[Key]) -> Result<Vec<Value>> {
        let mut broken = Graph::new();
        for (k, t) in graph.iter() {
            let mut t: Task = t.clone();
            t.args.iter_mut().for_each(reverse);
            broken.insert(k.clone(), t);
        }
        reference::get(&broken, outputs)
    }
}

#[test]
fn the_oracle_catches_a_scheduler_that_reorders_arguments() {
    let caught = dags(20, 500, Failures::None)
        .iter()
        .filter(|dag| {
            let got = ReversesLists.compute(&dag.graph, &dag.outputs).unwrap();
            u64s(&got) != dag.expected().unwrap()
        })
        .count();
    assert!(
        caught >= 10,
        "only {caught} of 20 random DAGs exposed reversed lists"
    );
}

#[test]
fn sizes_and_outputs_vary() {
    let all = dags(40, 2000, Failures::None);
    let sizes: Vec<usize> = all.iter().map(|d| d.keys.len()).collect();
    assert!(sizes.iter().any(|&n| n < 500) && sizes.iter().any(|&n| n > 1500));
    assert!(all.iter().any(|d| {
        let mut o = d.outputs.clone();
        o.sort();
        o.windows(2).any(|w| w[0] == w[1])
    }));
    for d in &all {
        assert_eq!(d.graph.len(), d.keys.len());
    }
}

crate::scheduler_test! {
    fn the_macro_gives_a_working_scheduler(s: &dyn Scheduler) {
        let c = LiveCounter::new();
        let (g, root, _) = tree_reduction(&c, 16);
        let out = s.compute(&g, &[root]).unwrap();
        assert_eq!(out[0].downcast_ref::<Tracked>().unwrap().value(), (0..16).sum::<u64>());
    }
}
