use dask_array::{blockwise, from_array, Array, Collection};
use ndarray::{ArrayD, Zip};
use proptest::prelude::*;

use crate::common::*;

/// Two shapes that broadcast: `b` is a suffix of `a`'s axes, and either may
/// have length 1 where the other does not.
fn broadcast_pair() -> BoxedStrategy<(Vec<usize>, Vec<usize>)> {
    shape(4)
        .prop_flat_map(|s| {
            let n = s.len();
            (Just(s), 0..=n, prop::collection::vec(0u8..3, n))
        })
        .prop_map(|(s, drop, ones)| {
            let mut a = s.clone();
            let mut b = s.clone();
            for (k, o) in ones.iter().enumerate() {
                match o {
                    1 => a[k] = 1,
                    2 => b[k] = 1,
                    _ => {}
                }
            }
            (a, b[drop.min(b.len() - 1)..].to_vec())
        })
        .boxed()
}

fn two_arrays() -> BoxedStrategy<PairCase> {
    broadcast_pair()
        .prop_flat_map(|(a, b)| (data(&a), chunks(&a), data(&b), chunks(&b)))
        .boxed()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arithmetic_broadcasts_like_ndarray((a, ca, b, cb) in two_arrays()) {
        let x = from_array(a.clone(), ca).unwrap();
        let y = from_array(b.clone(), cb).unwrap();
        assert_close(&(&x + &y).unwrap(), &(&a + &b));
        assert_close(&(&y - &x).unwrap(), &(&b - &a));
        assert_close(&(&x * &y).unwrap(), &(&a * &b));
        assert_close(&(&x / &y).unwrap(), &(&a / &b));
        // Chained expressions with scalars on both sides.
        let z = ((&x * 2.0) - &y).unwrap();
        let z = (1.0 - (&z / 4.0).unwrap()).unwrap();
        assert_close(&z, &(1.0 - (&a * 2.0 - &b) / 4.0));
    }

    #[test]
    fn comparisons_broadcast_and_give_bool((a, ca, b, cb) in two_arrays()) {
        let x = from_array(a.clone(), ca).unwrap();
        let y = from_array(b.clone(), cb).unwrap();
        let cmp = |f: fn(f64, f64) -> bool| {
            let shape = dask_array::broadcast_shapes(a.shape(), b.shape()).unwrap();
            let (av, bv) = (a.broadcast(shape.clone()).unwrap(), b.broadcast(shape).unwrap());
            Zip::from(av).and(bv).map_collect(|&p, &q| f(p, q))
        };
        assert_exact(&x.greater(&y).unwrap(), &cmp(|p, q| p > q));
        assert_exact(&x.less_equal(&y).unwrap(), &cmp(|p, q| p <= q));
        assert_exact(&x.equal(&x).unwrap(), &a.mapv(|_| true));
        assert_exact(&x.not_equal(&y).unwrap(), &cmp(|p, q| p != q));
        assert_exact(&x.greater_equal(0.0).unwrap(), &a.mapv(|p| p >= 0.0));
        assert_exact(&x.less(1.5).unwrap(), &a.mapv(|p| p < 1.5));
        let both = x.greater(0.0).unwrap().logical_and(&y.less(0.0).unwrap()).unwrap();
        assert_exact(&both, &cmp(|p, q| p > 0.0 && q < 0.0));
        let either = x.greater(0.0).unwrap().logical_or(&y.less(0.0).unwrap()).unwrap();
        assert_exact(&either.logical_not(), &cmp(|p, q| !(p > 0.0 || q < 0.0)));
    }

    #[test]
    fn unary_math_matches_ndarray((a, ca) in array_case(6)) {
        let x = from_array(a.clone(), ca).unwrap();
        assert_close(&x.abs(), &a.mapv(f64::abs));
        assert_close(&x.abs().sqrt(), &a.mapv(|v| v.abs().sqrt()));
        assert_close(&x.exp(), &a.mapv(f64::exp));
        assert_close(&x.abs().ln(), &a.mapv(|v| v.abs().ln()));
        assert_close(&x.sin(), &a.mapv(f64::sin));
        assert_close(&x.cos(), &a.mapv(f64::cos));
        assert_close(&x.tanh(), &a.mapv(f64::tanh));
        assert_close(&x.floor(), &a.mapv(f64::floor));
        assert_close(&x.square(), &a.mapv(|v| v * v));
        assert_close(&x.abs().powf(1.5), &a.mapv(|v| v.abs().powf(1.5)));
        assert_close(&-&x, &a.mapv(|v| -v));
        assert_close(&x.map(|v| v * 3.0 + 1.0), &a.mapv(|v| v * 3.0 + 1.0));
        assert_close(&x.map_blocks(|b| b * 2.0), &(&a * 2.0));
    }

    #[test]
    fn zip_with_and_blockwise_broadcast((a, ca, b, cb) in two_arrays()) {
        let x = from_array(a.clone(), ca).unwrap();
        let y = from_array(b.clone(), cb).unwrap();
        let z = x.zip_with(&y, |p, q| p.max(q)).unwrap();
        let shape = dask_array::broadcast_shapes(a.shape(), b.shape()).unwrap();
        let (av, bv) = (a.broadcast(shape.clone()).unwrap(), b.broadcast(shape).unwrap());
        assert_close(&z, &Zip::from(av).and(bv).map_collect(|&p, &q| p.max(q)));
        let w = blockwise(&[&x, &y, &x], |v: &[f64]| v[0] * v[1] - v[2]).unwrap();
        assert_close(&w, &(&a * &b - &a));
    }
}

