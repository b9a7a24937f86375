//! The client's scheduler connection: one task per client forwards its
//! messages to the current connection, reads the scheduler's, pings it, and
//! reconnects when the connection drops or the scheduler stops answering.
//!
//! A reconnecting client names its old id and the keys it holds
//! ([`ToScheduler::Identify`]); within the scheduler's grace period it gets
//! its id back, keys finished meanwhile are reported again, and waits
//! continue. Messages the client sends while reconnecting wait in the
//! channel and go out once it is back; requests whose answers may have been
//! lost (who-has, queries) are sent again. A submission lost in flight with
//! the old connection is answered as erred (the scheduler does not know the
//! key). Coordination waits fail at once: the scheduler releases a
//! disconnected client's locks and leases.
//!
//! Failures: no reconnection within [`ClientOptions::reconnect_timeout`],
//! or a scheduler that forgot the client (grace period over), closes the
//! client with [`Error::SchedulerLost`]; a scheduler with another instance
//! id at the same address with [`Error::SchedulerRestarted`].

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dask_core::Key;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{Pending, Reported};
use crate::messages::{self, ToClient, ToScheduler};
use crate::protocol::{self, Connection, Limits, Message, Role};
use crate::{Error, Result};

/// How long a client tries to reconnect after its connection dropped, by default.
pub const DEFAULT_RECONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a client pings its scheduler, by default.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(2);
/// How long a scheduler may stay silent before the client takes it for
/// hung (and reconnects), by default.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the first connection (TCP, handshake and welcome).
const FIRST_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How a [`Client`](crate::Client) connects and stays connected.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Token and TLS (see [`crate::security`]).
    pub security: crate::Security,
    /// How long the client tries to reconnect (with backoff) after its
    /// connection dropped or the scheduler stopped answering; pending waits
    /// continue meanwhile. Zero: fail at once with
    /// [`Error::SchedulerLost`]. Default 10 s. The scheduler keeps a
    /// disconnected client's futures for its own
    /// `client_reconnect_timeout` (default 30 s).
    pub reconnect_timeout: Duration,
    /// How often the client pings the scheduler (default 2 s).
    pub ping_interval: Duration,
    /// A scheduler that answers nothing for this long is taken for hung:
    /// the client reconnects, and fails its waits with
    /// [`Error::SchedulerLost`] if that does not work (default 30 s).
    pub ping_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            security: crate::Security::default(),
            reconnect_timeout: DEFAULT_RECONNECT_TIMEOUT,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_timeout: DEFAULT_PING_TIMEOUT,
        }
    }
}

