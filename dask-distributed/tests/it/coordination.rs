//! Coordination primitives (Lock, Semaphore, Queue, Variable, Event) on a
//! LocalCluster over real TCP, used from tasks and from several clients.
//! Oracles: task counts and plain-Rust ranges (exact counters, no value lost
//! or duplicated), and concurrency tracked with atomics in the tasks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use dask_distributed::coordination::{
    Coordinator, Event, Lock, Pub, Queue, Semaphore, Sub, Variable,
};
use dask_distributed::{worker_scheduler_address, Client, Error, LocalCluster};
use dask_testing::{test_timeout, within};

fn cluster(n_workers: usize, threads: u32) -> LocalCluster {
    LocalCluster::builder()
        .n_workers(n_workers)
        .threads_per_worker(threads)
        .start()
        .unwrap()
}

/// The watchdog's limit for a whole test.
fn limit() -> Duration {
    test_timeout()
}

/// A wait that should succeed: half the test's limit, so a wait that never
/// ends fails with its own timeout error before the watchdog fires.
fn long() -> Duration {
    test_timeout() / 2
}

/// A wait that is meant to time out.
fn short() -> Duration {
    Duration::from_millis(100)
}

/// Increments the counter `{prefix}-counter` under the lock `{prefix}-lock`
/// from inside a task; returns the value it read.
fn locked_increment(prefix: String, _task: u64) -> u64 {
    let coord = Coordinator::for_task().expect("running in a task");
    let lock = Lock::new(&coord, format!("{prefix}-lock")).expect("lock");
    let counter = Variable::new(&coord, format!("{prefix}-counter")).expect("variable");
    let _held = lock.lock(long()).expect("acquire");
    let n: u64 = counter.get(long()).expect("get");
    counter.set(n + 1).expect("set");
    n
}
dask_core::register_op!(locked_increment);

/// Puts `x * x` on queue `name` from inside a task.
fn put_square(name: String, x: u64) -> u64 {
    let coord = Coordinator::for_task().expect("running in a task");
    let queue = Queue::new(&coord, name, None).expect("queue");
    queue.put(x * x, long()).expect("put");
    x
}
dask_core::register_op!(put_square);

/// Publishes `task * PUBLISHER + 0..count` on `topic` from inside a task.
fn publish_numbers(topic: String, task: u64, count: u64) -> u64 {
    let coord = Coordinator::for_task().expect("running in a task");
    let publisher = Pub::new(&coord, topic).expect("pub");
    for i in 0..count {
        publisher.put(task * PUBLISHER + i).expect("put");
    }
    task
}
dask_core::register_op!(publish_numbers);

/// Pub/sub messages are `publisher * PUBLISHER + sequence number`.
const PUBLISHER: u64 = 1_000_000;

#[test]
fn a_counter_incremented_under_a_lock_by_many_tasks_and_a_client_is_exact() {
    within(limit(), || {
        let cluster = cluster(2, 3);
        let client = cluster.client().unwrap();
        let prefix = "count-a".to_owned();
        let counter = Variable::new(&client, format!("{prefix}-counter")).unwrap();
        counter.set(0u64).unwrap();
        const TASKS: u64 = 1000;
        const CLIENT_INCREMENTS: u64 = 40;
        let futures: Vec<_> = (0..TASKS)
            .map(|i| {
                client
                    .submit(locked_increment, (prefix.clone(), i))
                    .unwrap()
            })
            .collect();
        // Meanwhile the test's own client increments under the same lock.
        let lock = Lock::new(&client, format!("{prefix}-lock")).unwrap();
        let mut seen = Vec::new();
        for _ in 0..CLIENT_INCREMENTS {
            lock.acquire(long()).unwrap();
            let n: u64 = counter.get(long()).unwrap();
            counter.set(n + 1).unwrap();
            seen.push(n);
            lock.release().unwrap();
        }
        seen.extend(client.gather(&futures).unwrap());
        let total = TASKS + CLIENT_INCREMENTS;
        assert_eq!(counter.get::<u64>(long()).unwrap(), total);
        // Every increment read a distinct value: no two ran at once.
        seen.sort_unstable();
        assert_eq!(seen, (0..total).collect::<Vec<u64>>());
        assert!(!lock.locked().unwrap());
    });
}

