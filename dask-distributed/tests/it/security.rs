//! Token authentication and mutual TLS on a real cluster (TCP on 127.0.0.1,
//! in-process workers), and a client whose scheduler goes away. Every peer
//! without the right credentials is refused in the handshake, and the
//! cluster keeps serving a good client, whose results are checked against
//! the sync scheduler.

use std::time::Duration;

use dask_core::{delayed, Collection, Key};
use dask_distributed::protocol::{self, Limits, Role, MAGIC, PROTOCOL_VERSION};
use dask_distributed::worker::PeerPool;
use dask_distributed::{Client, Error, LocalCluster, Security};
use dask_sync_scheduler::SyncScheduler;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn inc(x: i64) -> i64 {
    x + 1
}
dask_core::register_op!(inc);

const TOKEN: &str = "correct horse battery staple";

/// A chain of `inc` tasks computed on `client` and on the sync scheduler.
fn check(client: &Client, round: i64) {
    let mut x = delayed(inc).call((round,));
    for _ in 0..20 {
        x = delayed(inc).call((&x,));
    }
    let want = x.compute_with(&SyncScheduler::new()).unwrap();
    assert_eq!(x.compute_with(client).unwrap(), want, "round {round}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Writes `bytes` on a fresh connection, ends its sending side, and reads
/// until the server closes (at most 15 s, beyond the handshake timeout):
/// true if it closed.
async fn raw(addr: &str, bytes: Vec<u8>) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return true;
    };
    let _ = s.write_all(&bytes).await;
    let _ = s.shutdown().await;
    let mut sink = vec![0u8; 1 << 16];
    tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(n) = s.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .is_ok()
}

fn preamble() -> Vec<u8> {
    let mut p = MAGIC.to_vec();
    p.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    p
}

