//! Writing arrays chunk by chunk: [`Array::to_npy_dir`] writes every block as
//! a NumPy `.npy` file (plus a small `info` file), so results larger than
//! memory go to disk one block at a time; [`from_npy_dir`] reads them back
//! lazily. Each block file is a standard `.npy` (version 1.0) that NumPy's
//! `np.load` reads.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dask_core::{tokenize, Arg, BoxError, Collection, Graph, HighLevelGraph, Key, Op, Task, Value};
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::array::{new_layer, op, value_arg, Array};
use crate::chunks::Chunks;
use crate::element::Element;
use crate::error::{fmt_shape, Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// Encodes an array as `.npy` (version 1.0, C order, little-endian).
pub fn encode_npy<T: Element>(a: &ArrayD<T>) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        T::NPY_DESCR,
        fmt_shape(a.shape())
    );
    // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + a.len() * std::mem::size_of::<T>());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &x in a.iter() {
        x.write_le(&mut out);
    }
    out
}

/// Decodes a `.npy` file written by [`encode_npy`] (or by NumPy, for C-order
/// arrays of the same dtype).
pub fn decode_npy<T: Element>(bytes: &[u8]) -> Result<ArrayD<T>, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (bad magic)".into());
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes
        .get(start..start + len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated or non-UTF-8 .npy header")?;
    let field = |name: &str| -> Option<&str> {
        let at = header.find(&format!("'{name}':"))? + name.len() + 3;
        Some(header[at..].trim_start())
    };
    let descr = field("descr").and_then(|d| d.strip_prefix('\'')?.split('\'').next());
    if descr != Some(T::NPY_DESCR) {
        return Err(format!(
            "dtype {descr:?} in the file, but the array is {} ({})",
            T::DTYPE,
            T::NPY_DESCR
        ));
    }
    if !field("fortran_order").is_some_and(|f| f.starts_with("False")) {
        return Err("Fortran-order .npy files are not supported".into());
    }
    let shape_text = field("shape")
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.split(')').next())
        .ok_or("no shape in the .npy header")?;
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|e| format!("bad shape {shape_text:?}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let size = std::mem::size_of::<T>();
    let data = &bytes[start + len..];
    let n: usize = shape.iter().product();
    if data.len() != n * size {
        return Err(format!(
            "{} data bytes for shape {} of {}, expected {}",
            data.len(),
            fmt_shape(&shape),
            T::DTYPE,
            n * size
        ));
    }
    let values: Vec<T> = data
        .chunks_exact(size)
        .map(|b| T::read_le(b).ok_or("invalid element bytes"))
        .collect::<Result<_, _>>()?;
    ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|e| e.to_string())
}

fn block_file(dir: &Path, index: &[usize]) -> PathBuf {
    let mut name = String::from("block");
    for i in index {
        name.push_str(&format!("_{i}"));
    }
    name.push_str(".npy");
    dir.join(name)
}

fn info_text(dtype: &str, chunks: &Chunks) -> String {
    let axes: Vec<String> = chunks
        .axes()
        .iter()
        .map(|a| {
            a.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    format!(
        "dask-array npy directory v1\ndtype {dtype}\nchunks {}\n",
        axes.join(" ")
    )
}

/// A pending write of an array to a directory of `.npy` files; computing it
/// writes every block (in parallel, one block per task) and returns the bytes
/// written. Built by [`Array::to_npy_dir`].
#[derive(Clone)]
pub struct NpyStore {
    key: Key,
    graph: HighLevelGraph,
}

impl Collection for NpyStore {
    type Output = u64;

    fn graph(&self) -> HighLevelGraph {
        self.graph.clone()
    }

    fn keys(&self) -> Vec<Key> {
        vec![self.key.clone()]
    }

    fn finalize(&self, values: Vec<Value>) -> dask_core::Result<u64> {
        let v = values
            .into_iter()
            .next()
            .ok_or(dask_core::Error::WrongNumberOfValues {
                expected: 1,
                found: 0,
            })?;
        v.take::<u64>()
    }

    fn rebuild(&self, graph: HighLevelGraph) -> Self {
        NpyStore {
            key: self.key.clone(),
            graph,
        }
    }
}

impl<T: Element> Array<T> {
    /// Prepares writing every block to `dir` as `block_<i>_<j>..npy`, plus an
    /// `info` file with the dtype and chunks; nothing is written until the
    /// returned [`NpyStore`] is computed. The directory is created now (an
    /// error here is [`Error::Io`]); a failing write fails its task.
    ///
    /// ```
    /// use dask_array::{arange, store::from_npy_dir, Collection};
    /// # use dask_sync_scheduler::SyncScheduler;
    /// let dir = std::env::temp_dir().join(format!("dask-array-doc-{}", std::process::id()));
    /// let x = arange(0.0, 10.0, 1.0, 4).unwrap();
    /// let bytes = x.to_npy_dir(&dir).unwrap().compute_with(&SyncScheduler::new()).unwrap();
    /// assert!(bytes > 80);
    /// let y = from_npy_dir::<f64>(&dir).unwrap();
    /// assert_eq!(y.chunks(), x.chunks());
    /// assert_eq!(y.compute_with(&SyncScheduler::new()).unwrap(), x.compute_with(&SyncScheduler::new()).unwrap());
    /// std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn to_npy_dir(&self, dir: impl AsRef<Path>) -> Result<NpyStore> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            action: "creating directory",
            path: dir.clone(),
            source,
        })?;
        let m = self.meta();
        let dir_text = dir.to_string_lossy().into_owned();
        let token = tokenize(&(&*m.name, &dir_text));
        let write_name: Arc<str> = format!("to_npy-block-{token}").into();
        let write = op(WriteNpy::<T>(PhantomData));
        let mut graph = Graph::new();
        let mut keys = Vec::new();
        for idx in m.chunks.block_indices() {
            let key = crate::array::block_key(write_name.clone(), &idx);
            graph.insert(
                key.clone(),
                Task::new(
                    write.clone(),
                    vec![Arg::Key(m.key(&idx)), Arg::value(block_file(&dir, &idx))],
                ),
            );
            keys.push(Arg::Key(key));
        }
        let writes = HighLevelGraph::from_layer(write_name, graph, &[&m.graph]);
        let info = info_text(T::DTYPE, &m.chunks);
        let info_path = dir.join("info");
        let finish = op(FinishNpy { info, info_path });
        let key = Key::named(format!("to_npy-{token}"));
        let mut g = Graph::new();
        g.insert(key.clone(), Task::new(finish, vec![Arg::List(keys)]));
        let graph = HighLevelGraph::from_layer(key.shared_name(), g, &[&writes]);
        Ok(NpyStore { key, graph })
    }
}

