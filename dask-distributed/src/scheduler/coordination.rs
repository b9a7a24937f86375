//! Coordination primitives held on the scheduler: locks, semaphores, queues,
//! variables, events and pub/sub topics, shared by every client and task of
//! a cluster.
//!
//! A sans-I/O state machine like [`super::state`]: requests in
//! ([`Coordination::handle`]), replies out ([`Reply`]). A request that cannot
//! be answered yet (a lock held by someone else, an empty queue, an unset
//! event) is *parked* with an explicit deadline; it is answered when the
//! resource frees or by [`Coordination::expire`] once the deadline passes, so
//! the scheduler never blocks on a waiter. [`Coordination::client_left`]
//! releases everything a disconnected client held and drops its waiters.
//!
//! Values (queue items, variables) are opaque encoded bytes here: the client
//! encodes them with dask-core's codec registry. One tag is reserved:
//! [`FUTURE_TAG`] marks a future (its key) put in a queue or variable. While
//! a queue or variable holds one, the machine asks the scheduler to keep
//! the key ([`KeyOp::Hold`], until [`KeyOp::Release`]); a client given one
//! is made to want it ([`KeyOp::Want`], see [`Coordination::take_key_ops`]).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use dask_core::Key;

use super::state::ClientId;

/// The codec tag of a future put in a queue or variable: the bytes are the
/// postcard encoding of its [`Key`] and its value's type name.
pub const FUTURE_TAG: &str = "dask-rs::future";

/// The key of a future-tagged value (`None` for any other value).
pub fn future_key(value: &Encoded) -> Option<Key> {
    (value.tag == FUTURE_TAG)
        .then(|| postcard::from_bytes::<(Key, String)>(&value.bytes).ok())
        .flatten()
        .map(|(key, _)| key)
}

/// What the scheduler must do about a future's key held by a primitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOp {
    /// A queue or variable now holds the key: keep it (counted).
    Hold(Key),
    /// `client` was given the key (a get): it wants it from now on.
    Want {
        /// The client given the future.
        client: ClientId,
        /// The key.
        key: Key,
    },
    /// One hold of the key ended (taken out, overwritten, deleted, dropped).
    Release(Key),
}

/// A value encoded with `dask_core::codec::encode_value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encoded {
    /// The codec's tag.
    pub tag: String,
    /// The encoded bytes.
    pub bytes: Vec<u8>,
}

