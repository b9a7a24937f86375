//! The scheduler state machine driven by a simulated cluster: no sockets, many
//! random runs, workers dying at random. Values are computed for real by the
//! simulated workers and checked against a direct evaluation of the graph.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use dask_core::Key;
use dask_distributed::scheduler::state::{
    Action, Event, Outcome, Priority, SchedulerState, Status, TaskError, TaskSpec, WorkerId,
};

/// A task `name` reading `deps`, with default priority and no retries.
fn spec(name: &str, deps: &[&str], retries: u32) -> TaskSpec {
    TaskSpec {
        key: Key::named(name),
        dependencies: deps.iter().map(|d| Key::named(*d)).collect(),
        run_spec: Bytes::new(),
        priority: Priority::default(),
        retries,
        restrictions: None,
    }
}

fn err(key: &str, message: &str) -> TaskError {
    TaskError {
        key: Key::named(key),
        op: "op".into(),
        message: message.into(),
    }
}

/// xorshift64*: a tiny seeded generator, so every run is reproducible by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A random DAG: task i depends on up to 3 earlier tasks.
struct Dag {
    deps: Vec<Vec<usize>>,
}

impl Dag {
    fn random(rng: &mut Rng, n: usize) -> Dag {
        let deps = (0..n)
            .map(|i| {
                if i == 0 {
                    return vec![];
                }
                let k = rng.below(4) as usize;
                let mut d: Vec<usize> = (0..k).map(|_| rng.below(i as u64) as usize).collect();
                d.sort_unstable();
                d.dedup();
                d
            })
            .collect();
        Dag { deps }
    }

    fn key(i: usize) -> Key {
        Key::new("t", [i as u64])
    }

    /// The value of task i from its dependencies' values (order-sensitive).
    fn compute(i: usize, inputs: &[u64]) -> u64 {
        inputs
            .iter()
            .fold(i as u64 + 1, |acc, x| acc.wrapping_mul(31).wrapping_add(*x))
    }

    /// The oracle: every value, computed directly in index (topological) order.
    fn oracle(&self) -> Vec<u64> {
        let mut values: Vec<u64> = Vec::with_capacity(self.deps.len());
        for (i, deps) in self.deps.iter().enumerate() {
            let inputs: Vec<u64> = deps.iter().map(|&d| values[d]).collect();
            values.push(Dag::compute(i, &inputs));
        }
        values
    }

    fn specs(&self) -> Vec<TaskSpec> {
        self.deps
            .iter()
            .enumerate()
            .map(|(i, deps)| TaskSpec {
                key: Dag::key(i),
                dependencies: deps.iter().map(|&d| Dag::key(d)).collect(),
                run_spec: Bytes::from((i as u64).to_le_bytes().to_vec()),
                priority: Priority {
                    order: i as u64,
                    ..Default::default()
                },
                retries: 0,
                restrictions: None,
            })
            .collect()
    }
}

/// Simulated workers: what each one runs and holds.
#[derive(Default)]
struct Cluster {
    running: BTreeMap<WorkerId, Vec<Key>>,
    memory: BTreeMap<WorkerId, HashMap<Key, u64>>,
    reports: Vec<(Key, Outcome)>,
    next_worker: WorkerId,
    /// Steal requests not answered yet.
    steals: Vec<(WorkerId, Key)>,
}

impl Cluster {
    fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Compute { worker, key, .. } => self
                    .running
                    .get_mut(&worker)
                    .expect("compute on a live worker")
                    .push(key),
                Action::Free { worker, keys } => {
                    for k in keys {
                        if let Some(m) = self.memory.get_mut(&worker) {
                            m.remove(&k);
                        }
                        if let Some(r) = self.running.get_mut(&worker) {
                            r.retain(|x| *x != k);
                        }
                    }
                }
                Action::Report { key, outcome, .. } => self.reports.push((key, outcome)),
                Action::Steal { worker, key } => self.steals.push((worker, key)),
            }
        }
    }

    fn add_worker(&mut self, state: &mut SchedulerState, nthreads: u32) {
        let worker = self.next_worker;
        self.next_worker += 1;
        self.running.insert(worker, Vec::new());
        self.memory.insert(worker, HashMap::new());
        let actions = checked(state, Event::AddWorker { worker, nthreads }).unwrap();
        self.apply(actions);
    }

    fn find(&self, key: &Key) -> Option<u64> {
        self.memory.values().find_map(|m| m.get(key).copied())
    }
}

