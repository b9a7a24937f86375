//! The wire protocol against well-behaved and misbehaving peers.

use std::time::Duration;

use bytes::Bytes;
use dask_distributed::protocol::{self, Limits, Message, Role, MAGIC, PROTOCOL_VERSION};
use dask_distributed::Error;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every test body runs under this limit: nothing may hang.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test timed out")
}

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

fn preamble(version: u32) -> Vec<u8> {
    let mut p = MAGIC.to_vec();
    p.extend_from_slice(&version.to_le_bytes());
    p
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Header {
    Compute { key: String, priority: i64 },
    Done { nbytes: u64 },
}

#[tokio::test]
async fn messages_round_trip_with_data_frames() {
    bounded(async {
        let (l, addr) = listener().await;
        let big: Bytes = (0..8 << 20)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>()
            .into();
        let sent = vec![
            Message::new(
                protocol::encode(
                    "h",
                    &Header::Compute {
                        key: "x".into(),
                        priority: -3,
                    },
                )
                .unwrap(),
                vec![],
            ),
            Message::new(
                protocol::encode("h", &Header::Done { nbytes: 3 }).unwrap(),
                vec![Bytes::new(), big.clone()],
            ),
        ];
        let expected = sent.clone();
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let mut conn = protocol::accept(s, Role::Scheduler, Limits::default())
                .await
                .unwrap();
            assert_eq!(conn.peer().role, Role::Client);
            let mut got = Vec::new();
            for _ in 0..2 {
                got.push(conn.recv().await.unwrap());
            }
            got
        });
        let mut conn = protocol::connect(&addr, Role::Client, Limits::default())
            .await
            .unwrap();
        assert_eq!(conn.peer().role, Role::Scheduler);
        conn.send_batch(&sent).await.unwrap();
        let got = server.await.unwrap();
        assert_eq!(got, expected);
        let h: Header = protocol::decode("h", &got[0].header).unwrap();
        assert_eq!(
            h,
            Header::Compute {
                key: "x".into(),
                priority: -3
            }
        );
        assert_eq!(got[1].frames[1], big);
    })
    .await
}

#[tokio::test]
async fn clean_close_between_messages_is_closed() {
    bounded(async {
        let (l, addr) = listener().await;
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let mut conn = protocol::accept(s, Role::Scheduler, Limits::default())
                .await
                .unwrap();
            conn.recv().await
        });
        let conn = protocol::connect(&addr, Role::Client, Limits::default())
            .await
            .unwrap();
        drop(conn);
        assert!(matches!(server.await.unwrap(), Err(Error::Closed)));
    })
    .await
}

/// A raw peer that completes the handshake, then writes `bytes` and closes.
async fn raw_peer_after_handshake(addr: String, bytes: Vec<u8>) {
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(&preamble(PROTOCOL_VERSION)).await.unwrap();
    let hello = protocol::encode(
        "hello",
        &protocol::Hello {
            crate_version: "test".into(),
            ..protocol::Hello::new(Role::Worker)
        },
    )
    .unwrap();
    let mut msg = 1u32.to_le_bytes().to_vec();
    msg.extend_from_slice(&(hello.len() as u64).to_le_bytes());
    msg.extend_from_slice(&hello);
    s.write_all(&msg).await.unwrap();
    s.write_all(&bytes).await.unwrap();
    s.shutdown().await.unwrap();
    // Drain what the server sent so the close is clean.
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink).await;
}

#[tokio::test]
async fn close_mid_frame_is_truncated() {
    bounded(async {
        let (l, addr) = listener().await;
        // Announces one frame of 100 bytes, sends 10.
        let mut bytes = 1u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&100u64.to_le_bytes());
        bytes.extend_from_slice(&[7u8; 10]);
        let peer = tokio::spawn(raw_peer_after_handshake(addr, bytes));
        let (s, _) = l.accept().await.unwrap();
        let mut conn = protocol::accept(s, Role::Scheduler, Limits::default())
            .await
            .unwrap();
        match conn.recv().await {
            Err(Error::Truncated {
                expected: 100,
                got: 10,
            }) => {}
            other => panic!("expected Truncated, got {other:?}"),
        }
        drop(conn);
        peer.await.unwrap();
    })
    .await
}

#[tokio::test]
async fn oversized_frame_is_refused_before_allocation() {
    bounded(async {
        let (l, addr) = listener().await;
        let mut bytes = 1u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        let peer = tokio::spawn(raw_peer_after_handshake(addr, bytes));
        let (s, _) = l.accept().await.unwrap();
        let limits = Limits {
            max_frame: 1 << 20,
            ..Limits::default()
        };
        let mut conn = protocol::accept(s, Role::Scheduler, limits).await.unwrap();
        match conn.recv().await {
            Err(Error::FrameTooLarge { size, max }) => {
                assert_eq!(size, u64::MAX / 2);
                assert_eq!(max, 1 << 20);
            }
            other => panic!("expected FrameTooLarge, got {other:?}"),
        }
        drop(conn);
        peer.await.unwrap();
    })
    .await
}

#[tokio::test]
async fn too_many_frames_is_refused() {
    bounded(async {
        let (l, addr) = listener().await;
        let bytes = u32::MAX.to_le_bytes().to_vec();
        let peer = tokio::spawn(raw_peer_after_handshake(addr, bytes));
        let (s, _) = l.accept().await.unwrap();
        let mut conn = protocol::accept(s, Role::Scheduler, Limits::default())
            .await
            .unwrap();
        assert!(matches!(
            conn.recv().await,
            Err(Error::TooManyFrames { .. })
        ));
        drop(conn);
        peer.await.unwrap();
    })
    .await
}