/// A request about a named primitive. `timeout_ms` bounds how long the
/// scheduler parks it (0: answer at once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordRequest {
    /// Acquire lock `name` for `holder` (an id unique within the client).
    LockAcquire {
        /// The lock.
        name: String,
        /// Who acquires (a lock handle).
        holder: u64,
        /// How long to wait.
        timeout_ms: u64,
    },
    /// Release lock `name` held by `holder`.
    LockRelease {
        /// The lock.
        name: String,
        /// Who releases.
        holder: u64,
    },
    /// Whether lock `name` is held.
    LockLocked {
        /// The lock.
        name: String,
    },
    /// Take a lease `lease` (an id unique within the client) of semaphore
    /// `name` with `max_leases`.
    SemaphoreAcquire {
        /// The semaphore.
        name: String,
        /// Its capacity (must agree with every other user).
        max_leases: u32,
        /// The new lease's id.
        lease: u64,
        /// How long to wait.
        timeout_ms: u64,
    },
    /// Give lease `lease` of semaphore `name` back.
    SemaphoreRelease {
        /// The semaphore.
        name: String,
        /// The lease.
        lease: u64,
    },
    /// Declare semaphore `name` with `max_leases` (refused if it exists with
    /// another capacity); answered with the leases taken now.
    SemaphoreRegister {
        /// The semaphore.
        name: String,
        /// Its capacity.
        max_leases: u32,
    },
    /// Set variable `name`.
    VariableSet {
        /// The variable.
        name: String,
        /// Its new value.
        value: Encoded,
    },
    /// Get variable `name`, waiting until it is set.
    VariableGet {
        /// The variable.
        name: String,
        /// How long to wait for a value.
        timeout_ms: u64,
    },
    /// Delete variable `name`.
    VariableDelete {
        /// The variable.
        name: String,
    },
    /// Declare queue `name` with `maxsize` (0: unbounded); refused if it
    /// exists with another bound; answered with its length.
    QueueRegister {
        /// The queue.
        name: String,
        /// Its bound.
        maxsize: u64,
    },
    /// Append to queue `name`, waiting for room while it is full.
    QueuePut {
        /// The queue.
        name: String,
        /// Its bound (0: unbounded).
        maxsize: u64,
        /// The item.
        value: Encoded,
        /// How long to wait for room.
        timeout_ms: u64,
    },
    /// Take the oldest item of queue `name`, waiting while it is empty.
    QueueGet {
        /// The queue.
        name: String,
        /// How long to wait for an item.
        timeout_ms: u64,
    },
    /// The number of items in queue `name`.
    QueueSize {
        /// The queue.
        name: String,
    },
    /// Set event `name`, waking every waiter.
    EventSet {
        /// The event.
        name: String,
    },
    /// Clear event `name`.
    EventClear {
        /// The event.
        name: String,
    },
    /// Wait until event `name` is set.
    EventWait {
        /// The event.
        name: String,
        /// How long to wait.
        timeout_ms: u64,
    },
    /// Whether event `name` is set.
    EventIsSet {
        /// The event.
        name: String,
    },
    /// Subscribe `sub` (an id unique within the client) to `topic`: every
    /// message published from now on is kept for it until it gets it.
    Subscribe {
        /// The topic.
        topic: String,
        /// The subscriber.
        sub: u64,
    },
    /// End subscription `sub` to `topic` (its unread messages are dropped).
    Unsubscribe {
        /// The topic.
        topic: String,
        /// The subscriber.
        sub: u64,
    },
    /// Publish a message to every subscriber of `topic`; answered with how
    /// many subscribers it reached.
    Publish {
        /// The topic.
        topic: String,
        /// The message.
        value: Encoded,
    },
    /// The oldest unread message of subscription `sub`, waiting while none.
    Receive {
        /// The topic.
        topic: String,
        /// The subscriber.
        sub: u64,
        /// How long to wait for a message.
        timeout_ms: u64,
    },
}

impl CoordRequest {
    /// How long the request may be parked, for requests that can wait.
    pub fn timeout_ms(&self) -> Option<u64> {
        match self {
            CoordRequest::LockAcquire { timeout_ms, .. }
            | CoordRequest::SemaphoreAcquire { timeout_ms, .. }
            | CoordRequest::VariableGet { timeout_ms, .. }
            | CoordRequest::QueuePut { timeout_ms, .. }
            | CoordRequest::QueueGet { timeout_ms, .. }
            | CoordRequest::EventWait { timeout_ms, .. }
            | CoordRequest::Receive { timeout_ms, .. } => Some(*timeout_ms),
            _ => None,
        }
    }
}

/// The scheduler's answer to a [`CoordRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordReply {
    /// Done (acquired, released, set, put, woken).
    Done,
    /// A value (variable get, queue get).
    Value(Encoded),
    /// A yes/no answer (locked, is set).
    Flag(bool),
    /// A count (queue size, leases taken).
    Count(u64),
    /// The deadline passed first.
    TimedOut,
    /// The request is invalid; says why and how to fix it.
    Refused(String),
}

/// A reply to send: to `client`, for its request `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The requesting client.
    pub client: ClientId,
    /// Its request id.
    pub id: u64,
    /// The answer.
    pub reply: CoordReply,
}

/// A parked request: who to answer and until when.
#[derive(Debug, Clone)]
struct Waiter<T> {
    client: ClientId,
    id: u64,
    deadline: Instant,
    /// What the request carries (a holder, a lease, an item to put).
    what: T,
}

