//! Reductions fused with the arithmetic they read: the chunk task of
//! `sum`/`prod`/`min`/`max` (and `mean` of `f64`) over `a op b` (two 2-D
//! blocks, either of them possibly transposed, as `(x + x.t()).sum()` reads
//! them) folds `a op b` straight from the two input blocks, without making
//! the transposed copy or the `a op b` block.
//!
//! [`fold_chunk`] recognizes the pattern when a reduction builds its chunk
//! tasks: the block argument is a nested [`ZipOp`] of [`ArithKernel`] (the
//! fused elementwise layer) whose arguments are blocks or nested 2-D
//! transposes of blocks. The replacement task's op, [`FusedFold`], is a
//! registered struct, so it runs on worker processes as well.
//!
//! The kernel walks the block in tiles of [`TILE`] x [`TILE`]. A transposed
//! operand's tile is first copied row by row into a buffer that stays in the
//! L2 cache (long sequential reads, which the prefetcher follows), then read
//! in 8 x 8 squares held in registers, while the other operand streams by
//! rows. The fold keeps 8 lanes (or one accumulator per output element), so
//! the loop vectorizes. Sums are therefore added in a different order than
//! the unfused fold: results agree to rounding, not bit for bit. Blocks of
//! other shapes (broadcasting, non-standard layout) take the unfused path
//! inside the same op.

use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::sync::Arc;

use dask_core::{Arg, BoxError, Op, Task, Value};
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::array::chunk_arg;
use crate::element::Number;
use crate::kernels::{zip_views, Arith, ArithKernel, ZipOp};
use crate::reduction::{
    fold, keep_shape, max_nan, min_nan, reduced_count, Axes, Fold, FoldFn, MeanPart, TreeKind,
};

/// The side of the square tiles a transposed operand is read in: a tile of
/// `f64` (512 KiB) stays in L2, and its rows are 2 KiB sequential reads.
pub(crate) const TILE: usize = 256;

/// The chunk task of a fold over `block`, doing the arithmetic of `block` as
/// well, when `block` is a nested arithmetic task on two 2-D blocks (each one
/// possibly transposed) and the fold is over all axes or one; `None`
/// otherwise (the caller builds the plain chunk task).
pub(crate) fn fold_chunk<T: Number>(
    fold: &Fold<T>,
    ndim: usize,
    block: &Arg,
    name: &str,
) -> Option<Task> {
    fused_task(fold, ndim, block, name, false)
}

/// The chunk task of a `mean` over `block`, as [`fold_chunk`] builds it for
/// a sum, giving a [`MeanPart`]. Only for `f64`: other types' means sum in
/// `f64`, which a fold in `T` would not.
pub(crate) fn mean_chunk<T: Number>(
    axes: Axes,
    ndim: usize,
    block: &Arg,
    name: &str,
) -> Option<Task> {
    if TypeId::of::<T>() != TypeId::of::<f64>() {
        return None;
    }
    fused_task(&fold::<T>(FoldFn::Sum)(axes), ndim, block, name, true)
}

fn fused_task<T: Number>(
    fold: &Fold<T>,
    ndim: usize,
    block: &Arg,
    name: &str,
    mean: bool,
) -> Option<Task> {
    if ndim != 2 || matches!(fold.axes, Axes::Many(_)) {
        return None;
    }
    let Arg::Task(zip) = block else { return None };
    let op: &dyn Any = &*zip.op;
    let kernel = &op.downcast_ref::<ZipOp<ArithKernel<T>>>()?.0;
    let [a, b] = &zip.args[..] else { return None };
    let (a, ta) = leaf::<T>(a);
    let (b, tb) = leaf::<T>(b);
    let fused = FusedFold::<T> {
        fold: fold.clone(),
        arith: kernel.op,
        transposed: [ta, tb],
        mirror: false,
        mean,
        name: name.to_string(),
    };
    Some(Task::new(Arc::new(fused), vec![a.clone(), b.clone()]))
}

/// For a fold over all axes: where the fused chunk tasks at `(i, j)` and
/// `(j, i)` (`i < j`) are `a op b.T` and `b op a.T` of the same two keys, the
/// first folds both and the second becomes the fold's identity (a literal).
/// The fold is associative and commutative, so the result is the same up to
/// rounding; each block is then read once.
pub(crate) fn pair_mirrors<T: Number>(fold: &Fold<T>, tasks: &mut [(Vec<usize>, Task)]) {
    if matches!(fold.axes, Axes::All) {
        let identity = ArrayD::from_elem(IxDyn(&[1, 1]), identity::<T>(fold.f));
        pair_with::<T>(tasks, || Value::new(identity.clone()));
    }
}

