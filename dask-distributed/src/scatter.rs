//! [`Client::scatter`]: values from the client straight to workers' data
//! ports, held there under new keys and referenced by futures, like Dask's
//! `client.scatter`. The scheduler is told the keys are in memory on those
//! workers; later submits take the futures as arguments without the values
//! coming back.

use std::any::Any;
use std::marker::PhantomData;

use bytes::Bytes;
use dask_core::codec::encode_value;
use dask_core::delayed::key_prefix;
use dask_core::op::try_fn_op;
use dask_core::tokenize::unique_token;
use dask_core::{Arg, Key, Task, Value};

use crate::messages::StoredTask;
use crate::protocol::{self, encode_task};
use crate::{Client, Error, Future, Result};

/// Where [`Client::scatter_with`] puts values.
#[derive(Debug, Clone, Default)]
pub struct ScatterOptions {
    broadcast: bool,
    workers: Option<Vec<String>>,
}

impl ScatterOptions {
    /// Round-robin over every connected worker, one copy each (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts every value on every chosen worker (for data many tasks read).
    pub fn broadcast(mut self, broadcast: bool) -> Self {
        self.broadcast = broadcast;
        self
    }

    /// Only these workers (data addresses, see [`Client::workers`]).
    pub fn workers<S: Into<String>>(mut self, addrs: impl IntoIterator<Item = S>) -> Self {
        self.workers = Some(addrs.into_iter().map(Into::into).collect());
        self
    }
}

/// What a scattered key runs if every copy of it is lost with its workers.
fn scattered_value_lost(key: String) -> std::result::Result<(), String> {
    Err(format!(
        "the scattered value {key} was lost with the worker(s) holding it; scatter it again"
    ))
}
dask_core::register_op!(try scattered_value_lost);

impl Client {
    /// Puts `values` on the workers (round-robin) and returns a future for
    /// each, in order. See [`scatter_with`](Client::scatter_with).
    pub fn scatter<T: Any + Send + Sync>(&self, values: Vec<T>) -> Result<Vec<Future<T>>> {
        self.scatter_with(values, &ScatterOptions::default())
    }

    /// [`scatter`](Client::scatter) with options (broadcast, target workers).
    ///
    /// Values go to in-process workers without encoding; to other processes
    /// they need a codec, checked before anything is sent. Errors:
    /// [`Error::NoWorkers`], [`Error::UnknownWorker`], a missing codec.
    pub fn scatter_with<T: Any + Send + Sync>(
        &self,
        values: Vec<T>,
        options: &ScatterOptions,
    ) -> Result<Vec<Future<T>>> {
        let inner = self.inner().clone();
        let prefix = key_prefix(&dask_core::op::op_name::<T>()).to_lowercase();
        let items: Vec<(Key, Value)> = values
            .into_iter()
            .map(|v| {
                (
                    Key::named(format!("{prefix}-{}", unique_token())),
                    Value::new(v),
                )
            })
            .collect();
        let mut lost_specs = Vec::with_capacity(items.len());
        for (key, _) in &items {
            let task = Task::new(
                try_fn_op(scattered_value_lost),
                vec![Arg::value(key.to_string())],
            );
            let (task, frames) = encode_task(key, &task)?;
            let stored = StoredTask::Wire {
                task,
                frames: frames.into_iter().map(|b| b.to_vec()).collect(),
            };
            lost_specs.push(protocol::encode("task", &stored)?.to_vec());
        }
        let futures: Result<Vec<Future<T>>> = inner.block_on(async {
            let mut targets: Vec<String> =
                inner.workers().await?.into_iter().map(|w| w.addr).collect();
            if let Some(addrs) = &options.workers {
                inner.check_workers(addrs).await?;
                targets.retain(|a| addrs.contains(a));
            }
            if targets.is_empty() {
                return Err(Error::NoWorkers);
            }
            // Which worker(s) get each value.
            let mut groups: Vec<(Vec<String>, Vec<usize>)> = if options.broadcast {
                vec![(targets.clone(), (0..items.len()).collect())]
            } else {
                targets
                    .iter()
                    .enumerate()
                    .map(|(w, addr)| {
                        let mine = (w..items.len()).step_by(targets.len()).collect();
                        (vec![addr.clone()], mine)
                    })
                    .collect()
            };
            groups.retain(|(_, idx)| !idx.is_empty());
            // Encode first (unless every target is in this process): a value
            // without a codec is refused before anything is stored.
            let all_local = inner.in_process() && targets.iter().all(|a| crate::local::hosts(a));
            let encoded: Option<Vec<(String, Bytes)>> = if all_local {
                None
            } else {
                Some(
                    items
                        .iter()
                        .map(|(_, v)| {
                            let (tag, bytes) = encode_value(v)?;
                            Ok((tag.to_owned(), Bytes::from(bytes)))
                        })
                        .collect::<Result<_>>()?,
                )
            };
            let mut futures: Vec<Option<Future<T>>> = (0..items.len()).map(|_| None).collect();
            for (addrs, idx) in groups {
                for addr in &addrs {
                    let local: Vec<(Key, Value)> = idx.iter().map(|&i| items[i].clone()).collect();
                    if inner.in_process() && crate::local::put(addr, &local) {
                        continue;
                    }
                    let encoded = encoded.as_ref().ok_or_else(|| Error::Malformed {
                        what: "scatter",
                        detail: "a worker left this process meanwhile".into(),
                    })?;
                    let values = idx
                        .iter()
                        .map(|&i| {
                            let (tag, bytes) = &encoded[i];
                            (items[i].0.clone(), tag.clone(), bytes.clone())
                        })
                        .collect();
                    inner.peers().put(addr, values).await?;
                }
                let keys = idx
                    .iter()
                    .map(|&i| {
                        let nbytes = encoded
                            .as_ref()
                            .map_or(std::mem::size_of::<T>(), |e| e[i].1.len());
                        (items[i].0.clone(), nbytes as u64, lost_specs[i].clone())
                    })
                    .collect();
                inner.register_data(keys, addrs.clone())?;
                for &i in &idx {
                    futures[i] = Some(Future {
                        key: items[i].0.clone(),
                        inner: inner.clone(),
                        _type: PhantomData,
                    });
                }
            }
            Ok(futures.into_iter().flatten().collect())
        })?;
        futures
    }
}