#[derive(Debug, Default)]
struct LockState {
    holder: Option<(ClientId, u64)>,
    waiters: VecDeque<Waiter<u64>>,
}

#[derive(Debug)]
struct SemaphoreState {
    max_leases: u32,
    leases: Vec<(ClientId, u64)>,
    waiters: VecDeque<Waiter<u64>>,
}

#[derive(Debug, Default)]
struct QueueState {
    maxsize: u64,
    items: VecDeque<Encoded>,
    getters: VecDeque<Waiter<()>>,
    putters: VecDeque<Waiter<Encoded>>,
}

#[derive(Debug, Default)]
struct VariableState {
    value: Option<Encoded>,
    waiters: VecDeque<Waiter<()>>,
}

/// One subscription: messages not yet read, and a parked receive.
#[derive(Debug, Default)]
struct Subscription {
    unread: VecDeque<Encoded>,
    receiver: Option<Waiter<()>>,
}

#[derive(Debug, Default)]
struct EventState {
    set: bool,
    waiters: VecDeque<Waiter<()>>,
}

/// Every named primitive of a cluster (each kind has its own namespace).
#[derive(Debug, Default)]
pub struct Coordination {
    locks: HashMap<String, LockState>,
    semaphores: HashMap<String, SemaphoreState>,
    queues: HashMap<String, QueueState>,
    variables: HashMap<String, VariableState>,
    events: HashMap<String, EventState>,
    /// Subscriptions per topic, by (client, subscriber id).
    topics: HashMap<String, HashMap<(ClientId, u64), Subscription>>,
    /// No parked request's deadline is earlier (None: nothing parked since
    /// the last scan), so [`Coordination::expire`] skips the scan until then.
    earliest: Option<Instant>,
    /// Holds and releases of futures' keys since the last
    /// [`Coordination::take_key_ops`].
    key_ops: Vec<KeyOp>,
}

fn reply(client: ClientId, id: u64, reply: CoordReply) -> Reply {
    Reply { client, id, reply }
}

fn deadline(now: Instant, timeout_ms: u64) -> Instant {
    now.checked_add(Duration::from_millis(timeout_ms))
        .unwrap_or(now + Duration::from_secs(365 * 24 * 3600))
}

impl Coordination {
    /// An empty set of primitives.
    pub fn new() -> Self {
        Self::default()
    }

    /// The holds and releases of futures' keys since the last call, with a
    /// [`KeyOp::Want`] for each future in `replies`: holds first, then
    /// wants, then releases, so a key handed on is never unwanted between.
    /// The network layer applies them before sending the replies: the
    /// putter may drop its own future as soon as it has its answer, and the
    /// getter's later messages (a release) must come after its want. (The
    /// getter's client asks for the key's state again once it counts it,
    /// so a report sent before that is not missed.)
    pub fn take_key_ops(&mut self, replies: &[Reply]) -> Vec<KeyOp> {
        let (mut ops, releases): (Vec<KeyOp>, Vec<KeyOp>) = std::mem::take(&mut self.key_ops)
            .into_iter()
            .partition(|op| matches!(op, KeyOp::Hold(_)));
        ops.extend(replies.iter().filter_map(|r| match &r.reply {
            CoordReply::Value(v) => future_key(v).map(|key| KeyOp::Want {
                client: r.client,
                key,
            }),
            _ => None,
        }));
        ops.extend(releases);
        ops
    }

    fn hold(&mut self, value: &Encoded) {
        if let Some(key) = future_key(value) {
            self.key_ops.push(KeyOp::Hold(key));
        }
    }

    fn release(&mut self, value: &Encoded) {
        if let Some(key) = future_key(value) {
            self.key_ops.push(KeyOp::Release(key));
        }
    }

