//! The distributed scheduler of dask-rs (in progress: see issue 3).
//!
//! Today this crate holds the wire protocol ([`protocol`]): length-prefixed
//! frames over TCP, postcard-encoded message headers, raw data frames that are
//! never re-encoded, and a versioned handshake that refuses foreign peers before
//! reading anything they say. The scheduler, workers, `Client` and
//! `LocalCluster` build on it next.
//!
//! ```
//! use dask_distributed::protocol::{self, Message, Role};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = tokio::spawn(async move {
//!     let (stream, _) = listener.accept().await.unwrap();
//!     let mut conn = protocol::accept(stream, Role::Scheduler, Default::default()).await.unwrap();
//!     let msg = conn.recv().await.unwrap();
//!     conn.send(&msg).await.unwrap(); // echo
//! });
//! let mut conn = protocol::connect(&addr.to_string(), Role::Client, Default::default()).await.unwrap();
//! conn.send(&Message::new(b"hello".to_vec(), vec![vec![1u8, 2, 3].into()])).await.unwrap();
//! let echo = conn.recv().await.unwrap();
//! assert_eq!(&echo.header[..], b"hello");
//! assert_eq!(&echo.frames[0][..], &[1, 2, 3]);
//! server.await.unwrap();
//! # });
//! ```
#![warn(missing_docs)]

mod error;
pub mod protocol;

pub use error::{Error, Result};
