//! Text files: [`read_text`] and [`Bag::to_textfiles`].

use std::fmt::Display;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dask_core::{Arg, BoxError, Delayed, Graph, HighLevelGraph, Key, Op, Task, Value};
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::bag::{new_name, Bag};
use crate::portable::{Portable, PortableSource};
use crate::stage::{split_part, DynStage, Stage, Stream};
use crate::wire::TextInput;
use crate::words::TextSource;
use crate::{Error, Result};

/// One partition of a text file: a byte range (lines *starting* in
/// `start..end`), or the whole file.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Block {
    path: PathBuf,
    start: u64,
    end: Option<u64>,
    gz: bool,
}

fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// The files a path or glob pattern names, sorted.
fn expand(pattern: &str) -> Result<Vec<PathBuf>> {
    let has_glob = pattern.contains(['*', '?', '[']);
    if !has_glob {
        let path = PathBuf::from(pattern);
        if std::fs::metadata(&path).map_err(io(&path))?.is_dir() {
            return Err(Error::invalid(
                "pattern",
                format!("`{pattern}` is a directory: pass a file, or a glob such as `{pattern}/*`"),
            ));
        }
        return Ok(vec![path]);
    }
    let paths = glob::glob(pattern).map_err(|source| Error::Pattern {
        pattern: pattern.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in paths {
        match entry {
            Ok(p) if p.is_file() => out.push(p),
            Ok(_) => {}
            Err(e) => {
                let path = e.path().to_owned();
                return Err(Error::Io {
                    path,
                    source: e.into(),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(Error::NoFiles {
            pattern: pattern.to_owned(),
        });
    }
    out.sort();
    Ok(out)
}

/// A bag of the lines of the text files `pattern` names: a path, or a glob
/// pattern (`logs/*.txt`, matched files in sorted order).
///
/// Lines come without their trailing `\n` (or `\r\n`). Files whose name ends
/// in `.gz` are decompressed transparently.
///
/// Partitioning: without `blocksize`, one partition per file. With
/// `Some(bytes)`, each uncompressed file is cut into byte ranges of about
/// `bytes`: a partition reads the lines that *start* in its range, so every line
/// is read exactly once whatever the cut points. Gzip files cannot be split:
/// one partition per `.gz` file. An empty file gives one empty partition.
///
/// Files are listed (and their sizes read) now; they are read when the bag
/// is computed. A line that is not valid UTF-8 fails its partition's task with
/// [`Error::InvalidUtf8`] naming the file and the line's byte offset (no lossy
/// decoding).
///
/// Errors: [`Error::Io`] for a missing or unreadable file,
/// [`Error::NoFiles`] when a pattern matches nothing, [`Error::Pattern`] for a
/// malformed pattern, [`Error::InvalidArgument`] for `blocksize == Some(0)`.
pub fn read_text(pattern: impl AsRef<str>, blocksize: Option<usize>) -> Result<Bag<String>> {
    let pattern = pattern.as_ref();
    if blocksize == Some(0) {
        return Err(Error::invalid(
            "blocksize",
            "blocks of 0 bytes hold nothing: pass None (one partition per file) or a positive size",
        ));
    }
    let mut parts = Vec::new();
    for path in expand(pattern)? {
        let gz = is_gz(&path);
        match blocksize {
            Some(bs) if !gz => {
                let size = std::fs::metadata(&path).map_err(io(&path))?.len();
                let bs = bs as u64;
                let mut start = 0;
                loop {
                    let end = (start + bs).min(size);
                    parts.push(Block {
                        path: path.clone(),
                        start,
                        end: Some(end),
                        gz,
                    });
                    start = end;
                    if start >= size {
                        break;
                    }
                }
            }
            _ => parts.push(Block {
                path,
                start: 0,
                end: None,
                gz,
            }),
        }
    }
    let parts = parts.into_iter().map(|b| vec![Arg::value(b)]).collect();
    let stage: DynStage<String> = Arc::new(ReadText);
    Ok(Bag::pending(
        HighLevelGraph::new(),
        "read_text",
        parts,
        stage,
        Portable::from_source(PortableSource::ReadText),
    ))
}

pub(crate) struct ReadText;

impl Stage<String> for ReadText {
    fn open<'a>(&'a self, _part: usize, args: &'a [Value]) -> Result<Stream<'a, String>> {
        let [b] = args else {
            return Err(crate::stage::internal("a read_text partition takes one argument").into());
        };
        let block = b.downcast_ref::<Block>()?;
        let path = &block.path;
        let mut file = File::open(path).map_err(io(path))?;
        let (reader, pos): (Box<dyn BufRead>, u64) = if block.gz {
            let r = BufReader::with_capacity(1 << 16, MultiGzDecoder::new(file));
            (Box::new(r), 0)
        } else if block.start > 0 {
            // Skip the line that started in the previous block: it is that block's.
            file.seek(SeekFrom::Start(block.start - 1))
                .map_err(io(path))?;
            let mut r = BufReader::with_capacity(1 << 16, file);
            let skipped = r.skip_until(b'\n').map_err(io(path))? as u64;
            (Box::new(r), block.start - 1 + skipped)
        } else {
            (Box::new(BufReader::with_capacity(1 << 16, file)), 0)
        };
        Ok(Box::new(Lines {
            reader,
            path,
            pos,
            end: block.end,
            buf: Vec::new(),
            done: false,
        }))
    }

    fn as_text(&self) -> Option<&dyn TextSource> {
        Some(self)
    }
}

/// The fused word path reads a block in pieces of whole lines, borrowed from
/// one reused buffer: no `String` per line.
impl TextSource for ReadText {
    fn for_each_text(&self, _part: usize, args: &[Value], f: &mut dyn FnMut(&str)) -> Result<()> {
        let [b] = args else {
            return Err(crate::stage::internal("a read_text partition takes one argument").into());
        };
        read_block_text(b.downcast_ref::<Block>()?, f)
    }

    fn wire(&self) -> Option<TextInput> {
        Some(TextInput::ReadText)
    }
}

/// Bytes read at a time by [`read_block_text`].
const TEXT_PIECE: usize = 1 << 20;

/// Reads `block` (the lines starting in its range, as [`Lines`] does) and
/// hands its text to `f` in pieces that end at line ends. A piece is checked
/// as UTF-8 as a whole (a `\n` never occurs inside a multi-byte char, so it is
/// valid exactly when each of its lines is); the error names the first
/// invalid line as [`Lines`] would.
fn read_block_text(block: &Block, f: &mut dyn FnMut(&str)) -> Result<()> {
    let path = &*block.path;
    let mut file = File::open(path).map_err(io(path))?;
    let (mut reader, mut pos): (Box<dyn Read>, u64) = if block.gz {
        (Box::new(MultiGzDecoder::new(file)), 0)
    } else if block.start > 0 {
        file.seek(SeekFrom::Start(block.start - 1))
            .map_err(io(path))?;
        let mut r = BufReader::with_capacity(1 << 16, file);
        let skipped = r.skip_until(b'\n').map_err(io(path))? as u64;
        (Box::new(r), block.start - 1 + skipped)
    } else {
        (Box::new(file), 0)
    };
    if block.end.is_some_and(|end| pos >= end) {
        return Ok(());
    }
    // Our last line is the one holding byte `end - 1`: it ends at the first
    // `\n` at or after that byte.
    let last_byte = block.end.map(|end| end - 1);
    let mut buf: Vec<u8> = Vec::with_capacity(TEXT_PIECE * 2);
    loop {
        let old = buf.len();
        buf.resize(old + TEXT_PIECE, 0);
        let mut filled = old;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(path)(e)),
            }
        }
        let eof = filled < buf.len();
        buf.truncate(filled);
        let mut cut = None;
        if let Some(last) = last_byte {
            let from = last.saturating_sub(pos) as usize;
            if from < buf.len() {
                cut = Some(match buf[from..].iter().position(|&b| b == b'\n') {
                    Some(i) => from + i + 1,
                    None if eof => buf.len(),
                    None => {
                        // The last line goes on past this read.
                        continue;
                    }
                });
            }
        }
        let len = match cut {
            Some(c) => c,
            None if eof => buf.len(),
            None => buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1),
        };
        match std::str::from_utf8(&buf[..len]) {
            Ok(text) => f(text),
            Err(e) => {
                let good = e.valid_up_to();
                let line_start = buf[..good]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                // Whole lines before the bad one are visited, as [`Lines`] yields them.
                if let Ok(text) = std::str::from_utf8(&buf[..line_start]) {
                    f(text);
                }
                let line_end = buf[line_start..len]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(len, |i| line_start + i);
                let mut line = &buf[line_start..line_end];
                line = line.strip_suffix(b"\r").unwrap_or(line);
                let source = std::str::from_utf8(line).err().unwrap_or(e);
                return Err(Error::InvalidUtf8 {
                    path: path.to_owned(),
                    offset: pos + line_start as u64,
                    source,
                });
            }
        }
        if cut.is_some() || eof {
            return Ok(());
        }
        buf.drain(..len);
        pos += len as u64;
    }
}

struct Lines<'a> {
    reader: Box<dyn BufRead>,
    path: &'a Path,
    pos: u64,
    end: Option<u64>,
    buf: Vec<u8>,
    done: bool,
}

impl Iterator for Lines<'_> {
    type Item = Result<String>;
    fn next(&mut self) -> Option<Result<String>> {
        if self.done || self.end.is_some_and(|end| self.pos >= end) {
            return None;
        }
        self.buf.clear();
        let start = self.pos;
        let n = match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => {
                self.done = true;
                return None;
            }
            Ok(n) => n,
            Err(e) => {
                self.done = true;
                return Some(Err(io(self.path)(e)));
            }
        };
        self.pos += n as u64;
        let mut line = &self.buf[..];
        if let Some(l) = line.strip_suffix(b"\n") {
            line = l.strip_suffix(b"\r").unwrap_or(l);
        }
        match std::str::from_utf8(line) {
            Ok(s) => Some(Ok(s.to_owned())),
            Err(source) => {
                self.done = true;
                Some(Err(Error::InvalidUtf8 {
                    path: self.path.to_owned(),
                    offset: start,
                    source,
                }))
            }
        }
    }
}

