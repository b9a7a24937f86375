//! Socket-free tests of the coordination state machine: waiters, explicit
//! deadlines, release on disconnect. The oracle is the specification of each
//! primitive, replayed by hand (who holds what, in which order).

use std::time::{Duration, Instant};

use super::*;

const A: ClientId = 1;
const B: ClientId = 2;
const C: ClientId = 3;

fn item(n: u8) -> Encoded {
    Encoded {
        tag: "u8".into(),
        bytes: vec![n],
    }
}

fn acquire(name: &str, holder: u64, timeout_ms: u64) -> CoordRequest {
    CoordRequest::LockAcquire {
        name: name.into(),
        holder,
        timeout_ms,
    }
}

fn release(name: &str, holder: u64) -> CoordRequest {
    CoordRequest::LockRelease {
        name: name.into(),
        holder,
    }
}

fn done(client: ClientId, id: u64) -> Reply {
    Reply {
        client,
        id,
        reply: CoordReply::Done,
    }
}

fn timed_out(client: ClientId, id: u64) -> Reply {
    Reply {
        client,
        id,
        reply: CoordReply::TimedOut,
    }
}

fn refused(replies: &[Reply]) -> bool {
    matches!(
        replies,
        [Reply {
            reply: CoordReply::Refused(_),
            ..
        }]
    )
}

#[test]
fn lock_waiters_are_served_in_arrival_order() {
    let t = Instant::now();
    let mut c = Coordination::new();
    assert_eq!(c.handle(t, A, 1, acquire("l", 10, 1000)), vec![done(A, 1)]);
    assert!(c.handle(t, B, 1, acquire("l", 20, 1000)).is_empty());
    assert!(c.handle(t, C, 1, acquire("l", 30, 1000)).is_empty());
    assert_eq!(c.parked(), 2);
    // Release hands it to B (first waiter), then C.
    assert_eq!(
        c.handle(t, A, 2, release("l", 10)),
        vec![done(B, 1), done(A, 2)]
    );
    assert_eq!(
        c.handle(t, B, 2, release("l", 20)),
        vec![done(C, 1), done(B, 2)]
    );
    assert_eq!(c.handle(t, C, 2, release("l", 30)), vec![done(C, 2)]);
    assert_eq!(
        c.handle(t, A, 3, CoordRequest::LockLocked { name: "l".into() })[0].reply,
        CoordReply::Flag(false)
    );
}

#[test]
fn lock_misuse_is_refused() {
    let t = Instant::now();
    let mut c = Coordination::new();
    assert!(refused(&c.handle(t, A, 1, release("l", 10))), "not held");
    c.handle(t, A, 2, acquire("l", 10, 0));
    assert!(
        refused(&c.handle(t, A, 3, acquire("l", 10, 100))),
        "reentrant"
    );
    // Another holder of the same client cannot release it.
    assert!(refused(&c.handle(t, A, 4, release("l", 11))));
    assert!(refused(&c.handle(t, B, 1, release("l", 10))));
    assert_eq!(c.handle(t, A, 5, release("l", 10)), vec![done(A, 5)]);
}

#[test]
fn lock_wait_times_out_at_its_deadline() {
    let t = Instant::now();
    let mut c = Coordination::new();
    c.handle(t, A, 1, acquire("l", 10, 0));
    // A zero timeout answers at once.
    assert_eq!(
        c.handle(t, B, 1, acquire("l", 20, 0)),
        vec![timed_out(B, 1)]
    );
    assert!(c.handle(t, B, 2, acquire("l", 20, 50)).is_empty());
    assert!(c.handle(t, C, 1, acquire("l", 30, 200)).is_empty());
    assert_eq!(c.next_deadline(), Some(t + Duration::from_millis(50)));
    assert!(c.expire(t + Duration::from_millis(49)).is_empty());
    assert_eq!(
        c.expire(t + Duration::from_millis(50)),
        vec![timed_out(B, 2)]
    );
    assert_eq!(c.next_deadline(), Some(t + Duration::from_millis(200)));
    // The expired waiter is skipped: C gets the lock.
    assert_eq!(
        c.handle(t, A, 2, release("l", 10)),
        vec![done(C, 1), done(A, 2)]
    );
    // C's deadline is stale now: the expiry it asks for finds nothing, and
    // then nothing is left to wake for.
    let stale = c.next_deadline().expect("a lower bound stays until a scan");
    assert!(c.expire(stale).is_empty());
    assert_eq!(c.next_deadline(), None);
}