#[tokio::test]
async fn garbage_peer_is_refused_both_ways() {
    bounded(async {
        // A client that speaks HTTP to our server.
        let (l, addr) = listener().await;
        let client = tokio::spawn(async move {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink).await;
        });
        let (s, _) = l.accept().await.unwrap();
        match protocol::accept(s, Role::Scheduler, Limits::default()).await {
            Err(Error::NotDaskPeer { preview }) => {
                assert!(preview.starts_with("GET / HTTP"), "{preview}")
            }
            Err(other) => panic!("expected NotDaskPeer, got {other:?}"),
            Ok(_) => panic!("expected NotDaskPeer, got a connection"),
        }
        client.await.unwrap();

        // Our client against a server that answers garbage and hangs up.
        let (l, addr) = listener().await;
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(b"SSH-2.0-OpenSSH\r\n").await.unwrap();
        });
        let res = protocol::connect(&addr, Role::Client, Limits::default()).await;
        assert!(
            matches!(res, Err(Error::NotDaskPeer { .. })),
            "{:?}",
            res.err()
        );
        server.await.unwrap();
    })
    .await
}

#[tokio::test]
async fn version_mismatch_is_a_typed_error() {
    bounded(async {
        let (l, addr) = listener().await;
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(&preamble(PROTOCOL_VERSION + 41)).await.unwrap();
            let mut sink = [0u8; 12];
            let _ = s.read_exact(&mut sink).await;
        });
        match protocol::connect(&addr, Role::Client, Limits::default()).await {
            Err(Error::VersionMismatch { ours, theirs }) => {
                assert_eq!(ours, PROTOCOL_VERSION);
                assert_eq!(theirs, PROTOCOL_VERSION + 41);
            }
            Err(other) => panic!("expected VersionMismatch, got {other:?}"),
            Ok(_) => panic!("expected VersionMismatch, got a connection"),
        }
        server.await.unwrap();
    })
    .await
}

#[tokio::test]
async fn unreachable_address_is_a_connect_error() {
    bounded(async {
        // Bind then drop: the port is (almost certainly) closed now.
        let (l, addr) = listener().await;
        drop(l);
        match protocol::connect(&addr, Role::Client, Limits::default()).await {
            Err(Error::Connect { addr: a, .. }) => assert_eq!(a, addr),
            Err(other) => panic!("expected Connect, got {other:?}"),
            Ok(_) => panic!("expected Connect, got a connection"),
        }
        let err = protocol::connect("not an address", Role::Client, Limits::default())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    })
    .await
}

#[tokio::test]
async fn malformed_header_is_a_decode_error() {
    let err = protocol::decode::<Header>("compute", &[0xff, 0xff, 0xff]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Decode {
                what: "compute",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("malformed compute message"));
}

/// Reads `message` (written to a buffer) with a placer that puts every data
/// frame of `sink_len(len)` bytes into a byte-vector sink.
async fn read_placed(
    wire: &[u8],
    sink_len: fn(u64) -> u64,
) -> dask_distributed::Result<protocol::Placed> {
    let tag = std::any::type_name::<Vec<u8>>();
    let mut reader = wire;
    protocol::read_message_placed(&mut reader, &Limits::default(), &mut |_, _, len| {
        dask_core::codec::data_sink(tag, &[], sink_len(len) as usize).unwrap()
    })
    .await
}

#[tokio::test]
async fn placed_frames_are_read_into_their_sinks_and_truncation_is_an_error() {
    let tag = std::any::type_name::<Vec<u8>>();
    let big: Vec<u8> = (0..3 << 20).map(|i| (i % 253) as u8).collect();
    let sent = Message::new(
        protocol::encode("h", &Header::Done { nbytes: 9 }).unwrap(),
        vec![
            Bytes::from_static(b"abc"),
            Bytes::from(big.clone()),
            Bytes::new(),
        ],
    );
    let mut wire = Vec::new();
    protocol::write_message(&mut wire, &sent).await.unwrap();
    let placed = read_placed(&wire, |len| len).await.unwrap();
    assert_eq!(placed.message.header, sent.header);
    assert_eq!(placed.sinks.len(), 3);
    let mut values = Vec::new();
    for (frame, sink) in placed.message.frames.iter().zip(placed.sinks) {
        assert!(frame.is_empty(), "the bytes went to the sink");
        let v = dask_core::codec::finish_sink(tag, sink.expect("placed")).unwrap();
        values.push(v.downcast_ref::<Vec<u8>>().unwrap().clone());
    }
    assert_eq!(values, [b"abc".to_vec(), big.clone(), Vec::new()]);
    // A sink of another length than the frame is not used: a plain frame.
    let placed = read_placed(&wire, |len| len + 1).await.unwrap();
    assert!(placed.sinks.iter().all(Option::is_none));
    assert_eq!(placed.message, sent);
    // The stream ends inside a placed frame: truncated, whatever the cut.
    for cut in [wire.len() - 1, wire.len() - 1000, wire.len() - big.len()] {
        let err = read_placed(&wire[..cut], |len| len).await.unwrap_err();
        assert!(matches!(err, Error::Truncated { .. }), "{cut}: {err}");
    }
}
