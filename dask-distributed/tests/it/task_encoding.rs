//! Tasks cross the process boundary intact, or are refused with a clear error.

use bytes::Bytes;
use dask_core::op::fn_op;
use dask_core::{Arg, Key, Task, Value};
use dask_distributed::protocol::{decode_task, encode_task, WireArg, WireTask};
use dask_distributed::Error;

fn scale(x: i64, factor: i64) -> i64 {
    x * factor
}
dask_core::register_op!(scale);

fn total(xs: Vec<Value>) -> i64 {
    xs.iter().map(|v| *v.downcast_ref::<i64>().unwrap()).sum()
}
dask_core::register_op!(total);

/// Evaluates a task whose key arguments all read `input`.
fn eval(task: &Task, input: i64) -> i64 {
    let v = task
        .execute(&Key::named("t"), |_| Value::new(input))
        .unwrap();
    *v.downcast_ref::<i64>().unwrap()
}

#[test]
fn nested_tasks_lists_and_literals_round_trip() {
    let inner = Task::new(
        fn_op(scale),
        vec![Arg::Key(Key::named("x")), Arg::value(3i64)],
    );
    let task = Task::new(
        fn_op(total),
        vec![Arg::List(vec![
            Arg::Task(Box::new(inner)),
            Arg::value(100i64),
            Arg::Key(Key::named("x")),
        ])],
    );
    let (wire, frames) = encode_task(&Key::named("t"), &task).unwrap();
    assert_eq!(frames.len(), 2, "one data frame per literal");
    // Through the header codec, as on the wire.
    let header = dask_distributed::protocol::encode("task", &wire).unwrap();
    let wire: WireTask = dask_distributed::protocol::decode("task", &header).unwrap();
    let back = decode_task(&wire, &frames).unwrap();
    for input in [-5, 0, 7] {
        assert_eq!(eval(&back, input), eval(&task, input));
    }
    assert_eq!(back.dependencies(), task.dependencies());
}

#[test]
fn closures_are_refused_before_sending() {
    let task = Task::new(fn_op(|x: i64| x + 1), vec![Arg::Key(Key::named("x"))]);
    match encode_task(&Key::new("inc", [4]), &task) {
        Err(Error::Core(dask_core::Error::OpNotRegistered { key, op })) => {
            assert_eq!(key, Key::new("inc", [4]));
            assert!(op.contains("closure"), "{op}");
        }
        other => panic!("expected OpNotRegistered, got {other:?}"),
    }
    let msg = encode_task(&Key::named("k"), &task)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("register_op!"), "{msg}");
}

#[test]
fn values_without_codec_are_refused() {
    struct Opaque;
    let task = Task::new(fn_op(scale), vec![Arg::value(Opaque), Arg::value(1i64)]);
    let err = encode_task(&Key::named("k"), &task).unwrap_err();
    assert!(
        matches!(err, Error::Core(dask_core::Error::NoCodec { .. })),
        "{err}"
    );
}

#[test]
fn bad_wire_tasks_are_typed_errors() {
    let unknown = WireTask {
        op: "no::such::op".into(),
        params: vec![],
        args: vec![],
    };
    assert!(matches!(
        decode_task(&unknown, &[]),
        Err(Error::Core(dask_core::Error::UnknownOp { .. }))
    ));
    let tag = fn_op(scale).tag().unwrap().to_owned();
    let missing_frame = WireTask {
        op: tag.clone(),
        params: vec![],
        args: vec![WireArg::Value {
            codec: std::any::type_name::<i64>().into(),
            frame: 3,
        }],
    };
    assert!(matches!(
        decode_task(&missing_frame, &[]),
        Err(Error::Malformed { .. })
    ));
    let bad_bytes = WireTask {
        op: tag,
        params: vec![],
        args: vec![WireArg::Value {
            codec: std::any::type_name::<i64>().into(),
            frame: 0,
        }],
    };
    let err = decode_task(&bad_bytes, &[Bytes::from_static(&[0xff])]).unwrap_err();
    assert!(
        matches!(err, Error::Core(dask_core::Error::Codec { .. })),
        "{err}"
    );
}
