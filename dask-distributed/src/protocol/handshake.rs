//! The handshake and [`Connection`], a framed, handshaken TCP stream.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::frame::{read_message, write_message, Limits, Message};
use crate::{Error, Result};

/// The protocol version; peers of different versions refuse each other.
/// 3: task-finished and task-erred messages carry the task's timing.
pub const PROTOCOL_VERSION: u32 = 3;

/// First bytes of every connection, before the version (public for tests of foreign peers).
pub const MAGIC: [u8; 8] = *b"dask-rs\0";

/// How long the handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Limits for the `Hello` message, read before the peer is trusted.
const HELLO_LIMITS: Limits = Limits {
    max_frame: 64 << 10,
    max_frames: 1,
};

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
}

/// A handshaken connection: framed messages both ways, batched writes.
pub struct Connection {
    reader: BufReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
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
    reader: BufReader<OwnedReadHalf>,
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
    writer: BufWriter<OwnedWriteHalf>,
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
    pub fn spawn(mut self) -> tokio::sync::mpsc::UnboundedSender<Message> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while rx.recv_many(&mut batch, 256).await > 0 {
                if self.send_batch(&batch).await.is_err() {
                    break;
                }
                batch.clear();
            }
            let _ = self.writer.shutdown().await;
        });
        tx
    }
}

/// Connects to `addr` and handshakes as `role`.
pub async fn connect(addr: &str, role: Role, limits: Limits) -> Result<Connection> {
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
    handshake(stream, role, limits).await
}

/// Handshakes on an accepted stream as `role`.
pub async fn accept(stream: TcpStream, role: Role, limits: Limits) -> Result<Connection> {
    handshake(stream, role, limits).await
}

async fn handshake(stream: TcpStream, role: Role, limits: Limits) -> Result<Connection> {
    let peer_addr = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut writer = BufWriter::new(write);
    let exchange = async {
        let mut preamble = Vec::with_capacity(12);
        preamble.extend_from_slice(&MAGIC);
        preamble.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        writer.write_all(&preamble).await?;
        let hello = Hello {
            role,
            crate_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        write_message(
            &mut writer,
            &Message::new(super::encode("hello", &hello)?, Vec::new()),
        )
        .await?;
        writer.flush().await?;

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
        let hello = read_message(&mut reader, &HELLO_LIMITS).await?;
        super::decode::<Hello>("hello", &hello.header)
    };
    let peer = tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
        .await
        .map_err(|_| Error::Timeout {
            what: format!("handshake with {peer_addr}"),
            seconds: HANDSHAKE_TIMEOUT.as_secs_f64(),
        })??;
    Ok(Connection {
        reader,
        writer,
        limits,
        peer,
        peer_addr,
    })
}
