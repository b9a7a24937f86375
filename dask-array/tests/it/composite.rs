//! Expressions mixing fused elementwise layers, transposes, slices, rechunks
//! and reductions, checked against ndarray doing the same on whole arrays.

use dask_array::{from_array, Reduce, Slice};
use ndarray::{ArrayD, Axis, IxDyn};
use proptest::prelude::*;

use crate::common::*;

type SquareCase = (
    ArrayD<f64>,
    Vec<Vec<usize>>,
    ArrayD<f64>,
    Vec<Vec<usize>>,
    Vec<Vec<usize>>,
);

fn squares() -> BoxedStrategy<SquareCase> {
    (1usize..7)
        .prop_flat_map(|n| {
            let s = [n, n];
            (data(&s), chunks(&s), data(&s), chunks(&s), chunks(&s))
        })
        .boxed()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mixed_expressions_match_ndarray(
        (a, ca, b, cb, cc) in squares(),
        step in 1isize..3,
        axis in 0usize..2,
        split in 2usize..5,
    ) {
        let x = from_array(a.clone(), ca).unwrap();
        let y = from_array(b.clone(), cb).unwrap();
        // ((x * 2 + y.T) - x.sqrt-ish) sliced with a step, rechunked, reduced.
        let e = ((&x * 2.0).unwrap() + &y.t()).unwrap();
        let e = (&e - &x.abs().sqrt()).unwrap();
        let e = e.slice(&[Slice::new(0, None, step)]).unwrap();
        let expected = (&a * 2.0 + &b.t() - a.mapv(|v| v.abs().sqrt()))
            .slice_each_axis(|ax| if ax.axis.index() == 0 { Slice::new(0, None, step) } else { Slice::from(..) })
            .to_owned();
        assert_close(&e, &expected);
        let r = e.rechunk(vec![e.chunks().axis(0).to_vec(), cc[1].clone()]).unwrap();
        assert_close(&r, &expected);
        let s = r.sum(Reduce::axis(axis).split_every(split)).unwrap();
        assert_close(&s, &expected.sum_axis(Axis(axis)));
        let m = r.mean(None).unwrap();
        assert_close(&m, &ArrayD::from_elem(IxDyn(&[]), expected.mean().unwrap()));
        let c = r.cumsum(axis).unwrap();
        let mut ec = expected.clone();
        ec.accumulate_axis_inplace(Axis(axis), |&p, v| *v += p);
        assert_close(&c, &ec);
        // Matrix product of the expression with itself transposed.
        let mm = r.matmul(&r.t()).unwrap();
        let e2 = expected.clone().into_dimensionality::<ndarray::Ix2>().unwrap();
        assert_close(&mm, &e2.dot(&e2.t()).into_dyn());
    }
}