/// The op writing one block to the path it gets; its value is the bytes written.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct WriteNpy<T>(#[serde(skip)] PhantomData<T>);

impl<T: Element> Op for WriteNpy<T> {
    fn name(&self) -> &str {
        "dask_array::to_npy-block"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let block = crate::array::chunk_arg::<T>(args, 0)?;
        let path = value_arg::<PathBuf>(args, 1)?;
        let bytes = encode_npy(block);
        std::fs::write(path, &bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(Value::new(bytes.len() as u64))
    }
}

/// The last op of a store: writes the `info` file once every block is written.
#[derive(Serialize, Deserialize)]
struct FinishNpy {
    info: String,
    info_path: PathBuf,
}

impl Op for FinishNpy {
    fn name(&self) -> &str {
        "dask_array::to_npy"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let sizes = value_arg::<Vec<Value>>(args, 0)?;
        let mut total = 0u64;
        for s in sizes {
            total += *s.downcast_ref::<u64>()?;
        }
        std::fs::write(&self.info_path, &self.info)
            .map_err(|e| format!("writing {}: {e}", self.info_path.display()))?;
        Ok(Value::new(total + self.info.len() as u64))
    }
}

/// The op reading one block file, checked against the shape it gets.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct ReadNpy<T>(#[serde(skip)] PhantomData<T>);

impl<T: Element> Op for ReadNpy<T> {
    fn name(&self) -> &str {
        "dask_array::from_npy"
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let path = value_arg::<PathBuf>(args, 0)?;
        let shape = value_arg::<Vec<usize>>(args, 1)?;
        let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let a = decode_npy::<T>(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        if a.shape() != shape.as_slice() {
            return Err(format!(
                "{}: block has shape {}, the info file says {}",
                path.display(),
                fmt_shape(a.shape()),
                fmt_shape(shape)
            )
            .into());
        }
        Ok(Value::new(a))
    }
}

register_each!(WriteNpy: f64, f32, i64, i32, bool);
register_each!(ReadNpy: f64, f32, i64, i32, bool);
dask_core::register_op_type!(FinishNpy);

/// A lazy array reading the blocks [`Array::to_npy_dir`] wrote. The `info`
/// file is read now (errors: [`Error::Io`], or [`Error::BadFile`] for a
/// malformed file or another dtype than `T`); each block is read by its own
/// task, which fails if the file's shape differs from the recorded chunks.
pub fn from_npy_dir<T: Element>(dir: impl AsRef<Path>) -> Result<Array<T>> {
    let dir = dir.as_ref().to_path_buf();
    let info_path = dir.join("info");
    let info = std::fs::read_to_string(&info_path).map_err(|source| Error::Io {
        action: "reading",
        path: info_path.clone(),
        source,
    })?;
    let bad = |message: String| Error::BadFile {
        path: info_path.clone(),
        message,
    };
    let mut lines = info.lines();
    if lines.next() != Some("dask-array npy directory v1") {
        return Err(bad("not a dask-array npy directory (first line)".into()));
    }
    let dtype = lines
        .next()
        .and_then(|l| l.strip_prefix("dtype "))
        .ok_or_else(|| bad("no dtype line".into()))?;
    if dtype != T::DTYPE {
        return Err(bad(format!(
            "the directory holds {dtype}, but {} was asked for: read it as {dtype}",
            T::DTYPE
        )));
    }
    let chunks_line = lines
        .next()
        .and_then(|l| l.strip_prefix("chunks"))
        .ok_or_else(|| bad("no chunks line".into()))?;
    let axes: Vec<Vec<usize>> = chunks_line
        .split_whitespace()
        .map(|axis| {
            axis.split(',')
                .map(|n| n.parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("bad chunks: {e}")))?;
    let shape: Vec<usize> = axes.iter().map(|a| a.iter().sum()).collect();
    let chunks = Chunks::new(&shape, axes).map_err(|e| bad(e.to_string()))?;
    let name = format!(
        "from_npy-{}",
        tokenize(&(dir.to_string_lossy().as_ref(), &info))
    );
    let read = op(ReadNpy::<T>(PhantomData));
    let c = chunks.clone();
    Ok(new_layer::<T>(name, chunks, &[], false, |idx| {
        Task::new(
            read.clone(),
            vec![
                Arg::value(block_file(&dir, idx)),
                Arg::value(c.block_shape(idx)),
            ],
        )
    }))
}
