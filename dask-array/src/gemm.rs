//! Matrix products of `f64` blocks: `c += a · b`.
//!
//! ndarray's `general_mat_mul` (matrixmultiply) tops out at AVX2. Where the
//! CPU has AVX-512F this module runs its own packed kernel instead, in the
//! GotoBLAS/BLIS shape:
//!
//! - the `k` axis is cut into slices of [`KC`]; for each, `a`'s rows are
//!   packed into panels of [`MR`] rows (`p`-major, [`MR`] values per step);
//! - `b`'s columns into panels of [`NR`] columns, [`NC`] columns at a time
//!   (about 1 MiB: the packed block stays in L2);
//! - the micro-kernel keeps an [`MR`] x [`NR`] tile of `c` in 24 AVX-512
//!   registers and does 24 fused multiply-adds per step of `k`; one `a`
//!   panel (32 KiB) stays in L1 while the `b` panels stream past it from L2.
//!
//! Packing reads each operand in its own memory order, so transposed views
//! (the `x.T` of `x.dot(x.T)`) cost nothing extra. Results agree with
//! `general_mat_mul` to rounding (the summation order differs).

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

/// Rows of `a` per packed panel (and of the register tile).
const MR: usize = 8;
/// Columns of `b` per packed panel: three 8-lane vectors.
const NR: usize = 24;
/// Length of the `k` slice packed at a time.
const KC: usize = 512;
/// Columns of `b` packed at a time (a multiple of [`NR`]).
const NC: usize = 240;

/// `c += a · b`. Shapes must agree (`a`: m x k, `b`: k x n, `c`: m x n);
/// any strides are accepted.
///
/// With `upper_only`, the product may leave out entries below the diagonal
/// (the packed kernel skips tiles that lie wholly below it): for a caller that
/// knows the result is symmetric and mirrors the upper triangle afterwards.
pub(crate) fn add_product(
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    mut c: ArrayViewMut2<'_, f64>,
    upper_only: bool,
) {
    debug_assert_eq!(a.ncols(), b.nrows());
    debug_assert_eq!((a.nrows(), b.ncols()), c.dim());
    #[cfg(target_arch = "x86_64")]
    if x86::usable(&a, &b, &c) {
        x86::add_product(a, b, c, upper_only);
        return;
    }
    general_mat_mul(1.0, &a, &b, 1.0, &mut c);
}

/// Packs `a` (m x kc) into panels of [`MR`] rows: element `(i, p)` goes to
/// `out[(i / MR * kc + p) * MR + i % MR]`; rows past `m` are zero.
fn pack_a(a: &ArrayView2<'_, f64>, out: &mut Vec<f64>) {
    let (m, kc) = a.dim();
    out.clear();
    out.resize(m.div_ceil(MR) * MR * kc, 0.0);
    if a.strides()[1].unsigned_abs() <= a.strides()[0].unsigned_abs() {
        for (i, row) in a.rows().into_iter().enumerate() {
            let base = i / MR * kc * MR + i % MR;
            for (p, &x) in row.iter().enumerate() {
                out[base + p * MR] = x;
            }
        }
    } else {
        for (p, col) in a.columns().into_iter().enumerate() {
            for (i, &x) in col.iter().enumerate() {
                out[(i / MR * kc + p) * MR + i % MR] = x;
            }
        }
    }
}