#[test]
fn a_disconnected_holder_releases_its_locks_and_drops_its_waits() {
    let t = Instant::now();
    let mut c = Coordination::new();
    c.handle(t, A, 1, acquire("x", 10, 0));
    c.handle(t, A, 2, acquire("y", 11, 0));
    c.handle(t, B, 1, acquire("x", 20, 1000));
    c.handle(t, A, 3, acquire("z", 12, 0));
    c.handle(t, C, 1, acquire("z", 30, 1000));
    c.handle(t, A, 4, acquire("x", 13, 1000)); // A also waits on x
    let mut replies = c.client_left(A);
    replies.sort_by_key(|r| r.client);
    assert_eq!(replies, vec![done(B, 1), done(C, 1)]);
    assert_eq!(c.parked(), 0, "A's own wait was dropped");
    let locked = |c: &mut Coordination, n: &str| {
        c.handle(t, B, 9, CoordRequest::LockLocked { name: n.into() })[0]
            .reply
            .clone()
    };
    assert_eq!(locked(&mut c, "y"), CoordReply::Flag(false));
    assert_eq!(locked(&mut c, "x"), CoordReply::Flag(true));
}

fn sem_acquire(lease: u64, timeout_ms: u64) -> CoordRequest {
    CoordRequest::SemaphoreAcquire {
        name: "s".into(),
        max_leases: 2,
        lease,
        timeout_ms,
    }
}

fn sem_release(lease: u64) -> CoordRequest {
    CoordRequest::SemaphoreRelease {
        name: "s".into(),
        lease,
    }
}

#[test]
fn semaphore_admits_at_most_max_leases() {
    let t = Instant::now();
    let mut c = Coordination::new();
    assert_eq!(c.handle(t, A, 1, sem_acquire(1, 100)), vec![done(A, 1)]);
    assert_eq!(c.handle(t, B, 1, sem_acquire(2, 100)), vec![done(B, 1)]);
    assert!(c.handle(t, C, 1, sem_acquire(3, 100)).is_empty());
    assert!(c.handle(t, A, 2, sem_acquire(4, 100)).is_empty());
    assert_eq!(
        c.handle(t, B, 2, sem_release(2)),
        vec![done(C, 1), done(B, 2)]
    );
    // A client that leaves gives its lease back: A's own parked request is
    // dropped, so nobody is granted.
    assert!(c.client_left(A).is_empty());
    let taken = c.handle(
        t,
        C,
        2,
        CoordRequest::SemaphoreRegister {
            name: "s".into(),
            max_leases: 2,
        },
    );
    assert_eq!(taken[0].reply, CoordReply::Count(1));
    assert!(refused(&c.handle(t, C, 3, sem_release(2))), "not C's lease");
    assert!(refused(&c.handle(
        t,
        C,
        4,
        CoordRequest::SemaphoreRegister {
            name: "s".into(),
            max_leases: 3
        }
    )));
}

#[test]
fn semaphore_disconnect_grants_waiters() {
    let t = Instant::now();
    let mut c = Coordination::new();
    c.handle(t, A, 1, sem_acquire(1, 0));
    c.handle(t, A, 2, sem_acquire(2, 0));
    c.handle(t, B, 1, sem_acquire(3, 100));
    c.handle(t, C, 1, sem_acquire(4, 100));
    let mut replies = c.client_left(A);
    replies.sort_by_key(|r| r.client);
    assert_eq!(replies, vec![done(B, 1), done(C, 1)]);
}