    /// Handles request `id` of `client` at time `now`: the replies to send
    /// now (to this client, and to waiters it unblocked).
    pub fn handle(
        &mut self,
        now: Instant,
        client: ClientId,
        id: u64,
        request: CoordRequest,
    ) -> Vec<Reply> {
        let mut out = Vec::new();
        if let Some(wait) = request.timeout_ms().filter(|&ms| ms > 0) {
            // Maybe parked below: keep `earliest` a lower bound.
            let d = deadline(now, wait);
            self.earliest = Some(self.earliest.map_or(d, |e| e.min(d)));
        }
        match request {
            CoordRequest::LockAcquire {
                name,
                holder,
                timeout_ms,
            } => {
                let lock = self.locks.entry(name.clone()).or_default();
                match lock.holder {
                    None => {
                        lock.holder = Some((client, holder));
                        out.push(reply(client, id, CoordReply::Done));
                    }
                    Some(h) if h == (client, holder) => out.push(reply(
                        client,
                        id,
                        CoordReply::Refused(format!(
                            "lock {name:?} is already held by this handle (locks are not \
                             reentrant): release it before acquiring it again"
                        )),
                    )),
                    Some(_) if timeout_ms == 0 => {
                        out.push(reply(client, id, CoordReply::TimedOut));
                    }
                    Some(_) => lock.waiters.push_back(Waiter {
                        client,
                        id,
                        deadline: deadline(now, timeout_ms),
                        what: holder,
                    }),
                }
            }
            CoordRequest::LockRelease { name, holder } => {
                let held = self
                    .locks
                    .get(&name)
                    .is_some_and(|l| l.holder == Some((client, holder)));
                if held {
                    self.release_lock(&name, &mut out);
                    out.push(reply(client, id, CoordReply::Done));
                } else {
                    out.push(reply(
                        client,
                        id,
                        CoordReply::Refused(format!(
                            "lock {name:?} is not held by this handle: acquire it before \
                             releasing it"
                        )),
                    ));
                }
            }
            CoordRequest::LockLocked { name } => {
                let locked = self.locks.get(&name).is_some_and(|l| l.holder.is_some());
                out.push(reply(client, id, CoordReply::Flag(locked)));
            }
            CoordRequest::SemaphoreRegister { name, max_leases } => {
                match self.semaphore(&name, max_leases) {
                    Ok(sem) => out.push(reply(
                        client,
                        id,
                        CoordReply::Count(sem.leases.len() as u64),
                    )),
                    Err(why) => out.push(reply(client, id, CoordReply::Refused(why))),
                }
            }
            CoordRequest::SemaphoreAcquire {
                name,
                max_leases,
                lease,
                timeout_ms,
            } => match self.semaphore(&name, max_leases) {
                Err(why) => out.push(reply(client, id, CoordReply::Refused(why))),
                Ok(sem) => {
                    if sem.leases.len() < sem.max_leases as usize {
                        sem.leases.push((client, lease));
                        out.push(reply(client, id, CoordReply::Done));
                    } else if timeout_ms == 0 {
                        out.push(reply(client, id, CoordReply::TimedOut));
                    } else {
                        sem.waiters.push_back(Waiter {
                            client,
                            id,
                            deadline: deadline(now, timeout_ms),
                            what: lease,
                        });
                    }
                }
            },
            CoordRequest::SemaphoreRelease { name, lease } => {
                let released = self.semaphores.get_mut(&name).is_some_and(|sem| {
                    let before = sem.leases.len();
                    sem.leases.retain(|l| *l != (client, lease));
                    sem.leases.len() < before
                });
                if released {
                    self.grant_leases(&name, &mut out);
                    out.push(reply(client, id, CoordReply::Done));
                } else {
                    out.push(reply(
                        client,
                        id,
                        CoordReply::Refused(format!(
                            "semaphore {name:?}: this handle holds no lease to release; \
                             acquire before releasing"
                        )),
                    ));
                }
            }
            CoordRequest::VariableSet { name, value } => {
                self.hold(&value);
                let var = self.variables.entry(name).or_default();
                for w in var.waiters.drain(..) {
                    out.push(reply(w.client, w.id, CoordReply::Value(value.clone())));
                }
                if let Some(old) = var.value.replace(value) {
                    self.release(&old);
                }
                out.push(reply(client, id, CoordReply::Done));
            }
            CoordRequest::VariableGet { name, timeout_ms } => {
                let var = self.variables.entry(name.clone()).or_default();
                match &var.value {
                    Some(v) => out.push(reply(client, id, CoordReply::Value(v.clone()))),
                    None if timeout_ms == 0 => out.push(reply(client, id, CoordReply::TimedOut)),
                    None => var.waiters.push_back(Waiter {
                        client,
                        id,
                        deadline: deadline(now, timeout_ms),
                        what: (),
                    }),
                }
                self.forget_variable_if_idle(&name);
            }
            CoordRequest::VariableDelete { name } => {
                if let Some(old) = self.variables.get_mut(&name).and_then(|v| v.value.take()) {
                    self.release(&old);
                }
                self.forget_variable_if_idle(&name);
                out.push(reply(client, id, CoordReply::Done));
            }
            CoordRequest::QueueRegister { name, maxsize } => match self.queue(&name, maxsize) {
                Ok(q) => out.push(reply(client, id, CoordReply::Count(q.items.len() as u64))),
                Err(why) => out.push(reply(client, id, CoordReply::Refused(why))),
            },
            CoordRequest::QueuePut {
                name,
                maxsize,
                value,
                timeout_ms,
            } => match self.queue(&name, maxsize) {
                Err(why) => out.push(reply(client, id, CoordReply::Refused(why))),
                Ok(q) => {
                    let key = future_key(&value);
                    let mut held = true;
                    if let Some(getter) = q.getters.pop_front() {
                        out.push(reply(getter.client, getter.id, CoordReply::Value(value)));
                        out.push(reply(client, id, CoordReply::Done));
                        held = false; // passed through: held until the getter wants it
                    } else if q.maxsize == 0 || (q.items.len() as u64) < q.maxsize {
                        q.items.push_back(value);
                        out.push(reply(client, id, CoordReply::Done));
                    } else if timeout_ms == 0 {
                        out.push(reply(client, id, CoordReply::TimedOut));
                        return out;
                    } else {
                        q.putters.push_back(Waiter {
                            client,
                            id,
                            deadline: deadline(now, timeout_ms),
                            what: value,
                        });
                    }
                    if let Some(key) = key {
                        self.key_ops.push(KeyOp::Hold(key.clone()));
                        if !held {
                            self.key_ops.push(KeyOp::Release(key));
                        }
                    }
                }
            },
            CoordRequest::QueueGet { name, timeout_ms } => {
                let q = self.queues.entry(name.clone()).or_default();
                if let Some(item) = q.items.pop_front() {
                    // Room freed: the oldest parked put goes in.
                    if let Some(putter) = q.putters.pop_front() {
                        q.items.push_back(putter.what);
                        out.push(reply(putter.client, putter.id, CoordReply::Done));
                    }
                    self.release(&item);
                    out.push(reply(client, id, CoordReply::Value(item)));
                } else if timeout_ms == 0 {
                    out.push(reply(client, id, CoordReply::TimedOut));
                } else {
                    q.getters.push_back(Waiter {
                        client,
                        id,
                        deadline: deadline(now, timeout_ms),
                        what: (),
                    });
                }
            }
            CoordRequest::QueueSize { name } => {
                let n = self.queues.get(&name).map_or(0, |q| q.items.len() as u64);
                out.push(reply(client, id, CoordReply::Count(n)));
            }
            CoordRequest::EventSet { name } => {
                let ev = self.events.entry(name).or_default();
                ev.set = true;
                for w in ev.waiters.drain(..) {
                    out.push(reply(w.client, w.id, CoordReply::Done));
                }
                out.push(reply(client, id, CoordReply::Done));
            }
            CoordRequest::EventClear { name } => {
                if let Some(ev) = self.events.get_mut(&name) {
                    ev.set = false;
                }
                out.push(reply(client, id, CoordReply::Done));
            }
            CoordRequest::EventWait { name, timeout_ms } => {
                let ev = self.events.entry(name).or_default();
                if ev.set {
                    out.push(reply(client, id, CoordReply::Done));
                } else if timeout_ms == 0 {
                    out.push(reply(client, id, CoordReply::TimedOut));
                } else {
                    ev.waiters.push_back(Waiter {
                        client,
                        id,
                        deadline: deadline(now, timeout_ms),
                        what: (),
                    });
                }
            }
            CoordRequest::EventIsSet { name } => {
                let set = self.events.get(&name).is_some_and(|e| e.set);
                out.push(reply(client, id, CoordReply::Flag(set)));
            }
            CoordRequest::Subscribe { topic, sub } => {
                self.topics
                    .entry(topic)
                    .or_default()
                    .entry((client, sub))
                    .or_default();
                out.push(reply(client, id, CoordReply::Done));
            }
            CoordRequest::Unsubscribe { topic, sub } => {
                if let Some(subs) = self.topics.get_mut(&topic) {
                    if let Some(s) = subs.remove(&(client, sub)) {
                        if let Some(w) = s.receiver {
                            out.push(reply(w.client, w.id, CoordReply::TimedOut));
                        }
                    }
                    if subs.is_empty() {
                        self.topics.remove(&topic);
                    }
                }
                out.push(reply(client, id, CoordReply::Done));
            }
            CoordRequest::Publish { topic, value } => {
                let subs = self.topics.get_mut(&topic);
                let reached = subs.as_ref().map_or(0, |s| s.len() as u64);
                for s in subs.into_iter().flat_map(|s| s.values_mut()) {
                    match s.receiver.take() {
                        Some(w) => {
                            out.push(reply(w.client, w.id, CoordReply::Value(value.clone())))
                        }
                        None => s.unread.push_back(value.clone()),
                    }
                }
                out.push(reply(client, id, CoordReply::Count(reached)));
            }
            CoordRequest::Receive {
                topic,
                sub,
                timeout_ms,
            } => {
                let Some(s) = self
                    .topics
                    .get_mut(&topic)
                    .and_then(|subs| subs.get_mut(&(client, sub)))
                else {
                    out.push(reply(
                        client,
                        id,
                        CoordReply::Refused(format!(
                            "this subscriber is not subscribed to topic {topic:?}: create a Sub \
                             before receiving"
                        )),
                    ));
                    return out;
                };
                if let Some(v) = s.unread.pop_front() {
                    out.push(reply(client, id, CoordReply::Value(v)));
                } else if s.receiver.is_some() {
                    out.push(reply(
                        client,
                        id,
                        CoordReply::Refused(format!(
                            "a receive on topic {topic:?} is already waiting for this subscriber: \
                             receive from one thread at a time"
                        )),
                    ));
                } else if timeout_ms == 0 {
                    out.push(reply(client, id, CoordReply::TimedOut));
                } else {
                    s.receiver = Some(Waiter {
                        client,
                        id,
                        deadline: deadline(now, timeout_ms),
                        what: (),
                    });
                }
            }
        }
        out
    }

