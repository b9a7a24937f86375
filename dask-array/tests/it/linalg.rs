use dask_array::{from_array, Collection, Error};
use ndarray::{Array2, ArrayD, Axis, Ix2};
use proptest::prelude::*;
use std::ops::Range;

use crate::common::*;

/// An `m x k` and a `k x n` matrix with random chunks, the sizes drawn from
/// the ranges.
fn matrix_pairs(m: Range<usize>, k: Range<usize>, n: Range<usize>) -> BoxedStrategy<PairCase> {
    (m, k, n)
        .prop_flat_map(|(m, k, n)| {
            (
                data(&[m, k]),
                chunks(&[m, k]),
                data(&[k, n]),
                chunks(&[k, n]),
            )
        })
        .boxed()
}

fn matrices() -> BoxedStrategy<PairCase> {
    matrix_pairs(1..7, 1..7, 1..7)
}

/// Matrices big enough for the packed `f64` kernel (at least 8 rows, 16
/// inner and 24 output columns), so that single blocks and large random
/// blocks take it and small random blocks take ndarray's.
fn big_matrices() -> BoxedStrategy<PairCase> {
    matrix_pairs(8..60, 16..50, 24..70)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..config() })]

    /// General and Gram products (`x . x.T`, `x.T . x`), in random chunks
    /// and in one block each, against ndarray.
    #[test]
    fn products_on_the_packed_kernel_match_ndarray((a, ca, b, cb) in big_matrices()) {
        let a2 = a.clone().into_dimensionality::<Ix2>().unwrap();
        let b2 = b.clone().into_dimensionality::<Ix2>().unwrap();
        let whole = |v: &ArrayD<f64>| v.shape().to_vec();
        for (x, y) in [
            (from_array(a.clone(), ca).unwrap(), from_array(b.clone(), cb).unwrap()),
            (from_array(a.clone(), whole(&a)).unwrap(), from_array(b.clone(), whole(&b)).unwrap()),
        ] {
            assert_close(&x.matmul(&y).unwrap(), &a2.dot(&b2).into_dyn());
            assert_close(&x.matmul(&x.t()).unwrap(), &a2.dot(&a2.t()).into_dyn());
            assert_close(&x.t().matmul(&x).unwrap(), &a2.t().dot(&a2).into_dyn());
            assert_close(&y.t().matmul(&y).unwrap(), &b2.t().dot(&b2).into_dyn());
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn matmul_matches_ndarray((a, ca, b, cb) in matrices()) {
        let x = from_array(a.clone(), ca).unwrap();
        let y = from_array(b.clone(), cb).unwrap();
        let a2 = a.clone().into_dimensionality::<Ix2>().unwrap();
        let b2 = b.clone().into_dimensionality::<Ix2>().unwrap();
        let expected: Array2<f64> = a2.dot(&b2);
        assert_close(&x.matmul(&y).unwrap(), &expected.clone().into_dyn());
        assert_close(&x.dot(&x.t()).unwrap(), &a2.dot(&a2.t()).into_dyn());
        // tensordot over every pair of axes, against ndarray's dot of transposes.
        assert_close(&x.tensordot(&y, (1, 0)).unwrap(), &expected.clone().into_dyn());
        assert_close(&x.tensordot(&x, (0, 0)).unwrap(), &a2.t().dot(&a2).into_dyn());
        assert_close(&x.tensordot(&x, (1, 1)).unwrap(), &a2.dot(&a2.t()).into_dyn());
        assert_close(&y.tensordot(&y, (1, 1)).unwrap(), &b2.dot(&b2.t()).into_dyn());
    }

    #[test]
    fn cumsum_and_cumprod_match_ndarray(
        (a, c, axis) in array_case(6).prop_flat_map(|(a, c)| {
            let n = a.ndim();
            (Just(a), Just(c), 0..n)
        })
    ) {
        let x = from_array(a.clone(), c).unwrap();
        let mut expected = a.clone();
        expected.accumulate_axis_inplace(Axis(axis), |&prev, cur| *cur += prev);
        assert_close(&x.cumsum(axis).unwrap(), &expected);
        let small = a.mapv(|v| v / 8.0);
        let xs = from_array(small.clone(), x.chunks().clone()).unwrap();
        let mut expected = small;
        expected.accumulate_axis_inplace(Axis(axis), |&prev, cur| *cur *= prev);
        assert_close(&xs.cumprod(axis).unwrap(), &expected);
    }
}

#[test]
fn integer_matmul_and_cumsum_are_exact() {
    let a = ArrayD::from_shape_fn(ndarray::IxDyn(&[5, 4]), |i| (i[0] * 4 + i[1]) as i64 - 6);
    let x = from_array(a.clone(), [2, 3]).unwrap();
    let a2 = a.clone().into_dimensionality::<Ix2>().unwrap();
    assert_exact(&x.matmul(&x.t()).unwrap(), &a2.dot(&a2.t()).into_dyn());
    let mut expected = a.clone();
    expected.accumulate_axis_inplace(Axis(1), |&prev, cur| *cur += prev);
    assert_exact(&x.cumsum(1).unwrap(), &expected);
}

/// `x . x.T` and `x.T . x` multiply only the blocks on and above the
/// diagonal; the others are transposes of their mirror, and the result is
/// exact (integers) on every scheduler.
#[test]
fn gram_products_multiply_only_the_upper_blocks() {
    let a = ArrayD::from_shape_fn(ndarray::IxDyn(&[12, 6]), |i| {
        ((i[0] * 6 + i[1]) % 7) as i64 - 3
    });
    let a2 = a.clone().into_dimensionality::<Ix2>().unwrap();
    let x = from_array(a.clone(), [3, 2]).unwrap(); // 4 x 3 blocks
    for (y, expected, side) in [
        (x.matmul(&x.t()).unwrap(), a2.dot(&a2.t()), 4),
        (x.t().matmul(&x).unwrap(), a2.t().dot(&a2), 3),
    ] {
        let graph = y.graph().to_graph();
        let count = |op: &str| graph.iter().filter(|(_, t)| t.op.name() == op).count();
        assert_eq!(count("dask_array::matmul"), side * (side + 1) / 2, "{y}");
        assert_eq!(count("dask_array::transpose"), side * (side - 1) / 2, "{y}");
        assert_exact(&y, &expected.into_dyn());
    }
    // A product with another array stays general: every block multiplies.
    let z = from_array(a.mapv(|v| v + 1), [3, 2]).unwrap();
    let general = x.matmul(&z.t()).unwrap();
    let graph = general.graph().to_graph();
    assert_eq!(
        graph
            .iter()
            .filter(|(_, t)| t.op.name() == "dask_array::matmul")
            .count(),
        16
    );
    assert_exact(&general, &a2.dot(&a2.mapv(|v| v + 1).t()).into_dyn());
}

/// `f32` takes its own packed kernel (48-column panels): integer data make
/// every order of summation exact, for general and Gram products.
#[test]
fn f32_products_on_the_packed_kernel_are_exact_on_integers() {
    let a = ArrayD::from_shape_fn(ndarray::IxDyn(&[40, 70]), |i| {
        ((i[0] * 5 + i[1] * 3) % 9) as f32 - 4.0
    });
    let a2 = a.clone().into_dimensionality::<Ix2>().unwrap();
    let b2 = a2.t().mapv(|v| v + 1.0);
    for (ca, cb) in [([40, 70], [70, 40]), ([16, 30], [30, 24])] {
        let x = from_array(a.clone(), ca).unwrap();
        let y = from_array(b2.clone().into_dyn(), cb).unwrap();
        assert_exact(&x.matmul(&y).unwrap(), &a2.dot(&b2).into_dyn());
        assert_exact(&x.matmul(&x.t()).unwrap(), &a2.dot(&a2.t()).into_dyn());
        assert_exact(&x.t().matmul(&x).unwrap(), &a2.t().dot(&a2).into_dyn());
    }
}

#[test]
fn matmul_shape_mismatch() {
    let x = from_array(ArrayD::<f64>::zeros(ndarray::IxDyn(&[3, 4])), 2).unwrap();
    let err = x.matmul(&x).unwrap_err();
    assert!(matches!(err, Error::MatmulShapes { .. }));
    let msg = err.to_string();
    assert!(msg.contains("(3, 4) and (3, 4)"), "{msg}");
    let v = from_array(ArrayD::<f64>::zeros(ndarray::IxDyn(&[4])), 2).unwrap();
    assert!(matches!(x.dot(&v), Err(Error::MatmulShapes { .. })));
    assert!(matches!(x.cumsum(2), Err(Error::AxisOutOfRange { .. })));
    assert!(matches!(
        x.tensordot(&x, (0, 1)),
        Err(Error::MatmulShapes { .. })
    ));
    assert!(matches!(
        x.tensordot(&x, (2, 1)),
        Err(Error::AxisOutOfRange { .. })
    ));
    assert!(matches!(
        x.tensordot(&v, (1, 0)),
        Err(Error::MatmulShapes { .. })
    ));
}