#[test]
fn a_semaphore_of_two_never_admits_three() {
    within(limit(), || {
        let client = Client::with_cluster(cluster(2, 4)).unwrap();
        let current = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let task = {
            let (current, peak) = (current.clone(), peak.clone());
            move |i: u64| {
                let coord = Coordinator::for_task().expect("in a task");
                let sem = Semaphore::new(&coord, "sem-two", 2).expect("semaphore");
                let _lease = sem.lease(long()).expect("lease");
                let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(2)); // let holders overlap
                current.fetch_sub(1, Ordering::SeqCst);
                i
            }
        };
        let futures = client.map(task, 0..60u64).unwrap();
        let done = client.gather(&futures).unwrap();
        assert_eq!(done, (0..60).collect::<Vec<u64>>());
        let peak = peak.load(Ordering::SeqCst);
        assert!((1..=2).contains(&peak), "peak of {peak} concurrent holders");

        // Two leases are held at once, a third waits until one is given back.
        let a = Semaphore::new(&client, "sem-two", 2).unwrap();
        let b = Semaphore::new(&client, "sem-two", 2).unwrap();
        // A task's lease guard gives its lease back on drop and waits until
        // the scheduler has it: every lease is back before the results are.
        assert_eq!(
            a.leases_taken().unwrap(),
            0,
            "every task gave its lease back"
        );
        a.acquire(long()).unwrap();
        a.acquire(long()).unwrap();
        assert_eq!(b.leases_taken().unwrap(), 2);
        assert!(matches!(b.acquire(short()), Err(Error::Timeout { .. })));
        a.release().unwrap();
        b.acquire(long()).unwrap();
        assert_eq!(b.leases_taken().unwrap(), 2);
    });
}

