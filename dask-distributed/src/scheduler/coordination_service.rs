//! The tokio task that runs [`Coordination`] next to the scheduler core: the
//! core forwards coordination requests and client departures here, and this
//! task answers the clients directly, waking itself at the next deadline of
//! a parked request. The core never waits on a coordination primitive.

use std::collections::HashMap;
use std::time::Instant;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::coordination::{CoordRequest, Coordination, KeyOp, Reply};
use super::state::ClientId;
use crate::messages::{self, ToClient};
use crate::protocol::Message;

enum Input {
    Request {
        client: ClientId,
        tx: UnboundedSender<Message>,
        id: u64,
        request: CoordRequest,
    },
    ClientLeft(ClientId),
}

/// A handle to the coordination task; it stops when the handle is dropped.
pub(crate) struct CoordinationService {
    tx: UnboundedSender<Input>,
}

/// Where the service sends the holds, wants and releases of futures' keys
/// (to the scheduler core, which keeps them in order with client messages).
pub(crate) type KeyOpSink = Box<dyn Fn(Vec<KeyOp>) + Send>;

impl CoordinationService {
    /// Starts the task on the current tokio runtime.
    pub(crate) fn spawn(keys: KeyOpSink) -> Self {
        let (tx, rx) = unbounded_channel();
        tokio::spawn(run(rx, keys));
        CoordinationService { tx }
    }

    /// Forwards request `id` of `client`, answered on `tx`.
    pub(crate) fn request(
        &self,
        client: ClientId,
        tx: UnboundedSender<Message>,
        id: u64,
        request: CoordRequest,
    ) {
        let _ = self.tx.send(Input::Request {
            client,
            tx,
            id,
            request,
        });
    }

    /// `client` disconnected: what it held is released.
    pub(crate) fn client_left(&self, client: ClientId) {
        let _ = self.tx.send(Input::ClientLeft(client));
    }
}

async fn run(mut rx: UnboundedReceiver<Input>, keys: KeyOpSink) {
    let mut state = Coordination::new();
    let mut clients: HashMap<ClientId, UnboundedSender<Message>> = HashMap::new();
    loop {
        let input = match state.next_deadline() {
            Some(deadline) => {
                let at = tokio::time::Instant::from_std(deadline);
                match tokio::time::timeout_at(at, rx.recv()).await {
                    Ok(input) => input,
                    Err(_) => {
                        let replies = state.expire(Instant::now());
                        send(&mut state, &keys, &clients, replies);
                        continue;
                    }
                }
            }
            None => rx.recv().await,
        };
        let Some(input) = input else {
            return; // the scheduler core stopped
        };
        let replies = match input {
            Input::Request {
                client,
                tx,
                id,
                request,
            } => {
                clients.entry(client).or_insert(tx);
                let now = Instant::now();
                let mut replies = state.expire(now);
                replies.extend(state.handle(now, client, id, request));
                replies
            }
            Input::ClientLeft(client) => {
                clients.remove(&client);
                state.client_left(client)
            }
        };
        send(&mut state, &keys, &clients, replies);
    }
}

/// Sends `replies`, after the key holds, wants and releases they imply (see
/// [`Coordination::take_key_ops`]).
fn send(
    state: &mut Coordination,
    keys: &KeyOpSink,
    clients: &HashMap<ClientId, UnboundedSender<Message>>,
    replies: Vec<Reply>,
) {
    let ops = state.take_key_ops(&replies);
    if !ops.is_empty() {
        keys(ops);
    }
    send_replies(clients, replies);
}

fn send_replies(clients: &HashMap<ClientId, UnboundedSender<Message>>, replies: Vec<Reply>) {
    for Reply { client, id, reply } in replies {
        if let Some(tx) = clients.get(&client) {
            if let Ok(m) = messages::message("coordination", &ToClient::Coordination { id, reply })
            {
                let _ = tx.send(m);
            }
        }
    }
}