/// Writes one partition's items, one per line.
struct WriteOp<T> {
    name: String,
    stage: DynStage<T>,
    paths: Arc<Vec<PathBuf>>,
}

impl<T: Display + Send + Sync + 'static> Op for WriteOp<T> {
    fn name(&self) -> &str {
        &self.name
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let (part, args) = split_part(args)?;
        let path = self
            .paths
            .get(part)
            .ok_or_else(|| crate::stage::internal("to_textfiles: no path for partition"))?;
        write_part(&*self.stage, part, args, path)?;
        Ok(Value::new(path.clone()))
    }
}

fn write_part<T: Display + 'static>(
    stage: &dyn Stage<T>,
    part: usize,
    args: &[Value],
    path: &Path,
) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let file = File::create(path).map_err(io(path))?;
    let mut out: Box<dyn Write> = if is_gz(path) {
        Box::new(GzEncoder::new(
            BufWriter::new(file),
            flate2::Compression::default(),
        ))
    } else {
        Box::new(BufWriter::new(file))
    };
    for item in stage.open(part, args)? {
        writeln!(out, "{}", item?).map_err(io(path))?;
    }
    out.flush().map_err(io(path))?;
    drop(out);
    Ok(())
}

impl<T: Display + Clone + Send + Sync + 'static> Bag<T> {
    /// Writes each partition to a text file, one item per line (its `Display`),
    /// and gives the paths written, in partition order. Lazy: compute the
    /// returned value to write.
    ///
    /// `pattern` must contain exactly one `*`, replaced by the partition's index
    /// zero-padded to the width of the largest index (`out/part-*.txt` gives
    /// `out/part-07.txt` ... for 12 partitions), so the files sort in partition
    /// order and [`read_text`] reads them back in order. Missing directories are
    /// created; a name ending in `.gz` is gzip-compressed. Items containing
    /// newlines do not round-trip.
    ///
    /// Errors: [`Error::InvalidArgument`] if `pattern` has no `*` or several.
    /// Computing fails its partition's task with [`Error::Io`] naming the file.
    pub fn to_textfiles(&self, pattern: impl AsRef<str>) -> Result<Delayed<Vec<PathBuf>>> {
        let pattern = pattern.as_ref();
        if pattern.matches('*').count() != 1 {
            return Err(Error::invalid(
                "pattern",
                format!("`{pattern}` must contain exactly one `*` (replaced by the partition index), e.g. `out/part-*.txt`"),
            ));
        }
        let width = (self.npartitions - 1).to_string().len();
        let paths: Arc<Vec<PathBuf>> = Arc::new(
            (0..self.npartitions)
                .map(|i| PathBuf::from(pattern.replace('*', &format!("{i:0width$}"))))
                .collect(),
        );
        let src = self.source();
        let name = new_name("to_textfiles");
        let part_name: Arc<str> = format!("{name}-part").into();
        let op: Arc<dyn Op> = Arc::new(WriteOp {
            name: src.op_name("to_textfiles"),
            stage: src.stage.clone(),
            paths,
        });
        let mut graph = Graph::with_capacity(self.npartitions + 1);
        let mut keys = Vec::with_capacity(self.npartitions);
        for i in 0..self.npartitions {
            let k = Key::new(part_name.clone(), [i as u64]);
            graph.insert(k.clone(), src.task(op.clone(), i));
            keys.push(Arg::Key(k));
        }
        let gather = dask_core::op::try_fn_op(|paths: Vec<Value>| {
            paths
                .iter()
                .map(|p| p.downcast_ref::<PathBuf>().cloned())
                .collect::<dask_core::Result<Vec<PathBuf>>>()
        });
        let out = Key::new(name.clone(), [0]);
        graph.insert(out.clone(), Task::new(gather, vec![Arg::List(keys)]));
        let hlg = HighLevelGraph::from_layer(name, graph, &[&src.graph]);
        Ok(Delayed::from_graph(out, hlg))
    }
}