/// Handles an event and checks every invariant of the whole state.
fn checked(
    state: &mut SchedulerState,
    event: Event,
) -> Result<Vec<Action>, dask_distributed::scheduler::state::InvariantError> {
    let actions = state.handle(event)?;
    state.validate()?;
    Ok(actions)
}

fn index_of(key: &Key) -> usize {
    key.index()[0] as usize
}

/// One random run; returns a description of the failure, if any.
fn run(seed: u64) -> Result<(), String> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let n = 1 + rng.below(120) as usize;
    let dag = Dag::random(&mut rng, n);
    let oracle = dag.oracle();
    let mut state = SchedulerState::new().with_allowed_failures(1000);
    let mut cluster = Cluster::default();
    for _ in 0..1 + rng.below(4) {
        let threads = 1 + rng.below(3) as u32;
        cluster.add_worker(&mut state, threads);
    }
    let mut wanted: Vec<Key> = (0..n).filter(|_| rng.below(4) == 0).map(Dag::key).collect();
    wanted.push(Dag::key(n - 1));
    wanted.sort();
    wanted.dedup();
    let actions = checked(
        &mut state,
        Event::UpdateGraph {
            client: 1,
            tasks: dag.specs(),
            wanted: wanted.clone(),
        },
    )
    .map_err(|e| e.to_string())?;
    cluster.apply(actions);

    let mut paused = std::collections::BTreeSet::new();
    let mut steps = 0;
    loop {
        let done = wanted
            .iter()
            .all(|k| state.task(k).map(|t| t.status) == Some(Status::Memory));
        if done {
            break;
        }
        steps += 1;
        if steps > 20_000 {
            return Err(format!("seed {seed}: no progress after {steps} steps"));
        }
        // Occasionally kill a worker (keeping at least one) or add one.
        let roll = rng.below(100);
        if roll < 3 && cluster.running.len() > 1 {
            let victims: Vec<WorkerId> = cluster.running.keys().copied().collect();
            let victim = victims[rng.below(victims.len() as u64) as usize];
            cluster.running.remove(&victim);
            cluster.memory.remove(&victim);
            cluster.steals.retain(|(w, _)| *w != victim);
            paused.remove(&victim);
            let actions = checked(&mut state, Event::RemoveWorker { worker: victim })
                .map_err(|e| e.to_string())?;
            cluster.apply(actions);
            // Paused workers resume as memory frees; keep one running here.
            if paused.len() == cluster.running.len() {
                let worker = paused.pop_first().expect("some worker is left");
                let actions = checked(
                    &mut state,
                    Event::Heartbeat {
                        worker,
                        paused: false,
                    },
                )
                .map_err(|e| e.to_string())?;
                cluster.apply(actions);
            }
            continue;
        }
        if roll < 5 {
            let threads = 1 + rng.below(3) as u32;
            cluster.add_worker(&mut state, threads);
            continue;
        }
        // A heartbeat pauses or resumes a worker (one stays running).
        if (8..10).contains(&roll) {
            let ids: Vec<WorkerId> = cluster.running.keys().copied().collect();
            let worker = ids[rng.below(ids.len() as u64) as usize];
            let pause = !paused.contains(&worker);
            if pause && paused.len() + 1 >= ids.len() {
                continue;
            }
            if pause {
                paused.insert(worker);
            } else {
                paused.remove(&worker);
            }
            let actions = checked(
                &mut state,
                Event::Heartbeat {
                    worker,
                    paused: pause,
                },
            )
            .map_err(|e| format!("seed {seed}: {e}"))?;
            cluster.apply(actions);
            continue;
        }
        // A holder lost a value a running task needs (as a worker that freed
        // it or died unseen): the task's worker reports the missing data.
        if roll < 8 {
            let lost = cluster.running.iter().find_map(|(w, keys)| {
                keys.iter().find_map(|k| {
                    let d = dag.deps[index_of(k)].first()?;
                    let holder = cluster
                        .memory
                        .iter()
                        .find(|(_, m)| m.contains_key(&Dag::key(*d)))?
                        .0;
                    Some((*w, k.clone(), Dag::key(*d), *holder))
                })
            });
            if let Some((worker, key, dependency, holder)) = lost {
                cluster.memory.get_mut(&holder).unwrap().remove(&dependency);
                cluster
                    .running
                    .get_mut(&worker)
                    .unwrap()
                    .retain(|k| *k != key);
                let actions = checked(
                    &mut state,
                    Event::MissingData {
                        worker,
                        key,
                        dependency,
                        errant: vec![holder],
                    },
                )
                .map_err(|e| format!("seed {seed}: {e}"))?;
                cluster.apply(actions);
                continue;
            }
        }
        // Answer a steal request: the simulated worker gives the task up if it
        // holds it and a coin says it has not started it.
        if roll < 40 && !cluster.steals.is_empty() {
            let i = rng.below(cluster.steals.len() as u64) as usize;
            let (worker, key) = cluster.steals.swap_remove(i);
            let running = cluster.running.get_mut(&worker).unwrap();
            let stolen = running.contains(&key) && rng.below(2) == 0;
            if stolen {
                running.retain(|k| *k != key);
            }
            let actions = checked(
                &mut state,
                Event::StealResponse {
                    worker,
                    key,
                    stolen,
                },
            )
            .map_err(|e| format!("seed {seed}: {e}"))?;
            cluster.apply(actions);
            continue;
        }
        // Finish a random running task on a random busy worker.
        let busy: Vec<WorkerId> = cluster
            .running
            .iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(w, _)| *w)
            .collect();
        if busy.is_empty() {
            return Err(format!(
                "seed {seed}: nothing running and not done (stalled)"
            ));
        }
        let worker = busy[rng.below(busy.len() as u64) as usize];
        let running = cluster.running.get_mut(&worker).unwrap();
        let key = running.remove(rng.below(running.len() as u64) as usize);
        let i = index_of(&key);
        let mut inputs = Vec::new();
        for &d in &dag.deps[i] {
            match cluster.find(&Dag::key(d)) {
                Some(v) => inputs.push(v),
                None => {
                    return Err(format!(
                        "seed {seed}: {key} started but dependency t{d} is held nowhere"
                    ))
                }
            }
        }
        let value = Dag::compute(i, &inputs);
        cluster
            .memory
            .get_mut(&worker)
            .unwrap()
            .insert(key.clone(), value);
        let actions = checked(
            &mut state,
            Event::TaskFinished {
                worker,
                key,
                // Sizes vary, so the per-worker byte accounting is checked.
                nbytes: value % 4096 + 1,
            },
        )
        .map_err(|e| format!("seed {seed}: {e}"))?;
        cluster.apply(actions);
    }

    for k in &wanted {
        let got = cluster
            .find(k)
            .ok_or_else(|| format!("seed {seed}: {k} in memory but held nowhere"))?;
        if got != oracle[index_of(k)] {
            return Err(format!(
                "seed {seed}: {k} = {got}, oracle says {}",
                oracle[index_of(k)]
            ));
        }
        if !cluster.reports.contains(&(k.clone(), Outcome::Memory)) {
            return Err(format!(
                "seed {seed}: the client was never told {k} is ready"
            ));
        }
    }
    // Releasing every future forgets everything and frees every worker.
    let actions = checked(
        &mut state,
        Event::ReleaseKeys {
            client: 1,
            keys: wanted.clone(),
        },
    )
    .map_err(|e| format!("seed {seed}: {e}"))?;
    cluster.apply(actions);
    if let Some(t) = state.tasks().next() {
        return Err(format!(
            "seed {seed}: {} still known as {:?} after release",
            t.key, t.status
        ));
    }
    if cluster.memory.values().any(|m| !m.is_empty()) {
        return Err(format!(
            "seed {seed}: workers still hold data after release"
        ));
    }
    Ok(())
}