#[test]
fn integer_and_f32_arithmetic() {
    let a = ArrayD::from_shape_fn(ndarray::IxDyn(&[5, 4]), |i| (i[0] * 4 + i[1]) as i32 - 7);
    let x = from_array(a.clone(), [2, 3]).unwrap();
    assert_exact(&(&x * 3).unwrap(), &(&a * 3));
    assert_exact(&(&x + &x).unwrap(), &(&a + &a));
    assert_exact(&(10 - &x).unwrap(), &(10 - &a));
    assert_exact(&x.abs(), &a.mapv(i32::abs));
    let f = a.mapv(|v| v as f32 / 2.0);
    let y = from_array(f.clone(), 3).unwrap();
    assert_exact(&(&y * &y).unwrap(), &(&f * &f));
    assert_exact(&y.sqrt().greater(1.0).unwrap(), &f.mapv(|v| v.sqrt() > 1.0));
    // astype, against `as` on every element.
    assert_exact(&y.astype::<i64>(), &f.mapv(|v| v as i64));
    assert_exact(&x.astype::<f64>(), &a.mapv(f64::from));
    assert_exact(
        &x.greater(0).unwrap().astype::<i32>(),
        &a.mapv(|v| i32::from(v > 0)),
    );
    let big = from_array(ndarray::arr1(&[i64::MAX, -3]), 1).unwrap();
    assert_exact(
        &big.astype::<i64>(),
        &ndarray::arr1(&[i64::MAX, -3]).into_dyn(),
    );
}

/// A failing block (integer division by zero panics inside the block's
/// arithmetic) is reported as a failed task, on every scheduler.
#[test]
fn integer_division_by_zero_is_a_task_failure_not_a_panic() {
    let x = from_array(ndarray::arr1(&[1i64, 2, 3]), 2).unwrap();
    let z = (&x / 0).unwrap();
    for (name, s) in schedulers() {
        let err = z.compute_with(&**s).unwrap_err();
        assert!(err.to_string().contains("divide by zero"), "{name}: {err}");
        assert!(err.failed_key().is_some(), "{name}: {err}");
    }
}

