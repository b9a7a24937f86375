//! Matrix products of `f64` and `f32` blocks: `c += a · b`.
//!
//! ndarray's `general_mat_mul` (matrixmultiply) tops out at AVX2. Where the
//! CPU has AVX-512F this module runs its own packed kernel instead, in the
//! GotoBLAS/BLIS shape:
//!
//! - the `k` axis is cut into slices of [`KC`]; for each, `a`'s rows are
//!   packed into panels of [`MR`] rows (`p`-major, [`MR`] values per step);
//! - `b`'s columns into panels of `NR` columns (24 `f64` or 48 `f32`), [`NC`]
//!   columns at a time (about 1 MiB: the packed block stays in L2);
//! - the micro-kernel keeps an [`MR`] x `NR` tile of `c` in 24 AVX-512
//!   registers and does 24 fused multiply-adds per step of `k`; one `a`
//!   panel (32 KiB) stays in L1 while the `b` panels stream past it from L2.
//!
//! Packing reads each operand in its own memory order, so transposed views
//! (the `x.T` of `x.dot(x.T)`) cost nothing extra. Results agree with
//! `general_mat_mul` to rounding (the summation order differs).

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, LinalgScalar};

/// Rows of `a` per packed panel (and of the register tile).
const MR: usize = 8;
/// Length of the `k` slice packed at a time.
const KC: usize = 512;
/// Columns of `b` packed at a time (a multiple of every type's `NR`).
const NC: usize = 240;

/// Element types with a packed kernel: `f64` (tiles of 8 x 24) and `f32`
/// (8 x 48); three AVX-512 vectors per tile row either way.
pub(crate) trait Packed: LinalgScalar + Default + Send + Sync {
    /// `c += a · b`. Shapes must agree (`a`: m x k, `b`: k x n, `c`: m x n);
    /// any strides are accepted.
    ///
    /// With `upper_only`, the product may leave out entries below the
    /// diagonal (the packed kernel skips tiles that lie wholly below it): for
    /// a caller that knows the result is symmetric and mirrors the upper
    /// triangle afterwards.
    fn add_product(
        a: ArrayView2<'_, Self>,
        b: ArrayView2<'_, Self>,
        c: ArrayViewMut2<'_, Self>,
        upper_only: bool,
    );
}

/// ndarray's product, where no packed kernel applies.
fn fallback<T: LinalgScalar>(
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    mut c: ArrayViewMut2<'_, T>,
) {
    general_mat_mul(T::one(), &a, &b, T::one(), &mut c);
}