/// [`pair_mirrors`] for the fused chunk tasks of a `mean` over all axes:
/// the partner's partial is an empty sum.
pub(crate) fn pair_mean_mirrors<T: Number>(axes: Axes, tasks: &mut [(Vec<usize>, Task)]) {
    if matches!(axes, Axes::All) {
        let empty = || Value::new(MeanPart::new(ArrayD::zeros(IxDyn(&[1, 1])), 0.0));
        pair_with::<T>(tasks, empty);
    }
}

/// Pairs the mirrored fused chunk tasks of a 2-D reduction over all axes;
/// each second one becomes the literal `identity()`.
fn pair_with<T: Number>(tasks: &mut [(Vec<usize>, Task)], identity: impl Fn() -> Value) {
    let at: std::collections::HashMap<Vec<usize>, usize> = tasks
        .iter()
        .enumerate()
        .map(|(k, (idx, _))| (idx.clone(), k))
        .collect();
    for k in 0..tasks.len() {
        let [i, j] = tasks[k].0[..] else { return };
        let Some(&m) = at.get(&vec![j, i]).filter(|_| i < j) else {
            continue;
        };
        let Some(pair) = mirrored::<T>(&tasks[k].1, &tasks[m].1) else {
            continue;
        };
        let args = tasks[k].1.args.clone();
        tasks[k].1 = Task::new(Arc::new(pair), args);
        tasks[m].1 = Task::data(identity());
    }
}

/// The op folding both tasks, if `a` is `x op y.T` and `b` is `y op x.T` of
/// two distinct keys `x`, `y`, with the same op and fold.
fn mirrored<T: Number>(a: &Task, b: &Task) -> Option<FusedFold<T>> {
    let (fa, fb) = (as_fused::<T>(a)?, as_fused::<T>(b)?);
    let one_way = |f: &FusedFold<T>| f.transposed == [false, true] && !f.mirror;
    let same = fa.arith == fb.arith && fa.fold.f == fb.fold.f && fa.mean == fb.mean;
    let swapped = match (&a.args[..], &b.args[..]) {
        ([Arg::Key(a0), Arg::Key(a1)], [Arg::Key(b0), Arg::Key(b1)]) => {
            a0 == b1 && a1 == b0 && a0 != a1
        }
        _ => false,
    };
    (one_way(fa) && one_way(fb) && same && swapped).then(|| FusedFold {
        fold: fa.fold.clone(),
        arith: fa.arith,
        transposed: fa.transposed,
        mirror: true,
        mean: fa.mean,
        name: fa.name.clone(),
    })
}

/// The op of `task` if it is a [`FusedFold`].
fn as_fused<T: Number>(task: &Task) -> Option<&FusedFold<T>> {
    let op: &dyn Any = &*task.op;
    op.downcast_ref::<FusedFold<T>>()
}

/// The identity of a fold: what an empty block folds to.
fn identity<T: Number>(f: FoldFn) -> T {
    match f {
        FoldFn::Sum => T::ZERO,
        FoldFn::Prod => T::ONE,
        FoldFn::Min => T::HIGHEST,
        FoldFn::Max => T::LOWEST,
    }
}

/// An operand of the arithmetic: the block under a 2-D transpose, or the
/// argument itself.
fn leaf<T: Number>(arg: &Arg) -> (&Arg, bool) {
    match arg {
        Arg::Task(t) => match crate::slicing::transpose_2d_input::<T>(t) {
            Some(inner) => (inner, true),
            None => (arg, false),
        },
        _ => (arg, false),
    }
}

/// The op of a fused chunk task: `fold` over `a arith b`, where an operand
/// marked in `transposed` is read transposed; with `mirror` (`a` as is, `b`
/// transposed, a fold over all axes) over `b arith a.T` as well; with
/// `mean` (a sum) giving a `mean`'s partial.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct FusedFold<T: Number> {
    fold: Fold<T>,
    arith: Arith,
    transposed: [bool; 2],
    mirror: bool,
    mean: bool,
    name: String,
}