#[test]
fn random_graphs_on_a_simulated_cluster_with_worker_deaths() {
    let failures: Vec<String> = (0..300).filter_map(|seed| run(seed).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of 300 runs failed, first: {}",
        failures.len(),
        failures[0]
    );
}

#[test]
fn failures_propagate_to_dependents_and_retries_rerun() {
    // a -> b -> c ; a fails once (1 retry), then b fails for good.
    let specs = |retries_a: u32| {
        vec![
            spec("a", &[], retries_a),
            spec("b", &["a"], 0),
            spec("c", &["b"], 0),
        ]
    };
    let mut s = SchedulerState::new();
    s.handle(Event::AddWorker {
        worker: 0,
        nthreads: 1,
    })
    .unwrap();
    let actions = s
        .handle(Event::UpdateGraph {
            client: 7,
            tasks: specs(1),
            wanted: vec![Key::named("c")],
        })
        .unwrap();
    assert!(matches!(&actions[..], [Action::Compute { key, .. }] if *key == Key::named("a")));
    let actions = s
        .handle(Event::TaskErred {
            worker: 0,
            key: Key::named("a"),
            error: err("a", "flaky"),
        })
        .unwrap();
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Compute { key, .. } if *key == Key::named("a"))),
        "retry: {actions:?}"
    );
    s.handle(Event::TaskFinished {
        worker: 0,
        key: Key::named("a"),
        nbytes: 1,
    })
    .unwrap();
    let actions = s
        .handle(Event::TaskErred {
            worker: 0,
            key: Key::named("b"),
            error: err("b", "boom in b"),
        })
        .unwrap();
    assert!(
        actions.contains(&Action::Report {
            client: 7,
            key: Key::named("c"),
            outcome: Outcome::Erred(err("b", "boom in b"))
        }),
        "{actions:?}"
    );
    assert_eq!(s.task(&Key::named("c")).unwrap().status, Status::Erred);
    assert_eq!(s.task(&Key::named("b")).unwrap().status, Status::Erred);
    // A second client asking for the erred key is told at once.
    let actions = s
        .handle(Event::UpdateGraph {
            client: 8,
            tasks: vec![],
            wanted: vec![Key::named("c")],
        })
        .unwrap();
    assert_eq!(
        actions,
        vec![Action::Report {
            client: 8,
            key: Key::named("c"),
            outcome: Outcome::Erred(err("b", "boom in b"))
        }]
    );
}