    /// `client` disconnected: every lock and lease it held is released (and
    /// handed to the next waiter), its parked requests are dropped (a parked
    /// put is not enqueued).
    pub fn client_left(&mut self, client: ClientId) -> Vec<Reply> {
        let mut out = Vec::new();
        let held: Vec<String> = self
            .locks
            .iter_mut()
            .filter_map(|(name, l)| {
                l.waiters.retain(|w| w.client != client);
                l.holder
                    .is_some_and(|(c, _)| c == client)
                    .then(|| name.clone())
            })
            .collect();
        for name in held {
            self.release_lock(&name, &mut out);
        }
        let names: Vec<String> = self.semaphores.keys().cloned().collect();
        for name in names {
            if let Some(sem) = self.semaphores.get_mut(&name) {
                sem.waiters.retain(|w| w.client != client);
                sem.leases.retain(|(c, _)| *c != client);
            }
            self.grant_leases(&name, &mut out);
        }
        let mut dropped = Vec::new();
        for q in self.queues.values_mut() {
            q.getters.retain(|w| w.client != client);
            q.putters.retain(|w| {
                let keep = w.client != client;
                if !keep {
                    dropped.push(w.what.clone());
                }
                keep
            });
        }
        for item in &dropped {
            self.release(item);
        }
        for v in self.variables.values_mut() {
            v.waiters.retain(|w| w.client != client);
        }
        for e in self.events.values_mut() {
            e.waiters.retain(|w| w.client != client);
        }
        for subs in self.topics.values_mut() {
            subs.retain(|(c, _), _| *c != client);
        }
        self.topics.retain(|_, subs| !subs.is_empty());
        self.locks
            .retain(|_, l| l.holder.is_some() || !l.waiters.is_empty());
        self.variables
            .retain(|_, v| v.value.is_some() || !v.waiters.is_empty());
        out
    }

