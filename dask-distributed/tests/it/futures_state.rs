//! The scheduler state machine's side of the futures API, without sockets:
//! scattered data (`UpdateData`) and user priorities.

use bytes::Bytes;
use dask_core::Key;
use dask_distributed::scheduler::state::{
    Action, Event, Outcome, Priority, SchedulerState, Status, TaskError, TaskSpec,
};

fn handle(s: &mut SchedulerState, e: Event) -> Vec<Action> {
    let actions = s.handle(e).expect("no invariant broken");
    s.validate().expect("state valid");
    actions
}

fn computes(actions: &[Action]) -> Vec<(u64, Key)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Compute { worker, key, .. } => Some((*worker, key.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn scattered_keys_are_in_memory_where_put_and_fail_clearly_when_lost() {
    let mut s = SchedulerState::new();
    handle(
        &mut s,
        Event::AddWorker {
            worker: 1,
            nthreads: 1,
        },
    );
    handle(
        &mut s,
        Event::AddWorker {
            worker: 2,
            nthreads: 1,
        },
    );
    let k = Key::named("scattered");
    let lost = Bytes::from_static(b"lost-spec");
    let actions = handle(
        &mut s,
        Event::UpdateData {
            client: 7,
            keys: vec![(k.clone(), 800, lost.clone())],
            workers: vec![1],
        },
    );
    assert_eq!(
        actions,
        vec![Action::Report {
            client: 7,
            key: k.clone(),
            outcome: Outcome::Memory
        }]
    );
    let ts = s.task(&k).unwrap();
    assert_eq!(ts.status, Status::Memory);
    assert_eq!(ts.who_has.iter().copied().collect::<Vec<_>>(), vec![1]);

    // A dependent runs where the data is.
    let d = Key::named("dependent");
    let actions = handle(
        &mut s,
        Event::UpdateGraph {
            client: 7,
            tasks: vec![TaskSpec {
                key: d.clone(),
                dependencies: vec![k.clone()],
                run_spec: Bytes::new(),
                priority: Priority::default(),
                retries: 0,
                restrictions: None,
            }],
            wanted: vec![d.clone()],
        },
    );
    assert_eq!(computes(&actions), vec![(1, d.clone())]);

    // Its only holder dies: the key runs its `lost` task elsewhere, whose
    // failure reaches the client.
    let actions = handle(&mut s, Event::RemoveWorker { worker: 1 });
    let sent: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Compute {
                worker,
                key,
                run_spec,
                ..
            } => Some((*worker, key.clone(), run_spec.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![(2, k.clone(), lost)]);
    let error = TaskError {
        key: k.clone(),
        op: "scattered_value_lost".into(),
        message: "lost: scatter it again".into(),
    };
    let actions = handle(
        &mut s,
        Event::TaskErred {
            worker: 2,
            key: k.clone(),
            error: error.clone(),
        },
    );
    for key in [&k, &d] {
        assert!(actions.contains(&Action::Report {
            client: 7,
            key: key.clone(),
            outcome: Outcome::Erred(error.clone()),
        }));
    }

    // Data put on a worker that is gone by now: an ordinary task (its lost spec).
    let late = Key::named("late");
    let actions = handle(
        &mut s,
        Event::UpdateData {
            client: 7,
            keys: vec![(late.clone(), 8, Bytes::from_static(b"x"))],
            workers: vec![1],
        },
    );
    assert_eq!(computes(&actions), vec![(2, late.clone())]);

    // Released by the client: freed on its workers and forgotten.
    let m = Key::named("m");
    handle(
        &mut s,
        Event::UpdateData {
            client: 7,
            keys: vec![(m.clone(), 8, Bytes::new())],
            workers: vec![2],
        },
    );
    let actions = handle(
        &mut s,
        Event::ReleaseKeys {
            client: 7,
            keys: vec![m.clone()],
        },
    );
    assert!(actions.contains(&Action::Free {
        worker: 2,
        keys: vec![m.clone()]
    }));
    assert!(s.task(&m).is_none());
}

#[test]
fn queued_root_tasks_leave_by_user_priority_then_submission() {
    let mut s = SchedulerState::new();
    handle(
        &mut s,
        Event::AddWorker {
            worker: 1,
            nthreads: 1,
        },
    );
    let prios: Vec<i64> = vec![0, 0, -1, 5, 0, 5, -1, 3];
    let keys: Vec<Key> = (0..prios.len())
        .map(|i| Key::new("p", [i as u64]))
        .collect();
    let mut sent = Vec::new();
    for (key, p) in keys.iter().zip(&prios) {
        let actions = handle(
            &mut s,
            Event::UpdateGraph {
                client: 1,
                tasks: vec![TaskSpec {
                    key: key.clone(),
                    dependencies: vec![],
                    run_spec: Bytes::new(),
                    priority: Priority {
                        user: -p,
                        ..Default::default()
                    },
                    retries: 0,
                    restrictions: None,
                }],
                wanted: vec![key.clone()],
            },
        );
        sent.extend(computes(&actions).into_iter().map(|(_, k)| k));
    }
    // Two slots (1.1 x 1 thread): the first two went at once.
    assert_eq!(sent, keys[..2].to_vec());
    while sent.len() < keys.len() {
        let running = s.workers()[&1].processing.iter().next().cloned().unwrap();
        let actions = handle(
            &mut s,
            Event::TaskFinished {
                worker: 1,
                key: running,
                nbytes: 8,
            },
        );
        sent.extend(computes(&actions).into_iter().map(|(_, k)| k));
    }
    // Oracle: the rest by priority (higher first), ties in submission order.
    let mut rest: Vec<(i64, usize)> = (2..prios.len()).map(|i| (-prios[i], i)).collect();
    rest.sort();
    let expected: Vec<Key> = [0, 1]
        .into_iter()
        .chain(rest.into_iter().map(|(_, i)| i))
        .map(|i| keys[i].clone())
        .collect();
    assert_eq!(sent, expected);
}

#[test]
fn retry_reruns_the_erred_chain_dependencies_first() {
    let mut s = SchedulerState::new();
    handle(
        &mut s,
        Event::AddWorker {
            worker: 1,
            nthreads: 2,
        },
    );
    let (a, b) = (Key::named("a"), Key::named("b"));
    let spec = |key: &Key, deps: Vec<Key>| TaskSpec {
        key: key.clone(),
        dependencies: deps,
        run_spec: Bytes::new(),
        priority: Priority::default(),
        retries: 0,
        restrictions: None,
    };
    let actions = handle(
        &mut s,
        Event::UpdateGraph {
            client: 1,
            tasks: vec![spec(&a, vec![]), spec(&b, vec![a.clone()])],
            wanted: vec![b.clone()],
        },
    );
    assert_eq!(computes(&actions), vec![(1, a.clone())]);
    let error = TaskError {
        key: a.clone(),
        op: "flaky".into(),
        message: "first attempt".into(),
    };
    let actions = handle(
        &mut s,
        Event::TaskErred {
            worker: 1,
            key: a.clone(),
            error: error.clone(),
        },
    );
    assert!(actions.contains(&Action::Report {
        client: 1,
        key: b.clone(),
        outcome: Outcome::Erred(error),
    }));
    assert_eq!(s.task(&a).unwrap().status, Status::Erred);

    // Retrying b reruns a first, then b.
    let actions = handle(
        &mut s,
        Event::Retry {
            keys: vec![b.clone()],
        },
    );
    assert_eq!(computes(&actions), vec![(1, a.clone())]);
    assert_eq!(s.task(&b).unwrap().status, Status::Waiting);
    let actions = handle(
        &mut s,
        Event::TaskFinished {
            worker: 1,
            key: a.clone(),
            nbytes: 8,
        },
    );
    assert_eq!(computes(&actions), vec![(1, b.clone())]);
    let actions = handle(
        &mut s,
        Event::TaskFinished {
            worker: 1,
            key: b.clone(),
            nbytes: 8,
        },
    );
    assert!(actions.contains(&Action::Report {
        client: 1,
        key: b.clone(),
        outcome: Outcome::Memory,
    }));
    // A retry of a key that did not err changes nothing.
    assert!(computes(&handle(
        &mut s,
        Event::Retry {
            keys: vec![b.clone()]
        }
    ))
    .is_empty());
    assert_eq!(s.task(&b).unwrap().status, Status::Memory);
}