#[test]
fn a_task_that_kills_workers_becomes_suspicious() {
    let mut s = SchedulerState::new().with_allowed_failures(2);
    for w in 0..4 {
        s.handle(Event::AddWorker {
            worker: w,
            nthreads: 1,
        })
        .unwrap();
    }
    let spec = spec("bad", &[], 0);
    let mut actions = s
        .handle(Event::UpdateGraph {
            client: 1,
            tasks: vec![spec],
            wanted: vec![Key::named("bad")],
        })
        .unwrap();
    for round in 0..3 {
        let worker = actions
            .iter()
            .find_map(|a| match a {
                Action::Compute { worker, .. } => Some(*worker),
                _ => None,
            })
            .unwrap_or_else(|| panic!("round {round}: not rescheduled: {actions:?}"));
        actions = s.handle(Event::RemoveWorker { worker }).unwrap();
    }
    let t = s.task(&Key::named("bad")).unwrap();
    assert_eq!(t.status, Status::Erred);
    assert!(
        t.error.as_ref().unwrap().message.contains("suspicious"),
        "{:?}",
        t.error
    );
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Report {
            outcome: Outcome::Erred(_),
            ..
        }
    )));
}

#[test]
fn no_worker_then_a_worker_joins() {
    let mut s = SchedulerState::new();
    let spec = spec("x", &[], 0);
    let actions = s
        .handle(Event::UpdateGraph {
            client: 1,
            tasks: vec![spec],
            wanted: vec![Key::named("x")],
        })
        .unwrap();
    assert!(actions.is_empty());
    assert_eq!(s.task(&Key::named("x")).unwrap().status, Status::NoWorker);
    let actions = s
        .handle(Event::AddWorker {
            worker: 3,
            nthreads: 2,
        })
        .unwrap();
    assert!(
        matches!(&actions[..], [Action::Compute { worker: 3, .. }]),
        "{actions:?}"
    );
}