#[test]
fn a_queue_pipeline_across_two_clients_loses_and_duplicates_nothing() {
    within(limit(), || {
        let cluster = cluster(1, 2);
        let producer = cluster.client().unwrap();
        let consumer = cluster.client().unwrap();
        const PER_PRODUCER: u64 = 300;
        // Items are `producer * PRODUCER + sequence number`.
        const PRODUCER: u64 = 1_000_000;
        let q = Queue::new(&producer, "pipeline", Some(8)).unwrap();
        thread::scope(|s| {
            // Two producer threads, bounded queue: puts wait for room.
            for p in 0..2u64 {
                let producer = &producer;
                s.spawn(move || {
                    let q = Queue::new(producer, "pipeline", Some(8)).unwrap();
                    for i in 0..PER_PRODUCER {
                        q.put(p * PRODUCER + i, long()).unwrap();
                    }
                });
            }
            // Two consumer threads on the other client.
            let got: Vec<_> = (0..2)
                .map(|_| {
                    let consumer = &consumer;
                    s.spawn(move || {
                        let q = Queue::new(consumer, "pipeline", Some(8)).unwrap();
                        (0..PER_PRODUCER)
                            .map(|_| {
                                let x = q.get::<u64>(long()).unwrap();
                                (x / PRODUCER, x % PRODUCER)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let got: Vec<Vec<(u64, u64)>> = got.into_iter().map(|h| h.join().unwrap()).collect();
            // FIFO: each consumer sees each producer's items in put order.
            for items in &got {
                for p in 0..2 {
                    let mine: Vec<u64> = items.iter().filter(|x| x.0 == p).map(|x| x.1).collect();
                    assert!(mine.windows(2).all(|w| w[0] < w[1]), "out of order");
                }
            }
            let mut all: Vec<(u64, u64)> = got.concat();
            all.sort_unstable();
            let expected: Vec<(u64, u64)> = (0..2)
                .flat_map(|p| (0..PER_PRODUCER).map(move |i| (p, i)))
                .collect();
            assert_eq!(all, expected);
        });
        assert_eq!(q.qsize().unwrap(), 0);
        assert!(matches!(q.get::<u64>(short()), Err(Error::Timeout { .. })));

        // Tasks are producers too.
        let futures: Vec<_> = (0..100u64)
            .map(|x| {
                producer
                    .submit(put_square, ("squares".to_owned(), x))
                    .unwrap()
            })
            .collect();
        producer.gather(&futures).unwrap();
        let squares = Queue::new(&consumer, "squares", None).unwrap();
        assert_eq!(squares.qsize().unwrap(), 100);
        let mut got: Vec<u64> = (0..100).map(|_| squares.get(long()).unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..100u64).map(|x| x * x).collect::<Vec<_>>());
    });
}

#[test]
fn an_event_set_by_one_client_wakes_waiters_of_another() {
    within(limit(), || {
        let cluster = cluster(1, 1);
        let a = cluster.client().unwrap();
        let b = cluster.client().unwrap();
        let setter = Event::new(&a, "go").unwrap();
        let waiter = Event::new(&b, "go").unwrap();
        assert!(!waiter.is_set().unwrap());
        assert!(matches!(waiter.wait(short()), Err(Error::Timeout { .. })));
        let woken = Arc::new(Mutex::new(Vec::new()));
        thread::scope(|s| {
            for i in 0..3 {
                let (b, woken) = (&b, woken.clone());
                s.spawn(move || {
                    let e = Event::new(b, "go").unwrap();
                    e.wait(long()).unwrap();
                    woken.lock().unwrap().push(i);
                });
            }
            setter.set().unwrap();
        });
        let mut woken = woken.lock().unwrap().clone();
        woken.sort_unstable();
        assert_eq!(woken, vec![0, 1, 2]);
        assert!(waiter.is_set().unwrap());
        waiter.wait(short()).unwrap(); // already set: at once
        setter.clear().unwrap();
        assert!(!waiter.is_set().unwrap());
        assert!(matches!(waiter.wait(short()), Err(Error::Timeout { .. })));
    });
}

#[test]
fn waits_that_cannot_succeed_give_typed_timeouts() {
    within(limit(), || {
        let cluster = cluster(1, 1);
        let a = cluster.client().unwrap();
        let b = cluster.client().unwrap();
        let held = Lock::new(&a, "busy").unwrap();
        held.acquire(long()).unwrap();
        let other = Lock::new(&b, "busy").unwrap();
        match other.acquire(short()) {
            Err(Error::Timeout { what, .. }) => assert!(what.contains("busy"), "{what}"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(!other.try_acquire().unwrap());
        held.release().unwrap();
        assert!(other.try_acquire().unwrap());
        other.release().unwrap();

        let v = Variable::new(&b, "never-set").unwrap();
        assert!(matches!(v.get::<u64>(short()), Err(Error::Timeout { .. })));
        let q = Queue::new(&a, "tiny", Some(1)).unwrap();
        q.put(1u64, short()).unwrap();
        assert!(matches!(q.put(2u64, short()), Err(Error::Timeout { .. })));
        assert_eq!(
            q.get::<u64>(short()).unwrap(),
            1,
            "the timed-out put left nothing"
        );
        assert!(matches!(q.get::<u64>(short()), Err(Error::Timeout { .. })));
        let s = Semaphore::new(&a, "one", 1).unwrap();
        s.acquire(long()).unwrap();
        assert!(matches!(s.acquire(short()), Err(Error::Timeout { .. })));
    });
}

#[test]
fn a_lock_held_by_a_client_that_disconnects_is_released() {
    within(limit(), || {
        let cluster = cluster(1, 1);
        let survivor = cluster.client().unwrap();
        let waiting_lock = Lock::new(&survivor, "orphan").unwrap();
        let waiting_sem = Semaphore::new(&survivor, "orphan-sem", 1).unwrap();
        {
            let doomed = cluster.client().unwrap();
            let lock = Lock::new(&doomed, "orphan").unwrap();
            lock.acquire(long()).unwrap();
            let sem = Semaphore::new(&doomed, "orphan-sem", 1).unwrap();
            sem.acquire(long()).unwrap();
            assert!(!waiting_lock.try_acquire().unwrap());
            assert!(matches!(
                waiting_sem.acquire(Duration::ZERO),
                Err(Error::Timeout { .. })
            ));
            // Neither is released; the client and its handles go away.
        }
        // Waits that began before the disconnect are granted by it.
        waiting_lock.acquire(long()).unwrap();
        waiting_sem.acquire(long()).unwrap();
        assert!(waiting_lock.locked().unwrap());
        waiting_lock.release().unwrap();
        waiting_sem.release().unwrap();
    });
}

#[derive(Debug)]
struct NoCodec;

#[test]
fn bad_inputs_get_typed_errors() {
    within(limit(), || {
        let cluster = cluster(1, 1);
        let client = cluster.client().unwrap();
        assert!(matches!(
            Lock::new(&client, ""),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(matches!(
            Semaphore::new(&client, "s", 0),
            Err(Error::InvalidConfig { .. })
        ));
        Semaphore::new(&client, "s", 2).unwrap();
        let err = Semaphore::new(&client, "s", 3).unwrap_err();
        assert!(matches!(err, Error::Coordination { .. }), "{err}");
        assert!(err.to_string().contains("max_leases 2"), "{err}");
        assert!(matches!(
            Queue::new(&client, "q", Some(0)),
            Err(Error::InvalidConfig { .. })
        ));
        Queue::new(&client, "q", Some(4)).unwrap();
        assert!(matches!(
            Queue::new(&client, "q", None),
            Err(Error::Coordination { .. })
        ));

        let lock = Lock::new(&client, "l").unwrap();
        assert!(matches!(lock.release(), Err(Error::Coordination { .. })));
        lock.acquire(long()).unwrap();
        let err = lock.acquire(short()).unwrap_err();
        assert!(err.to_string().contains("reentrant"), "{err}");
        lock.release().unwrap();
        let sem = Semaphore::new(&client, "s", 2).unwrap();
        assert!(matches!(sem.release(), Err(Error::Coordination { .. })));

        // Values need a codec; refused before anything is sent.
        let v = Variable::new(&client, "v").unwrap();
        let err = v.set(NoCodec).unwrap_err();
        assert!(
            matches!(err, Error::Core(dask_core::Error::NoCodec { .. })),
            "{err}"
        );
        assert!(matches!(v.get::<u64>(short()), Err(Error::Timeout { .. })));
        let q = Queue::new(&client, "q", Some(4)).unwrap();
        assert!(matches!(
            q.put(NoCodec, short()),
            Err(Error::Core(dask_core::Error::NoCodec { .. }))
        ));
        assert_eq!(q.qsize().unwrap(), 0);
        // A value of another type than asked.
        v.set("text".to_owned()).unwrap();
        assert!(matches!(
            v.get::<u64>(long()),
            Err(Error::Core(dask_core::Error::WrongType { .. }))
        ));
        assert_eq!(v.get::<String>(long()).unwrap(), "text");
        v.delete().unwrap();
        assert!(matches!(
            v.get::<String>(short()),
            Err(Error::Timeout { .. })
        ));

        // Outside a task there is no worker scheduler address.
        assert_eq!(worker_scheduler_address(), None);
        assert!(matches!(
            Coordinator::for_task(),
            Err(Error::InvalidConfig { .. })
        ));
        // An address where no scheduler listens.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        assert!(matches!(
            Lock::new(dead.as_str(), "l"),
            Err(Error::Connect { .. })
        ));
    });
}

#[test]
fn tasks_see_their_schedulers_address_and_addresses_work_as_targets() {
    within(limit(), || {
        let client = Client::with_cluster(cluster(1, 2)).unwrap();
        let addr = client.scheduler_addr().to_owned();
        let f = client
            .submit(|_: u64| worker_scheduler_address(), (0u64,))
            .unwrap();
        assert_eq!(f.result().unwrap(), Some(addr.clone()));
        // A handle from the address shares the primitive with the client's.
        let by_addr = Variable::new(addr.as_str(), "shared").unwrap();
        by_addr.set(41u64).unwrap();
        let by_client = Variable::new(&client, "shared").unwrap();
        assert_eq!(by_client.get::<u64>(long()).unwrap(), 41);
    });
}

#[test]
fn pub_sub_delivers_every_message_to_every_subscriber_in_order_per_publisher() {
    within(limit(), || {
        let cluster = cluster(2, 2);
        let a = cluster.client().unwrap();
        let b = cluster.client().unwrap();
        // Three subscribers: two on client b, one on client a.
        let subs = [
            Sub::new(&b, "news").unwrap(),
            Sub::new(&b, "news").unwrap(),
            Sub::new(&a, "news").unwrap(),
        ];
        const PER_CLIENT_PUBLISHER: u64 = 150;
        const TASKS: u64 = 20;
        const PER_TASK: u64 = 10;
        // Two publishers on client a (ids 0, 1), and tasks (ids 100..).
        let futures: Vec<_> = (0..TASKS)
            .map(|t| {
                a.submit(publish_numbers, ("news".to_owned(), 100 + t, PER_TASK))
                    .unwrap()
            })
            .collect();
        thread::scope(|s| {
            for p in 0..2u64 {
                let a = &a;
                s.spawn(move || {
                    let publisher = Pub::new(a, "news").unwrap();
                    for i in 0..PER_CLIENT_PUBLISHER {
                        assert_eq!(publisher.put(p * PUBLISHER + i).unwrap(), 3);
                    }
                });
            }
        });
        a.gather(&futures).unwrap();
        let mut expected: Vec<u64> = (0..2u64)
            .flat_map(|p| (0..PER_CLIENT_PUBLISHER).map(move |i| p * PUBLISHER + i))
            .chain((0..TASKS).flat_map(|t| (0..PER_TASK).map(move |i| (100 + t) * PUBLISHER + i)))
            .collect();
        expected.sort_unstable();
        for sub in &subs {
            let got: Vec<u64> = (0..expected.len())
                .map(|_| sub.get::<u64>(long()).unwrap())
                .collect();
            // In order per publisher.
            let mut last: std::collections::HashMap<u64, u64> = Default::default();
            for x in &got {
                if let Some(prev) = last.insert(x / PUBLISHER, x % PUBLISHER) {
                    assert!(
                        prev < x % PUBLISHER,
                        "publisher {} out of order",
                        x / PUBLISHER
                    );
                }
            }
            let mut sorted = got;
            sorted.sort_unstable();
            assert_eq!(sorted, expected, "every message, once");
            assert!(matches!(
                sub.get::<u64>(short()),
                Err(Error::Timeout { .. })
            ));
        }
        // A dropped subscriber and one whose client disconnected get nothing
        // more. Dropping `on_a` and client a is seen by the scheduler on a's
        // connection, in its own time, so b publishes numbered probes until
        // only one subscriber is reached (bounded by the test's limit).
        let [first, second, on_a] = subs;
        drop(first);
        drop((on_a, futures, a));
        let publisher = Pub::new(&b, "news").unwrap();
        let deadline = std::time::Instant::now() + long();
        let mut probes = 0u64;
        loop {
            let reached = publisher.put(probes).unwrap();
            probes += 1;
            assert!((1..=2).contains(&reached), "reached {reached}");
            if reached == 1 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "a never disconnected");
            thread::sleep(Duration::from_millis(5));
        }
        let got: Vec<u64> = (0..probes).map(|_| second.get(long()).unwrap()).collect();
        assert_eq!(got, (0..probes).collect::<Vec<u64>>());
        assert!(matches!(Sub::new(&b, ""), Err(Error::InvalidConfig { .. })));
        #[derive(Debug)]
        struct Opaque;
        assert!(matches!(
            publisher.put(Opaque),
            Err(Error::Core(dask_core::Error::NoCodec { .. }))
        ));
    });
}

/// Set in the child process of
/// [`a_lock_held_by_a_killed_process_is_released`]: the scheduler address it
/// takes the lock on.
const HOLDER_ENV: &str = "DASK_RS_COORDINATION_TEST_HOLDER";

/// Kills and reaps a child process when dropped, so no test leaves one behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child's part: take the lock and a lease, say so, and hold them
/// until stdin closes (the parent kills it first).
fn hold_until_killed(addr: &str) {
    use std::io::{Read, Write};
    let lock = Lock::new(addr, "held-by-a-process").unwrap();
    lock.acquire(long()).unwrap();
    let sem = Semaphore::new(addr, "leased-by-a-process", 1).unwrap();
    sem.acquire(long()).unwrap();
    println!("HOLDER-READY");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read(&mut [0u8; 1]); // returns when the parent goes
}

/// The test binary runs itself as a second process that takes a lock and a
/// semaphore lease, and is killed holding them: both are released.
#[test]
fn a_lock_held_by_a_killed_process_is_released() {
    if let Ok(addr) = std::env::var(HOLDER_ENV) {
        hold_until_killed(&addr);
        return;
    }
    within(limit(), || {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let cluster = cluster(1, 1);
        let addr = cluster.scheduler_addr();
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "coordination::a_lock_held_by_a_killed_process_is_released",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HOLDER_ENV, &addr)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        let stdout = child.0.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("HOLDER-READY") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(long())
            .expect("the holder process never took the lock");
        let client = cluster.client().unwrap();
        let lock = Lock::new(&client, "held-by-a-process").unwrap();
        let sem = Semaphore::new(&client, "leased-by-a-process", 1).unwrap();
        assert!(lock.locked().unwrap());
        assert!(!lock.try_acquire().unwrap(), "held by the other process");
        assert_eq!(sem.leases_taken().unwrap(), 1);
        drop(child); // killed mid-lock
        lock.acquire(long()).unwrap();
        sem.acquire(long()).unwrap();
        lock.release().unwrap();
        sem.release().unwrap();
    });
}

#[test]
fn waits_end_with_an_error_when_the_scheduler_goes_away() {
    within(limit(), || {
        let cluster = cluster(1, 1);
        let client = cluster.client().unwrap();
        let event = Event::new(&client, "never-set").unwrap();
        let queue = Queue::new(&client, "never-filled", None).unwrap();
        thread::scope(|s| {
            let waiter = s.spawn(|| event.wait(long()));
            let getter = s.spawn(|| queue.get::<u64>(long()));
            cluster.shutdown();
            // Parked or not yet sent when the connection dropped: either
            // way an error, long before the waits' own timeouts.
            let w = waiter.join().unwrap();
            assert!(matches!(w, Err(Error::SchedulerLost { .. })), "{w:?}");
            let g = getter.join().unwrap();
            assert!(matches!(g, Err(Error::SchedulerLost { .. })), "{g:?}");
        });
        let set = event.set();
        assert!(matches!(set, Err(Error::SchedulerLost { .. })), "{set:?}");
    });
}

/// Waits for the event `name` from inside a task, then returns `x`.
fn after_event(name: String, x: u64) -> u64 {
    let coord = Coordinator::for_task().expect("running in a task");
    Event::new(&coord, name)
        .expect("event")
        .wait(long())
        .expect("the gate opens");
    x
}
dask_core::register_op!(after_event);

fn add_one(x: u64) -> u64 {
    x + 1
}
dask_core::register_op!(add_one);

/// An in-process client's task whose futures are all dropped while a queue
/// holds its key, and which has not been sent to a worker yet (its
/// dependency waits at a gate): the worker must still find the task when it
/// runs. The in-process table lives as long as the scheduler holds the task,
/// not as long as the submitting client's futures (which broke this before).
#[test]
fn a_queued_future_runs_after_the_submitting_clients_futures_are_gone() {
    within(limit(), || {
        let a = Client::with_cluster(cluster(1, 2)).unwrap();
        let security = a.cluster().unwrap().security().clone();
        let b = Client::connect_with(a.scheduler_addr(), security).unwrap();
        let gated = a
            .submit(after_event, ("queued-gate".to_string(), 41u64))
            .unwrap();
        let next = a.submit(add_one, (&gated,)).unwrap();
        let queue = Queue::new(&a, "outliving", None).unwrap();
        queue.put_future(&next, long()).unwrap();
        drop((gated, next));
        Event::new(&b, "queued-gate").unwrap().set().unwrap();
        let got = Queue::new(&b, "outliving", None)
            .unwrap()
            .get_future::<u64>(long())
            .unwrap();
        assert_eq!(got.result().unwrap(), 42);
        drop((got, queue, b));
        a.shutdown();
    });
}