impl<T: Number> Op for FusedFold<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let (a, b) = (chunk_arg::<T>(args, 0)?, chunk_arg::<T>(args, 1)?);
        let [ta, tb] = self.transposed;
        let logical = |x: &ArrayD<T>, t: bool| -> Vec<usize> {
            let mut s = x.shape().to_vec();
            if t {
                s.reverse();
            }
            s
        };
        let shape = logical(a, ta);
        let fast = match (a.as_slice(), b.as_slice()) {
            (Some(sa), Some(sb)) if shape.len() == 2 && shape == logical(b, tb) => Some((sa, sb)),
            _ => None,
        };
        let Some((sa, sb)) = fast else {
            let out = self.unfused(a, b, self.transposed)?;
            if !self.mirror {
                return Ok(self.output(out, &shape));
            }
            let other = self.unfused(b, a, self.transposed)?;
            return Ok(self.output(self.fold.combine(vec![out, other])?, &shape));
        };
        let (rows, cols) = (shape[0], shape[1]);
        let axes = self.fold.axes;
        // Both transposed: fold `a op b` in its own layout, over the other axis.
        let (mut grid, flip) = match (ta, tb) {
            (false, false) => (Grid::new(sa, sb, rows, cols, false, axes), false),
            (false, true) => (Grid::new(sa, sb, rows, cols, true, axes), false),
            (true, false) => (Grid::new(sb, sa, rows, cols, true, axes), true),
            (true, true) => (Grid::new(sa, sb, cols, rows, false, swap(axes)), false),
        };
        grid.mirror = self.mirror && grid.b_transposed && matches!(axes, Axes::All);
        let values = fold_grid(&grid, self.arith, flip, self.fold.f);
        let out = ArrayD::from_shape_vec(IxDyn(&keep_shape(&shape, axes)), values)?;
        Ok(self.output(out, &shape))
    }
}

impl<T: Number> FusedFold<T> {
    /// The task's value: the fold of the `shape` block (twice that many
    /// elements when mirrored), as a `mean`'s partial if this is one.
    fn output(&self, folded: ArrayD<T>, shape: &[usize]) -> Value {
        if !self.mean {
            return Value::new(folded);
        }
        let blocks = if self.mirror { 2.0 } else { 1.0 };
        let count = blocks * reduced_count(shape, self.fold.axes);
        Value::new(MeanPart::new(folded.mapv(|x| x.to_f64()), count))
    }

    /// The unfused computation: the arithmetic block (operands transposed
    /// as `transposed` says), then the fold.
    fn unfused(
        &self,
        a: &ArrayD<T>,
        b: &ArrayD<T>,
        transposed: [bool; 2],
    ) -> Result<ArrayD<T>, BoxError> {
        let kernel = ArithKernel::<T> {
            op: self.arith,
            _t: PhantomData,
        };
        let block = zip_views(&kernel, view(a, transposed[0]), view(b, transposed[1]))?;
        self.fold.chunk(&block, &vec![0; block.ndim()])
    }
}

register_each!(FusedFold: f64, f32, i64, i32);

/// `x`, or its transpose, as a view.
fn view<T>(x: &ArrayD<T>, transposed: bool) -> ArrayViewD<'_, T> {
    if transposed {
        x.t()
    } else {
        x.view()
    }
}

/// One axis reduced in a transposed frame is the other axis.
fn swap(axes: Axes) -> Axes {
    match axes {
        Axes::One(k) => Axes::One(1 - k),
        other => other,
    }
}

/// Two operands of a `rows x cols` result in C order: `a` as is, `b` as is
/// or, with `b_transposed`, a `cols x rows` block read transposed. With
/// `mirror` (`b_transposed`, all axes) the fold also takes `b op a.T`.
struct Grid<'a, T> {
    a: &'a [T],
    b: &'a [T],
    rows: usize,
    cols: usize,
    b_transposed: bool,
    mirror: bool,
    axes: Axes,
    tile: usize,
}

impl<'a, T> Grid<'a, T> {
    fn new(a: &'a [T], b: &'a [T], rows: usize, cols: usize, bt: bool, axes: Axes) -> Self {
        Grid {
            a,
            b,
            rows,
            cols,
            b_transposed: bt,
            mirror: false,
            axes,
            tile: TILE,
        }
    }
}