#[test]
fn root_tasks_queue_when_workers_are_saturated() {
    let mut s = SchedulerState::new();
    s.handle(Event::AddWorker {
        worker: 0,
        nthreads: 1,
    })
    .unwrap();
    let specs: Vec<TaskSpec> = (0..10)
        .map(|i| TaskSpec {
            key: Key::new("r", [i]),
            dependencies: vec![],
            run_spec: Bytes::new(),
            priority: Priority {
                order: i,
                ..Default::default()
            },
            retries: 0,
            restrictions: None,
        })
        .collect();
    let wanted = specs.iter().map(|t| t.key.clone()).collect();
    let actions = s
        .handle(Event::UpdateGraph {
            client: 1,
            tasks: specs,
            wanted,
        })
        .unwrap();
    let computes: Vec<Key> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Compute { key, .. } => Some(key.clone()),
            _ => None,
        })
        .collect();
    // One thread at saturation 1.1 takes 2 tasks, the highest priority ones.
    assert_eq!(computes, vec![Key::new("r", [0]), Key::new("r", [1])]);
    let queued = s.tasks().filter(|t| t.status == Status::Queued).count();
    assert_eq!(queued, 8);
    let actions = s
        .handle(Event::TaskFinished {
            worker: 0,
            key: Key::new("r", [0]),
            nbytes: 1,
        })
        .unwrap();
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Compute { key, .. } if *key == Key::new("r", [2]))),
        "{actions:?}"
    );
}

#[test]
fn a_long_running_task_frees_its_saturation_slot() {
    let mut s = SchedulerState::new();
    s.handle(Event::AddWorker {
        worker: 0,
        nthreads: 1,
    })
    .unwrap();
    let specs: Vec<TaskSpec> = (0..4).map(|i| spec(&format!("r{i}"), &[], 0)).collect();
    let wanted = specs.iter().map(|t| t.key.clone()).collect();
    let computes = |actions: &[Action]| -> Vec<Key> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Compute { key, .. } => Some(key.clone()),
                _ => None,
            })
            .collect()
    };
    let actions = checked(
        &mut s,
        Event::UpdateGraph {
            client: 1,
            tasks: specs,
            wanted,
        },
    )
    .unwrap();
    let sent = computes(&actions);
    assert_eq!(sent.len(), 2, "saturation 1.1 of one thread: {actions:?}");
    // The first seceded (it waits on others): one more task goes there.
    let actions = checked(
        &mut s,
        Event::LongRunning {
            worker: 0,
            key: sent[0].clone(),
        },
    )
    .unwrap();
    assert_eq!(computes(&actions).len(), 1, "{actions:?}");
    assert_eq!(s.workers()[&0].long_running.len(), 1);
    assert_eq!(s.workers()[&0].occupied(), 2);
    // A stale or unknown key changes nothing.
    let actions = checked(
        &mut s,
        Event::LongRunning {
            worker: 0,
            key: Key::named("unknown"),
        },
    )
    .unwrap();
    assert!(computes(&actions).is_empty(), "{actions:?}");
    // When it finishes, it leaves both sets; its slot was already counted free.
    let actions = checked(
        &mut s,
        Event::TaskFinished {
            worker: 0,
            key: sent[0].clone(),
            nbytes: 1,
        },
    )
    .unwrap();
    assert!(computes(&actions).is_empty(), "{actions:?}");
    assert!(s.workers()[&0].long_running.is_empty());
    assert_eq!(s.workers()[&0].processing.len(), 2);
}

#[test]
fn stale_finish_from_a_worker_is_freed_not_trusted() {
    let mut s = SchedulerState::new();
    s.handle(Event::AddWorker {
        worker: 0,
        nthreads: 1,
    })
    .unwrap();
    let spec = spec("x", &[], 0);
    s.handle(Event::UpdateGraph {
        client: 1,
        tasks: vec![spec],
        wanted: vec![Key::named("x")],
    })
    .unwrap();
    // Worker 9 never got the task.
    let actions = s
        .handle(Event::TaskFinished {
            worker: 9,
            key: Key::named("x"),
            nbytes: 1,
        })
        .unwrap();
    assert_eq!(
        actions,
        vec![Action::Free {
            worker: 9,
            keys: vec![Key::named("x")]
        }]
    );
    assert_eq!(s.task(&Key::named("x")).unwrap().status, Status::Processing);
}

#[test]
fn a_duplicate_finish_keeps_the_value_instead_of_freeing_it() {
    // Regression: a task rescheduled onto the same worker ran twice there; the
    // second report used to free the very copy the scheduler relied on.
    let mut s = SchedulerState::new();
    s.handle(Event::AddWorker {
        worker: 0,
        nthreads: 1,
    })
    .unwrap();
    let spec = spec("x", &[], 0);
    s.handle(Event::UpdateGraph {
        client: 1,
        tasks: vec![spec],
        wanted: vec![Key::named("x")],
    })
    .unwrap();
    s.handle(Event::TaskFinished {
        worker: 0,
        key: Key::named("x"),
        nbytes: 8,
    })
    .unwrap();
    let actions = s
        .handle(Event::TaskFinished {
            worker: 0,
            key: Key::named("x"),
            nbytes: 8,
        })
        .unwrap();
    assert!(actions.is_empty(), "{actions:?}");
    let t = s.task(&Key::named("x")).unwrap();
    assert_eq!(t.status, Status::Memory);
    assert!(t.who_has.contains(&0));
}

