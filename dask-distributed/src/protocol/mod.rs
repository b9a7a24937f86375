//! The wire protocol: framed messages over TCP and the handshake.
//!
//! A message is a header (postcard-encoded, small) plus zero or more data frames
//! (raw bytes: array buffers, Arrow IPC, encoded values), sent as
//!
//! ```text
//! u32 LE  number of frames n (header included, n >= 1)
//! u64 LE  length of each frame, n times
//! bytes   the frames, back to back
//! ```
//!
//! Lengths are checked against [`Limits`] before anything is allocated, so a
//! peer cannot make us reserve memory by announcing a huge frame.
//!
//! Each side of a new connection sends a 12-byte preamble (magic + protocol
//! version), then a [`Hello`] message (the connecting side first; the
//! accepting side answers once it checked the peer's, see
//! [`crate::security`] for tokens and TLS). A peer whose preamble or token
//! is wrong is refused before any of its messages is read.
//!
//! Headers are plain serde enums encoded with postcard. Postcard is not
//! self-describing, so enums are tagged by variant index, not by an `op` field.

mod frame;
mod handshake;
mod task;

pub use frame::{
    read_message, read_message_placed, write_message, Limits, Message, Placed, Placer,
};
pub use handshake::{
    accept, accept_with, connect, connect_with, ConnReader, ConnWriter, Connection, Hello, Role,
    MAGIC, PROTOCOL_VERSION,
};
pub use task::{check_graph, decode_task, encode_task, SharedTask, WireArg, WireTask};

use serde::{de::DeserializeOwned, Serialize};

use crate::{Error, Result};

/// Headers up to this size are encoded in a buffer kept per thread and
/// copied out at their exact size: one allocation per header (postcard's
/// own `to_allocvec` starts empty and grows 8, 16, 32, ...), and a header
/// held for long (a task's spec) holds no spare capacity. Larger ones keep
/// the buffer they were encoded in.
const REUSED_BUFFER: usize = 4096;

thread_local! {
    static HEADER_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Encodes a header with postcard.
pub fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<bytes::Bytes> {
    let mut buffer = HEADER_BUFFER.take();
    buffer.clear();
    let encoded =
        postcard::to_extend(value, buffer).map_err(|source| Error::Encode { what, source })?;
    if encoded.len() > REUSED_BUFFER {
        return Ok(bytes::Bytes::from(encoded));
    }
    let header = bytes::Bytes::copy_from_slice(&encoded);
    HEADER_BUFFER.set(encoded);
    Ok(header)
}

/// Decodes a postcard header; `what` names the expected message in errors.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|source| Error::Decode { what, source })
}