fn put(n: u8, timeout_ms: u64) -> CoordRequest {
    CoordRequest::QueuePut {
        name: "q".into(),
        maxsize: 2,
        value: item(n),
        timeout_ms,
    }
}

fn get(timeout_ms: u64) -> CoordRequest {
    CoordRequest::QueueGet {
        name: "q".into(),
        timeout_ms,
    }
}

fn value(client: ClientId, id: u64, n: u8) -> Reply {
    Reply {
        client,
        id,
        reply: CoordReply::Value(item(n)),
    }
}

#[test]
fn bounded_queue_keeps_order_and_parks_putters_and_getters() {
    let t = Instant::now();
    let mut c = Coordination::new();
    assert_eq!(c.handle(t, A, 1, put(1, 100)), vec![done(A, 1)]);
    assert_eq!(c.handle(t, A, 2, put(2, 100)), vec![done(A, 2)]);
    assert_eq!(c.handle(t, A, 3, put(3, 0)), vec![timed_out(A, 3)], "full");
    assert!(
        c.handle(t, A, 4, put(3, 100)).is_empty(),
        "parked while full"
    );
    // A get frees room: the parked put goes in, after 2.
    assert_eq!(
        c.handle(t, B, 1, get(100)),
        vec![done(A, 4), value(B, 1, 1)]
    );
    assert_eq!(c.handle(t, B, 2, get(100)), vec![value(B, 2, 2)]);
    assert_eq!(c.handle(t, B, 3, get(100)), vec![value(B, 3, 3)]);
    // Empty: getters park and are handed puts directly, in order.
    assert!(c.handle(t, B, 4, get(100)).is_empty());
    assert!(c.handle(t, C, 1, get(100)).is_empty());
    assert_eq!(
        c.handle(t, A, 5, put(4, 100)),
        vec![value(B, 4, 4), done(A, 5)]
    );
    assert_eq!(
        c.handle(t, A, 6, put(5, 100)),
        vec![value(C, 1, 5), done(A, 6)]
    );
    let size = c.handle(t, A, 7, CoordRequest::QueueSize { name: "q".into() });
    assert_eq!(size[0].reply, CoordReply::Count(0));
    assert_eq!(c.handle(t, B, 5, get(0)), vec![timed_out(B, 5)]);
    assert!(c.handle(t, B, 6, get(10)).is_empty());
    assert_eq!(
        c.expire(t + Duration::from_millis(10)),
        vec![timed_out(B, 6)]
    );
}

#[test]
fn queue_bound_must_agree_and_a_departed_putter_enqueues_nothing() {
    let t = Instant::now();
    let mut c = Coordination::new();
    let register = |maxsize| CoordRequest::QueueRegister {
        name: "q".into(),
        maxsize,
    };
    assert_eq!(
        c.handle(t, A, 1, register(2))[0].reply,
        CoordReply::Count(0)
    );
    assert!(refused(&c.handle(t, A, 2, register(0))));
    c.handle(t, A, 3, put(1, 0));
    c.handle(t, A, 4, put(2, 0));
    assert!(c.handle(t, B, 1, put(3, 100)).is_empty());
    c.client_left(B);
    assert_eq!(c.handle(t, A, 5, get(0)), vec![value(A, 5, 1)]);
    assert_eq!(c.handle(t, A, 6, get(0)), vec![value(A, 6, 2)]);
    assert_eq!(c.handle(t, A, 7, get(0)), vec![timed_out(A, 7)]);
}

