use dask_array::{from_array, random, Error, Slice};
use ndarray::ArrayD;
use proptest::prelude::*;

use crate::common::*;

/// A slice of an axis of length `dim` that ndarray accepts.
fn slice_for(dim: usize) -> BoxedStrategy<Slice> {
    let d = dim as isize;
    (
        -d..=d,
        prop::option::of(-d..=d),
        prop_oneof![1isize..4, -3isize..=-1],
    )
        .prop_map(|(start, end, step)| Slice::new(start, end, step))
        .boxed()
}

fn permutation(n: usize) -> BoxedStrategy<Vec<usize>> {
    Just((0..n).collect::<Vec<_>>()).prop_shuffle().boxed()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn slicing_matches_ndarray(
        (a, c, slices) in array_case(7).prop_flat_map(|(a, c)| {
            let s: Vec<BoxedStrategy<Slice>> = a.shape().iter().map(|&d| slice_for(d)).collect();
            (Just(a), Just(c), s)
        }),
        keep in 0usize..3,
    ) {
        let x = from_array(a.clone(), c).unwrap();
        let slices = &slices[..slices.len().min(keep + 1)];
        let expected = a.slice_each_axis(|ax| slices.get(ax.axis.index()).copied().unwrap_or(Slice::from(..))).to_owned();
        let y = x.slice(slices).unwrap();
        prop_assert_eq!(y.shape(), expected.shape());
        assert_exact(&y, &expected);
        // And fused into arithmetic afterwards.
        assert_close(&(&y * 2.0).unwrap(), &(&expected * 2.0));
    }

    #[test]
    fn transpose_matches_ndarray(
        (a, c, perm) in array_case(5).prop_flat_map(|(a, c)| {
            let n = a.ndim();
            (Just(a), Just(c), permutation(n))
        })
    ) {
        let x = from_array(a.clone(), c).unwrap();
        let expected = a.clone().permuted_axes(perm.clone());
        assert_exact(&x.transpose(&perm).unwrap(), &expected);
        assert_exact(&x.t(), &a.t().to_owned());
        assert_close(&(&x.t() + 1.0).unwrap(), &(&a.t() + 1.0));
    }

    #[test]
    fn rechunk_round_trips(
        (a, c1, c2) in shape(8).prop_flat_map(|s| (data(&s), chunks(&s), chunks(&s)))
    ) {
        let x = from_array(a.clone(), c1).unwrap();
        let y = x.rechunk(c2.clone()).unwrap();
        prop_assert_eq!(y.chunks().axes(), c2.as_slice());
        assert_exact(&y, &a);
    }
}

