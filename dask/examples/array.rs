//! dask.array in a few steps: a chunked, lazy n-dimensional array whose blocks
//! are `ndarray` arrays. Each step builds a lazy expression, computes it, and
//! checks the result against the same computation done eagerly with ndarray.
//!
//! Shows: creation from an ndarray and from a seeded random generator, chunks,
//! elementwise arithmetic with broadcasting, a reduction along an axis,
//! slicing, rechunk and matmul.
//!
//! Run: `cargo run --example array`

use dask::array::ndarray::{s, Array1, Array2, ArrayD, Axis};
use dask::array::{from_array, random, Reduce, Slice};
use dask::prelude::*;

/// Asserts two float arrays are equal up to rounding (sums in a different
/// order differ in the last bits).
fn assert_close(what: &str, got: &ArrayD<f64>, want: &ArrayD<f64>) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    for (g, w) in got.iter().zip(want.iter()) {
        assert!(
            (g - w).abs() <= 1e-9 * w.abs().max(1.0),
            "{what}: {g} != {w}"
        );
    }
    println!("{what:<28} shape {:?}  matches ndarray", got.shape());
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Creation. `from_array` cuts an in-memory ndarray into blocks: here a
    //    6x8 matrix of 0..48 in blocks of 4 rows x 3 columns (the last block on
    //    each axis is smaller, as in Dask).
    let data = Array2::from_shape_fn((6, 8), |(i, j)| (i * 8 + j) as f64);
    let a = from_array(data.clone(), [4, 3])?;
    println!("{a}");
    println!("chunks per axis: {:?}", a.chunks().axes()); // [[4, 2], [3, 3, 2]]
    assert_eq!(a.numblocks(), vec![2, 3]);
    assert_eq!(a.chunks().axes(), &[vec![4, 2], vec![3, 3, 2]]);

    // `random::random` draws seeded uniform numbers in [0, 1), one task per
    // block: nothing is generated until a compute. The same seed gives the same
    // numbers (and the same task keys), so we compute it once and use that
    // ndarray as the oracle's input below.
    let r = random::random(&[6, 8], [3, 4], 7)?;
    let r_nd = r.compute()?; // an ndarray::ArrayD<f64>
    assert_eq!(r_nd.shape(), &[6, 8]);
    assert!(r_nd.iter().all(|v| (0.0..1.0).contains(v)));
    let a_nd = data.clone().into_dyn();

    // 2. Elementwise arithmetic: `+ - * /` return a Result, because shapes are
    //    checked while the expression is built. The chain below is fused into
    //    one task per block.
    let y = ((&a * 2.0)? + &r)?;
    assert_close("a * 2 + r", &y.compute()?, &(&a_nd * 2.0 + &r_nd));

    // Broadcasting follows NumPy: a row of 8 is added to each of the 6 rows.
    let row = from_array(Array1::from_iter((0..8).map(f64::from)), 4)?;
    let z = (&a + &row)?;
    let row_nd = Array1::from_iter((0..8).map(f64::from));
    assert_close("a + row (broadcast)", &z.compute()?, &(&a_nd + &row_nd));
    // Shapes that do not broadcast are a typed error at build time.
    let bad = from_array(Array1::<f64>::zeros(5), 5)?;
    match &a + &bad {
        Ok(_) => panic!("(6, 8) + (5,) must not broadcast"),
        Err(err) => println!("a + zeros(5) fails early:    {err}"),
    }

    // 3. A reduction along an axis: column sums (axis 0) as a tree of partial
    //    sums, combining at most 2 blocks per step.
    let col_sums = y.sum(Reduce::axis(0).split_every(2))?;
    let want = (&a_nd * 2.0 + &r_nd).sum_axis(Axis(0));
    assert_close("sum(axis=0)", &col_sums.compute()?, &want);
    // A reduction over everything gives a 0-d array; compute_scalar unwraps it.
    let mean = a.mean(None)?.compute_scalar()?;
    assert_eq!(mean, a_nd.mean().expect("not empty"));
    println!("{:<28} {mean}", "a.mean()");

    // 4. Slicing, like a[1:5, ::2]: only the blocks that hold the slice are read.
    let sl = a.slice(&[Slice::new(1, Some(5), 1), Slice::new(0, None, 2)])?;
    assert_close(
        "a[1:5, ::2]",
        &sl.compute()?,
        &data.slice(s![1..5, ..;2]).to_owned().into_dyn(),
    );
    // The transpose is a view too.
    assert_close("a.T", &a.t().compute()?, &a_nd.t().to_owned());

    // 5. Rechunk: the same values cut differently (here whole rows of 2).
    let rows = a.rechunk([2, 8])?;
    assert_eq!(rows.chunks().axes(), &[vec![2, 2, 2], vec![8]]);
    assert_close("a.rechunk((2, 8))", &rows.compute()?, &a_nd);

    // 6. Matmul: (6x8) @ (8x6) block by block. The inner axes' chunks are
    //    unified first, so operands chunked differently still multiply.
    let at = a.t().rechunk([5, 4])?;
    let prod = a.matmul(&at)?;
    let want = data.dot(&data.t()).into_dyn();
    assert_close("a @ a.T", &prod.compute()?, &want);

    // The same graph on the sync scheduler (one thread, in order): same answer.
    let on_sync = prod.compute_with(&SyncScheduler::new())?;
    assert_close("a @ a.T (sync scheduler)", &on_sync, &want);
    println!("the matmul graph has {} tasks", prod.num_tasks());

    println!("ok: array");
    Ok(())
}