#[test]
fn variable_get_waits_for_set_and_delete_unsets() {
    let t = Instant::now();
    let mut c = Coordination::new();
    let get = |timeout_ms| CoordRequest::VariableGet {
        name: "v".into(),
        timeout_ms,
    };
    assert_eq!(c.handle(t, A, 1, get(0)), vec![timed_out(A, 1)]);
    assert!(c.handle(t, A, 2, get(100)).is_empty());
    assert!(c.handle(t, B, 1, get(100)).is_empty());
    let set = CoordRequest::VariableSet {
        name: "v".into(),
        value: item(7),
    };
    let mut replies = c.handle(t, C, 1, set);
    replies.sort_by_key(|r| r.client);
    assert_eq!(replies, vec![value(A, 2, 7), value(B, 1, 7), done(C, 1)]);
    assert_eq!(c.handle(t, A, 3, get(0)), vec![value(A, 3, 7)]);
    let delete = CoordRequest::VariableDelete { name: "v".into() };
    assert_eq!(c.handle(t, A, 4, delete), vec![done(A, 4)]);
    assert_eq!(c.handle(t, A, 5, get(0)), vec![timed_out(A, 5)]);
}

#[test]
fn event_set_wakes_every_waiter_and_clear_rearms() {
    let t = Instant::now();
    let mut c = Coordination::new();
    let wait = |timeout_ms| CoordRequest::EventWait {
        name: "e".into(),
        timeout_ms,
    };
    let is_set = || CoordRequest::EventIsSet { name: "e".into() };
    assert_eq!(
        c.handle(t, A, 1, is_set())[0].reply,
        CoordReply::Flag(false)
    );
    assert!(c.handle(t, A, 2, wait(100)).is_empty());
    assert!(c.handle(t, B, 1, wait(100)).is_empty());
    let mut replies = c.handle(t, C, 1, CoordRequest::EventSet { name: "e".into() });
    replies.sort_by_key(|r| r.client);
    assert_eq!(replies, vec![done(A, 2), done(B, 1), done(C, 1)]);
    assert_eq!(
        c.handle(t, A, 3, wait(100)),
        vec![done(A, 3)],
        "already set"
    );
    c.handle(t, C, 2, CoordRequest::EventClear { name: "e".into() });
    assert_eq!(c.handle(t, A, 4, wait(0)), vec![timed_out(A, 4)]);
    assert!(c.handle(t, A, 5, wait(30)).is_empty());
    assert_eq!(c.expire(t + Duration::from_secs(1)), vec![timed_out(A, 5)]);
}

#[test]
fn kinds_have_separate_namespaces() {
    let t = Instant::now();
    let mut c = Coordination::new();
    c.handle(t, A, 1, acquire("same", 1, 0));
    c.handle(
        t,
        A,
        2,
        CoordRequest::EventSet {
            name: "same".into(),
        },
    );
    let sem = CoordRequest::SemaphoreAcquire {
        name: "same".into(),
        max_leases: 1,
        lease: 1,
        timeout_ms: 0,
    };
    assert_eq!(c.handle(t, B, 1, sem), vec![done(B, 1)]);
    let q = CoordRequest::QueueSize {
        name: "same".into(),
    };
    assert_eq!(c.handle(t, B, 2, q)[0].reply, CoordReply::Count(0));
}

/// Random sequences of lock operations from three clients, checked against
/// a plain model (holder + FIFO of waiters): never two holders, and every
/// grant goes to the oldest live waiter.
#[test]
fn random_lock_traffic_matches_a_fifo_model() {
    use proptest::prelude::*;
    let op = (0u8..5, 1u64..4);
    proptest!(|(ops in proptest::collection::vec(op, 1..200))| {
        let t = Instant::now();
        let mut c = Coordination::new();
        let mut model_holder: Option<ClientId> = None;
        let mut model_waiters: std::collections::VecDeque<(ClientId, u64)> = Default::default();
        let mut id = 0;
        for (kind, client) in ops {
            id += 1;
            // Each client is one holder (holder id = client id).
            let replies = match kind {
                0 | 1 => c.handle(t, client, id, acquire("l", client, 1000)),
                2 | 3 => c.handle(t, client, id, release("l", client)),
                _ => c.client_left(client),
            };
            let mut expected = Vec::new();
            match kind {
                0 | 1 => {
                    match model_holder {
                        None => { model_holder = Some(client); expected.push(done(client, id)); }
                        Some(h) if h == client => expected.push(Reply { client, id, reply: CoordReply::Refused(String::new()) }),
                        // A holder waiting twice parks two requests.
                        Some(_) => model_waiters.push_back((client, id)),
                    }
                }
                2 | 3 => {
                    if model_holder == Some(client) {
                        model_holder = None;
                        if let Some((w, wid)) = model_waiters.pop_front() {
                            model_holder = Some(w);
                            expected.push(done(w, wid));
                        }
                        expected.push(done(client, id));
                    } else {
                        expected.push(Reply { client, id, reply: CoordReply::Refused(String::new()) });
                    }
                }
                _ => {
                    model_waiters.retain(|(c, _)| *c != client);
                    if model_holder == Some(client) {
                        model_holder = None;
                        if let Some((w, wid)) = model_waiters.pop_front() {
                            model_holder = Some(w);
                            expected.push(done(w, wid));
                        }
                    }
                }
            }
            let normalized: Vec<Reply> = replies
                .into_iter()
                .map(|mut r| {
                    if let CoordReply::Refused(_) = r.reply {
                        r.reply = CoordReply::Refused(String::new());
                    }
                    r
                })
                .collect();
            prop_assert_eq!(normalized, expected);
        }
        prop_assert_eq!(c.parked(), model_waiters.len());
    });
}