impl ClientOptions {
    /// Default options with `security`.
    pub fn with_security(security: crate::Security) -> ClientOptions {
        ClientOptions {
            security,
            ..ClientOptions::default()
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.ping_interval.is_zero() || self.ping_timeout.is_zero() {
            return Err(Error::InvalidConfig {
                message: "ping_interval and ping_timeout must be positive".into(),
            });
        }
        if self.ping_timeout <= self.ping_interval {
            return Err(Error::InvalidConfig {
                message: format!(
                    "ping_timeout ({:?}) must be longer than ping_interval ({:?}), or every \
                     scheduler looks hung",
                    self.ping_timeout, self.ping_interval
                ),
            });
        }
        Ok(())
    }
}

/// Why a client's connection is closed for good (kept in [`Link::lost`]).
pub(crate) const LOST: u8 = 0;
/// The scheduler at the address is another one (it restarted).
pub(crate) const RESTARTED: u8 = 1;

/// What the scheduler said in its welcome.
struct Welcome {
    client: u64,
    scheduler: u64,
    resumed: bool,
}

impl Link {
    /// The instance id of the scheduler this client is connected to (fixed:
    /// another instance at the address ends the client).
    pub(crate) fn scheduler_instance(&self) -> u64 {
        self.scheduler
    }
}

/// What the connection task needs.
pub(crate) struct Link {
    pub(crate) addr: String,
    pub(crate) options: ClientOptions,
    pub(crate) pending: Arc<Mutex<Pending>>,
    /// Why the client closed ([`LOST`] or [`RESTARTED`]).
    pub(crate) lost: Arc<AtomicU8>,
    /// The client's id at the scheduler, and the scheduler's instance id.
    client: u64,
    scheduler: u64,
    /// Told once the connection task ended (after its goodbye is written).
    ended: std::sync::mpsc::SyncSender<()>,
}

/// The error for a closed client.
pub(crate) fn lost_error(addr: &str, why: &AtomicU8) -> Error {
    match why.load(Ordering::Acquire) {
        RESTARTED => Error::SchedulerRestarted {
            addr: addr.to_owned(),
        },
        _ => Error::SchedulerLost {
            addr: addr.to_owned(),
        },
    }
}

/// Connects for the first time: the connection, ready for [`run`], and the
/// receiver told when the connection task ends.
pub(crate) async fn first_connect(
    addr: &str,
    options: ClientOptions,
    pending: Arc<Mutex<Pending>>,
    lost: Arc<AtomicU8>,
) -> Result<(Link, Connection, std::sync::mpsc::Receiver<()>)> {
    options.validate()?;
    let (conn, welcome) = open(
        addr,
        &options.security,
        None,
        Vec::new(),
        FIRST_CONNECT_TIMEOUT,
    )
    .await?;
    let (ended, ended_rx) = std::sync::mpsc::sync_channel(1);
    let link = Link {
        addr: addr.to_owned(),
        options,
        pending,
        lost,
        client: welcome.client,
        scheduler: welcome.scheduler,
        ended,
    };
    Ok((link, conn, ended_rx))
}

/// Connects, handshakes and identifies, all within `limit`.
async fn open(
    addr: &str,
    security: &crate::Security,
    client: Option<u64>,
    wanted: Vec<Key>,
    limit: Duration,
) -> Result<(Connection, Welcome)> {
    let attempt = async {
        let mut conn =
            protocol::connect_with(addr, Role::Client, Limits::default(), security).await?;
        let identify = ToScheduler::Identify { client, wanted };
        conn.send(&messages::message("identify", &identify)?)
            .await?;
        let reply = conn.recv().await?;
        match messages::header::<ToClient>("welcome", &reply)? {
            ToClient::Welcome {
                client,
                scheduler,
                resumed,
            } => Ok((
                conn,
                Welcome {
                    client,
                    scheduler,
                    resumed,
                },
            )),
            other => Err(Error::Malformed {
                what: "welcome",
                detail: format!("the scheduler answered {other:?} to identify"),
            }),
        }
    };
    tokio::time::timeout(limit, attempt)
        .await
        .map_err(|_| Error::Timeout {
            what: format!("connecting to the scheduler at {addr}"),
            seconds: limit.as_secs_f64(),
        })?
}

/// The connection task: serves connections until the client goes (its
/// channel closes) or the connection is lost for good.
pub(crate) async fn run(link: Link, mut conn: Connection, mut rx: UnboundedReceiver<Message>) {
    loop {
        let Some(why) = session(&link, conn, &mut rx).await else {
            let _ = link.ended.try_send(());
            return;
        };
        match reconnect(&link, &why).await {
            Ok(next) => conn = next,
            Err(kind) => {
                close(&link, kind);
                let _ = link.ended.try_send(());
                return;
            }
        }
    }
}

/// Serves one connection; `None` when the client is gone, else why the
/// connection was lost.
async fn session(
    link: &Link,
    conn: Connection,
    rx: &mut UnboundedReceiver<Message>,
) -> Option<String> {
    let (mut reader, writer) = conn.split();
    let (out, written) = writer.spawn_joinable();
    {
        // Requests whose answers may have been lost with the last connection.
        let mut p = link.pending.lock().unwrap_or_else(PoisonError::into_inner);
        p.last_heard = Some(Instant::now());
        p.reconnecting = false;
        for m in p.resend.values() {
            let _ = out.send(m.clone());
        }
    }
    let (done_tx, mut done) = tokio::sync::oneshot::channel::<()>();
    let pending = link.pending.clone();
    let reader = tokio::spawn(async move {
        while let Ok(m) = reader.recv().await {
            let Ok(msg) = messages::header::<ToClient>("client", &m) else {
                break;
            };
            handle(&pending, msg, m.frames);
        }
        let _ = done_tx.send(());
    });
    let _reader = AbortOnDrop(reader);
    // Recognized by its bytes: decoding every message would cost.
    let goodbye = messages::message("goodbye", &ToScheduler::Goodbye)
        .map(|m| m.header)
        .unwrap_or_default();
    let mut ping = tokio::time::interval(link.options.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Some(m) => {
                    let last = m.header == goodbye && m.frames.is_empty();
                    let _ = out.send(m);
                    if last {
                        // Let the writer put it on the wire before the client goes.
                        drop(out);
                        let _ = tokio::time::timeout(Duration::from_secs(2), written).await;
                        return None;
                    }
                }
                None => return None,
            },
            _ = &mut done => return Some("the connection closed".into()),
            _ = ping.tick() => {
                let silent = link
                    .pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .last_heard
                    .map_or(Duration::ZERO, |t| t.elapsed());
                if silent > link.options.ping_timeout {
                    return Some(format!(
                        "the scheduler answered nothing for {:.1} s (ping timeout {:?}): hung?",
                        silent.as_secs_f64(),
                        link.options.ping_timeout
                    ));
                }
                if let Ok(m) = messages::message("ping", &ToScheduler::Ping) {
                    let _ = out.send(m);
                }
            }
        }
    }
}