/// Two workers; `a` finished on worker 0, `b` (reading `a`) processing on 1.
fn a_on_0_b_on_1() -> SchedulerState {
    let mut s = SchedulerState::new().with_work_stealing(false);
    for worker in 0..2 {
        s.handle(Event::AddWorker {
            worker,
            nthreads: 1,
        })
        .unwrap();
    }
    let mut a = spec("a", &[], 0);
    a.restrictions = Some([0].into());
    let mut b = spec("b", &["a"], 0);
    b.restrictions = Some([1].into());
    s.handle(Event::UpdateGraph {
        client: 1,
        tasks: vec![a, b],
        wanted: vec![Key::named("b")],
    })
    .unwrap();
    s.handle(Event::TaskFinished {
        worker: 0,
        key: Key::named("a"),
        nbytes: 8,
    })
    .unwrap();
    assert_eq!(s.task(&Key::named("b")).unwrap().processing_on, Some(1));
    s
}

#[test]
fn missing_data_with_no_copy_left_recomputes_the_dependency_then_the_task() {
    let mut s = a_on_0_b_on_1();
    let actions = checked(
        &mut s,
        Event::MissingData {
            worker: 1,
            key: Key::named("b"),
            dependency: Key::named("a"),
            errant: vec![0],
        },
    )
    .unwrap();
    // `a` runs again on worker 0; `b` waits for it.
    assert!(
        actions.iter().any(
            |a| matches!(a, Action::Compute { worker: 0, key, .. } if *key == Key::named("a"))
        ),
        "{actions:?}"
    );
    assert_eq!(s.task(&Key::named("a")).unwrap().status, Status::Processing);
    assert_eq!(s.task(&Key::named("b")).unwrap().status, Status::Waiting);
    let actions = checked(
        &mut s,
        Event::TaskFinished {
            worker: 0,
            key: Key::named("a"),
            nbytes: 8,
        },
    )
    .unwrap();
    assert!(
        actions.iter().any(
            |a| matches!(a, Action::Compute { worker: 1, key, .. } if *key == Key::named("b"))
        ),
        "{actions:?}"
    );
}

#[test]
fn missing_data_with_another_copy_resends_the_task_with_the_corrected_holders() {
    let mut s = a_on_0_b_on_1();
    // A replica of `a` on worker 1 (it ran there too).
    s.handle(Event::TaskFinished {
        worker: 1,
        key: Key::named("a"),
        nbytes: 8,
    })
    .unwrap();
    let actions = checked(
        &mut s,
        Event::MissingData {
            worker: 1,
            key: Key::named("b"),
            dependency: Key::named("a"),
            errant: vec![0],
        },
    )
    .unwrap();
    let resent = actions.iter().find_map(|a| match a {
        Action::Compute {
            worker: 1,
            key,
            who_has,
            ..
        } if *key == Key::named("b") => Some(who_has.clone()),
        _ => None,
    });
    assert_eq!(
        resent,
        Some(vec![(Key::named("a"), vec![1])]),
        "{actions:?}"
    );
    // The errant worker drops any copy it still has: none the scheduler forgot.
    assert!(actions.contains(&Action::Free {
        worker: 0,
        keys: vec![Key::named("a")]
    }));
    assert_eq!(
        s.task(&Key::named("a")).unwrap().who_has,
        [1].into(),
        "worker 0 no longer counts as a holder"
    );
    assert!(!s.workers()[&0].has_what.contains(&Key::named("a")));
    // A stale report (the task is no longer processing there) changes nothing.
    let actions = checked(
        &mut s,
        Event::MissingData {
            worker: 0,
            key: Key::named("b"),
            dependency: Key::named("a"),
            errant: vec![],
        },
    )
    .unwrap();
    assert!(actions.is_empty(), "{actions:?}");
}

