//! Framing: one message = frame count, frame lengths, frames.

use bytes::{Bytes, BytesMut};
use dask_core::codec::DataSink;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Error, Result};

/// Size limits enforced on every received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted, in bytes (default 1 GiB).
    pub max_frame: u64,
    /// Most frames in one message (default 65,536).
    pub max_frames: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: 1 << 30,
            max_frames: 1 << 16,
        }
    }
}

/// A message: a header and raw data frames.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The encoded header (see [`encode`](super::encode)).
    pub header: Bytes,
    /// Data frames, sent as they are.
    pub frames: Vec<Bytes>,
}

impl Message {
    /// A message from a header and data frames.
    pub fn new(header: impl Into<Bytes>, frames: Vec<Bytes>) -> Message {
        Message {
            header: header.into(),
            frames,
        }
    }

    /// Bytes on the wire, prefix included.
    pub fn wire_len(&self) -> u64 {
        let n = 1 + self.frames.len() as u64;
        4 + 8 * n
            + self.header.len() as u64
            + self.frames.iter().map(|f| f.len() as u64).sum::<u64>()
    }
}

/// Writes one message (not flushed: wrap the stream in a `BufWriter` and flush
/// after a batch, so busy streams send several messages per write).
pub async fn write_message<W: AsyncWrite + Unpin>(writer: &mut W, message: &Message) -> Result<()> {
    let n = 1 + message.frames.len();
    let mut prefix = Vec::with_capacity(4 + 8 * n);
    prefix.extend_from_slice(&(n as u32).to_le_bytes());
    prefix.extend_from_slice(&(message.header.len() as u64).to_le_bytes());
    for f in &message.frames {
        prefix.extend_from_slice(&(f.len() as u64).to_le_bytes());
    }
    writer.write_all(&prefix).await?;
    writer.write_all(&message.header).await?;
    for f in &message.frames {
        writer.write_all(f).await?;
    }
    Ok(())
}

/// Reads one message, checking every length against `limits` before allocating.
///
/// Errors: [`Error::Closed`] at a clean end of stream, [`Error::Truncated`] when
/// the stream ends inside a message, [`Error::FrameTooLarge`],
/// [`Error::TooManyFrames`].
pub async fn read_message<R: AsyncRead + Unpin>(
    reader: &mut R,
    limits: &Limits,
) -> Result<Message> {
    let placed =
        read_message_placed(reader, limits, &mut |_: &[u8], _: &[Bytes], _: u64| None).await?;
    Ok(placed.message)
}

/// Chooses where a data frame goes as it arrives: given the message's
/// header, the data frames read before it and its length (within
/// [`Limits`]), a [`DataSink`] that receives its bytes in place, or `None`
/// for a plain buffer.
pub type Placer<'a> = dyn FnMut(&[u8], &[Bytes], u64) -> Option<Box<dyn DataSink>> + Send + 'a;

/// A message read with [`read_message_placed`].
pub struct Placed {
    /// The message; a data frame that went into a sink is empty here.
    pub message: Message,
    /// For each data frame, the sink that holds it, if one did.
    pub sinks: Vec<Option<Box<dyn DataSink>>>,
}

impl std::fmt::Debug for Placed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placed")
            .field("message", &self.message)
            .field(
                "sunk",
                &self.sinks.iter().map(Option::is_some).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// [`read_message`], reading each data frame into the sink `place` gives for
/// it, if any (a received array chunk is read straight into its own buffer).
/// A sink is filled completely or dropped with an error; the errors are
/// [`read_message`]'s.
pub async fn read_message_placed<R: AsyncRead + Unpin>(
    reader: &mut R,
    limits: &Limits,
    place: &mut Placer<'_>,
) -> Result<Placed> {
    let mut count = [0u8; 4];
    let got = read_full(reader, &mut count).await?;
    if got == 0 {
        return Err(Error::Closed);
    }
    if got < count.len() {
        return Err(Error::Truncated {
            expected: 4,
            got: got as u64,
        });
    }
    let n = u32::from_le_bytes(count) as u64;
    if n == 0 || n > limits.max_frames {
        return Err(Error::TooManyFrames {
            count: n,
            max: limits.max_frames,
        });
    }
    let mut lengths = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let mut len = [0u8; 8];
        let got = read_full(reader, &mut len).await?;
        if got < len.len() {
            return Err(Error::Truncated {
                expected: 8,
                got: got as u64,
            });
        }
        let len = u64::from_le_bytes(len);
        if len > limits.max_frame {
            return Err(Error::FrameTooLarge {
                size: len,
                max: limits.max_frame,
            });
        }
        lengths.push(len);
    }
    let header = read_frame(reader, lengths[0]).await?;
    let mut frames = Vec::with_capacity(lengths.len() - 1);
    let mut sinks = Vec::with_capacity(lengths.len() - 1);
    for &len in &lengths[1..] {
        // `place` promises the length; a sink of another is not used.
        let sink = place(&header, &frames, len)
            .and_then(|mut s| (s.buffer().len() as u64 == len).then_some(s));
        match sink {
            Some(mut sink) => {
                let got = read_full(reader, sink.buffer()).await?;
                if (got as u64) < len {
                    return Err(Error::Truncated {
                        expected: len,
                        got: got as u64,
                    });
                }
                frames.push(Bytes::new());
                sinks.push(Some(sink));
            }
            _ => {
                frames.push(read_frame(reader, len).await?);
                sinks.push(None);
            }
        }
    }
    Ok(Placed {
        message: Message { header, frames },
        sinks,
    })
}

/// Reads a frame of `len` bytes (at most the limit, checked by the caller).
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, len: u64) -> Result<Bytes> {
    let mut buf = BytesMut::zeroed(len as usize);
    let got = read_full(reader, &mut buf).await?;
    if (got as u64) < len {
        return Err(Error::Truncated {
            expected: len,
            got: got as u64,
        });
    }
    Ok(buf.freeze())
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
async fn read_full<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}