fn subscribe(sub: u64) -> CoordRequest {
    CoordRequest::Subscribe {
        topic: "t".into(),
        sub,
    }
}

fn publish(n: u8) -> CoordRequest {
    CoordRequest::Publish {
        topic: "t".into(),
        value: item(n),
    }
}

fn receive(sub: u64, timeout_ms: u64) -> CoordRequest {
    CoordRequest::Receive {
        topic: "t".into(),
        sub,
        timeout_ms,
    }
}

fn count(client: ClientId, id: u64, n: u64) -> Reply {
    Reply {
        client,
        id,
        reply: CoordReply::Count(n),
    }
}

#[test]
fn every_subscriber_gets_every_message_in_publish_order() {
    let t = Instant::now();
    let mut c = Coordination::new();
    assert_eq!(
        c.handle(t, A, 1, publish(0)),
        vec![count(A, 1, 0)],
        "no subscriber"
    );
    c.handle(t, B, 1, subscribe(1));
    c.handle(t, C, 1, subscribe(1));
    c.handle(t, C, 2, subscribe(2));
    // B waits; C's subscriptions buffer.
    assert!(c.handle(t, B, 2, receive(1, 100)).is_empty());
    assert_eq!(
        c.handle(t, A, 2, publish(1)),
        vec![value(B, 2, 1), count(A, 2, 3)]
    );
    assert_eq!(c.handle(t, A, 3, publish(2)), vec![count(A, 3, 3)]);
    for sub in [1, 2] {
        assert_eq!(
            c.handle(t, C, 10 + sub, receive(sub, 0)),
            vec![value(C, 10 + sub, 1)]
        );
        assert_eq!(
            c.handle(t, C, 20 + sub, receive(sub, 0)),
            vec![value(C, 20 + sub, 2)]
        );
        assert_eq!(
            c.handle(t, C, 30 + sub, receive(sub, 0)),
            vec![timed_out(C, 30 + sub)]
        );
    }
    assert_eq!(c.handle(t, B, 3, receive(1, 0)), vec![value(B, 3, 2)]);
}