    /// Answers [`CoordReply::TimedOut`] to every parked request whose
    /// deadline is at or before `now`. Cheap before [`Coordination::next_deadline`].
    pub fn expire(&mut self, now: Instant) -> Vec<Reply> {
        let mut out = Vec::new();
        if self.earliest.is_none_or(|e| now < e) {
            return out;
        }
        fn take_expired<T>(q: &mut VecDeque<Waiter<T>>, now: Instant, out: &mut Vec<Reply>) {
            q.retain(|w| {
                let expired = w.deadline <= now;
                if expired {
                    out.push(reply(w.client, w.id, CoordReply::TimedOut));
                }
                !expired
            });
        }
        for l in self.locks.values_mut() {
            take_expired(&mut l.waiters, now, &mut out);
        }
        for s in self.semaphores.values_mut() {
            take_expired(&mut s.waiters, now, &mut out);
        }
        let mut dropped = Vec::new();
        for q in self.queues.values_mut() {
            take_expired(&mut q.getters, now, &mut out);
            q.putters.retain(|w| {
                let expired = w.deadline <= now;
                if expired {
                    out.push(reply(w.client, w.id, CoordReply::TimedOut));
                    dropped.push(w.what.clone());
                }
                !expired
            });
        }
        for item in &dropped {
            self.release(item);
        }
        for v in self.variables.values_mut() {
            take_expired(&mut v.waiters, now, &mut out);
        }
        for e in self.events.values_mut() {
            take_expired(&mut e.waiters, now, &mut out);
        }
        for s in self.topics.values_mut().flat_map(|subs| subs.values_mut()) {
            if s.receiver.as_ref().is_some_and(|w| w.deadline <= now) {
                if let Some(w) = s.receiver.take() {
                    out.push(reply(w.client, w.id, CoordReply::TimedOut));
                }
            }
        }
        self.locks
            .retain(|_, l| l.holder.is_some() || !l.waiters.is_empty());
        self.variables
            .retain(|_, v| v.value.is_some() || !v.waiters.is_empty());
        self.earliest = self.scan_earliest();
        out
    }