/// Packs `a` (m x kc) into panels of [`MR`] rows: element `(i, p)` goes to
/// `out[(i / MR * kc + p) * MR + i % MR]`; rows past `m` are zero.
fn pack_a<T: Copy + Default>(a: &ArrayView2<'_, T>, out: &mut Vec<T>) {
    let (m, kc) = a.dim();
    out.clear();
    out.resize(m.div_ceil(MR) * MR * kc, T::default());
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

/// Packs `b` (kc x nc) into panels of `NR` columns: element `(p, j)` goes
/// to `out[(j / NR * kc + p) * NR + j % NR]`; columns past `nc` are zero.
fn pack_b<T: Copy + Default, const NR: usize>(b: &ArrayView2<'_, T>, out: &mut Vec<T>) {
    let (kc, nc) = b.dim();
    out.clear();
    out.resize(nc.div_ceil(NR) * NR * kc, T::default());
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

/// The packed kernel of one element type: `$nr` columns per panel, `$lanes`
/// per vector, and the AVX-512 intrinsics of that type.
macro_rules! packed_kernel {
    ($t:ty, $nr:expr, $lanes:expr, $zero:ident, $load:ident, $store:ident, $splat:ident, $fma:ident, $add:ident) => {
        impl Packed for $t {
            fn add_product(
                a: ArrayView2<'_, $t>,
                b: ArrayView2<'_, $t>,
                c: ArrayViewMut2<'_, $t>,
                upper_only: bool,
            ) {
                debug_assert_eq!(a.ncols(), b.nrows());
                debug_assert_eq!((a.nrows(), b.ncols()), c.dim());
                #[cfg(target_arch = "x86_64")]
                {
                    #[allow(unsafe_code)]
                    mod x86 {
                        use std::arch::x86_64::*;
                        use std::cell::RefCell;

                        use ndarray::{s, ArrayView2, ArrayViewMut2};

                        use super::{pack_a, pack_b, KC, MR, NC};

                        pub(super) const NR: usize = $nr;

                        thread_local! {
                            /// Packing buffers, reused by every product on this thread.
                            static PACKS: RefCell<(Vec<$t>, Vec<$t>)> = const { RefCell::new((Vec::new(), Vec::new())) };
                        }

                        /// `c += a · b` with the packed kernel; the caller checked
                        /// AVX-512F and a unit column stride of `c`.
                        pub(super) fn add_product(
                            a: ArrayView2<'_, $t>,
                            b: ArrayView2<'_, $t>,
                            mut c: ArrayViewMut2<'_, $t>,
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
                                        pack_b::<$t, NR>(&b.slice(s![pc..pc + kc, jc..jc + nc]), pb);
                                        for ir in 0..m.div_ceil(MR) {
                                            let rows = MR.min(m - ir * MR);
                                            for jr in 0..nc.div_ceil(NR) {
                                                let cols = NR.min(nc - jr * NR);
                                                if upper_only && ir * MR >= jc + jr * NR + cols {
                                                    continue; // wholly below the diagonal
                                                }
                                                // SAFETY: the caller checked AVX-512F. The
                                                // packed panels hold `kc * MR` and `kc * NR`
                                                // values from these offsets (`pack_a` and
                                                // `pack_b` pad them), and the `rows` x `cols`
                                                // tile of `c` at this offset lies inside `c`
                                                // (row stride `ldc`, unit columns).
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

                        /// Adds the product of an `a` panel (`kc` steps of [`MR`]
                        /// values) and a `b` panel (`kc` steps of [`NR`] values) to
                        /// the `rows` x `cols` tile at `c`.
                        ///
                        /// # Safety
                        /// The CPU has AVX-512F; `a` and `b` are valid for `kc * MR`
                        /// and `kc * NR` reads; `c` is valid for the tile (row
                        /// stride `ldc`).
                        #[target_feature(enable = "avx512f")]
                        unsafe fn kernel(
                            kc: usize,
                            a: *const $t,
                            b: *const $t,
                            c: *mut $t,
                            ldc: usize,
                            rows: usize,
                            cols: usize,
                        ) {
                            let mut acc = [[$zero(); 3]; MR];
                            for p in 0..kc {
                                let bp = b.add(p * NR);
                                let b0 = $load(bp);
                                let b1 = $load(bp.add($lanes));
                                let b2 = $load(bp.add(2 * $lanes));
                                let ap = a.add(p * MR);
                                for (i, row) in acc.iter_mut().enumerate() {
                                    let ai = $splat(*ap.add(i));
                                    row[0] = $fma(ai, b0, row[0]);
                                    row[1] = $fma(ai, b1, row[1]);
                                    row[2] = $fma(ai, b2, row[2]);
                                }
                            }
                            if rows == MR && cols == NR {
                                for (i, row) in acc.iter().enumerate() {
                                    for (v, &x) in row.iter().enumerate() {
                                        let q = c.add(i * ldc + v * $lanes);
                                        $store(q, $add($load(q), x));
                                    }
                                }
                            } else {
                                let mut tile = [<$t>::default(); MR * NR];
                                for (i, row) in acc.iter().enumerate() {
                                    for (v, &x) in row.iter().enumerate() {
                                        $store(tile.as_mut_ptr().add(i * NR + v * $lanes), x);
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

                    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
                    if m >= MR
                        && n >= x86::NR
                        && k >= 16
                        && c.strides()[1] == 1
                        && c.strides()[0] >= n as isize
                        && avx512()
                    {
                        x86::add_product(a, b, c, upper_only);
                        return;
                    }
                }
                let _ = upper_only;
                fallback(a, b, c);
            }
        }
    };
}

packed_kernel!(
    f64,
    24,
    8,
    _mm512_setzero_pd,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_set1_pd,
    _mm512_fmadd_pd,
    _mm512_add_pd
);
packed_kernel!(
    f32,
    48,
    16,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_add_ps
);

/// Whether this CPU has AVX-512F (checked once).
#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    static AVX512: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVX512.get_or_init(|| std::arch::is_x86_feature_detected!("avx512f"))
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, ShapeBuilder};

    use super::*;

    /// Small integers: every product and sum is exact (in `f32` too), so the
    /// packed kernel must equal ndarray's to the bit, whatever the order of
    /// summation.
    fn ints<T: Packed + From<i8>>(m: usize, n: usize, seed: usize) -> Array2<T> {
        Array2::from_shape_fn((m, n), |(i, j)| {
            T::from(((i * 31 + j * 17 + seed) % 13) as i8 - 6)
        })
    }

    fn products_match<T: Packed + From<i8> + PartialEq + std::fmt::Debug>() {
        // Sizes around MR, NR, KC and NC, with ragged tails on every axis.
        for &(m, k, n) in &[
            (8, 16, 24),
            (9, 17, 49),
            (37, 300, 500),
            (64, 512, 240),
            (130, 513, 49),
        ] {
            let a = ints::<T>(m, k, 1);
            let b = ints::<T>(k, n, 2);
            let at = ints::<T>(k, m, 3);
            let bt = ints::<T>(n, k, 4);
            let cases = [
                (a.view(), b.view()),
                (at.t(), b.view()),
                (a.view(), bt.t()),
                (at.t(), bt.t()),
            ];
            for (x, y) in cases {
                let start = ints::<T>(m, n, 5);
                let mut want = start.clone();
                general_mat_mul(T::one(), &x, &y, T::one(), &mut want);
                let mut got = start.clone();
                T::add_product(x, y, got.view_mut(), false);
                assert_eq!(got, want, "m={m} k={k} n={n}");
                let mut upper = start.clone();
                T::add_product(x, y, upper.view_mut(), true);
                for ((r, c), v) in upper.indexed_iter() {
                    if r <= c {
                        assert_eq!(*v, want[[r, c]], "upper triangle, m={m} k={k} n={n}");
                    }
                }
            }
        }
    }

    #[test]
    fn packed_products_match_ndarray_on_every_edge_and_layout() {
        products_match::<f64>();
        products_match::<f32>();
    }

    #[test]
    fn a_column_major_or_tiny_output_takes_the_fallback_and_agrees() {
        let a = ints::<f64>(40, 30, 1);
        let b = ints::<f64>(30, 50, 2);
        let want = a.dot(&b);
        let mut f = Array2::<f64>::zeros((40, 50).f());
        f64::add_product(a.view(), b.view(), f.view_mut(), false);
        assert_eq!(f, want);
        let (a3, b2) = (a.slice(ndarray::s![..3, ..]), b.slice(ndarray::s![.., ..2]));
        let mut tiny = Array2::<f64>::zeros((3, 2));
        f64::add_product(a3, b2, tiny.view_mut(), false);
        assert_eq!(tiny, a3.dot(&b2));
    }
}