/// Handles one message from the scheduler (with its data frames).
fn handle(pending: &Mutex<Pending>, msg: ToClient, frames: Vec<bytes::Bytes>) {
    let mut p = pending.lock().unwrap_or_else(PoisonError::into_inner);
    p.last_heard = Some(Instant::now());
    match msg {
        ToClient::Report {
            key,
            outcome,
            value,
        } => {
            if p.cancelled.contains(&key) {
                return; // cancelled here; the scheduler will hear
            }
            let outcome = Reported::from(outcome);
            if let (Some(tag), [frame], true) = (value, &frames[..], p.wanted.contains_key(&key)) {
                p.inline.insert(key.clone(), tag, frame.clone());
            }
            for waiter in p.reports.remove(&key).unwrap_or_default() {
                waiter.send(outcome.clone());
            }
            if p.wanted.contains_key(&key) {
                p.outcomes.insert(key, outcome);
            }
        }
        ToClient::Cancelled { keys } => {
            for k in &keys {
                p.mark_cancelled(k);
            }
        }
        ToClient::Answer { id, answer } => {
            p.resend.remove(&id);
            if let Some(w) = p.answers.remove(&id) {
                let _ = w.send(answer);
            }
        }
        ToClient::WhoHas { id, who_has } => {
            p.resend.remove(&id);
            if let Some(w) = p.who_has.remove(&id) {
                let _ = w.send(who_has);
            }
        }
        ToClient::Coordination { id, reply } => {
            if let Some(w) = p.coordination.remove(&id) {
                w(reply);
            }
        }
        ToClient::Welcome { .. } | ToClient::Pong => {} // heard
    }
}

/// Reconnects within the client's timeout: the new connection, or why the
/// client closes ([`LOST`], [`RESTARTED`]).
async fn reconnect(link: &Link, why: &str) -> std::result::Result<Connection, u8> {
    let limit = link.options.reconnect_timeout;
    let addr = &link.addr;
    let wanted: Vec<Key> = {
        let mut p = link.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if p.closed {
            return Err(LOST); // shut down on purpose
        }
        // The scheduler drops a disconnected client's coordination waits.
        p.coordination.clear();
        p.reconnecting = true;
        p.wanted.keys().cloned().collect()
    };
    if limit.is_zero() {
        return Err(LOST);
    }
    eprintln!(
        "dask-rs client: lost the scheduler at {addr} ({why}); reconnecting for up to {limit:?}"
    );
    let deadline = Instant::now() + limit;
    let mut backoff = Duration::from_millis(20);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            eprintln!("dask-rs client: could not reconnect to {addr} within {limit:?}");
            return Err(LOST);
        }
        let attempt = open(
            addr,
            &link.options.security,
            Some(link.client),
            wanted.clone(),
            remaining,
        )
        .await;
        match attempt {
            Ok((_, w)) if w.scheduler != link.scheduler => {
                eprintln!(
                    "dask-rs client: the scheduler at {addr} restarted; its futures are gone"
                );
                return Err(RESTARTED);
            }
            Ok((_, w)) if !w.resumed => {
                eprintln!(
                    "dask-rs client: the scheduler at {addr} no longer knows this client \
                     (back after its reconnect grace period); its futures are gone"
                );
                return Err(LOST);
            }
            Ok((conn, _)) => {
                eprintln!("dask-rs client: reconnected to {addr}");
                return Ok(conn);
            }
            Err(_) => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(backoff.min(remaining)).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Closes the client for good: every wait fails with the error of `kind`.
fn close(link: &Link, kind: u8) {
    link.lost.store(kind, Ordering::Release);
    let mut p = link.pending.lock().unwrap_or_else(PoisonError::into_inner);
    p.closed = true;
    // Senders dropped: every waiter wakes with the error.
    p.reports.clear();
    p.who_has.clear();
    p.answers.clear();
    p.coordination.clear();
    p.resend.clear();
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
