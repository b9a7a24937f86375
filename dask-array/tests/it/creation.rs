use dask_array::{
    arange, concatenate, from_array, from_delayed, full, linspace, ones, random, stack, zeros,
    Collection,
};
use dask_core::{compute_with, delayed};
use ndarray::{Array1, ArrayD, Axis, IxDyn};
use proptest::prelude::*;

use crate::common::*;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn from_array_round_trips((a, chunks) in array_case(6)) {
        let x = from_array(a.clone(), chunks.clone()).unwrap();
        prop_assert_eq!(x.chunks().axes(), chunks.as_slice());
        prop_assert_eq!(x.shape(), a.shape());
        assert_exact(&x, &a);
    }

    #[test]
    fn arange_matches_a_plain_loop(start in -20i64..20, len in 0i64..30, step in 1i64..4, neg in any::<bool>(), c in 1usize..8) {
        let (stop, step) = if neg { (start - len, -step) } else { (start + len, step) };
        let expected: Vec<i64> = if neg {
            (0..).map(|i| start + i * step).take_while(|&v| v > stop).collect()
        } else {
            (0..).map(|i| start + i * step).take_while(|&v| v < stop).collect()
        };
        let x = arange(start, stop, step, c).unwrap();
        prop_assert_eq!(x.shape(), &[expected.len()][..]);
        assert_exact(&x, &ArrayD::from_shape_vec(IxDyn(&[expected.len()]), expected).unwrap());
    }

    #[test]
    fn float_arange_matches_ndarray_range(start in -5.0f64..5.0, len in 0.0f64..10.0, step in 0.1f64..2.0, c in 1usize..8) {
        let expected = Array1::range(start, start + len, step).into_dyn();
        let x = arange(start, start + len, step, c).unwrap();
        prop_assert_eq!(x.shape(), expected.shape());
        assert_close(&x, &expected);
    }

    #[test]
    fn linspace_matches_ndarray(start in -5.0f64..5.0, stop in -5.0f64..5.0, n in 0usize..20, c in 1usize..8) {
        let expected = Array1::linspace(start, stop, n).into_dyn();
        assert_close(&linspace(start, stop, n, c).unwrap(), &expected);
    }

    #[test]
    fn concatenate_matches_ndarray(
        (a, b, ca, cb, axis) in shape(4).prop_flat_map(|s| {
            let nd = s.len();
            (Just(s), 0..nd, 1usize..4)
        }).prop_flat_map(|(s, axis, other)| {
            let mut t = s.clone();
            t[axis] = other;
            (data(&s), data(&t), chunks(&s), chunks(&t), Just(axis))
        })
    ) {
        let x = from_array(a.clone(), ca).unwrap();
        let y = from_array(b.clone(), cb).unwrap();
        let expected = ndarray::concatenate(Axis(axis), &[a.view(), b.view(), a.view()]).unwrap();
        assert_exact(&concatenate(&[&x, &y, &x], axis).unwrap(), &expected);
    }

    #[test]
    fn stack_matches_ndarray(
        (a, b, ca, cb, axis) in shape(4).prop_flat_map(|s| {
            let nd = s.len();
            (data(&s), data(&s), chunks(&s), chunks(&s), 0..=nd)
        })
    ) {
        let x = from_array(a.clone(), ca).unwrap();
        let y = from_array(b.clone(), cb).unwrap();
        let expected = ndarray::stack(Axis(axis), &[a.view(), b.view()]).unwrap();
        assert_exact(&stack(&[&x, &y], axis).unwrap(), &expected);
    }
}

#[test]
fn full_zeros_ones() {
    let shape = [5, 3];
    assert_exact(
        &full(&shape, 2.5f32, 2).unwrap(),
        &ArrayD::from_elem(IxDyn(&shape), 2.5f32),
    );
    assert_exact(
        &zeros::<i32>(&shape, [2, 3]).unwrap(),
        &ArrayD::zeros(IxDyn(&shape)),
    );
    assert_exact(
        &ones::<i64>(&shape, 4).unwrap(),
        &ArrayD::ones(IxDyn(&shape)),
    );
    assert_exact(
        &full(&shape, true, 1).unwrap(),
        &ArrayD::from_elem(IxDyn(&shape), true),
    );
    assert_exact(
        &zeros::<f64>(&[0, 4], 2).unwrap(),
        &ArrayD::zeros(IxDyn(&[0, 4])),
    );
}

#[test]
fn equal_work_gets_equal_keys() {
    let a = ndarray::Array2::<f64>::ones((4, 4));
    let x = from_array(a.clone(), 2).unwrap();
    let y = from_array(a, 2).unwrap();
    assert_eq!(x.name(), y.name());
    assert_eq!(
        (&x + &y).unwrap().name(),
        (&x + &y).unwrap().name(),
        "same operation on the same inputs"
    );
    assert_ne!((&x + &y).unwrap().name(), (&x - &y).unwrap().name());
    assert_ne!((&x + 1.0).unwrap().name(), (&x + 2.0).unwrap().name());
    assert_ne!(
        zeros::<f64>(&[4], 2).unwrap().name(),
        zeros::<f64>(&[4], 1).unwrap().name()
    );
    assert_eq!(x.block_key(&[1, 0]).index(), &[1, 0]);
    assert!(x.name().starts_with("array-"));
}

