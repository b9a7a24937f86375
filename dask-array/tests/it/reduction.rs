use dask_array::{from_array, full, Array, Collection, Reduce};
use ndarray::{ArrayD, Axis, IxDyn};
use proptest::prelude::*;

use crate::common::*;

/// A case and an axis to reduce (None: all), and a split_every.
type ReduceCase = (ArrayD<f64>, Vec<Vec<usize>>, Option<usize>, usize);

fn reduce_case() -> BoxedStrategy<ReduceCase> {
    array_case(6)
        .prop_flat_map(|(a, c)| {
            let nd = a.ndim();
            (Just(a), Just(c), prop::option::of(0..nd), 2usize..6)
        })
        .boxed()
}

fn how(axis: Option<usize>, split: usize) -> Reduce {
    Reduce::from(axis).split_every(split)
}

/// The ndarray oracle: `f` over the lanes of `axis`, or over everything.
fn oracle<R: Clone>(a: &ArrayD<f64>, axis: Option<usize>, f: impl Fn(&[f64]) -> R) -> ArrayD<R> {
    match axis {
        None => ArrayD::from_elem(IxDyn(&[]), f(&a.iter().copied().collect::<Vec<_>>())),
        Some(k) => a.map_axis(Axis(k), |lane| f(&lane.to_vec())),
    }
}

fn var(v: &[f64], ddof: usize) -> f64 {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - ddof as f64)
}

fn first_index(v: &[f64], better: fn(f64, f64) -> bool) -> i64 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if better(v[best], x) {
            best = i;
        }
    }
    best as i64
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn float_reductions_match_ndarray((a, c, axis, split) in reduce_case()) {
        let x = from_array(a.clone(), c).unwrap();
        let h = how(axis, split);
        assert_close(&x.sum(h).unwrap(), &oracle(&a, axis, |v| v.iter().sum()));
        let small = a.mapv(|v| v / 8.0);
        let xs = from_array(small.clone(), x.chunks().clone()).unwrap();
        assert_close(&xs.prod(h).unwrap(), &oracle(&small, axis, |v| v.iter().product()));
        assert_close(&x.min(h).unwrap(), &oracle(&a, axis, |v| v.iter().copied().fold(f64::INFINITY, f64::min)));
        assert_close(&x.max(h).unwrap(), &oracle(&a, axis, |v| v.iter().copied().fold(f64::NEG_INFINITY, f64::max)));
        assert_close(&x.mean(h).unwrap(), &oracle(&a, axis, |v| v.iter().sum::<f64>() / v.len() as f64));
        assert_close(&x.var(h).unwrap(), &oracle(&a, axis, |v| var(v, 0)));
        assert_close(&x.var(h.ddof(1)).unwrap(), &oracle(&a, axis, |v| var(v, 1)));
        assert_close(&x.std(h).unwrap(), &oracle(&a, axis, |v| var(v, 0).sqrt()));
        assert_exact(&x.argmin(h).unwrap(), &oracle(&a, axis, |v| first_index(v, |b, x| x < b)));
        assert_exact(&x.argmax(h).unwrap(), &oracle(&a, axis, |v| first_index(v, |b, x| x > b)));
    }

    #[test]
    fn bool_and_integer_reductions_match_ndarray((a, c, axis, split) in reduce_case()) {
        let h = how(axis, split);
        let ints = a.mapv(|v| v.round() as i64);
        let xi = from_array(ints.clone(), c.clone()).unwrap();
        let expected_sum = match axis {
            None => ArrayD::from_elem(IxDyn(&[]), ints.sum()),
            Some(k) => ints.sum_axis(Axis(k)),
        };
        assert_exact(&xi.sum(h).unwrap(), &expected_sum);
        let expected_max = oracle(&a.mapv(|v| v.round()), axis, |v| v.iter().copied().fold(f64::NEG_INFINITY, f64::max) as i64);
        assert_exact(&xi.max(h).unwrap(), &expected_max);
        let b = a.mapv(|v| v > 5.0);
        let xb = from_array(b, c).unwrap();
        assert_exact(&xb.any(h).unwrap(), &oracle(&a, axis, |v| v.iter().any(|&x| x > 5.0)));
        assert_exact(&xb.all(h).unwrap(), &oracle(&a, axis, |v| v.iter().all(|&x| x > 5.0)));
    }
}

