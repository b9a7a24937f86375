//! [`Chunks`]: how an array is cut into blocks, one list of block lengths per axis.

use std::fmt;

use dask_core::{tokenize::Tokenizer, Tokenize};

use crate::error::{Error, Result};

/// How the caller asks for chunks; normalized against a shape by [`Chunks::new`].
///
/// Built with `From`: a `usize` is one block length for every axis, a
/// `[usize; N]` / `Vec<usize>` / `&[usize]` one block length per axis, and a
/// `Vec<Vec<usize>>` the explicit block lengths of each axis (irregular chunks).
/// The last block along an axis may be shorter than the block length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkSpec {
    /// The same block length along every axis.
    Uniform(usize),
    /// One block length per axis.
    PerAxis(Vec<usize>),
    /// The block lengths of every axis.
    Explicit(Vec<Vec<usize>>),
}

impl From<usize> for ChunkSpec {
    fn from(n: usize) -> Self {
        ChunkSpec::Uniform(n)
    }
}

impl<const N: usize> From<[usize; N]> for ChunkSpec {
    fn from(v: [usize; N]) -> Self {
        ChunkSpec::PerAxis(v.to_vec())
    }
}

impl From<Vec<usize>> for ChunkSpec {
    fn from(v: Vec<usize>) -> Self {
        ChunkSpec::PerAxis(v)
    }
}

impl From<&[usize]> for ChunkSpec {
    fn from(v: &[usize]) -> Self {
        ChunkSpec::PerAxis(v.to_vec())
    }
}

impl From<Vec<Vec<usize>>> for ChunkSpec {
    fn from(v: Vec<Vec<usize>>) -> Self {
        ChunkSpec::Explicit(v)
    }
}

impl From<&Chunks> for ChunkSpec {
    fn from(c: &Chunks) -> Self {
        ChunkSpec::Explicit(c.axes.clone())
    }
}

impl From<Chunks> for ChunkSpec {
    fn from(c: Chunks) -> Self {
        ChunkSpec::Explicit(c.axes)
    }
}

/// The block lengths of every axis, like dask's `chunks` tuple of tuples.
///
/// Invariant: the lengths of axis `i` sum to the array's length there; each is
/// at least 1, except that an axis of length 0 has the single block length 0.
///
/// ```
/// use dask_array::Chunks;
/// let c = Chunks::new(&[5, 4], 2).unwrap();
/// assert_eq!(c.axes(), &[vec![2, 2, 1], vec![2, 2]]);
/// assert_eq!(c.numblocks(), vec![3, 2]);
/// assert!(Chunks::new(&[5], vec![vec![2, 2]]).is_err()); // sums to 4, not 5
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Chunks {
    axes: Vec<Vec<usize>>,
}

impl Chunks {
    /// Normalizes `spec` against `shape`, checking it.
    pub fn new(shape: &[usize], spec: impl Into<ChunkSpec>) -> Result<Chunks> {
        let per_axis: Vec<Vec<usize>> = match spec.into() {
            ChunkSpec::Uniform(n) => shape
                .iter()
                .enumerate()
                .map(|(axis, &dim)| regular(axis, dim, n))
                .collect::<Result<_>>()?,
            ChunkSpec::PerAxis(sizes) => {
                check_ndim(shape, sizes.len())?;
                shape
                    .iter()
                    .zip(&sizes)
                    .enumerate()
                    .map(|(axis, (&dim, &n))| regular(axis, dim, n))
                    .collect::<Result<_>>()?
            }
            ChunkSpec::Explicit(axes) => {
                check_ndim(shape, axes.len())?;
                for (axis, (&dim, sizes)) in shape.iter().zip(&axes).enumerate() {
                    explicit(axis, dim, sizes)?;
                }
                axes
            }
        };
        Ok(Chunks { axes: per_axis })
    }

    /// One block covering the whole array.
    pub fn single(shape: &[usize]) -> Chunks {
        Chunks {
            axes: shape.iter().map(|&d| vec![d]).collect(),
        }
    }

    pub(crate) fn from_axes_unchecked(axes: Vec<Vec<usize>>) -> Chunks {
        Chunks { axes }
    }

    /// The block lengths, one list per axis.
    pub fn axes(&self) -> &[Vec<usize>] {
        &self.axes
    }

    /// The block lengths along `axis`.
    pub fn axis(&self, axis: usize) -> &[usize] {
        &self.axes[axis]
    }

    /// The number of axes.
    pub fn ndim(&self) -> usize {
        self.axes.len()
    }

    /// The array's shape (the sums of the block lengths).
    pub fn shape(&self) -> Vec<usize> {
        self.axes.iter().map(|a| a.iter().sum()).collect()
    }

