//! The handshake and [`Connection`], a framed, handshaken stream (TCP, or
//! TLS over TCP when [`Security`] says so).
//!
//! The connecting side writes its preamble and [`Hello`] at once; the
//! accepting side reads them first, checks the peer's token (see
//! [`crate::security`]), and answers with its own preamble and `Hello`,
//! which says why when it refuses the connection. No message is read from
//! a peer before that check.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;

use super::frame::{
    read_message, read_message_placed, write_message, Limits, Message, Placed, Placer,
};
use crate::security::{Security, TokenCheck, TOKEN_ENV};
use crate::{Error, Result};

/// The protocol version; peers of different versions refuse each other.
/// 3: the handshake carries a token; task-finished and task-erred messages
/// carry the task's timing. 4: clients identify themselves (reconnect),
/// ping the scheduler, and workers' heartbeats are acknowledged. 5: data
/// ports answer fetches with split values (`PeerReply::Parts`). 6: small
/// results travel with their reports (`TaskFinished` and `Report` carry an
/// optional value, `Compute` asks for it). 7: heartbeats' metrics count
/// the tasks a worker started inline.
pub const PROTOCOL_VERSION: u32 = 7;

/// First bytes of every connection, before the version (public for tests of foreign peers).
pub const MAGIC: [u8; 8] = *b"dask-rs\0";

/// How long the handshake (TLS included) may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Limits for the `Hello` message, read before the peer is trusted.
const HELLO_LIMITS: Limits = Limits {
    max_frame: 64 << 10,
    max_frames: 1,
};

type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// What a process is, announced in the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// The scheduler.
    Scheduler,
    /// A worker.
    Worker,
    /// A client.
    Client,
}

/// The first message each side sends after the preamble.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's role.
    pub role: Role,
    /// The dask-rs crate version of the sender, for diagnostics.
    pub crate_version: String,
    /// The sender's token, if it has one (an accepting side that refuses the
    /// connection does not send it).
    pub token: Option<String>,
    /// From the accepting side only: why it refuses the connection.
    pub refused: Option<String>,
}

impl Hello {
    /// The `Hello` of a process of `role`, without token or refusal.
    pub fn new(role: Role) -> Hello {
        Hello {
            role,
            crate_version: env!("CARGO_PKG_VERSION").to_owned(),
            token: None,
            refused: None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Scheduler => "scheduler",
            Role::Worker => "worker",
            Role::Client => "client",
        })
    }
}

/// A handshaken connection: framed messages both ways, batched writes.
pub struct Connection {
    reader: BufReader<BoxRead>,
    writer: BufWriter<BoxWrite>,
    limits: Limits,
    peer: Hello,
    peer_addr: String,
}

impl Connection {
    /// What the peer said it is.
    pub fn peer(&self) -> &Hello {
        &self.peer
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> &str {
        &self.peer_addr
    }

    /// Sends one message and flushes.
    pub async fn send(&mut self, message: &Message) -> Result<()> {
        write_message(&mut self.writer, message).await?;
        self.writer.flush().await?;
        Ok(())
    }

    /// Sends several messages with one flush (batched on the wire).
    pub async fn send_batch(&mut self, messages: &[Message]) -> Result<()> {
        for m in messages {
            write_message(&mut self.writer, m).await?;
        }
        self.writer.flush().await?;
        Ok(())
    }

    /// Receives the next message.
    pub async fn recv(&mut self) -> Result<Message> {
        read_message(&mut self.reader, &self.limits).await
    }

    /// Receives the next message, its data frames going where `place` says
    /// (see [`read_message_placed`]).
    pub async fn recv_placed(&mut self, place: &mut Placer<'_>) -> Result<Placed> {
        read_message_placed(&mut self.reader, &self.limits, place).await
    }
}

impl Connection {
    /// Splits into a reading and a writing half, to use from two tasks.
    pub fn split(self) -> (ConnReader, ConnWriter) {
        (
            ConnReader {
                reader: self.reader,
                limits: self.limits,
            },
            ConnWriter {
                writer: self.writer,
            },
        )
    }
}

/// The reading half of a [`Connection`].
pub struct ConnReader {
    reader: BufReader<BoxRead>,
    limits: Limits,
}

impl ConnReader {
    /// Receives the next message.
    pub async fn recv(&mut self) -> Result<Message> {
        read_message(&mut self.reader, &self.limits).await
    }
}

/// The writing half of a [`Connection`].
pub struct ConnWriter {
    writer: BufWriter<BoxWrite>,
}

impl ConnWriter {
    /// Sends several messages with one flush.
    pub async fn send_batch(&mut self, messages: &[Message]) -> Result<()> {
        for m in messages {
            write_message(&mut self.writer, m).await?;
        }
        self.writer.flush().await?;
        Ok(())
    }

    /// Spawns a task that sends what the returned channel receives, batching
    /// the messages queued while a write is in progress into one flush.
    pub fn spawn(self) -> tokio::sync::mpsc::UnboundedSender<Message> {
        self.spawn_joinable().0
    }

