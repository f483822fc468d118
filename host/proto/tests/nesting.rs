//! Issue 10, "Values": a value nested far deeper than any WIT type, sent
//! by a peer, must be a decode error, never a stack overflow that aborts
//! the controller (a namespace push) or an engine (a task's arguments).
//!
//! Each decode runs on a thread with a normal 2 MiB stack, as a tokio
//! worker has. The payload is built as bytes, never as a `Value` (building
//! one that deep would overflow the test itself): a `Value::Option(Some(..))`
//! costs two bytes a level in bincode (the variant index, the `Some` tag).

use wasp_proto::codec::{self, CodecError};
use wasp_proto::msg::{
    Arg, ClientMsg, Entries, Items, NamespaceOp, Request, RunTask, TaskLimits, ToEngine,
};
use wasp_proto::{ModuleHash, TaskId, Tenant, Value};

/// Levels of nesting: 60 KiB of bincode, a few tens of KiB as the issue
/// says, and hundreds of times any real WIT type's depth.
const LEVELS: usize = 30_000;

/// The bincode of `Option(Some(` x `levels`, then `Option(None)`.
fn nested_option(levels: usize) -> Vec<u8> {
    let leaf = codec::encode(&Value::Option(None)).expect("encodes");
    let some = codec::encode(&Value::Option(Some(Box::new(Value::Option(None))))).expect("encodes");
    // `some` is the variant index and the `Some` tag, then the leaf.
    assert_eq!(&some[some.len() - leaf.len()..], &leaf[..]);
    let level = &some[..some.len() - leaf.len()];
    assert_eq!(level.len(), 2, "two bytes a level");
    let mut bytes = level.repeat(levels);
    bytes.extend_from_slice(&leaf);
    bytes
}

/// `message`'s encoding with its last `Value::Option(None)` replaced by
/// `value` (already encoded): the deep value spliced into a real message.
fn splice<T: serde::Serialize>(message: &T, value: &[u8]) -> Vec<u8> {
    let mut bytes = codec::encode(message).expect("encodes");
    let leaf = codec::encode(&Value::Option(None)).expect("encodes");
    assert!(bytes.ends_with(&leaf), "the placeholder value comes last");
    bytes.truncate(bytes.len() - leaf.len());
    bytes.extend_from_slice(value);
    bytes
}

/// Runs `f` on a thread with a 2 MiB stack and returns its result.
fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .name("2-MiB-stack".into())
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawns")
        .join()
        .expect("does not panic")
}

fn assert_too_deep(err: &CodecError) {
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "nesting limit (MAX_DEPTH = {})",
            wasp_proto::value::MAX_DEPTH
        )),
        "the error names the limit: {text}"
    );
}

#[test]
fn a_deep_namespace_push_is_a_decode_error() {
    // The controller forwards a push's values as bytes (the frame decodes:
    // they are one byte string); the engine decodes them, on a small stack.
    let entries = vec![("x".to_owned(), Value::Option(None))];
    let entries = Entries::from_parts(1, splice(&entries, &nested_option(LEVELS)));
    let push = ClientMsg::Request {
        id: 7,
        request: Request::Namespace {
            targets: vec![],
            op: NamespaceOp::Push(entries),
        },
    };
    let payload = codec::encode(&vec![push]).expect("encodes");
    assert!(payload.len() > 50 * 1024, "{} bytes", payload.len());
    let decoded = codec::decode::<Vec<ClientMsg>>(&payload).expect("the frame decodes");
    let ClientMsg::Request {
        request:
            Request::Namespace {
                op: NamespaceOp::Push(entries),
                ..
            },
        ..
    } = &decoded[0]
    else {
        panic!("a push");
    };
    let entries = entries.clone();
    let err = on_small_stack(move || entries.decode()).expect_err("too deep");
    assert_too_deep(&err);
}

#[test]
fn deep_task_arguments_are_a_decode_error() {
    // An engine decodes the frame (the arguments stay bytes), then the
    // arguments: both steps on a small stack.
    let lists = vec![vec![Arg::Value(Value::Option(None))]];
    let items_bytes = splice(&lists, &nested_option(LEVELS));
    // A `Packed` is its count, then its bytes as one byte string.
    let packed = codec::encode(&(1u32, serde_bytes::ByteBuf::from(items_bytes))).expect("encodes");
    let items: Items = codec::decode(&packed).expect("the frame decodes; the arguments are bytes");
    let run = ToEngine::Run(RunTask {
        id: TaskId::new(1, 1),
        tenant: Tenant("t".into()),
        module: ModuleHash::of(b"m"),
        func: "f".into(),
        items,
        limits: TaskLimits::default(),
        share: Default::default(),
    });
    let frame = codec::encode(&run).expect("encodes");
    let err = on_small_stack(move || {
        let ToEngine::Run(run) = codec::decode::<ToEngine>(&frame).expect("decodes") else {
            unreachable!("a Run was sent")
        };
        run.items.decode()
    })
    .expect_err("too deep");
    assert_too_deep(&err);
}