#[test]
fn random_is_seeded_per_block_and_scheduler_independent() {
    let x = random::random(&[30, 20], [7, 6], 42).unwrap();
    let expected = sync(&x);
    assert_exact(&x, &expected);
    // A rebuilt array with the same seed gives the same values; another seed does not.
    assert_eq!(
        sync(&random::random(&[30, 20], [7, 6], 42).unwrap()),
        expected
    );
    assert_ne!(
        sync(&random::random(&[30, 20], [7, 6], 43).unwrap()),
        expected
    );
    assert!(expected.iter().all(|&v| (0.0..1.0).contains(&v)));
    // Blocks differ from one another.
    let b0 = expected.slice(ndarray::s![0..7, 0..6]).to_owned();
    let b1 = expected.slice(ndarray::s![7..14, 0..6]).to_owned();
    assert_ne!(b0, b1);
    // Computing a sub-selection (other blocks not run) gives the same values:
    // a block's values depend only on the seed and its index.
    let part = concatenate(&[&x, &x], 0).unwrap();
    assert_eq!(
        sync(&part)
            .slice(ndarray::s![30.., ..])
            .to_owned()
            .into_dyn(),
        expected
    );
}

#[test]
fn random_distributions_have_the_right_moments() {
    let n = 20_000.0;
    let u = sync(&random::uniform(-2.0, 4.0, &[100, 200], 50, 7).unwrap());
    assert!(u.iter().all(|&v| (-2.0..4.0).contains(&v)));
    let mean = u.sum() / n;
    assert!((mean - 1.0).abs() < 0.05, "uniform mean {mean}");
    let g = sync(&random::normal(3.0, 2.0, &[100, 200], [30, 70], 7).unwrap());
    let mean = g.sum() / n;
    let var = g.mapv(|v| (v - mean) * (v - mean)).sum() / n;
    assert!((mean - 3.0).abs() < 0.06, "normal mean {mean}");
    assert!((var.sqrt() - 2.0).abs() < 0.06, "normal std {}", var.sqrt());
}

#[test]
fn from_delayed_wraps_a_delayed_array() {
    let d =
        delayed(|n: i64| ArrayD::from_shape_fn(IxDyn(&[2, 3]), |i| (i[0] * 3 + i[1]) as i64 * n))
            .call((2,));
    let x = from_delayed(&d, &[2, 3]);
    let expected = ArrayD::from_shape_fn(IxDyn(&[2, 3]), |i| (i[0] * 3 + i[1]) as i64 * 2);
    assert_exact(&x, &expected);
    assert_exact(&(&x * 2).unwrap(), &(&expected * 2));
    // A wrong declared shape fails at compute time, naming both shapes.
    let bad = from_delayed(&d, &[3, 2]);
    let err = bad
        .compute_with(&*schedulers()[0].1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2, 3]") && err.contains("[3, 2]"), "{err}");
}

#[test]
fn display_shows_shape_chunks_dtype_tasks_and_bytes() {
    let x = ones::<f64>(&[4, 6], [2, 3]).unwrap();
    let s = x.to_string();
    assert!(
        s.starts_with("dask.array<full, shape=(4, 6), dtype=float64"),
        "{s}"
    );
    assert!(s.contains("chunksize=(2, 3)"), "{s}");
    assert!(s.contains("chunks=((2, 2), (3, 3))"), "{s}");
    assert!(s.contains("tasks=4"), "{s}");
    assert!(s.contains("nbytes=192 B"), "{s}");
    assert_eq!(x.nbytes(), 192);
    assert_eq!(x.dtype(), "float64");
    assert_eq!(x.ndim(), 2);
    assert_eq!(x.npartitions(), 4);
    assert_eq!(zeros::<i32>(&[3], 2).unwrap().dtype(), "int32");
    assert_eq!(full(&[3], false, 2).unwrap().dtype(), "bool");
}

#[test]
fn persist_and_compute_several_collections() {
    let a = ArrayD::from_shape_fn(IxDyn(&[6, 4]), |i| (i[0] * 4 + i[1]) as f64);
    let x = from_array(a.clone(), [4, 3]).unwrap();
    let y = (&x * 2.0).unwrap();
    let s = &*schedulers()[2].1;
    let p = y.persist_with(s).unwrap();
    assert_eq!(p.num_tasks(), p.npartitions());
    assert_exact(&(&p + 1.0).unwrap(), &(&a * 2.0 + 1.0));
    let z = y.sum(None).unwrap();
    let (yy, zz) = compute_with((&y, &z), s).unwrap();
    assert_eq!(yy, &a * 2.0);
    assert_eq!(zz.first().copied().unwrap(), (&a * 2.0).sum());
}

#[test]
fn display_shortens_long_chunk_lists() {
    let x = zeros::<f64>(&[100, 4], [10, 4]).unwrap();
    let s = x.to_string();
    assert!(
        s.contains("chunks=((10, 10, 10, ..., 10) x10, (4,))"),
        "{s}"
    );
    assert!(
        s.contains("tasks=10") && s.contains("nbytes=3.12 kiB"),
        "{s}"
    );
}

#[test]
fn compute_uses_the_default_scheduler() {
    // The test binary links the sync and threaded schedulers; compute() picks one.
    let a = ArrayD::from_shape_fn(IxDyn(&[3, 4]), |i| (i[0] * 4 + i[1]) as f64);
    let x = from_array(a.clone(), 2).unwrap();
    assert_eq!(x.compute().unwrap(), a);
    assert_eq!(x.sum(None).unwrap().compute_scalar().unwrap(), a.sum());
}