#[test]
fn subscribers_leave_by_unsubscribing_or_disconnecting() {
    let t = Instant::now();
    let mut c = Coordination::new();
    c.handle(t, B, 1, subscribe(1));
    c.handle(t, C, 1, subscribe(1));
    assert!(c.handle(t, C, 2, receive(1, 100)).is_empty());
    // A second receive on the same subscriber is refused while one waits.
    assert!(refused(&c.handle(t, C, 3, receive(1, 100))));
    assert!(c.client_left(C).is_empty());
    assert_eq!(c.parked(), 0);
    assert_eq!(c.handle(t, A, 1, publish(1)), vec![count(A, 1, 1)]);
    let unsubscribe = CoordRequest::Unsubscribe {
        topic: "t".into(),
        sub: 1,
    };
    assert_eq!(c.handle(t, B, 2, unsubscribe), vec![done(B, 2)]);
    assert_eq!(c.handle(t, A, 2, publish(2)), vec![count(A, 2, 0)]);
    assert!(refused(&c.handle(t, B, 3, receive(1, 0))), "not subscribed");
    // A parked receive times out at its deadline.
    c.handle(t, B, 4, subscribe(5));
    assert!(c.handle(t, B, 5, receive(5, 20)).is_empty());
    assert_eq!(c.next_deadline(), Some(t + Duration::from_millis(20)));
    assert_eq!(
        c.expire(t + Duration::from_millis(20)),
        vec![timed_out(B, 5)]
    );
}

/// Random traffic on every kind of primitive with a moving clock: every
/// request is answered exactly once (at the latest by its deadline), no
/// parked request outlives an expiry at its deadline, and `next_deadline`
/// is never later than the earliest parked deadline.
#[test]
fn random_traffic_answers_every_request_exactly_once() {
    use proptest::prelude::*;
    let step = (0u8..12, 1u64..4, 0u64..30, 0u64..40);
    proptest!(|(steps in proptest::collection::vec(step, 1..150))| {
        let start = Instant::now();
        let mut now = start;
        let mut c = Coordination::new();
        let mut answers: std::collections::HashMap<(ClientId, u64), usize> = Default::default();
        let mut sent = Vec::new();
        let record = |replies: Vec<Reply>, answers: &mut std::collections::HashMap<_, usize>| {
            for r in replies {
                *answers.entry((r.client, r.id)).or_default() += 1;
            }
        };
        for (i, (kind, client, wait, advance)) in steps.into_iter().enumerate() {
            now += Duration::from_millis(advance);
            let replies = c.expire(now);
            record(replies, &mut answers);
            if let Some(e) = c.scan_earliest() {
                prop_assert!(e > now, "a parked request outlived its deadline");
                prop_assert!(c.next_deadline().is_some_and(|n| n <= e));
            }
            let id = i as u64;
            let request = match kind {
                0 => acquire("l", client, wait),
                1 => release("l", client),
                2 => CoordRequest::SemaphoreAcquire { name: "s".into(), max_leases: 2, lease: id, timeout_ms: wait },
                3 => CoordRequest::SemaphoreRelease { name: "s".into(), lease: id.saturating_sub(1) },
                4 => CoordRequest::QueuePut { name: "q".into(), maxsize: 2, value: item(1), timeout_ms: wait },
                5 => get(wait),
                6 => CoordRequest::EventWait { name: "e".into(), timeout_ms: wait },
                7 => CoordRequest::EventSet { name: "e".into() },
                8 => CoordRequest::EventClear { name: "e".into() },
                9 => CoordRequest::VariableGet { name: "v".into(), timeout_ms: wait },
                10 => CoordRequest::VariableSet { name: "v".into(), value: item(2) },
                _ => CoordRequest::Subscribe { topic: "t".into(), sub: client },
            };
            sent.push((client, id));
            let replies = c.handle(now, client, id, request);
            record(replies, &mut answers);
        }
        let replies = c.expire(now + Duration::from_secs(3600));
        record(replies, &mut answers);
        prop_assert_eq!(c.parked(), 0);
        for key in &sent {
            prop_assert_eq!(answers.get(key).copied(), Some(1), "request {:?}", key);
        }
        prop_assert_eq!(answers.len(), sent.len());
    });
}

fn future(name: &str) -> (Key, Encoded) {
    let key = Key::named(name);
    let bytes = postcard::to_allocvec(&(&key, "i64")).unwrap();
    let encoded = Encoded {
        tag: FUTURE_TAG.into(),
        bytes,
    };
    (key, encoded)
}

fn queue_put(value: Encoded, maxsize: u64, timeout_ms: u64) -> CoordRequest {
    CoordRequest::QueuePut {
        name: "q".into(),
        maxsize,
        value,
        timeout_ms,
    }
}