/// Packs `b` (kc x nc) into panels of [`NR`] columns: element `(p, j)` goes
/// to `out[(j / NR * kc + p) * NR + j % NR]`; columns past `nc` are zero.
fn pack_b(b: &ArrayView2<'_, f64>, out: &mut Vec<f64>) {
    let (kc, nc) = b.dim();
    out.clear();
    out.resize(nc.div_ceil(NR) * NR * kc, 0.0);
    if b.strides()[1].unsigned_abs() <= b.strides()[0].unsigned_abs() {
        for (p, row) in b.rows().into_iter().enumerate() {
            for (j, &x) in row.iter().enumerate() {
                out[(j / NR * kc + p) * NR + j % NR] = x;
            }
        }
    } else {
        for (j, col) in b.columns().into_iter().enumerate() {
            let base = j / NR * kc * NR + j % NR;
            for (p, &x) in col.iter().enumerate() {
                out[base + p * NR] = x;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::*;
    use std::cell::RefCell;
    use std::sync::OnceLock;

    use ndarray::{s, ArrayView2, ArrayViewMut2};

    use super::{pack_a, pack_b, KC, MR, NC, NR};

    thread_local! {
        /// Packing buffers, reused by every product on this thread.
        static PACKS: RefCell<(Vec<f64>, Vec<f64>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    }

    /// Whether the packed kernel applies: AVX-512F, a row-major `c` (unit
    /// column stride) and a product big enough to repay the packing.
    pub(super) fn usable(
        a: &ArrayView2<'_, f64>,
        b: &ArrayView2<'_, f64>,
        c: &ArrayViewMut2<'_, f64>,
    ) -> bool {
        static AVX512: OnceLock<bool> = OnceLock::new();
        let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
        m >= MR
            && n >= NR
            && k >= 16
            && c.strides()[1] == 1
            && c.strides()[0] >= n as isize
            && *AVX512.get_or_init(|| is_x86_feature_detected!("avx512f"))
    }

    /// `c += a · b` with the packed kernel; callers check [`usable`] first.
    pub(super) fn add_product(
        a: ArrayView2<'_, f64>,
        b: ArrayView2<'_, f64>,
        mut c: ArrayViewMut2<'_, f64>,
        upper_only: bool,
    ) {
        let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
        let ldc = c.strides()[0] as usize;
        let cp = c.as_mut_ptr();
        PACKS.with(|packs| {
            let (pa, pb) = &mut *packs.borrow_mut();
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                pack_a(&a.slice(s![.., pc..pc + kc]), pa);
                for jc in (0..n).step_by(NC) {
                    let nc = NC.min(n - jc);
                    pack_b(&b.slice(s![pc..pc + kc, jc..jc + nc]), pb);
                    for ir in 0..m.div_ceil(MR) {
                        let rows = MR.min(m - ir * MR);
                        for jr in 0..nc.div_ceil(NR) {
                            let cols = NR.min(nc - jr * NR);
                            if upper_only && ir * MR >= jc + jr * NR + cols {
                                continue; // wholly below the diagonal
                            }
                            // SAFETY: `usable` checked AVX-512F. The packed
                            // panels hold `kc * MR` and `kc * NR` values from
                            // these offsets (`pack_a`/`pack_b` pad them), and
                            // the `rows` x `cols` tile of `c` at this offset
                            // lies inside `c` (row stride `ldc`, unit columns).
                            unsafe {
                                kernel(
                                    kc,
                                    pa.as_ptr().add(ir * MR * kc),
                                    pb.as_ptr().add(jr * NR * kc),
                                    cp.add(ir * MR * ldc + jc + jr * NR),
                                    ldc,
                                    rows,
                                    cols,
                                );
                            }
                        }
                    }
                }
            }
        });
    }

    /// Adds the product of an `a` panel (`kc` steps of [`MR`] values) and a `b`
    /// panel (`kc` steps of [`NR`] values) to the `rows` x `cols` tile at `c`.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `a` and `b` are valid for `kc * MR` and
    /// `kc * NR` reads; `c` is valid for the tile (row stride `ldc`).
    #[target_feature(enable = "avx512f")]
    unsafe fn kernel(
        kc: usize,
        a: *const f64,
        b: *const f64,
        c: *mut f64,
        ldc: usize,
        rows: usize,
        cols: usize,
    ) {
        let mut acc = [[_mm512_setzero_pd(); 3]; MR];
        for p in 0..kc {
            let bp = b.add(p * NR);
            let b0 = _mm512_loadu_pd(bp);
            let b1 = _mm512_loadu_pd(bp.add(8));
            let b2 = _mm512_loadu_pd(bp.add(16));
            let ap = a.add(p * MR);
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_pd(*ap.add(i));
                row[0] = _mm512_fmadd_pd(ai, b0, row[0]);
                row[1] = _mm512_fmadd_pd(ai, b1, row[1]);
                row[2] = _mm512_fmadd_pd(ai, b2, row[2]);
            }
        }
        if rows == MR && cols == NR {
            for (i, row) in acc.iter().enumerate() {
                for (v, &x) in row.iter().enumerate() {
                    let q = c.add(i * ldc + v * 8);
                    _mm512_storeu_pd(q, _mm512_add_pd(_mm512_loadu_pd(q), x));
                }
            }
        } else {
            let mut tile = [0.0f64; MR * NR];
            for (i, row) in acc.iter().enumerate() {
                for (v, &x) in row.iter().enumerate() {
                    _mm512_storeu_pd(tile.as_mut_ptr().add(i * NR + v * 8), x);
                }
            }
            for i in 0..rows {
                for j in 0..cols {
                    *c.add(i * ldc + j) += tile[i * NR + j];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, ShapeBuilder};

    use super::*;

    /// Small integers: every product and sum is exact, so the packed kernel
    /// must equal ndarray's to the bit, whatever the order of summation.
    fn ints(m: usize, n: usize, seed: usize) -> Array2<f64> {
        Array2::from_shape_fn((m, n), |(i, j)| {
            ((i * 31 + j * 17 + seed) % 13) as f64 - 6.0
        })
    }

    #[test]
    fn packed_products_match_ndarray_on_every_edge_and_layout() {
        // Sizes around MR, NR, KC and NC, with ragged tails on every axis.
        for &(m, k, n) in &[
            (8, 16, 24),
            (9, 17, 25),
            (37, 300, 500),
            (64, 512, 240),
            (130, 513, 49),
        ] {
            let a = ints(m, k, 1);
            let b = ints(k, n, 2);
            let at = ints(k, m, 3);
            let bt = ints(n, k, 4);
            let cases = [
                (a.view(), b.view()),
                (at.t(), b.view()),
                (a.view(), bt.t()),
                (at.t(), bt.t()),
            ];
            for (x, y) in cases {
                let start = ints(m, n, 5);
                let mut want = start.clone();
                general_mat_mul(1.0, &x, &y, 1.0, &mut want);
                let mut got = start.clone();
                add_product(x, y, got.view_mut(), false);
                assert_eq!(got, want, "m={m} k={k} n={n}");
                let mut upper = start.clone();
                add_product(x, y, upper.view_mut(), true);
                for ((r, c), &v) in upper.indexed_iter() {
                    if r <= c {
                        assert_eq!(v, want[[r, c]], "upper triangle, m={m} k={k} n={n}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_column_major_or_tiny_output_takes_the_fallback_and_agrees() {
        let a = ints(40, 30, 1);
        let b = ints(30, 50, 2);
        let want = a.dot(&b);
        let mut f = Array2::<f64>::zeros((40, 50).f());
        add_product(a.view(), b.view(), f.view_mut(), false);
        assert_eq!(f, want);
        let mut tiny = Array2::<f64>::zeros((3, 2));
        add_product(
            a.slice(ndarray::s![..3, ..]),
            b.slice(ndarray::s![.., ..2]),
            tiny.view_mut(),
            false,
        );
        assert_eq!(
            tiny,
            a.slice(ndarray::s![..3, ..])
                .dot(&b.slice(ndarray::s![.., ..2]))
        );
    }
}
