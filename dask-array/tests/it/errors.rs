//! Bad input gives typed errors when the expression is built.

use dask_array::{concatenate, from_array, ones, stack, zeros, Error, Reduce};

#[test]
fn incompatible_broadcast_names_both_shapes() {
    let x = ones::<f64>(&[3, 4], 2).unwrap();
    let y = ones::<f64>(&[5], 2).unwrap();
    let err = (&x + &y).unwrap_err();
    assert!(matches!(err, Error::Broadcast { .. }));
    assert!(
        err.to_string()
            .starts_with("cannot broadcast shapes (3, 4) and (5,)"),
        "{err}"
    );
    assert!(x.greater(&y).is_err());
    assert!(x.zip_with(&y, |a, b| a + b).is_err());
}

#[test]
fn axis_out_of_range() {
    let x = ones::<f64>(&[3, 4], 2).unwrap();
    for r in [x.sum(2), x.max(5), x.prod(Reduce::axis(2))] {
        let err = r.unwrap_err();
        assert!(
            matches!(
                err,
                Error::AxisOutOfRange {
                    axis: _,
                    ndim: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("(3, 4)"), "{err}");
    }
    assert!(matches!(x.argmin(2), Err(Error::AxisOutOfRange { .. })));
    assert!(matches!(x.mean(3), Err(Error::AxisOutOfRange { .. })));
    assert!(matches!(
        concatenate(&[&x, &x], 2),
        Err(Error::AxisOutOfRange { .. })
    ));
    assert!(matches!(
        stack(&[&x, &x], 3),
        Err(Error::AxisOutOfRange { .. })
    ));
}

#[test]
fn bad_chunks_when_creating() {
    let a = ndarray::Array2::<f64>::zeros((4, 4));
    assert!(matches!(
        from_array(a.clone(), vec![vec![2, 1], vec![4]]),
        Err(Error::ChunksDoNotSumToShape { .. })
    ));
    assert!(matches!(
        from_array(a.clone(), 0),
        Err(Error::ZeroChunkSize { .. })
    ));
    assert!(matches!(
        zeros::<f64>(&[4], [1, 1]),
        Err(Error::ChunksNdim { .. })
    ));
    let x = from_array(a, 2).unwrap();
    assert!(matches!(
        x.rechunk(vec![vec![3], vec![4]]),
        Err(Error::ChunksDoNotSumToShape { .. })
    ));
}

#[test]
fn bad_reduction_arguments() {
    let x = ones::<f64>(&[3, 4], 2).unwrap();
    assert!(matches!(
        x.sum(Reduce::all().split_every(1)),
        Err(Error::InvalidArgument {
            param: "split_every",
            ..
        })
    ));
    let empty = zeros::<f64>(&[0, 4], 2).unwrap();
    assert!(matches!(empty.min(None), Err(Error::EmptyReduction { .. })));
    assert!(matches!(empty.argmax(0), Err(Error::EmptyReduction { .. })));
    assert!(
        empty.max(1).is_ok(),
        "reducing a non-empty axis of an empty array is fine"
    );
}

#[test]
fn bad_creation_arguments() {
    assert!(matches!(
        dask_array::arange(0i64, 10, 0, 2),
        Err(Error::InvalidArgument { param: "step", .. })
    ));
    assert!(dask_array::arange(0.0, 1.0, f64::NAN, 2).is_err());
    assert!(dask_array::random::normal(0.0, -1.0, &[3], 2, 0).is_err());
    assert!(dask_array::random::uniform(1.0, 0.0, &[3], 2, 0).is_err());
}

#[test]
fn concatenate_and_stack_shape_mismatches() {
    let x = ones::<f64>(&[3, 4], 2).unwrap();
    let y = ones::<f64>(&[3, 5], 2).unwrap();
    let err = concatenate(&[&x, &y], 0).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }));
    assert!(
        err.to_string().contains("(3, 4)") && err.to_string().contains("(3, 5)"),
        "{err}"
    );
    assert!(concatenate(&[&x, &y], 1).is_ok());
    assert!(matches!(
        stack(&[&x, &y], 0),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        concatenate::<f64>(&[], 0),
        Err(Error::NoArrays { .. })
    ));
    assert!(matches!(
        dask_array::blockwise::<f64, f64>(&[], |v| v[0]),
        Err(Error::NoArrays { .. })
    ));
}