fn queue_get(timeout_ms: u64) -> CoordRequest {
    CoordRequest::QueueGet {
        name: "q".into(),
        timeout_ms,
    }
}

/// The key ops of one step, as the service takes them.
fn step(c: &mut Coordination, client: ClientId, id: u64, r: CoordRequest) -> Vec<KeyOp> {
    let replies = c.handle(Instant::now(), client, id, r);
    c.take_key_ops(&replies)
}

#[test]
fn queued_futures_are_held_until_got_and_handed_to_the_getter() {
    let mut c = Coordination::new();
    let (k1, f1) = future("f1");
    let (k2, f2) = future("f2");
    assert_eq!(
        step(&mut c, A, 1, queue_put(f1, 1, 0)),
        [KeyOp::Hold(k1.clone())]
    );
    // Plain values hold nothing.
    assert_eq!(step(&mut c, A, 2, queue_put(item(1), 0, 0)), []);
    // Full: the parked put holds its future; when it expires, lets go.
    let _ = step(&mut c, A, 3, queue_put(item(9), 1, 0));
    assert_eq!(
        step(&mut c, A, 4, queue_put(f2.clone(), 1, 5)),
        [KeyOp::Hold(k2.clone())]
    );
    let replies = c.expire(Instant::now() + Duration::from_secs(1));
    assert_eq!(replies, [timed_out(A, 4)]);
    assert_eq!(c.take_key_ops(&replies), [KeyOp::Release(k2.clone())]);
    // A get hands the key to the getter before the queue lets go.
    assert_eq!(
        step(&mut c, B, 5, queue_get(0)),
        [
            KeyOp::Want {
                client: B,
                key: k1.clone()
            },
            KeyOp::Release(k1)
        ]
    );
    // A put straight to a parked getter: held, wanted, released, in order.
    assert_eq!(step(&mut c, C, 6, queue_get(1000)), []); // the plain item 1
    assert_eq!(step(&mut c, C, 7, queue_get(1000)), []); // parked
    assert_eq!(
        step(&mut c, A, 8, queue_put(f2, 1, 0)),
        [
            KeyOp::Hold(k2.clone()),
            KeyOp::Want {
                client: C,
                key: k2.clone()
            },
            KeyOp::Release(k2)
        ]
    );
}

#[test]
fn a_variable_lets_go_of_an_overwritten_or_deleted_future() {
    let mut c = Coordination::new();
    let (k1, f1) = future("v1");
    let (k2, f2) = future("v2");
    let set = |value| CoordRequest::VariableSet {
        name: "v".into(),
        value,
    };
    let get = CoordRequest::VariableGet {
        name: "v".into(),
        timeout_ms: 0,
    };
    assert_eq!(step(&mut c, A, 1, set(f1)), [KeyOp::Hold(k1.clone())]);
    // Every get is a want; the variable keeps its hold.
    assert_eq!(
        step(&mut c, B, 2, get.clone()),
        [KeyOp::Want {
            client: B,
            key: k1.clone()
        }]
    );
    assert_eq!(
        step(&mut c, A, 3, set(f2)),
        [KeyOp::Hold(k2.clone()), KeyOp::Release(k1)]
    );
    let delete = CoordRequest::VariableDelete { name: "v".into() };
    assert_eq!(step(&mut c, A, 4, delete), [KeyOp::Release(k2)]);
    assert_eq!(step(&mut c, B, 5, get), []);
}

#[test]
fn a_departing_client_lets_go_of_its_parked_futures() {
    let mut c = Coordination::new();
    let (k, f) = future("parked");
    let _ = step(&mut c, A, 1, queue_put(item(1), 1, 0));
    assert_eq!(
        step(&mut c, B, 2, queue_put(f, 1, 10_000)),
        [KeyOp::Hold(k.clone())]
    );
    let replies = c.client_left(B);
    assert_eq!(c.take_key_ops(&replies), [KeyOp::Release(k)]);
}