    /// When to call [`Coordination::expire`] next: no later than the
    /// earliest deadline of a parked request (it may be earlier, e.g. for a
    /// request answered since; that expiry then finds nothing and moves it).
    /// None when nothing was parked since the last expiry scan.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.earliest
    }

    /// The exact earliest deadline of a parked request.
    fn scan_earliest(&self) -> Option<Instant> {
        let locks = self
            .locks
            .values()
            .flat_map(|l| l.waiters.iter().map(|w| w.deadline));
        let sems = self
            .semaphores
            .values()
            .flat_map(|s| s.waiters.iter().map(|w| w.deadline));
        let queues = self.queues.values().flat_map(|q| {
            q.getters
                .iter()
                .map(|w| w.deadline)
                .chain(q.putters.iter().map(|w| w.deadline))
        });
        let vars = self
            .variables
            .values()
            .flat_map(|v| v.waiters.iter().map(|w| w.deadline));
        let events = self
            .events
            .values()
            .flat_map(|e| e.waiters.iter().map(|w| w.deadline));
        let receivers = self
            .topics
            .values()
            .flat_map(|subs| subs.values().filter_map(|s| s.receiver.as_ref()))
            .map(|w| w.deadline);
        locks
            .chain(sems)
            .chain(queues)
            .chain(vars)
            .chain(events)
            .chain(receivers)
            .min()
    }

    /// Number of parked requests (for tests and diagnostics).
    pub fn parked(&self) -> usize {
        self.locks.values().map(|l| l.waiters.len()).sum::<usize>()
            + self
                .semaphores
                .values()
                .map(|s| s.waiters.len())
                .sum::<usize>()
            + self
                .queues
                .values()
                .map(|q| q.getters.len() + q.putters.len())
                .sum::<usize>()
            + self
                .variables
                .values()
                .map(|v| v.waiters.len())
                .sum::<usize>()
            + self.events.values().map(|e| e.waiters.len()).sum::<usize>()
            + self
                .topics
                .values()
                .flat_map(|subs| subs.values())
                .filter(|s| s.receiver.is_some())
                .count()
    }

    /// Frees lock `name` and hands it to the oldest waiter.
    fn release_lock(&mut self, name: &str, out: &mut Vec<Reply>) {
        let Some(lock) = self.locks.get_mut(name) else {
            return;
        };
        lock.holder = None;
        if let Some(w) = lock.waiters.pop_front() {
            lock.holder = Some((w.client, w.what));
            out.push(reply(w.client, w.id, CoordReply::Done));
        } else {
            self.locks.remove(name);
        }
    }

    /// Grants free leases of semaphore `name` to the oldest waiters.
    fn grant_leases(&mut self, name: &str, out: &mut Vec<Reply>) {
        let Some(sem) = self.semaphores.get_mut(name) else {
            return;
        };
        while sem.leases.len() < sem.max_leases as usize {
            let Some(w) = sem.waiters.pop_front() else {
                break;
            };
            sem.leases.push((w.client, w.what));
            out.push(reply(w.client, w.id, CoordReply::Done));
        }
    }

    fn semaphore(&mut self, name: &str, max_leases: u32) -> Result<&mut SemaphoreState, String> {
        if max_leases == 0 {
            return Err(format!(
                "semaphore {name:?} with max_leases 0 could never be acquired: give at least 1"
            ));
        }
        let sem = self
            .semaphores
            .entry(name.to_owned())
            .or_insert_with(|| SemaphoreState {
                max_leases,
                leases: Vec::new(),
                waiters: VecDeque::new(),
            });
        if sem.max_leases != max_leases {
            return Err(format!(
                "semaphore {name:?} exists with max_leases {}, not {max_leases}: every user \
                 of a semaphore must give the same max_leases",
                sem.max_leases
            ));
        }
        Ok(sem)
    }

    fn queue(&mut self, name: &str, maxsize: u64) -> Result<&mut QueueState, String> {
        let q = self
            .queues
            .entry(name.to_owned())
            .or_insert_with(|| QueueState {
                maxsize,
                ..Default::default()
            });
        if q.maxsize != maxsize {
            let show = |m: u64| {
                if m == 0 {
                    "unbounded".to_owned()
                } else {
                    format!("maxsize {m}")
                }
            };
            return Err(format!(
                "queue {name:?} exists {}, not {}: every user of a queue must give the same \
                 maxsize",
                show(q.maxsize),
                show(maxsize)
            ));
        }
        Ok(q)
    }

    fn forget_variable_if_idle(&mut self, name: &str) {
        if self
            .variables
            .get(name)
            .is_some_and(|v| v.value.is_none() && v.waiters.is_empty())
        {
            self.variables.remove(name);
        }
    }
}

#[cfg(test)]
mod tests;
