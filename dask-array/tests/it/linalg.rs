use dask_array::{from_array, Error};
use ndarray::{Array2, ArrayD, Axis, Ix2};
use proptest::prelude::*;

use crate::common::*;

fn matrices() -> BoxedStrategy<PairCase> {
    (1usize..7, 1usize..7, 1usize..7)
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