#[test]
fn map_blocks_that_change_the_shape_fail_with_both_shapes() {
    let x = from_array(ndarray::Array1::<f64>::zeros(6), 3).unwrap();
    let bad = x.map_blocks(|b| b.slice(ndarray::s![..1]).to_owned().into_dyn());
    let err = bad
        .compute_with(&*schedulers()[0].1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[1]") && err.contains("[3]"), "{err}");
}

fn layers(x: &Array<f64>) -> usize {
    x.graph().layers().count()
}

#[test]
fn consecutive_elementwise_layers_fuse_into_one_task_per_block() {
    let a = ArrayD::from_shape_fn(ndarray::IxDyn(&[6, 6]), |i| (i[0] + i[1]) as f64);
    let x = from_array(a.clone(), 3).unwrap(); // 4 blocks
    let y = (((&x + 1.0).unwrap() * 2.0).unwrap()).sqrt().exp();
    // x's 4 data tasks plus one fused task per block.
    assert_eq!(y.num_tasks(), 8, "{y}");
    assert_eq!(layers(&y), 2);
    assert_close(&y, &a.mapv(|v| ((v + 1.0) * 2.0).sqrt().exp()));
    // Binary elementwise of two fused chains is fused too.
    let w = (&(&x * 3.0).unwrap() + &x.sin()).unwrap();
    assert_eq!(w.num_tasks(), 8, "{w}");
    assert_close(&w, &(&a * 3.0 + a.mapv(f64::sin)));
    // A fused layer read twice is not inlined (it would be computed twice).
    let t = (&x + 1.0).unwrap();
    let u = (&t * &t).unwrap();
    assert_eq!(u.num_tasks(), 12);
    assert_close(&u, &a.mapv(|v| (v + 1.0) * (v + 1.0)));
    // What the scheduler runs: after core's fusion, still one task per block.
    let g = y.optimized_graph().unwrap();
    assert_eq!(g.len(), 4);
}

#[test]
fn mismatched_chunks_are_rechunked_to_agree() {
    let a = ArrayD::from_shape_fn(ndarray::IxDyn(&[7, 5]), |i| (i[0] * 5 + i[1]) as f64);
    let x = from_array(a.clone(), vec![vec![3, 4], vec![5]]).unwrap();
    let y = from_array(a.clone(), vec![vec![1, 6], vec![2, 3]]).unwrap();
    let z = (&x + &y).unwrap();
    assert_eq!(z.chunks().axes(), &[vec![1, 2, 4], vec![2, 3]]);
    assert_exact(&z, &(&a + &a));
    let r = x.rechunk(vec![vec![7], vec![1, 1, 3]]).unwrap();
    assert_exact(&r, &a);
    assert_exact(&r.rechunk(2).unwrap(), &a);
}

#[test]
fn long_chains_stay_correct_and_bounded_in_depth() {
    let a = ArrayD::from_shape_fn(ndarray::IxDyn(&[4, 4]), |i| (i[0] * 4 + i[1]) as f64);
    let x = from_array(a.clone(), 2).unwrap();
    let mut y = x.clone();
    for _ in 0..200 {
        y = (&y + 1.0).unwrap();
    }
    // Inlining stops at a bounded depth, then starts a new fused task.
    let depth = y
        .graph()
        .to_graph()
        .iter()
        .map(|(_, t)| t.depth())
        .max()
        .unwrap();
    assert!(depth <= 32, "depth {depth}");
    assert!(y.num_tasks() < 4 + 4 * 20, "{}", y.num_tasks());
    assert_close(&y, &(&a + 200.0));
}

#[test]
fn broadcasting_against_reductions() {
    let a = ArrayD::from_shape_fn(ndarray::IxDyn(&[5, 6]), |i| {
        ((i[0] * 7 + i[1] * 3) % 11) as f64
    });
    let x = from_array(a.clone(), [2, 4]).unwrap();
    // Center by the global mean (a 0-d array) and by column means (shape (6,)).
    let centered = (&x - &x.mean(None).unwrap()).unwrap();
    assert_close(&centered, &(&a - a.mean().unwrap()));
    let cols = (&x - &x.mean(0).unwrap()).unwrap();
    assert_close(&cols, &(&a - &a.mean_axis(ndarray::Axis(0)).unwrap()));
    // Row means need an explicit axis of length 1 to broadcast, as in NumPy.
    let rows = x.mean(1).unwrap().reshape(&[5, 1]).unwrap();
    let expected = &a
        - &a.mean_axis(ndarray::Axis(1))
            .unwrap()
            .insert_axis(ndarray::Axis(1));
    assert_close(&(&x - &rows).unwrap(), &expected);

    // Folds of broadcast arithmetic: the fused chunk op falls back to the
    // arithmetic block (blocks of different shapes), transposed or not.
    let col_means = a.mean_axis(ndarray::Axis(0)).unwrap();
    assert_close(
        &cols.sum(None).unwrap(),
        &(&a - &col_means)
            .sum_axis(ndarray::Axis(0))
            .sum_axis(ndarray::Axis(0)),
    );
    let max = |v: &ArrayD<f64>| v.fold_axis(ndarray::Axis(0), f64::NEG_INFINITY, |m, &e| m.max(e));
    assert_close(&(&x - &rows).unwrap().max(0).unwrap(), &max(&expected));
    let t = (&x.t() - &x.mean(1).unwrap()).unwrap().sum(1).unwrap();
    let row_means = a.mean_axis(ndarray::Axis(1)).unwrap();
    assert_close(&t, &(&a.t() - &row_means).sum_axis(ndarray::Axis(1)));
}

#[test]
fn zero_dimensional_arrays() {
    let a = ArrayD::from_elem(ndarray::IxDyn(&[]), 2.5f64);
    let x = from_array(a.clone(), Vec::<usize>::new()).unwrap();
    assert_eq!((x.ndim(), x.npartitions()), (0, 1));
    assert_exact(&(&x * 2.0).unwrap(), &(&a * 2.0));
    assert_exact(&x.sum(None).unwrap(), &a);
    let v = from_array(ndarray::arr1(&[1.0, 2.0, 3.0]), 2).unwrap();
    assert_exact(
        &(&v + &x).unwrap(),
        &ndarray::arr1(&[3.5, 4.5, 5.5]).into_dyn(),
    );
    assert_eq!(scalar(&x), 2.5);
    assert!(matches!(
        v.compute_scalar_with(&*schedulers()[0].1),
        Err(dask_array::Error::NotScalar { .. })
    ));
}

#[test]
fn broadcasting_with_zero_length_axes() {
    let x = dask_array::zeros::<f64>(&[0, 3], 2).unwrap();
    let y = dask_array::ones::<f64>(&[1, 3], 2).unwrap();
    let z = (&x + &y).unwrap();
    assert_eq!(z.shape(), &[0, 3]);
    assert_exact(&z, &ArrayD::zeros(ndarray::IxDyn(&[0, 3])));
    assert!((&x + &dask_array::ones::<f64>(&[2, 3], 2).unwrap()).is_err());
}