/// `fold` over `a arith b` (`b arith a` with `flip`), chosen once here so
/// each loop is specialized.
fn fold_grid<T: Number>(g: &Grid<'_, T>, arith: Arith, flip: bool, fold: FoldFn) -> Vec<T> {
    fn with_fold<T: Number>(g: &Grid<'_, T>, op: impl Fn(T, T) -> T + Copy, f: FoldFn) -> Vec<T> {
        match f {
            FoldFn::Sum => fold_zip(g, op, T::ZERO, |s, x| s + x),
            FoldFn::Prod => fold_zip(g, op, T::ONE, |s, x| s * x),
            FoldFn::Min => fold_zip(g, op, T::HIGHEST, min_nan),
            FoldFn::Max => fold_zip(g, op, T::LOWEST, max_nan),
        }
    }
    match (arith, flip) {
        (Arith::Add, _) => with_fold(g, |p, q| p + q, fold),
        (Arith::Mul, _) => with_fold(g, |p, q| p * q, fold),
        (Arith::Sub, false) => with_fold(g, |p, q| p - q, fold),
        (Arith::Sub, true) => with_fold(g, |p, q| q - p, fold),
        (Arith::Div, false) => with_fold(g, |p, q| p / q, fold),
        (Arith::Div, true) => with_fold(g, |p, q| q / p, fold),
    }
}

/// The running fold: 8 lanes over everything, or one value per column
/// (`Axes::One(0)`) or per row (`Axes::One(1)`).
struct Acc<T, F> {
    axes: Axes,
    lanes: [T; 8],
    per: Vec<T>,
    init: T,
    fold: F,
}

impl<T: Number, F: Fn(T, T) -> T> Acc<T, F> {
    fn new(g: &Grid<'_, T>, init: T, fold: F) -> Self {
        let per = match g.axes {
            Axes::One(0) => vec![init; g.cols],
            Axes::One(_) => vec![init; g.rows],
            _ => Vec::new(),
        };
        Acc {
            axes: g.axes,
            lanes: [init; 8],
            per,
            init,
            fold,
        }
    }

    /// Folds in the values of row `r`, columns `c..c + v.len()`.
    #[inline(always)]
    fn add(&mut self, r: usize, c: usize, v: &[T]) {
        let f = &self.fold;
        match self.axes {
            Axes::One(0) => {
                let per = &mut self.per[c..c + v.len()];
                for (s, &x) in per.iter_mut().zip(v) {
                    *s = f(*s, x);
                }
            }
            Axes::One(_) => {
                let mut s = self.per[r];
                for &x in v {
                    s = f(s, x);
                }
                self.per[r] = s;
            }
            _ => {
                for (s, &x) in self.lanes.iter_mut().zip(v) {
                    *s = f(*s, x);
                }
            }
        }
    }

    fn finish(self) -> Vec<T> {
        match self.axes {
            Axes::One(_) => self.per,
            _ => vec![self.lanes.into_iter().fold(self.init, &self.fold)],
        }
    }
}

/// `s[at..at + 8]` as an array.
#[inline(always)]
fn row8<T: Copy>(s: &[T], at: usize) -> [T; 8] {
    let s = &s[at..at + 8];
    std::array::from_fn(|j| s[j])
}

fn fold_zip<T: Number>(
    g: &Grid<'_, T>,
    op: impl Fn(T, T) -> T + Copy,
    init: T,
    fold: impl Fn(T, T) -> T,
) -> Vec<T> {
    let mut acc = Acc::new(g, init, fold);
    if g.b_transposed {
        fold_transposed(g, op, &mut acc);
    } else {
        fold_rows(g, op, &mut acc);
    }
    acc.finish()
}

/// Both operands in C order: row by row, 8 columns at a time.
fn fold_rows<T: Number, F: Fn(T, T) -> T>(
    g: &Grid<'_, T>,
    op: impl Fn(T, T) -> T,
    acc: &mut Acc<T, F>,
) {
    let cols = g.cols;
    for r in 0..g.rows {
        let (ra, rb) = (&g.a[r * cols..][..cols], &g.b[r * cols..][..cols]);
        let mut c = 0;
        while c + 8 <= cols {
            let (x, y) = (row8(ra, c), row8(rb, c));
            acc.add(r, c, &std::array::from_fn::<T, 8, _>(|j| op(x[j], y[j])));
            c += 8;
        }
        let mut tail = [T::ZERO; 8];
        for (k, out) in (c..cols).zip(&mut tail) {
            *out = op(ra[k], rb[k]);
        }
        acc.add(r, c, &tail[..cols - c]);
    }
}