#[test]
fn full_reductions_are_zero_dimensional() {
    let a = ArrayD::from_shape_fn(IxDyn(&[5, 7]), |i| (i[0] * 7 + i[1]) as f64);
    let x = from_array(a.clone(), 2).unwrap();
    let s = x.sum(None).unwrap();
    assert_eq!(s.ndim(), 0);
    assert_eq!(s.shape(), &[] as &[usize]);
    assert_eq!(scalar(&s), a.sum());
}

#[test]
fn split_every_bounds_the_tree() {
    // 16 blocks along one axis, split_every 2: partial levels 16 -> 8 -> 4 -> 2 -> final.
    let x: Array<f64> = full(&[16], 1.0, 1).unwrap();
    let s = x.sum(Reduce::all().split_every(2)).unwrap();
    let names: Vec<String> = s.graph().layers().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("sum-partial"))
            .count(),
        3,
        "{names:?}"
    );
    assert_eq!(scalar(&s), 16.0);
    // With a wide tree: one final combine.
    let s = x.sum(Reduce::all().split_every(16)).unwrap();
    assert_eq!(s.graph().layers().count(), 3); // data, chunk, final
                                               // Every combine task reads at most split_every partials.
    let s = x.sum(Reduce::all().split_every(3)).unwrap();
    for (_, t) in s.graph().to_graph().iter() {
        assert!(t.dependencies().len() <= 3);
    }
    assert_eq!(scalar(&s), 16.0);
}

#[test]
fn nan_propagates_through_min_max_and_arg() {
    let a = ndarray::arr1(&[1.0, f64::NAN, -3.0, 0.5, f64::NAN]).into_dyn();
    let x = from_array(a, 2).unwrap();
    assert!(scalar(&x.min(None).unwrap()).is_nan());
    assert!(scalar(&x.max(None).unwrap()).is_nan());
    assert_eq!(scalar(&x.argmin(None).unwrap()), 1);
    assert_eq!(scalar(&x.argmax(None).unwrap()), 1);
}

#[test]
fn reductions_over_empty_axes() {
    let x = dask_array::zeros::<f64>(&[0, 3], 2).unwrap();
    assert_exact(&x.sum(0).unwrap(), &ArrayD::zeros(IxDyn(&[3])));
    assert_exact(&x.sum(1).unwrap(), &ArrayD::zeros(IxDyn(&[0])));
    assert_exact(&x.prod(None).unwrap(), &ArrayD::from_elem(IxDyn(&[]), 1.0));
    assert!(sync(&x.mean(0).unwrap()).iter().all(|v| v.is_nan()));
}

/// The ndarray oracle for several axes: the elements of each output position
/// gathered by walking the whole array.
fn oracle_axes<R: Clone>(a: &ArrayD<f64>, axes: &[usize], f: impl Fn(&[f64]) -> R) -> ArrayD<R> {
    let kept: Vec<usize> = (0..a.ndim()).filter(|k| !axes.contains(k)).collect();
    let mut groups: std::collections::BTreeMap<Vec<usize>, Vec<f64>> = Default::default();
    for (idx, &v) in a.indexed_iter() {
        let key: Vec<usize> = kept.iter().map(|&k| idx[k]).collect();
        groups.entry(key).or_default().push(v);
    }
    let shape: Vec<usize> = kept.iter().map(|&k| a.shape()[k]).collect();
    let values: Vec<R> = groups.values().map(|v| f(v)).collect();
    ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn reductions_over_several_axes_match_ndarray(
        (a, c, mask) in array_case(5).prop_flat_map(|(a, c)| {
            let n = a.ndim();
            (Just(a), Just(c), prop::collection::vec(any::<bool>(), n))
        }),
        split in 2usize..5,
    ) {
        let axes: Vec<usize> = (0..mask.len()).filter(|&k| mask[k]).collect();
        let x = from_array(a.clone(), c).unwrap();
        let h = Reduce::axes(&axes).split_every(split);
        assert_close(&x.sum(h).unwrap(), &oracle_axes(&a, &axes, |v| v.iter().sum()));
        assert_close(&x.max(h).unwrap(), &oracle_axes(&a, &axes, |v| v.iter().copied().fold(f64::NEG_INFINITY, f64::max)));
        assert_close(&x.mean(h).unwrap(), &oracle_axes(&a, &axes, |v| v.iter().sum::<f64>() / v.len() as f64));
        assert_close(&x.var(h).unwrap(), &oracle_axes(&a, &axes, |v| var(v, 0)));
        let b = from_array(a.mapv(|v| v > 0.0), x.chunks().clone()).unwrap();
        assert_exact(&b.all(h).unwrap(), &oracle_axes(&a, &axes, |v| v.iter().all(|&x| x > 0.0)));
    }
}