/// A preamble and a client `Hello` presenting `token`, as raw bytes.
fn hello_bytes(token: &str) -> Vec<u8> {
    let hello = protocol::Hello {
        token: Some(token.to_owned()),
        ..protocol::Hello::new(Role::Client)
    };
    let header = protocol::encode("hello", &hello).unwrap();
    let mut out = preamble();
    out.extend(1u32.to_le_bytes());
    out.extend((header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out
}

fn with_token(token: &str) -> Security {
    Security::new().with_token(token).unwrap()
}

#[test]
fn a_token_cluster_refuses_peers_without_it_and_keeps_serving() {
    let cluster = LocalCluster::builder()
        .n_workers(2)
        .threads_per_worker(1)
        .no_dashboard()
        .security(with_token(TOKEN))
        .start()
        .unwrap();
    let addr = cluster.scheduler_addr();
    let good = cluster.client().unwrap();
    check(&good, 0);

    // No token: refused, and told how to give one.
    match Client::connect(&addr) {
        Err(Error::Unauthorized { reason, .. }) => {
            assert!(reason.contains("requires a token"), "{reason}");
            assert!(reason.contains("DASK_TOKEN"), "{reason}");
        }
        other => panic!("a client without token got {other:?}"),
    }
    // A wrong token: refused; the error never shows either token.
    match Client::connect_with(&addr, with_token("tr0ub4dor&3")) {
        Err(e @ Error::Unauthorized { .. }) => {
            let text = e.to_string();
            assert!(text.contains("not the scheduler's"), "{text}");
            assert!(
                !text.contains(TOKEN) && !text.contains("tr0ub4dor"),
                "{text}"
            );
        }
        other => panic!("a client with a wrong token got {other:?}"),
    }
    // A prefix of the token is a wrong token, not a partial match.
    assert!(matches!(
        Client::connect_with(&addr, with_token(&TOKEN[..5])),
        Err(Error::Unauthorized { .. })
    ));

    let rt = runtime();
    rt.block_on(async {
        // A worker without the token cannot join.
        let err = protocol::connect(&addr, Role::Worker, Limits::default())
            .await
            .err()
            .expect("a worker without token was let in");
        assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");

        // Workers' data ports want the token too: without it, refused;
        // with it, the request reaches the worker (which holds no such key).
        let worker = cluster.worker_addrs()[0].clone();
        let key = Key::named("nobody-computed-this");
        let plain = PeerPool::new(Role::Client);
        let err = plain
            .fetch(&worker, std::slice::from_ref(&key))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
        let pool = PeerPool::with_security(Role::Client, with_token(TOKEN));
        let err = pool
            .fetch(&worker, std::slice::from_ref(&key))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("does not hold"), "{err}");

        // Random bytes, a good preamble then garbage, oversized and
        // truncated Hello frames, an empty connection: each is closed.
        let mut rng = 0x5eed_u64;
        let mut bytes = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng as u8
                })
                .collect()
        };
        let mut attempts = vec![bytes(1000), Vec::new()];
        let mut p = preamble();
        p.extend(bytes(300));
        attempts.push(p);
        let mut p = preamble();
        p.extend(1u32.to_le_bytes());
        p.extend(u64::MAX.to_le_bytes());
        attempts.push(p);
        let mut p = preamble();
        p.extend(1u32.to_le_bytes());
        p.extend(1000u64.to_le_bytes());
        p.extend(bytes(10));
        attempts.push(p);
        // Past a good handshake: an oversized frame, too many frames, a
        // frame cut short, an undecodable header.
        for tail in [
            [1u32.to_le_bytes().to_vec(), u64::MAX.to_le_bytes().to_vec()].concat(),
            u32::MAX.to_le_bytes().to_vec(),
            [
                1u32.to_le_bytes().to_vec(),
                100u64.to_le_bytes().to_vec(),
                vec![7; 10],
            ]
            .concat(),
            [
                1u32.to_le_bytes().to_vec(),
                40u64.to_le_bytes().to_vec(),
                bytes(40),
            ]
            .concat(),
        ] {
            attempts.push([hello_bytes(TOKEN), tail].concat());
        }
        for target in [addr.clone(), worker.clone()] {
            for bytes in attempts.clone() {
                assert!(raw(&target, bytes).await, "{target} kept a hostile peer");
            }
        }
    });
    // The cluster serves its client, and a new one with the token.
    check(&good, 1);
    check(&Client::connect_with(&addr, with_token(TOKEN)).unwrap(), 2);

    // Mutual: a client with a token does not talk to a scheduler without one.
    let open = LocalCluster::builder()
        .n_workers(1)
        .threads_per_worker(1)
        .no_dashboard()
        .start()
        .unwrap();
    match Client::connect_with(&open.scheduler_addr(), with_token(TOKEN)) {
        Err(Error::Refused { reason, .. }) => {
            assert!(reason.contains("presented no token"), "{reason}")
        }
        other => panic!("a token client accepted an open scheduler: {other:?}"),
    }
}

#[test]
fn empty_and_bad_credentials_are_refused_at_configuration() {
    assert!(matches!(
        Security::new().with_token(""),
        Err(Error::InvalidConfig { .. })
    ));
    let err = Security::new()
        .with_tls_pem(
            b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
            b"",
            b"",
        )
        .unwrap_err();
    assert!(err.to_string().contains("CA certificate"), "{err}");
}

fn tls(ca_pem: &str, (cert, key): &(String, String)) -> Security {
    Security::new()
        .with_tls_pem(ca_pem.as_bytes(), cert.as_bytes(), key.as_bytes())
        .unwrap()
}

