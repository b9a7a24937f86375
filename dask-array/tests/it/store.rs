use std::path::PathBuf;

use dask_array::store::{decode_npy, encode_npy, from_npy_dir};
use dask_array::{from_array, Collection, Error};
use ndarray::ArrayD;
use proptest::prelude::*;

use crate::common::*;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("dask-array-it-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn npy_encoding_follows_the_numpy_format_spec() {
    // Format 1.0 (numpy/lib/format.py): magic, version, u16 header length,
    // a Python dict literal padded with spaces and ending in '\n' so the data
    // starts at a multiple of 64, then the raw little-endian C-order data.
    let a = ndarray::arr2(&[[1i32, 2, 3], [4, 5, 6]]).into_dyn();
    let bytes = encode_npy(&a);
    let dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }";
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0);
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
    assert!(header.starts_with(dict), "{header}");
    assert!(header.ends_with('\n'));
    assert!(header[dict.len()..header.len() - 1]
        .bytes()
        .all(|b| b == b' '));
    let data: Vec<u8> = (1i32..=6).flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(&bytes[10 + hlen..], &data[..]);
    // 1-d and 0-d shapes are Python tuples.
    let one = encode_npy(&ndarray::arr1(&[true, false]).into_dyn());
    assert!(String::from_utf8_lossy(&one)
        .contains("'descr': '|b1', 'fortran_order': False, 'shape': (2,), }"));
    let zero = encode_npy(&ArrayD::from_elem(ndarray::IxDyn(&[]), 1.5f64));
    assert!(String::from_utf8_lossy(&zero).contains("'shape': (), }"));
    // Decoding checks the dtype.
    assert_eq!(decode_npy::<i32>(&bytes).unwrap(), a);
    assert!(decode_npy::<i64>(&bytes).unwrap_err().contains("<i4"));
    assert!(decode_npy::<f64>(b"not numpy").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..config() })]

    #[test]
    fn to_npy_dir_round_trips((a, c) in array_case(6)) {
        let dir = TempDir::new("rt");
        let x = from_array(a.clone(), c).unwrap();
        let (_, s) = &schedulers()[2];
        let bytes = x.to_npy_dir(&dir.0).unwrap().compute_with(&**s).unwrap();
        prop_assert!(bytes as usize >= a.len() * 8);
        let files = std::fs::read_dir(&dir.0).unwrap().count();
        prop_assert_eq!(files, x.npartitions() + 1);
        let y = from_npy_dir::<f64>(&dir.0).unwrap();
        prop_assert_eq!(y.chunks(), x.chunks());
        assert_exact(&y, &a);
    }
}

#[test]
fn other_dtypes_round_trip_and_mismatches_are_typed_errors() {
    let dir = TempDir::new("dtypes");
    let a = ArrayD::from_shape_fn(ndarray::IxDyn(&[3, 4]), |i| i[0] as i64 * 10 - i[1] as i64);
    let x = from_array(a.clone(), [2, 3]).unwrap();
    x.to_npy_dir(&dir.0)
        .unwrap()
        .compute_with(&*schedulers()[0].1)
        .unwrap();
    assert_exact(&from_npy_dir::<i64>(&dir.0).unwrap(), &a);
    let err = from_npy_dir::<f64>(&dir.0).unwrap_err();
    assert!(matches!(err, Error::BadFile { .. }), "{err}");
    assert!(err.to_string().contains("int64"), "{err}");
    let b = x.greater(0).unwrap();
    let dir2 = TempDir::new("bool");
    b.to_npy_dir(&dir2.0)
        .unwrap()
        .compute_with(&*schedulers()[1].1)
        .unwrap();
    assert_exact(&from_npy_dir::<bool>(&dir2.0).unwrap(), &a.mapv(|v| v > 0));
    // A missing directory is an Io error naming the path.
    let missing = TempDir::new("missing");
    let err = from_npy_dir::<f64>(&missing.0).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("info"), "{err}");
    // A block file removed after writing fails its task at compute time.
    std::fs::remove_file(dir.0.join("block_1_1.npy")).unwrap();
    let y = from_npy_dir::<i64>(&dir.0).unwrap();
    let err = y.compute_with(&*schedulers()[0].1).unwrap_err().to_string();
    assert!(err.contains("block_1_1.npy"), "{err}");
}