#[test]
fn idle_workers_steal_only_what_the_victim_gives_up() {
    let mut s = SchedulerState::new();
    s.handle(Event::AddWorker {
        worker: 0,
        nthreads: 1,
    })
    .unwrap();
    // A root on worker 0, and four readers that locality sends there too.
    let mut specs = vec![spec("root", &[], 0)];
    let readers: Vec<Key> = (0..4).map(|i| Key::new("r", [i])).collect();
    for r in &readers {
        specs.push(TaskSpec {
            key: r.clone(),
            dependencies: vec![Key::named("root")],
            ..spec("x", &[], 0)
        });
    }
    checked(
        &mut s,
        Event::UpdateGraph {
            client: 1,
            tasks: specs,
            wanted: readers.clone(),
        },
    )
    .unwrap();
    checked(
        &mut s,
        Event::TaskFinished {
            worker: 0,
            key: Key::named("root"),
            nbytes: 1000,
        },
    )
    .unwrap();
    assert_eq!(s.workers()[&0].processing.len(), 4);
    // An idle worker joins: the scheduler asks worker 0 for a task it holds
    // beyond its one thread.
    let actions = checked(
        &mut s,
        Event::AddWorker {
            worker: 1,
            nthreads: 1,
        },
    )
    .unwrap();
    let asked: Vec<Key> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Steal { worker: 0, key } => Some(key.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 1, "{actions:?}");
    // Started already: it stays, and is not asked for again at once.
    let actions = checked(
        &mut s,
        Event::StealResponse {
            worker: 0,
            key: asked[0].clone(),
            stolen: false,
        },
    )
    .unwrap();
    assert_eq!(s.task(&asked[0]).unwrap().processing_on, Some(0));
    let again: Vec<Key> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Steal { key, .. } => Some(key.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(again.len(), 1, "it asks for another one: {actions:?}");
    // Given up: it moves to worker 1, with its dependency's holders.
    let actions = checked(
        &mut s,
        Event::StealResponse {
            worker: 0,
            key: again[0].clone(),
            stolen: true,
        },
    )
    .unwrap();
    assert!(
        actions.contains(&Action::Compute {
            worker: 1,
            key: again[0].clone(),
            run_spec: Bytes::new(),
            run_id: s.task(&again[0]).unwrap().run_id,
            who_has: vec![(Key::named("root"), vec![0])],
            priority: s.task(&again[0]).unwrap().priority,
        }),
        "{actions:?}"
    );
    assert_eq!(s.task(&again[0]).unwrap().processing_on, Some(1));
    assert_eq!(s.workers()[&0].processing.len(), 3);
    // A late finish from the victim is stale: freed, not trusted.
    let actions = checked(
        &mut s,
        Event::TaskFinished {
            worker: 0,
            key: again[0].clone(),
            nbytes: 8,
        },
    )
    .unwrap();
    assert!(actions.contains(&Action::Free {
        worker: 0,
        keys: vec![again[0].clone()]
    }));
}

#[test]
fn a_paused_worker_gets_no_root_tasks_and_its_backlog_is_stolen() {
    let mut s = SchedulerState::new();
    for worker in 0..2 {
        s.handle(Event::AddWorker {
            worker,
            nthreads: 1,
        })
        .unwrap();
    }
    checked(
        &mut s,
        Event::Heartbeat {
            worker: 0,
            paused: true,
        },
    )
    .unwrap();
    // Two roots: both fit on worker 1 (saturation 1.1 of one thread).
    let roots: Vec<TaskSpec> = (0..2).map(|i| spec(&format!("root{i}"), &[], 0)).collect();
    let wanted = roots.iter().map(|t| t.key.clone()).collect();
    let actions = checked(
        &mut s,
        Event::UpdateGraph {
            client: 1,
            tasks: roots,
            wanted,
        },
    )
    .unwrap();
    let placed: Vec<WorkerId> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Compute { worker, .. } => Some(*worker),
            _ => None,
        })
        .collect();
    assert_eq!(placed, vec![1, 1], "{actions:?}");
    // Worker 1 pauses with a backlog; worker 0 resumes: it steals all of it
    // that the paused worker gives up.
    checked(
        &mut s,
        Event::Heartbeat {
            worker: 1,
            paused: true,
        },
    )
    .unwrap();
    let actions = checked(
        &mut s,
        Event::Heartbeat {
            worker: 0,
            paused: false,
        },
    )
    .unwrap();
    let asked: Vec<Key> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Steal { worker: 1, key } => Some(key.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 1, "one idle thread, one request: {actions:?}");
    let actions = checked(
        &mut s,
        Event::StealResponse {
            worker: 1,
            key: asked[0].clone(),
            stolen: true,
        },
    )
    .unwrap();
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Compute { worker: 0, key, .. } if *key == asked[0])),
        "{actions:?}"
    );
}