    /// The number of blocks along each axis.
    pub fn numblocks(&self) -> Vec<usize> {
        self.axes.iter().map(Vec::len).collect()
    }

    /// The total number of blocks.
    pub fn npartitions(&self) -> usize {
        self.axes.iter().map(Vec::len).product()
    }

    /// The largest block length along each axis (dask's `chunksize`).
    pub fn chunksize(&self) -> Vec<usize> {
        self.axes
            .iter()
            .map(|a| a.iter().copied().max().unwrap_or(0))
            .collect()
    }

    /// The start offset of each block along `axis`, plus the total at the end.
    pub fn offsets(&self, axis: usize) -> Vec<usize> {
        offsets(&self.axes[axis])
    }

    /// The shape of the block at `index`.
    pub fn block_shape(&self, index: &[usize]) -> Vec<usize> {
        index.iter().zip(&self.axes).map(|(&i, a)| a[i]).collect()
    }

    /// Every block index, in C (row-major) order.
    pub fn block_indices(&self) -> Vec<Vec<usize>> {
        grid_indices(&self.numblocks())
    }

    /// Whether along each axis every block has the same length except the
    /// last, which may be shorter (what a single chunk size produces).
    pub fn is_regular(&self) -> bool {
        self.axes.iter().all(|a| match a.split_last() {
            Some((last, rest)) => {
                rest.iter().all(|&n| n == a[0]) && (rest.is_empty() || *last <= a[0])
            }
            None => true,
        })
    }
}

impl Tokenize for Chunks {
    fn tokenize_into(&self, t: &mut Tokenizer) {
        t.add(&self.axes);
    }
}

impl fmt::Display for Chunks {
    /// Like dask: `((2, 2, 1), (4,))`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let axes: Vec<String> = self
            .axes
            .iter()
            .map(|a| crate::error::fmt_shape(a))
            .collect();
        match axes.len() {
            0 => write!(f, "()"),
            1 => write!(f, "({},)", axes[0]),
            _ => write!(f, "({})", axes.join(", ")),
        }
    }
}

pub(crate) fn offsets(sizes: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(sizes.len() + 1);
    let mut acc = 0;
    out.push(0);
    for &s in sizes {
        acc += s;
        out.push(acc);
    }
    out
}

/// Every index of a grid of the given extents, in C order.
pub(crate) fn grid_indices(extents: &[usize]) -> Vec<Vec<usize>> {
    let total: usize = extents.iter().product();
    let mut out = Vec::with_capacity(total);
    if total == 0 {
        return out;
    }
    let mut idx = vec![0; extents.len()];
    loop {
        out.push(idx.clone());
        let mut axis = extents.len();
        loop {
            if axis == 0 {
                return out;
            }
            axis -= 1;
            idx[axis] += 1;
            if idx[axis] < extents[axis] {
                break;
            }
            idx[axis] = 0;
        }
    }
}

fn check_ndim(shape: &[usize], found: usize) -> Result<()> {
    if shape.len() == found {
        Ok(())
    } else {
        Err(Error::ChunksNdim {
            expected: shape.len(),
            found,
            shape: shape.to_vec(),
        })
    }
}

fn regular(axis: usize, dim: usize, n: usize) -> Result<Vec<usize>> {
    if n == 0 {
        return Err(Error::ZeroChunkSize { axis, dim });
    }
    if dim == 0 {
        return Ok(vec![0]);
    }
    let mut out = vec![n; dim / n];
    if !dim.is_multiple_of(n) {
        out.push(dim % n);
    }
    Ok(out)
}

fn explicit(axis: usize, dim: usize, sizes: &[usize]) -> Result<()> {
    let sum: usize = sizes.iter().sum();
    if sum != dim || sizes.is_empty() {
        return Err(Error::ChunksDoNotSumToShape {
            axis,
            chunks: sizes.to_vec(),
            sum,
            dim,
        });
    }
    if dim > 0 && sizes.contains(&0) {
        return Err(Error::ZeroChunkSize { axis, dim });
    }
    if dim == 0 && sizes.len() != 1 {
        return Err(Error::ChunksDoNotSumToShape {
            axis,
            chunks: sizes.to_vec(),
            sum,
            dim,
        });
    }
    Ok(())
}

/// The common refinement of two chunkings of the same length: every boundary of
/// either one is a boundary of the result.
pub(crate) fn refine(a: &[usize], b: &[usize]) -> Vec<usize> {
    let (oa, ob) = (offsets(a), offsets(b));
    let mut bounds: Vec<usize> = oa.into_iter().chain(ob).collect();
    bounds.sort_unstable();
    bounds.dedup();
    if bounds.len() < 2 {
        return vec![0];
    }
    bounds.windows(2).map(|w| w[1] - w[0]).collect()
}