    /// [`ConnWriter::spawn`], also giving the task's handle: it ends once
    /// every sender is dropped and what they sent is written (or the
    /// connection failed).
    pub fn spawn_joinable(
        mut self,
    ) -> (
        tokio::sync::mpsc::UnboundedSender<Message>,
        tokio::task::JoinHandle<()>,
    ) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Message>();
        let task = tokio::spawn(async move {
            let mut batch = Vec::new();
            while rx.recv_many(&mut batch, 256).await > 0 {
                if self.send_batch(&batch).await.is_err() {
                    break;
                }
                batch.clear();
            }
            let _ = self.writer.shutdown().await;
        });
        (tx, task)
    }
}

/// Connects to `addr` and handshakes as `role`, without token or TLS.
pub async fn connect(addr: &str, role: Role, limits: Limits) -> Result<Connection> {
    connect_with(addr, role, limits, &Security::default()).await
}

/// Handshakes on an accepted stream as `role`, without token or TLS.
pub async fn accept(stream: TcpStream, role: Role, limits: Limits) -> Result<Connection> {
    accept_with(stream, role, limits, &Security::default()).await
}

/// Connects to `addr` and handshakes as `role` with `security`: TLS first
/// when configured, then the preamble and `Hello` (with the token).
///
/// Errors: [`Error::Unauthorized`] when the peer refuses our credentials,
/// [`Error::Refused`] when the peer lacks the token we require,
/// [`Error::Tls`] when the TLS handshake fails.
pub async fn connect_with(
    addr: &str,
    role: Role,
    limits: Limits,
    security: &Security,
) -> Result<Connection> {
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| Error::Timeout {
            what: format!("connecting to {addr}"),
            seconds: HANDSHAKE_TIMEOUT.as_secs_f64(),
        })?
        .map_err(|source| Error::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    stream.set_nodelay(true)?;
    let (reader, writer): (BoxRead, BoxWrite) = match security.tls() {
        None => {
            let (r, w) = stream.into_split();
            (Box::new(r), Box::new(w))
        }
        Some(tls) => {
            let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
            let tls_stream = bounded(addr, connector.connect(server_name(addr), stream))
                .await?
                .map_err(|e| tls_error(addr, &e))?;
            let (r, w) = tokio::io::split(tls_stream);
            (Box::new(r), Box::new(w))
        }
    };
    let (reader, writer) = (BufReader::new(reader), BufWriter::new(writer));
    handshake(Side::Connect, reader, writer, role, limits, security, addr).await
}

/// Handshakes on an accepted stream as `role` with `security`: a peer
/// without a valid certificate (TLS) or the token is refused before any of
/// its messages is read (the error says why; the caller logs it).
pub async fn accept_with(
    stream: TcpStream,
    role: Role,
    limits: Limits,
    security: &Security,
) -> Result<Connection> {
    let peer_addr = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    stream.set_nodelay(true)?;
    let (reader, writer): (BoxRead, BoxWrite) = match security.tls() {
        None => {
            let (r, w) = stream.into_split();
            (Box::new(r), Box::new(w))
        }
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
            let tls_stream = bounded(&peer_addr, acceptor.accept(stream))
                .await?
                .map_err(|e| tls_error(&peer_addr, &e))?;
            let (r, w) = tokio::io::split(tls_stream);
            (Box::new(r), Box::new(w))
        }
    };
    let (reader, writer) = (BufReader::new(reader), BufWriter::new(writer));
    handshake(
        Side::Accept,
        reader,
        writer,
        role,
        limits,
        security,
        &peer_addr,
    )
    .await
}

/// Runs `f` under the handshake timeout.
async fn bounded<T>(peer: &str, f: impl std::future::Future<Output = T>) -> Result<T> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, f)
        .await
        .map_err(|_| Error::Timeout {
            what: format!("handshake with {peer}"),
            seconds: HANDSHAKE_TIMEOUT.as_secs_f64(),
        })
}

fn tls_error(peer: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Tls {
        peer: peer.to_owned(),
        detail: e.to_string(),
    }
}

/// The name a TLS client announces: the host part of `addr` (host names
/// are not checked, see [`crate::security`]).
fn server_name(addr: &str) -> rustls::pki_types::ServerName<'static> {
    use rustls::pki_types::ServerName;
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ServerName::IpAddress(ip.into());
    }
    ServerName::try_from(host.to_owned())
        .unwrap_or_else(|_| ServerName::try_from("dask-rs").expect("a valid DNS name"))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Connect,
    Accept,
}

async fn send_hello(writer: &mut BufWriter<BoxWrite>, hello: &Hello) -> Result<()> {
    let mut preamble = Vec::with_capacity(12);
    preamble.extend_from_slice(&MAGIC);
    preamble.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    writer.write_all(&preamble).await?;
    write_message(
        writer,
        &Message::new(super::encode("hello", hello)?, Vec::new()),
    )
    .await?;
    writer.flush().await?;
    Ok(())
}

