use dask_array::{ChunkSpec, Chunks, Error};

#[test]
fn regular_chunks_end_with_the_remainder() {
    let c = Chunks::new(&[7, 4], 3).unwrap();
    assert_eq!(c.axes(), &[vec![3, 3, 1], vec![3, 1]]);
    assert_eq!(c.numblocks(), vec![3, 2]);
    assert_eq!(c.npartitions(), 6);
    assert_eq!(c.chunksize(), vec![3, 3]);
    assert_eq!(c.shape(), vec![7, 4]);
    assert_eq!(c.to_string(), "((3, 3, 1), (3, 1))");
}

#[test]
fn per_axis_and_explicit_chunks() {
    let c = Chunks::new(&[7, 4], [7, 2]).unwrap();
    assert_eq!(c.axes(), &[vec![7], vec![2, 2]]);
    let c = Chunks::new(&[7, 4], vec![vec![1, 6], vec![4]]).unwrap();
    assert_eq!(c.axes(), &[vec![1, 6], vec![4]]);
    assert!(!c.is_regular());
    assert_eq!(c.offsets(0), vec![0, 1, 7]);
    assert_eq!(c.block_shape(&[1, 0]), vec![6, 4]);
    assert_eq!(c.block_indices(), vec![vec![0, 0], vec![1, 0]]);
    // A chunk larger than the axis is one block.
    assert_eq!(Chunks::new(&[3], 10).unwrap().axes(), &[vec![3]]);
}

#[test]
fn zero_length_axes_have_one_empty_block() {
    let c = Chunks::new(&[0, 3], 2).unwrap();
    assert_eq!(c.axes(), &[vec![0], vec![2, 1]]);
    assert_eq!(c.npartitions(), 2);
}

#[test]
fn chunks_that_do_not_sum_to_the_shape_are_rejected() {
    let err = Chunks::new(&[5, 4], vec![vec![2, 2], vec![4]]).unwrap_err();
    assert!(matches!(
        err,
        Error::ChunksDoNotSumToShape {
            axis: 0,
            sum: 4,
            dim: 5,
            ..
        }
    ));
    let msg = err.to_string();
    assert!(msg.contains("[2, 2]") && msg.contains("length 5"), "{msg}");
}

#[test]
fn zero_chunk_sizes_are_rejected() {
    assert!(matches!(
        Chunks::new(&[5], 0),
        Err(Error::ZeroChunkSize { axis: 0, dim: 5 })
    ));
    assert!(matches!(
        Chunks::new(&[5, 2], [2, 0]),
        Err(Error::ZeroChunkSize { axis: 1, .. })
    ));
    assert!(matches!(
        Chunks::new(&[5], vec![vec![5, 0]]),
        Err(Error::ZeroChunkSize { .. })
    ));
}

#[test]
fn chunks_for_the_wrong_number_of_axes_are_rejected() {
    let err = Chunks::new(&[5, 4], ChunkSpec::PerAxis(vec![2])).unwrap_err();
    assert!(matches!(
        err,
        Error::ChunksNdim {
            expected: 2,
            found: 1,
            ..
        }
    ));
    assert!(err.to_string().contains("(5, 4)"));
}