#[test]
fn slicing_errors() {
    let x = from_array(ArrayD::<f64>::zeros(ndarray::IxDyn(&[4, 5])), 2).unwrap();
    let err = x.slice(&[Slice::new(0, Some(6), 1)]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SliceOutOfBounds {
                axis: 0,
                dim: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        x.slice(&[Slice::from(..), Slice::new(-6, None, 1)]),
        Err(Error::SliceOutOfBounds { axis: 1, .. })
    ));
    assert!(matches!(
        x.slice(&[Slice {
            start: 0,
            end: None,
            step: 0
        }]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        x.slice(&[Slice::from(..), Slice::from(..), Slice::from(..)]),
        Err(Error::AxisOutOfRange { .. })
    ));
    assert!(matches!(
        x.transpose(&[0]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        x.transpose(&[0, 0]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        x.transpose(&[0, 2]),
        Err(Error::AxisOutOfRange { .. })
    ));
}

/// The seed's example, scaled down: x = random((n, n)); (x + x.T).sum().
#[test]
fn seed_example_x_plus_x_t_sum() {
    let x = random::random(&[120, 120], 30, 1).unwrap();
    let y = (&x + &x.t()).unwrap();
    // The transpose is fused into the addition: 16 random + 16 add tasks.
    assert_eq!(y.num_tasks(), 32, "{y}");
    let total = y.sum(None).unwrap();
    assert_eq!(x.shape(), &[120, 120]);
    let a = sync(&x);
    let expected = (&a + &a.t()).sum();
    for (name, s) in schedulers() {
        let got = total.compute_scalar_with(&**s).unwrap();
        assert!(close(got, expected), "{name}: {got} vs {expected}");
    }
}

/// A shape with `n` elements, chosen by `picks` among the divisors.
fn factor(n: usize, picks: &[usize]) -> Vec<usize> {
    let mut rest = n;
    let mut out = Vec::new();
    for &p in picks {
        let divisors: Vec<usize> = (1..=rest).filter(|d| rest.is_multiple_of(*d)).collect();
        let d = divisors[p % divisors.len()];
        out.push(d);
        rest /= d;
    }
    out.push(rest);
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn take_and_compress_match_ndarray(
        (a, c, axis, picks, mask) in array_case(6).prop_flat_map(|(a, c)| {
            let n = a.ndim();
            (Just(a), Just(c), 0..n)
        }).prop_flat_map(|(a, c, axis)| {
            let dim = a.shape()[axis];
            (
                Just(a),
                Just(c),
                Just(axis),
                prop::collection::vec(0..dim, 0..8),
                prop::collection::vec(any::<bool>(), dim),
            )
        })
    ) {
        let x = from_array(a.clone(), c).unwrap();
        assert_exact(&x.take(&picks, axis).unwrap(), &a.select(ndarray::Axis(axis), &picks));
        let kept: Vec<usize> = (0..mask.len()).filter(|&i| mask[i]).collect();
        assert_exact(&x.compress(&mask, axis).unwrap(), &a.select(ndarray::Axis(axis), &kept));
    }

    #[test]
    fn index_axis_matches_ndarray(
        (a, c, axis, index) in array_case(6).prop_flat_map(|(a, c)| {
            let n = a.ndim();
            (Just(a), Just(c), 0..n)
        }).prop_flat_map(|(a, c, axis)| {
            let dim = a.shape()[axis];
            (Just(a), Just(c), Just(axis), 0..dim)
        })
    ) {
        let x = from_array(a.clone(), c).unwrap();
        let expected = a.index_axis(ndarray::Axis(axis), index).to_owned();
        let y = x.index_axis(axis, index).unwrap();
        prop_assert_eq!(y.ndim(), a.ndim() - 1);
        assert_exact(&y, &expected);
    }

    #[test]
    fn reshape_matches_ndarray(
        (a, c) in array_case(6),
        picks in prop::collection::vec(0usize..16, 0..3),
    ) {
        let x = from_array(a.clone(), c).unwrap();
        let target = factor(a.len(), &picks);
        let expected = a.clone().into_shape_with_order(ndarray::IxDyn(&target)).unwrap();
        let y = x.reshape(&target).unwrap();
        prop_assert_eq!(y.shape(), &target[..]);
        assert_exact(&y, &expected);
        assert_exact(&y.reshape(a.shape()).unwrap(), &a);
    }
}

#[test]
fn take_compress_and_reshape_errors() {
    let x = from_array(ArrayD::<f64>::zeros(ndarray::IxDyn(&[4, 5])), 2).unwrap();
    assert!(matches!(
        x.take(&[0, 5], 1),
        Err(Error::IndexOutOfBounds {
            axis: 1,
            index: 5,
            dim: 5
        })
    ));
    assert!(matches!(x.take(&[0], 2), Err(Error::AxisOutOfRange { .. })));
    assert!(matches!(
        x.index_axis(0, 4),
        Err(Error::IndexOutOfBounds {
            axis: 0,
            index: 4,
            dim: 4
        })
    ));
    assert!(matches!(
        x.index_axis(2, 0),
        Err(Error::AxisOutOfRange { .. })
    ));
    assert!(matches!(
        x.compress(&[true; 3], 0),
        Err(Error::MaskLength {
            expected: 4,
            found: 3,
            ..
        })
    ));
    let err = x.reshape(&[3, 7]).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { op: "reshape", .. }));
    assert!(err.to_string().contains("(4, 5) and (3, 7)"), "{err}");
    // Reshape to and from 0-d and empty arrays.
    let one = from_array(ArrayD::from_elem(ndarray::IxDyn(&[1, 1]), 3.0), 1).unwrap();
    assert_exact(
        &one.reshape(&[]).unwrap(),
        &ArrayD::from_elem(ndarray::IxDyn(&[]), 3.0),
    );
    let empty = dask_array::zeros::<f64>(&[0, 4], 2).unwrap();
    assert_exact(
        &empty.reshape(&[2, 0]).unwrap(),
        &ArrayD::zeros(ndarray::IxDyn(&[2, 0])),
    );
}

#[test]
fn rechunk_plan_bounds_memory_per_task() {
    let a = ArrayD::from_shape_fn(ndarray::IxDyn(&[8, 8]), |i| (i[0] * 8 + i[1]) as f64);
    // Row blocks to column blocks: every new block overlaps every old block partly.
    let x = from_array(a.clone(), [2, 8]).unwrap();
    let y = x.rechunk([8, 2]).unwrap();
    assert_exact(&y, &a);
    let hlg = dask_core::Collection::graph(&y);
    let split = hlg
        .layers()
        .find(|(n, _)| n.starts_with("rechunk-split"))
        .expect("a split layer")
        .1;
    // Each split task reads one old block and is a 2x2 piece of it.
    assert_eq!(split.graph.len(), 16);
    for (_, t) in split.graph.iter() {
        assert_eq!(t.dependencies().len(), 1);
    }
    // Each merge task reads only pieces (4 of them), never whole old blocks.
    let merge = hlg.layer(y.name()).unwrap();
    for (_, t) in merge.graph.iter() {
        let deps = t.dependencies();
        assert_eq!(deps.len(), 4);
        assert!(deps.iter().all(|k| k.name().starts_with("rechunk-split")));
    }
    // Merging whole blocks needs no split; equal chunks are the same array.
    let z = x.rechunk([4, 8]).unwrap();
    assert!(dask_core::Collection::graph(&z)
        .layers()
        .all(|(n, _)| !n.starts_with("rechunk-split")));
    assert_exact(&z, &a);
    assert_eq!(x.rechunk([2, 8]).unwrap().name(), x.name());
}
