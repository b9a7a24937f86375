//! Bad input: typed errors naming what was wrong.

use dask_bag::{read_text, Bag, Error};
use dask_core::{Collection, Scheduler};
use dask_testing::INTENTIONAL_PANIC;

use crate::common::TempDir;

#[test]
fn missing_file_and_unmatched_glob() {
    let dir = TempDir::new("missing");
    let missing = dir.join("nope.txt");
    match read_text(&missing, None) {
        Err(Error::Io { path, .. }) => assert_eq!(path.to_str().unwrap(), missing),
        other => panic!("expected Io, got {other:?}"),
    }
    let pattern = dir.join("*.log");
    let err = read_text(&pattern, Some(10)).unwrap_err();
    assert!(
        matches!(&err, Error::NoFiles { pattern: p } if *p == pattern),
        "{err}"
    );
    assert!(err.to_string().contains("no file matches"), "{err}");
    assert!(matches!(
        read_text(dir.join("[*.txt"), None),
        Err(Error::Pattern { .. })
    ));
    assert!(matches!(
        read_text(&missing, Some(0)),
        Err(Error::InvalidArgument {
            argument: "blocksize",
            ..
        })
    ));
}

#[test]
fn bad_arguments() {
    let bag = Bag::from_sequence(0..10i64, 3).unwrap();
    assert!(matches!(
        bag.topk(0, |x| *x),
        Err(Error::InvalidArgument { argument: "k", .. })
    ));
    assert!(matches!(
        Bag::from_sequence(0..3, 0),
        Err(Error::InvalidArgument {
            argument: "npartitions",
            ..
        })
    ));
    assert!(matches!(
        Bag::from_sequence_with_partition_size(0..3, 0),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        Bag::range(3, 0),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        bag.with_split_every(1),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        bag.groupby_into(|x| *x, 0),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        bag.to_textfiles("out.txt"),
        Err(Error::InvalidArgument {
            argument: "pattern",
            ..
        })
    ));
    assert!(matches!(
        bag.to_textfiles("*/*.txt"),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        Bag::<i64>::from_delayed(vec![]),
        Err(Error::InvalidArgument { .. })
    ));
}