/// `b` transposed: tile by tile, the tile of `b` copied first (sequential
/// reads), then read in 8 x 8 squares while `a` streams by rows.
fn fold_transposed<T: Number, F: Fn(T, T) -> T>(
    g: &Grid<'_, T>,
    op: impl Fn(T, T) -> T,
    acc: &mut Acc<T, F>,
) {
    let (rows, cols, t) = (g.rows, g.cols, g.tile);
    let mut buf = vec![T::ZERO; t.min(rows) * t.min(cols)];
    for r0 in (0..rows).step_by(t) {
        let h = t.min(rows - r0);
        for c0 in (0..cols).step_by(t) {
            let w = t.min(cols - c0);
            // Row k of the buffer: row c0 + k of b, columns r0..r0 + h.
            for k in 0..w {
                let src = &g.b[(c0 + k) * rows + r0..][..h];
                buf[k * h..k * h + h].copy_from_slice(src);
            }
            let tb = &buf[..w * h];
            for i in (0..h).step_by(8) {
                let ih = 8.min(h - i);
                for k in (0..w).step_by(8) {
                    let kw = 8.min(w - k);
                    if ih == 8 && kw == 8 {
                        let m: [[T; 8]; 8] = std::array::from_fn(|q| row8(tb, (k + q) * h + i));
                        for (ii, r) in (r0 + i..r0 + i + 8).enumerate() {
                            let x = row8(g.a, r * cols + c0 + k);
                            let v: [T; 8] = std::array::from_fn(|j| op(x[j], m[j][ii]));
                            acc.add(r, c0 + k, &v);
                            if g.mirror {
                                let w: [T; 8] = std::array::from_fn(|j| op(m[j][ii], x[j]));
                                acc.add(r, c0 + k, &w);
                            }
                        }
                    } else {
                        for ii in 0..ih {
                            let r = r0 + i + ii;
                            let (mut v, mut w) = ([T::ZERO; 8], [T::ZERO; 8]);
                            for j in 0..kw {
                                let (p, q) = (g.a[r * cols + c0 + k + j], tb[(k + j) * h + i + ii]);
                                (v[j], w[j]) = (op(p, q), op(q, p));
                            }
                            acc.add(r, c0 + k, &v[..kw]);
                            if g.mirror {
                                acc.add(r, c0 + k, &w[..kw]);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path (plain, transposed, tile and 8 x 8 edges) against a naive
    /// loop, for each fold over every axis choice.
    #[test]
    fn kernel_matches_a_naive_fold() {
        for &(rows, cols, tile) in &[(0, 5, 8), (1, 1, 8), (9, 17, 8), (37, 29, 16), (64, 40, 24)] {
            let a: Vec<i64> = (0..rows * cols)
                .map(|k| (k as i64 * 7919) % 23 - 11)
                .collect();
            let b: Vec<i64> = (0..rows * cols)
                .map(|k| (k as i64 * 104_729) % 19 - 9)
                .collect();
            for bt in [false, true] {
                let bv = |r: usize, c: usize| if bt { b[c * rows + r] } else { b[r * cols + c] };
                for axes in [Axes::All, Axes::One(0), Axes::One(1)] {
                    let mut g = Grid::new(&a, &b, rows, cols, bt, axes);
                    g.tile = tile;
                    let got = fold_grid(&g, Arith::Sub, false, FoldFn::Sum);
                    let v = |r: usize, c: usize| a[r * cols + c] - bv(r, c);
                    let want: Vec<i64> = match axes {
                        Axes::One(0) => (0..cols)
                            .map(|c| (0..rows).map(|r| v(r, c)).sum())
                            .collect(),
                        Axes::One(_) => (0..rows)
                            .map(|r| (0..cols).map(|c| v(r, c)).sum())
                            .collect(),
                        _ => vec![(0..rows)
                            .flat_map(|r| (0..cols).map(move |c| (r, c)))
                            .map(|(r, c)| v(r, c))
                            .sum()],
                    };
                    assert_eq!(
                        got, want,
                        "{rows}x{cols} tile {tile} transposed {bt} {axes:?}"
                    );
                    let got = fold_grid(&g, Arith::Sub, true, FoldFn::Max);
                    let m = (0..rows)
                        .flat_map(|r| (0..cols).map(move |c| (r, c)))
                        .map(|(r, c)| bv(r, c) - a[r * cols + c])
                        .max();
                    if let (Axes::All, Some(m)) = (axes, m) {
                        assert_eq!(got, vec![m]);
                    }
                    if bt && matches!(axes, Axes::All) {
                        // Mirrored: `a - b.T` and `b.T - a` from one pass sum to 0.
                        g.mirror = true;
                        assert_eq!(fold_grid(&g, Arith::Sub, false, FoldFn::Sum), vec![0]);
                        let got = fold_grid(&g, Arith::Add, false, FoldFn::Sum);
                        let both: i64 = a.iter().chain(&b).map(|&x| 2 * x).sum();
                        assert_eq!(got, vec![both], "mirrored {rows}x{cols} tile {tile}");
                    }
                }
            }
        }
    }
}