#[test]
fn several_axes_errors() {
    let x = dask_array::ones::<f64>(&[2, 3, 4], 2).unwrap();
    assert!(matches!(
        x.sum([0, 0]),
        Err(dask_array::Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        x.sum([0, 3]),
        Err(dask_array::Error::AxisOutOfRange { .. })
    ));
    assert!(matches!(
        x.sum([70]),
        Err(dask_array::Error::AxisOutOfRange { .. })
    ));
    assert!(matches!(
        x.argmin([0, 1]),
        Err(dask_array::Error::InvalidArgument { .. })
    ));
    assert_eq!(x.sum([0, 2]).unwrap().shape(), &[3]);
    assert_eq!(x.sum([0, 1, 2]).unwrap().ndim(), 0);
    assert_eq!(Reduce::axes(&[2, 0]).reduced_axes(), Some(vec![0, 2]));
}

/// Two 2-D operands of one logical shape, its chunks, which operands are
/// stored transposed, the arithmetic op (0..4: + - * /), the fold (0..5:
/// sum, prod, min, max, mean), the axis (None: all) and split_every.
type FusedCase = (
    ArrayD<f64>,
    ArrayD<f64>,
    Vec<Vec<usize>>,
    [bool; 2],
    usize,
    usize,
    Option<usize>,
    usize,
);

/// Shapes up to 40 x 40, so blocks hold whole 8 x 8 squares and ragged edges.
fn fused_case() -> BoxedStrategy<FusedCase> {
    (1usize..=40, 1usize..=40)
        .prop_flat_map(|(r, c)| {
            (
                data(&[r, c]),
                data(&[r, c]),
                chunks(&[r, c]),
                any::<[bool; 2]>(),
                0usize..4,
                0usize..5,
                prop::option::of(0usize..2),
                2usize..6,
            )
        })
        .boxed()
}

/// `logical` as an array: stored as is, or stored transposed (with the
/// chunks swapped) and viewed through `.t()`.
fn operand(logical: &ArrayD<f64>, chunks: &[Vec<usize>], transposed: bool) -> Array<f64> {
    if transposed {
        let stored = logical.t().as_standard_layout().into_owned();
        let swapped = vec![chunks[1].clone(), chunks[0].clone()];
        from_array(stored, swapped).unwrap().t()
    } else {
        from_array(logical.clone(), chunks.to_vec()).unwrap()
    }
}

/// `x op y` (0..4: + - * /) and ndarray's `a op b` on the same values.
fn arith(
    x: &Array<f64>,
    y: &Array<f64>,
    a: &ArrayD<f64>,
    b: &ArrayD<f64>,
    op: usize,
) -> (Array<f64>, ArrayD<f64>) {
    match op {
        0 => ((x + y).unwrap(), a + b),
        1 => ((x - y).unwrap(), a - b),
        2 => ((x * y).unwrap(), a * b),
        _ => ((x / y).unwrap(), a / b),
    }
}

/// The fold (0..5: sum, prod, min, max, mean) of `e` and its ndarray oracle on `whole`.
fn fold_of(
    e: &Array<f64>,
    whole: &ArrayD<f64>,
    fold: usize,
    axis: Option<usize>,
    split: usize,
) -> (Array<f64>, ArrayD<f64>) {
    let h = how(axis, split);
    match fold {
        0 => (e.sum(h).unwrap(), oracle(whole, axis, |v| v.iter().sum())),
        1 => (
            e.prod(h).unwrap(),
            oracle(whole, axis, |v| v.iter().product()),
        ),
        2 => (
            e.min(h).unwrap(),
            oracle(whole, axis, |v| {
                v.iter().copied().fold(f64::INFINITY, f64::min)
            }),
        ),
        3 => (
            e.max(h).unwrap(),
            oracle(whole, axis, |v| {
                v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            }),
        ),
        _ => (
            e.mean(h).unwrap(),
            oracle(whole, axis, |v| v.iter().sum::<f64>() / v.len() as f64),
        ),
    }
}

proptest! {
    #![proptest_config(config())]

    /// A fold of `a op b`, with either operand read through a transpose,
    /// runs as one fused chunk task per block (`dask_array::fused`: no
    /// transposed copy, no `a op b` block) and matches ndarray.
    #[test]
    fn fused_folds_of_arithmetic_match_ndarray(
        (a, b, c, transposed, op, fold, axis, split) in fused_case()
    ) {
        // Products stay finite near 1; divisors stay away from 0.
        let near_one = |v: f64| 1.0 + v / 200.0;
        let (a, b) = if fold == 1 { (a.mapv(near_one), b.mapv(near_one)) } else { (a, b) };
        let b = if op == 3 { b.mapv(|v| if v < 0.0 { v - 0.5 } else { v + 0.5 }) } else { b };
        let (x, y) = (operand(&a, &c, transposed[0]), operand(&b, &c, transposed[1]));
        let (e, whole) = arith(&x, &y, &a, &b, op);
        let (r, want) = fold_of(&e, &whole, fold, axis, split);
        for (key, task) in r.optimized_graph().unwrap().iter() {
            let shown = format!("{task:?}");
            prop_assert!(!shown.contains("transpose") && !shown.contains("\"dask_array::add\""), "{key:?} not fused: {shown}");
        }
        assert_close(&r, &want);
    }
}

proptest! {
    #![proptest_config(config())]

    /// `x op x.T` folded over everything, with the same chunks on both axes:
    /// the chunk tasks of mirrored blocks pair up (one folds both, the other
    /// is the identity) and the result still matches ndarray.
    #[test]
    fn mirrored_folds_match_ndarray(
        (a, c, op, fold, split) in (1usize..=40).prop_flat_map(|n| {
            (data(&[n, n]), axis_chunks(n), 0usize..4, 0usize..5, 2usize..6)
        })
    ) {
        let a = if fold == 1 { a.mapv(|v| 1.0 + v / 200.0) } else { a };
        let a = if op == 3 { a.mapv(|v| if v < 0.0 { v - 0.5 } else { v + 0.5 }) } else { a };
        let x = from_array(a.clone(), vec![c.clone(), c.clone()]).unwrap();
        let at = a.t().to_owned();
        let (e, whole) = arith(&x, &x.t(), &a, &at, op);
        let (r, want) = fold_of(&e, &whole, fold, None, split);
        assert_close(&r, &want);
    }
}

/// The chunk tasks (keys named `prefix...`) of `graph`: how many, and how
/// many of them are literals.
fn chunk_tasks(graph: &dask_core::Graph, prefix: &str) -> (usize, usize) {
    let chunks: Vec<_> = graph
        .iter()
        .filter(|(k, _)| k.name().starts_with(prefix))
        .collect();
    let literals = chunks.iter().filter(|(_, t)| t.as_data().is_some()).count();
    (chunks.len(), literals)
}

/// In `(x + x.T).sum()` on 3 x 3 blocks, the 3 pairs of mirrored chunk tasks
/// become one task reading both blocks and one identity literal each.
#[test]
fn mirrored_chunk_tasks_pair_up() {
    let a = ArrayD::from_shape_fn(IxDyn(&[9, 9]), |i| (i[0] * 9 + i[1]) as f64);
    let x = from_array(a.clone(), 3).unwrap();
    let total = (&x + &x.t()).unwrap().sum(None).unwrap();
    assert_eq!(chunk_tasks(&total.graph().to_graph(), "sum-chunk"), (9, 3));
    assert_close(&total, &ArrayD::from_elem(IxDyn(&[]), 2.0 * a.sum()));
    // The sum over one axis keeps every position: nothing pairs.
    let rows = (&x + &x.t()).unwrap().sum(0).unwrap();
    assert_eq!(chunk_tasks(&rows.graph().to_graph(), "sum-chunk"), (9, 0));
    assert_close(&rows, &(&a + &a.t()).sum_axis(ndarray::Axis(0)));
    // A mean pairs its chunk tasks too; the partner is an empty partial.
    let mean = (&x + &x.t()).unwrap().mean(None).unwrap();
    assert_eq!(chunk_tasks(&mean.graph().to_graph(), "mean-chunk"), (9, 3));
    assert_close(&mean, &ArrayD::from_elem(IxDyn(&[]), 2.0 * a.sum() / 81.0));
}