/// The run id of the `Compute` for `key` among `actions`.
fn run_id_of(actions: &[Action], key: &Key) -> Option<u64> {
    actions.iter().find_map(|a| match a {
        Action::Compute { key: k, run_id, .. } if k == key => Some(*run_id),
        _ => None,
    })
}

/// A key released and submitted again lands on the same worker with a new
/// run id; a report of the first attempt (sent before the worker read the
/// `Free`) is then stale, the second attempt's is not.
#[test]
fn reports_of_an_older_attempt_on_the_same_worker_are_stale() {
    let mut s = SchedulerState::new();
    s.handle(Event::AddWorker {
        worker: 0,
        nthreads: 1,
    })
    .unwrap();
    let a = Key::named("a");
    let submit = |s: &mut SchedulerState| {
        s.handle(Event::UpdateGraph {
            client: 7,
            tasks: vec![spec("a", &[], 0)],
            wanted: vec![a.clone()],
        })
        .unwrap()
    };
    let first = run_id_of(&submit(&mut s), &a).expect("sent");
    assert!(!s.is_stale_report(0, &a, first));
    let released = s
        .handle(Event::ReleaseKeys {
            client: 7,
            keys: vec![a.clone()],
        })
        .unwrap();
    assert!(released.contains(&Action::Free {
        worker: 0,
        keys: vec![a.clone()]
    }));
    let second = run_id_of(&submit(&mut s), &a).expect("sent again");
    assert_ne!(first, second);
    assert!(s.is_stale_report(0, &a, first));
    assert!(!s.is_stale_report(0, &a, second));
    // Another worker's report, or one about a key not processing, is left
    // to the state machine.
    assert!(!s.is_stale_report(1, &a, first));
    assert!(!s.is_stale_report(0, &Key::named("unknown"), first));
}

/// Root tasks sent to a one-thread worker before the rest queue at the
/// scheduler: Dask's saturation (1.1, rounded up: 2) while the group's
/// duration is unknown or long, more once its tasks are known to be short
/// (2 ms of work ahead, at most 100 per thread).
#[test]
fn short_root_tasks_are_sent_ahead_long_ones_are_not() {
    let sent = |seconds: Option<f64>| {
        let mut s = SchedulerState::new();
        s.handle(Event::AddWorker {
            worker: 0,
            nthreads: 1,
        })
        .unwrap();
        if let Some(seconds) = seconds {
            s.record_duration(&Key::new("inc", [0]), seconds);
        }
        let tasks: Vec<TaskSpec> = (1..=500)
            .map(|i| {
                let mut t = spec("inc", &[], 0);
                t.key = Key::new("inc", [i]);
                t
            })
            .collect();
        let wanted = tasks.iter().map(|t| t.key.clone()).collect();
        let actions = s
            .handle(Event::UpdateGraph {
                client: 1,
                tasks,
                wanted,
            })
            .unwrap();
        let computes = actions
            .iter()
            .filter(|a| matches!(a, Action::Compute { .. }))
            .count();
        (computes, s.send_ahead(&Key::new("inc", [1])))
    };
    assert_eq!(sent(None), (2, 1.1));
    assert_eq!(sent(Some(1.0)), (2, 1.1), "long tasks: Dask's saturation");
    assert_eq!(sent(Some(0.0001)).0, 20, "2 ms of 100 µs tasks");
    assert_eq!(sent(Some(1e-7)).0, 100, "at most 100 per thread");
    // The mean moves with new durations.
    let mut s = SchedulerState::new();
    s.record_duration(&Key::named("x-1"), 0.0001);
    s.record_duration(&Key::named("x-2"), 0.0011);
    assert!((s.send_ahead(&Key::named("x-3")) - 2.0 / 0.3).abs() < 1e-9);
    // Nonsense durations are ignored.
    s.record_duration(&Key::named("x-4"), f64::NAN);
    s.record_duration(&Key::named("x-5"), -1.0);
    assert!((s.send_ahead(&Key::named("x-3")) - 2.0 / 0.3).abs() < 1e-9);
}