#[test]
fn mutual_tls_serves_members_and_refuses_strangers() {
    let ca = dask_testing::pki::Ca::new("dask-rs test CA");
    let cluster = LocalCluster::builder()
        .n_workers(2)
        .threads_per_worker(1)
        .no_dashboard()
        .security(tls(&ca.pem, &ca.member("cluster")))
        .start()
        .unwrap();
    let addr = cluster.scheduler_addr();
    // A member: results (moving between workers over TLS) match.
    let member = Client::connect_with(&addr, tls(&ca.pem, &ca.member("client"))).unwrap();
    check(&member, 0);

    // A certificate from another CA (the client trusts the cluster's CA):
    // the scheduler refuses it during the TLS handshake.
    let stranger_ca = dask_testing::pki::Ca::new("someone else's CA");
    let stranger = tls(&ca.pem, &stranger_ca.member("stranger"));
    match Client::connect_with(&addr, stranger.clone()) {
        Err(Error::Tls { .. }) => {}
        other => panic!("a stranger's certificate got {other:?}"),
    }
    // A client that trusts another CA refuses the scheduler's certificate.
    let suspicious = tls(&stranger_ca.pem, &stranger_ca.member("other"));
    assert!(matches!(
        Client::connect_with(&addr, suspicious),
        Err(Error::Tls { .. })
    ));
    // No TLS at all: refused, with an error that names TLS.
    match Client::connect(&addr) {
        Err(e) => assert!(
            matches!(
                e,
                Error::Tls { .. } | Error::Closed | Error::NotDaskPeer { .. } | Error::Io(_)
            ),
            "{e:?}"
        ),
        Ok(_) => panic!("a plain client talked to a TLS scheduler"),
    }
    // Workers' data ports refuse the stranger too.
    let rt = runtime();
    rt.block_on(async {
        let worker = cluster.worker_addrs()[1].clone();
        let pool = PeerPool::with_security(Role::Client, stranger);
        let err = pool
            .fetch(&worker, &[Key::named("anything")])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err:?}");
        assert!(raw(&worker, preamble()).await, "a plain peer stayed");
    });
    check(&member, 1);
}

#[test]
fn tls_and_token_together() {
    let ca = dask_testing::pki::Ca::new("dask-rs test CA");
    let security = tls(&ca.pem, &ca.member("cluster"))
        .with_token(TOKEN)
        .unwrap();
    let cluster = LocalCluster::builder()
        .n_workers(1)
        .threads_per_worker(2)
        .no_dashboard()
        .security(security)
        .start()
        .unwrap();
    let addr = cluster.scheduler_addr();
    // A member's certificate without the token: still refused.
    match Client::connect_with(&addr, tls(&ca.pem, &ca.member("client"))) {
        Err(Error::Unauthorized { .. }) => {}
        other => panic!("a member without token got {other:?}"),
    }
    let client = Client::connect_with(
        &addr,
        tls(&ca.pem, &ca.member("client"))
            .with_token(TOKEN)
            .unwrap(),
    )
    .unwrap();
    check(&client, 3);
}

#[test]
fn a_client_whose_scheduler_goes_away_gets_a_clear_error() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let scheduler = rt
        .block_on(dask_distributed::scheduler::server::start("127.0.0.1:0"))
        .unwrap();
    let addr = scheduler.addr().to_string();
    // It tries to reconnect for a short while (default 10 s), then gives up.
    let client = Client::connect_with_options(
        &addr,
        dask_distributed::ClientOptions {
            reconnect_timeout: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .unwrap();
    // No worker: the task waits, its future pending.
    let pending = client.submit(inc, (41i64,)).unwrap();
    assert!(client.workers().unwrap().is_empty());
    scheduler.shutdown();
    match pending.result_timeout(Duration::from_secs(60)) {
        Err(Error::SchedulerLost { addr: a }) => assert_eq!(a, addr),
        other => panic!("a pending future got {other:?}"),
    }
    // New calls fail the same way at once, never hang.
    let err = client.workers().unwrap_err();
    assert!(matches!(err, Error::SchedulerLost { .. }), "{err:?}");
    assert!(err.to_string().contains("resubmit"), "{err}");
    match client.submit(inc, (1i64,)) {
        Err(Error::SchedulerLost { .. }) => {}
        Err(other) => panic!("submit after the loss: {other:?}"),
        Ok(_) => panic!("submit after the loss succeeded"),
    }
    drop(rt);
}