async fn read_hello(reader: &mut BufReader<BoxRead>, tls: bool) -> Result<Hello> {
    let mut theirs = [0u8; 12];
    let mut got = 0;
    while got < theirs.len() {
        let n = reader.read(&mut theirs[got..]).await?;
        if n == 0 {
            break;
        }
        got += n;
    }
    if got < theirs.len() || theirs[..8] != MAGIC {
        // 0x16 0x03: a TLS handshake record; 0x15 0x03: a TLS alert.
        if !tls && got >= 2 && matches!(theirs[0], 0x15 | 0x16) && theirs[1] == 0x03 {
            return Err(Error::Tls {
                peer: String::new(),
                detail: "the peer speaks TLS and this process has no TLS configured: give it \
                         the cluster's CA, certificate and key (--tls-ca-file, --tls-cert, \
                         --tls-key; Security::with_tls_files)"
                    .into(),
            });
        }
        return Err(Error::NotDaskPeer {
            preview: String::from_utf8_lossy(&theirs[..got])
                .escape_debug()
                .to_string(),
        });
    }
    let version = u32::from_le_bytes(theirs[8..12].try_into().expect("4 bytes"));
    if version != PROTOCOL_VERSION {
        return Err(Error::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: version,
        });
    }
    let hello = read_message(reader, &HELLO_LIMITS).await?;
    super::decode::<Hello>("hello", &hello.header)
}

/// The one token check of both sides: why `theirs` is refused by this
/// process (a `role` with `security`), worded for the side that refuses
/// (accepting: the reason sent to the peer; connecting: our own error), or
/// `None` when its token is accepted.
fn token_refusal(side: Side, security: &Security, role: Role, theirs: &Hello) -> Option<String> {
    let check = security.accepts(theirs.token.as_deref());
    let peer = theirs.role;
    match (side, check) {
        (_, TokenCheck::Accepted) => None,
        (Side::Accept, TokenCheck::Missing) => Some(format!(
            "the {role} requires a token: pass --token or set {TOKEN_ENV} (Security::with_token)"
        )),
        (Side::Accept, TokenCheck::Wrong) => Some(format!(
            "the token given is not the {role}'s: use the same --token or {TOKEN_ENV} for \
             every process of the cluster"
        )),
        (Side::Connect, check) => {
            let why = match check {
                TokenCheck::Missing => "presented no token",
                _ => "presented another token",
            };
            Some(format!(
                "this {role} requires a token and the {peer} there {why}: is it the right \
                 {peer}, started with the same token?"
            ))
        }
    }
}

async fn handshake(
    side: Side,
    mut reader: BufReader<BoxRead>,
    mut writer: BufWriter<BoxWrite>,
    role: Role,
    limits: Limits,
    security: &Security,
    peer_addr: &str,
) -> Result<Connection> {
    let tls = security.tls_enabled();
    let own_token = || security.token().map(str::to_owned);
    let exchange = async {
        let theirs = match side {
            Side::Connect => {
                let hello = Hello {
                    token: own_token(),
                    ..Hello::new(role)
                };
                send_hello(&mut writer, &hello).await?;
                let mut theirs = read_hello(&mut reader, tls).await?;
                if let Some(reason) = theirs.refused.take() {
                    return Err(Error::Unauthorized {
                        peer: peer_addr.to_owned(),
                        reason,
                    });
                }
                theirs
            }
            Side::Accept => read_hello(&mut reader, tls).await?,
        };
        let refused = token_refusal(side, security, role, &theirs);
        if side == Side::Accept {
            // The answer: our token only to a peer we accept.
            let hello = Hello {
                token: if refused.is_none() { own_token() } else { None },
                refused: refused.clone(),
                ..Hello::new(role)
            };
            send_hello(&mut writer, &hello).await?;
        }
        let Some(reason) = refused else {
            return Ok(theirs);
        };
        let peer = match side {
            Side::Connect => peer_addr.to_owned(),
            Side::Accept => {
                let _ = writer.shutdown().await;
                format!("a {} at {peer_addr}", theirs.role)
            }
        };
        Err(Error::Refused { peer, reason })
    };
    let mut peer = bounded(peer_addr, exchange).await?.map_err(|e| match e {
        // Under TLS, an I/O failure here is the peer's TLS layer refusing
        // us (TLS 1.3 rejects a client certificate after the handshake).
        Error::Io(io) if tls => tls_error(peer_addr, &io),
        Error::NotDaskPeer { preview } if tls && preview.is_empty() => tls_error(
            peer_addr,
            &"the peer closed the connection during the handshake (did it refuse this certificate?)",
        ),
        Error::Tls { peer, detail } if peer.is_empty() => Error::Tls {
            peer: peer_addr.to_owned(),
            detail,
        },
        other => other,
    })?;
    peer.token = None; // checked; not kept around
    Ok(Connection {
        reader,
        writer,
        limits,
        peer,
        peer_addr: peer_addr.to_owned(),
    })
}