dask_testing::scheduler_test! {
fn file_removed_after_building_fails_the_task(s: &dyn Scheduler) {
    let dir = TempDir::new("removed");
    let path = dir.join("a.txt");
    std::fs::write(&path, "x\n").unwrap();
    let bag = read_text(&path, None).unwrap();
    std::fs::remove_file(&path).unwrap();
    let err = bag.compute_with(s).unwrap_err();
    assert!(err.failed_key().is_some(), "{err}");
    assert!(
        matches!(Error::find(&err), Some(Error::Io { .. })),
        "{err}"
    );
}

fn invalid_utf8_names_file_and_offset(s: &dyn Scheduler) {
    let dir = TempDir::new("utf8");
    let path = dir.join("bad.txt");
    std::fs::write(&path, b"good\nbad \xff line\nmore\n").unwrap();
    for blocksize in [None, Some(3)] {
        let bag = read_text(&path, blocksize).unwrap();
        let err = bag.compute_with(s).unwrap_err();
        match Error::find(&err) {
            Some(Error::InvalidUtf8 {
                path: p, offset, ..
            }) => {
                assert_eq!(p.to_str().unwrap(), path);
                assert_eq!(*offset, 5);
            }
            other => panic!("expected InvalidUtf8, got {other:?} from {err}"),
        }
        // A reduction must fail too, not count a truncated partition.
        let err = bag.count().compute_with(s).unwrap_err();
        assert!(
            matches!(Error::find(&err), Some(Error::InvalidUtf8 { offset: 5, .. })),
            "{err}"
        );
        let err = bag.frequencies().compute_with(s).unwrap_err();
        assert!(matches!(Error::find(&err), Some(Error::InvalidUtf8 { .. })), "{err}");
    }
}

fn invalid_json_and_missing_field(s: &dyn Scheduler) {
    let lines = vec![
        r#"{"a": 1}"#.to_owned(),
        r#"{"a": 2}"#.to_owned(),
        "{oops".to_owned(),
        r#"{"b": 3}"#.to_owned(),
    ];
    let bag = Bag::from_sequence(lines, 2).unwrap();
    let err = bag.pluck("a").compute_with(s).unwrap_err();
    assert!(
        matches!(
            Error::find(&err),
            Some(Error::Json {
                partition: 1,
                record: 0,
                ..
            })
        ),
        "{err}"
    );
    let err = bag
        .filter(|l| !l.starts_with("{o"))
        .pluck("a")
        .compute_with(s)
        .unwrap_err();
    let e = Error::find(&err).unwrap();
    assert!(
        matches!(
            e,
            Error::MissingField {
                partition: 1,
                record: 0,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("\"a\""), "{e}");
    let err = bag
        .filter(|l| l.contains("\"a\""))
        .pluck(0usize)
        .compute_with(s)
        .unwrap_err();
    assert!(
        matches!(Error::find(&err), Some(Error::MissingField { .. })),
        "{err}"
    );
}

fn zip_mismatches(s: &dyn Scheduler) {
    let a = Bag::from_sequence(0..10i64, 3).unwrap();
    let b = Bag::from_sequence(0..10i64, 4).unwrap();
    let err = a.zip(&b).unwrap_err();
    assert!(
        matches!(err, Error::ZipMismatch { left: 3, right: 4 }),
        "{err}"
    );
    let c = Bag::from_sequence(0..11i64, 3).unwrap();
    let err = a.zip(&c).unwrap().compute_with(s).unwrap_err();
    assert!(
        matches!(
            Error::find(&err),
            Some(Error::ZipLengthMismatch {
                shorter: "left",
                ..
            })
        ),
        "{err}"
    );
}

fn panicking_closure_is_a_task_failure_with_the_key(s: &dyn Scheduler) {
    let bag =
        Bag::from_sequence(0..10i64, 3)
            .unwrap()
            .map(|x| if x == 7 { panic!("{INTENTIONAL_PANIC}: seven") } else { x });
    let err = bag.compute_with(s).unwrap_err();
    match &err {
        dask_core::Error::TaskFailed {
            key, op, message, ..
        } => {
            assert_eq!(key.name(), bag.name());
            assert_eq!(key.index(), &[2]);
            assert!(op.contains("map"), "{op}");
            assert!(message.contains("seven"), "{message}");
        }
        other => panic!("expected TaskFailed, got {other:?}"),
    }
    let err = bag.sum().compute_with(s).unwrap_err();
    assert!(err.to_string().contains("seven"), "{err}");
}

fn write_error_names_the_path(s: &dyn Scheduler) {
    let dir = TempDir::new("werr");
    std::fs::write(dir.path().join("file"), "x").unwrap();
    // A "directory" that is a file: creating files under it fails.
    let bag = Bag::from_sequence(0..4i64, 2).unwrap();
    let w = bag.to_textfiles(dir.join("file/sub/part-*.txt")).unwrap();
    let err = w.compute_with(s).unwrap_err();
    match Error::find(&err) {
        Some(Error::Io { path, .. }) => assert!(
            path.starts_with(dir.path().join("file")),
            "{path:?}"
        ),
        other => panic!("expected Io, got {other:?}"),
    }
}

    fn try_map_errors_name_partition_and_record(s: &dyn Scheduler) {
        let bag = Bag::from_sequence(["1", "2", "x", "4"].map(String::from), 2).unwrap();
        let parsed = bag.try_map(|t| t.parse::<i64>());
        let err = parsed.compute_with(s).unwrap_err();
        match Error::find(&err) {
            Some(e @ Error::MapFailed { partition: 1, record: 0, source }) => {
                assert!(source.downcast_ref::<std::num::ParseIntError>().is_some());
                assert!(e.to_string().contains("invalid digit"), "{e}");
            }
            other => panic!("expected MapFailed, got {other:?} from {err}"),
        }
        let ok = bag.filter(|t| t != "x").try_map(|t| t.parse::<i64>());
        assert_eq!(ok.compute_with(s).unwrap(), vec![1, 2, 4]);
    }
}
