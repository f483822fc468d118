//! Harnesses for the wire: the frame codec (`codec::frame_len` and
//! `codec::decode`) and every message a peer can send, as the receivers
//! decode them ([`Hello`] and [`Welcome`] alone, the rest in batches), plus
//! the packed [`Items`] and [`Values`] inside them.
//!
//! Properties checked on every input:
//! - nothing panics (a stack overflow aborts the process, which the fuzzer
//!   and the test harness both report);
//! - a prefix over the cap is refused with [`CodecError::FrameTooLarge`]
//!   naming the announced length and the cap, and one within is accepted;
//! - a payload that decodes re-encodes, and the re-encoding decodes to a
//!   message that encodes to the same bytes (a fixed point);
//! - a payload that does not decode fails with a decode-side error naming
//!   the payload's length (or the trailing bytes), never an encode-side one;
//! - what the receivers do next with a decoded message (decode its packed
//!   items and results, count and print its values) does not panic either.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasp_proto::codec::{self, CodecError, MAX_FRAME, PREFIX_LEN};
use wasp_proto::db::{DbAnswer, DbRequest, Query, ResultLookup, Status, TaskRecord};
use wasp_proto::msg::{
    Answer, Arg, ClientMsg, ClusterStatus, EngineHello, EngineStatus, ErrorKind, FromEngine, Hello,
    Items, LogLevel, LogLine, NamespaceOp, PROTOCOL_VERSION, Packed, RecordsStats, Request,
    RetryPolicy, Role, RunTask, Slotted, TaskError, TaskLimits, TaskMeta, TaskResult, TaskSpec,
    ToClient, ToEngine, Values, Welcome,
};
use wasp_proto::{EngineId, ModuleHash, TaskId, Tenant, Value, value_to_json};

/// The message kinds a peer can send, as a receiver decodes each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// [`Hello`], the first frame on every connection (read by the
    /// controller).
    Hello,
    /// [`Welcome`] (read by clients and engines).
    Welcome,
    /// A batch of [`ClientMsg`] (read by the controller).
    ClientMsgs,
    /// A batch of [`ToClient`] (read by clients).
    ToClient,
    /// A batch of [`ToEngine`] (read by engines).
    ToEngine,
    /// A batch of [`FromEngine`] (read by the controller).
    FromEngine,
}

impl Message {
    /// Every kind.
    pub const ALL: [Message; 6] = [
        Message::Hello,
        Message::Welcome,
        Message::ClientMsgs,
        Message::ToClient,
        Message::ToEngine,
        Message::FromEngine,
    ];

    /// Decodes `payload` as this kind and checks the properties (see the
    /// module docs); true if it decoded.
    pub fn check(self, payload: &[u8]) -> bool {
        match self {
            Message::Hello => decodes::<Hello>(payload).is_some(),
            Message::Welcome => decodes::<Welcome>(payload).is_some(),
            Message::ClientMsgs => decodes::<Vec<ClientMsg>>(payload)
                .map(|batch| batch.iter().for_each(touch_client_msg))
                .is_some(),
            Message::ToClient => decodes::<Vec<ToClient>>(payload)
                .map(|batch| batch.iter().for_each(touch_to_client))
                .is_some(),
            Message::ToEngine => decodes::<Vec<Slotted<ToEngine>>>(payload)
                .map(|batch| batch.iter().for_each(|m| touch_to_engine(&m.msg)))
                .is_some(),
            Message::FromEngine => decodes::<Vec<Slotted<FromEngine>>>(payload)
                .map(|batch| batch.iter().for_each(|m| touch_from_engine(&m.msg)))
                .is_some(),
        }
    }

    /// Real messages of this kind, encoded as frame payloads: the seeds.
    pub fn seeds(self) -> Vec<Vec<u8>> {
        match self {
            Message::Hello => encode_all(&sample_hellos()),
            Message::Welcome => encode_all(&sample_welcomes()),
            Message::ClientMsgs => batches(sample_client_msgs()),
            Message::ToClient => batches(sample_to_client()),
            Message::ToEngine => batches(slotted(sample_to_engine())),
            Message::FromEngine => batches(slotted(sample_from_engine())),
        }
    }
}

/// Harness: a [`Hello`] payload.
pub fn hello(data: &[u8]) {
    Message::Hello.check(data);
}

/// Harness: a [`Welcome`] payload.
pub fn welcome(data: &[u8]) {
    Message::Welcome.check(data);
}

/// Harness: a batch of [`ClientMsg`].
pub fn client_msgs(data: &[u8]) {
    Message::ClientMsgs.check(data);
}

/// Harness: a batch of [`ToClient`].
pub fn to_client(data: &[u8]) {
    Message::ToClient.check(data);
}

/// Harness: a batch of [`ToEngine`].
pub fn to_engine(data: &[u8]) {
    Message::ToEngine.check(data);
}

/// Harness: a batch of [`FromEngine`].
pub fn from_engine(data: &[u8]) {
    Message::FromEngine.check(data);
}

/// Harness: a stream of frames as a receiver reads it. The first byte
/// picks the cap (a hello's small one, a 1 MiB one, or [`MAX_FRAME`]) and
/// the message kind; the rest is the stream. Each prefix is checked
/// against the cap; each whole frame's payload is decoded as that kind.
pub fn frames(data: &[u8]) {
    let Some((&selector, mut stream)) = data.split_first() else {
        return;
    };
    let cap = match selector & 3 {
        0 => 64 * 1024,
        1 => 1 << 20,
        2 => 100,
        _ => MAX_FRAME,
    };
    let kind = Message::ALL[usize::from(selector >> 2) % Message::ALL.len()];
    while let Some((prefix, rest)) = stream.split_first_chunk::<PREFIX_LEN>() {
        let announced = u32::from_le_bytes(*prefix) as usize;
        match codec::frame_len(*prefix, cap) {
            Ok(len) => {
                assert_eq!(len, announced, "frame_len changed the length");
                assert!(len <= cap, "a {len}-byte frame passed a {cap}-byte cap");
                let Some(payload) = rest.get(..len) else {
                    // A half frame: the receiver waits for the rest or
                    // reports the stream truncated.
                    return;
                };
                kind.check(payload);
                stream = &rest[len..];
            }
            Err(err) => {
                assert!(
                    announced > cap,
                    "a {announced}-byte frame refused under a {cap}-byte cap: {err}"
                );
                assert!(
                    matches!(err, CodecError::FrameTooLarge { len, cap: c } if len == announced && c == cap),
                    "{err:?}"
                );
                let text = err.to_string();
                assert!(
                    text.contains(&announced.to_string()) && text.contains(&cap.to_string()),
                    "the error does not name the length and the cap: {text}"
                );
                // The receiver stops the stream here.
                return;
            }
        }
    }
}

/// The message kinds a blob frame may carry: those after the handshake.
const BLOB_KINDS: [Message; 4] = [
    Message::ClientMsgs,
    Message::ToClient,
    Message::ToEngine,
    Message::FromEngine,
];

/// Most blobs [`blob_frames`] hands the decoder.
const MAX_FUZZ_BLOBS: u8 = 3;

/// Harness: a blob frame's message as a receiver on the same-host channel
/// decodes it (`codec::decode_blob_frame`), with the blobs that came with
/// it. The first byte picks the kind (of [`BLOB_KINDS`]), the second how
/// many blobs (up to [`MAX_FUZZ_BLOBS`]); each blob is a length byte and
/// that many bytes; the rest is the message. A place outside the blobs, or
/// a blob frame's form that is not one, is refused as a decode-side error
/// naming the message's length; nothing panics.
pub fn blob_frames(data: &[u8]) {
    check_blob_frame(data);
}

/// [`blob_frames`]; true if the input decoded.
pub fn check_blob_frame(data: &[u8]) -> bool {
    let [selector, count, rest @ ..] = data else {
        return false;
    };
    let kind = BLOB_KINDS[*selector as usize % BLOB_KINDS.len()];
    let mut rest = rest;
    let mut blobs = Vec::new();
    for _ in 0..count % (MAX_FUZZ_BLOBS + 1) {
        let Some((&len, after)) = rest.split_first() else {
            return false;
        };
        let len = (len as usize).min(after.len());
        blobs.push(bytes::Bytes::copy_from_slice(&after[..len]));
        rest = &after[len..];
    }
    let message = bytes::Bytes::copy_from_slice(rest);
    let checked = |err: CodecError| {
        check_decode_error(&err, message.len());
        false
    };
    match kind {
        Message::ClientMsgs => {
            match codec::decode_blob_frame::<Vec<ClientMsg>>(message.clone(), blobs) {
                Ok(batch) => batch.iter().for_each(touch_client_msg),
                Err(err) => return checked(err),
            }
        }
        Message::ToClient => {
            match codec::decode_blob_frame::<Vec<ToClient>>(message.clone(), blobs) {
                Ok(batch) => batch.iter().for_each(touch_to_client),
                Err(err) => return checked(err),
            }
        }
        Message::ToEngine => {
            match codec::decode_blob_frame::<Vec<Slotted<ToEngine>>>(message.clone(), blobs) {
                Ok(batch) => batch.iter().for_each(|m| touch_to_engine(&m.msg)),
                Err(err) => return checked(err),
            }
        }
        _ => match codec::decode_blob_frame::<Vec<Slotted<FromEngine>>>(message.clone(), blobs) {
            Ok(batch) => batch.iter().for_each(|m| touch_from_engine(&m.msg)),
            Err(err) => return checked(err),
        },
    }
    true
}

/// A sink that makes every byte string of a message a blob (up to
/// [`MAX_FUZZ_BLOBS`] of at most 255 bytes): real blob frames, small.
#[derive(Default)]
struct SmallBlobs(Vec<Vec<u8>>);

impl codec::BlobSink for SmallBlobs {
    fn put(&mut self, bytes: &[u8]) -> Option<codec::BlobPlace> {
        if self.0.len() >= MAX_FUZZ_BLOBS as usize || bytes.len() > 255 {
            return None;
        }
        self.0.push(bytes.to_vec());
        Some(codec::BlobPlace {
            blob: self.0.len() as u32 - 1,
            offset: 0,
        })
    }

    fn count(&self) -> u32 {
        self.0.len() as u32
    }
}

/// Real blob frames, in [`blob_frames`]'s layout: each post-handshake
/// kind's sample batches, their byte strings blobs where they fit.
pub fn blob_frame_seeds() -> Vec<Vec<u8>> {
    fn seeds_of<T: Serialize>(selector: u8, msgs: Vec<T>) -> Vec<Vec<u8>> {
        msgs.into_iter()
            .map(|msg| {
                let (parts, sink) =
                    codec::encode_blob_frame(&vec![msg], SmallBlobs::default(), false)
                        .expect("a sample encodes");
                let frame: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
                let mut seed = vec![selector, sink.0.len() as u8];
                for blob in &sink.0 {
                    seed.push(blob.len() as u8);
                    seed.extend_from_slice(blob);
                }
                // The message: the payload after the prefix and the count.
                seed.extend_from_slice(&frame[PREFIX_LEN + codec::BLOB_COUNT_LEN..]);
                seed
            })
            .collect()
    }
    let mut seeds = seeds_of(0, sample_client_msgs());
    seeds.extend(seeds_of(1, sample_to_client()));
    seeds.extend(seeds_of(2, slotted(sample_to_engine())));
    seeds.extend(seeds_of(3, slotted(sample_from_engine())));
    seeds
}

/// Real frames: each kind's seeds with their prefixes, two to a stream,
/// behind the selector byte [`frames`] reads.
pub fn frame_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (k, kind) in Message::ALL.into_iter().enumerate() {
        let seeds = kind.seeds();
        for (i, payload) in seeds.iter().enumerate() {
            let next = &seeds[(i + 1) % seeds.len()];
            let cap_bits = (i % 4) as u8;
            let mut stream = vec![((k as u8) << 2) | cap_bits];
            for p in [payload, next] {
                stream.extend_from_slice(&(p.len() as u32).to_le_bytes());
                stream.extend_from_slice(p);
            }
            out.push(stream);
        }
    }
    out
}

/// Harness: a task's packed argument lists. The first four bytes are the
/// count the sender claims, the rest the bytes it packed: the two things a
/// peer controls in an [`Items`].
pub fn items(data: &[u8]) {
    packed::<Vec<Arg>>(data, |lists| {
        for args in lists {
            for arg in args {
                if let Arg::Value(value) = arg {
                    touch(value);
                }
            }
        }
    });
}

/// Harness: a task's packed results ([`Values`]), as [`items`].
pub fn values(data: &[u8]) {
    packed::<Option<Value>>(data, |results| results.iter().flatten().for_each(touch));
}

/// Real packed items (`values`: false) or results (true), as [`items`]
/// and [`values`] read them.
pub fn packed_seeds(values: bool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for n in 0..4 {
        let lists: Vec<Vec<Arg>> = sample_values()
            .into_iter()
            .take(n * 3)
            .collect::<Vec<_>>()
            .chunks(2)
            .map(|c| {
                c.iter()
                    .cloned()
                    .map(Arg::Value)
                    .chain([Arg::Ref("x".into())])
                    .collect()
            })
            .collect();
        let results: Vec<Option<Value>> = sample_values()
            .into_iter()
            .take(n * 3)
            .map(Some)
            .chain([None])
            .collect();
        let (count, bytes) = if values {
            (results.len(), codec::encode(&results))
        } else {
            (lists.len(), codec::encode(&lists))
        };
        let mut seed = (count as u32).to_le_bytes().to_vec();
        seed.extend(bytes.expect("samples encode"));
        out.push(seed);
    }
    out
}

/// An [`Items`] or [`Values`] as the wire has it: the count, then the bytes
/// (the same encoding as `Packed`, whose fields are private).
#[derive(Serialize)]
struct PackedWire<'a> {
    count: u32,
    #[serde(with = "serde_bytes")]
    bytes: &'a [u8],
}

fn packed<T>(data: &[u8], touch_all: impl FnOnce(&[T]))
where
    T: Serialize + DeserializeOwned + Debug,
{
    let Some((count, bytes)) = data.split_first_chunk::<4>() else {
        return;
    };
    let count = u32::from_le_bytes(*count);
    let wire = codec::encode(&PackedWire { count, bytes }).expect("a packed list encodes");
    let packed: Packed<T> = codec::decode(&wire).expect("a packed list's own encoding decodes");
    assert_eq!(packed.len(), count as usize);
    match packed.decode() {
        Ok(list) => {
            assert_eq!(
                list.len(),
                count as usize,
                "decoded another count than claimed"
            );
            touch_all(&list);
            let again = Packed::<T>::encode(&list).expect("decoded items re-encode");
            assert_eq!(again.len(), list.len());
            let back = again.decode().expect("re-encoded items decode");
            assert_eq!(
                codec::encode(&back).expect("encodes"),
                codec::encode(&list).expect("encodes"),
                "re-encoding is not a fixed point"
            );
        }
        Err(err) => match codec::decode::<Vec<T>>(bytes) {
            // The bytes hold a list, of another length than claimed.
            Ok(list) => {
                assert_ne!(list.len(), count as usize);
                let text = err.to_string();
                assert!(
                    text.contains(&format!(
                        "hold {} items where the task says {count}",
                        list.len()
                    )),
                    "{text}"
                );
            }
            Err(_) => check_decode_error(&err, bytes.len()),
        },
    }
}

/// Decodes `payload` as `T` and checks the properties of either outcome.
fn decodes<T>(payload: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + Debug,
{
    match codec::decode::<T>(payload) {
        Ok(msg) => {
            let bytes = codec::encode(&msg).expect("a decoded message re-encodes");
            let again: T = codec::decode(&bytes)
                .unwrap_or_else(|err| panic!("a re-encoded message does not decode: {err}"));
            let twice = codec::encode(&again).expect("encodes");
            assert_eq!(twice, bytes, "re-encoding is not a fixed point: {msg:?}");
            let frame = codec::encode_frame(&msg).expect("a decoded message frames");
            assert_eq!(frame[PREFIX_LEN..], bytes[..]);
            assert_eq!(
                codec::frame_len(frame[..PREFIX_LEN].try_into().expect("4 bytes"), MAX_FRAME)
                    .expect("under the cap"),
                bytes.len()
            );
            Some(msg)
        }
        Err(err) => {
            check_decode_error(&err, payload.len());
            None
        }
    }
}

/// A refusal must be a decode-side error that names the payload's length
/// (or how many bytes were used and left over) and says why.
fn check_decode_error(err: &CodecError, payload_len: usize) {
    let text = err.to_string();
    match err {
        CodecError::Decode { len, reason } => {
            assert_eq!(*len, payload_len, "{text}");
            assert!(!reason.is_empty(), "a decode error without a reason");
            assert!(text.contains(&payload_len.to_string()), "{text}");
        }
        CodecError::LimitExceeded { len, limit } => {
            assert_eq!(*len, payload_len, "{text}");
            assert!(
                *limit >= 16 * payload_len,
                "a limit under 16 bytes per byte: {text}"
            );
            assert!(text.contains("decode limit"), "{text}");
        }
        CodecError::TrailingBytes { used, trailing } => {
            assert!(*trailing > 0, "{text}");
            assert_eq!(used + trailing, payload_len, "{text}");
        }
        // A value nested past MAX_DEPTH, refused before the decoder
        // recurses into it (found by the libFuzzer campaign: the oracle
        // missed this refusal, the decoders were right).
        CodecError::TooDeep { len, limit } => {
            assert_eq!(*len, payload_len, "{text}");
            assert_eq!(*limit, wasp_proto::value::MAX_DEPTH, "{text}");
            assert!(text.contains("nesting limit"), "{text}");
        }
        other => panic!("decoding failed with an encode-side error: {other:?}"),
    }
}

/// What a receiver does with a value: count it, print it as JSON (the
/// records and the CLI do), clone and drop it.
fn touch(value: &Value) {
    let _ = value.cost_bytes();
    let _ = value.kind();
    let json = value_to_json(value);
    drop(json);
    drop(value.clone());
}

fn touch_items(items: &Items) {
    if let Ok(lists) = items.decode() {
        lists.iter().flatten().for_each(|arg| {
            if let Arg::Value(value) = arg {
                touch(value);
            }
        });
    }
}

fn touch_values(values: &Values) {
    if let Ok(results) = values.decode() {
        results.iter().flatten().for_each(touch);
    }
}

fn touch_op(op: &NamespaceOp) {
    if let NamespaceOp::Push(entries) = op
        && let Ok(entries) = entries.decode()
    {
        entries.iter().for_each(|(_, value)| touch(value));
    }
}

fn touch_client_msg(msg: &ClientMsg) {
    match msg {
        ClientMsg::Submit { specs, .. } => specs.iter().for_each(|s| touch_items(&s.items)),
        ClientMsg::Request {
            request: Request::Namespace { op, .. },
            ..
        } => touch_op(op),
        ClientMsg::Request { .. } => {}
    }
}

fn touch_result(result: &TaskResult) {
    if let Ok(values) = &result.outcome {
        touch_values(values);
    }
}

fn touch_to_client(msg: &ToClient) {
    match msg {
        ToClient::Results(results) => results.iter().for_each(touch_result),
        ToClient::Answer {
            answer: Answer::Namespace(replies),
            ..
        } => replies
            .iter()
            .flatten()
            .filter_map(|pulled| pulled.decode().ok())
            .flatten()
            .for_each(|value| touch(&value)),
        _ => {}
    }
}

fn touch_to_engine(msg: &ToEngine) {
    match msg {
        ToEngine::Run(run) => touch_items(&run.items),
        ToEngine::Namespace { op, .. } => touch_op(op),
        _ => {}
    }
}

fn touch_from_engine(msg: &FromEngine) {
    match msg {
        FromEngine::Done(result) => touch_result(result),
        FromEngine::Namespace {
            reply: Ok(values), ..
        } => values.decode().unwrap_or_default().iter().for_each(touch),
        FromEngine::Retracted { run: Some(run), .. } => touch_items(&run.items),
        _ => {}
    }
}

fn encode_all<T: Serialize>(msgs: &[T]) -> Vec<Vec<u8>> {
    msgs.iter()
        .map(|m| codec::encode(m).expect("samples encode"))
        .collect()
}

/// Each message alone, then all of them in one batch.
/// The messages of an engine connection, for slots 0 and 3 in turn.
fn slotted<T>(msgs: Vec<T>) -> Vec<Slotted<T>> {
    (0u32..)
        .zip(msgs)
        .map(|(i, msg)| Slotted {
            slot: (i % 2) * 3,
            msg,
        })
        .collect()
}

fn batches<T: Serialize + Clone>(msgs: Vec<T>) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| codec::encode(&vec![m.clone()]).expect("samples encode"))
        .collect();
    out.push(codec::encode(&msgs).expect("samples encode"));
    out.push(codec::encode(&Vec::<T>::new()).expect("samples encode"));
    out
}

/// Values of every WIT kind, as tasks take and return them.
pub fn sample_values() -> Vec<Value> {
    vec![
        Value::S64(-7),
        Value::F64(0.5),
        Value::List((0..6).map(|i| Value::F64(f64::from(i) / 3.0)).collect()),
        Value::String("héllo".into()),
        Value::Char('λ'),
        Value::Bool(true),
        Value::U8(255),
        Value::Record(vec![
            ("strike".into(), Value::F64(100.0)),
            ("kind".into(), Value::Enum("call".into())),
        ]),
        Value::Tuple(vec![Value::U32(1), Value::S16(-2)]),
        Value::Variant("fixed".into(), Some(Box::new(Value::U32(3)))),
        Value::Option(Some(Box::new(Value::Option(None)))),
        Value::Result(Err(Some(Box::new(Value::String("no".into()))))),
        Value::Flags(vec!["read".into(), "write".into()]),
        Value::List(vec![Value::List(vec![Value::S8(-1)]), Value::List(vec![])]),
    ]
}

fn hash() -> ModuleHash {
    ModuleHash::of(b"\0asm\x0d\0\x01\0")
}

fn sample_hellos() -> Vec<Hello> {
    vec![
        Hello {
            version: PROTOCOL_VERSION,
            token: "0123456789abcdef0123456789abcdef".into(),
            role: Role::Client,
            same_host_ticket: Some(vec![9; 32]),
        },
        Hello {
            version: PROTOCOL_VERSION,
            token: "engine-token".into(),
            role: Role::Engine(EngineHello {
                name: "host:1234".into(),
                cached: vec![hash(), ModuleHash([7; 32])],
                slots: 100,
            }),
            same_host_ticket: None,
        },
    ]
}

fn sample_welcomes() -> Vec<Welcome> {
    vec![
        Welcome::Accepted {
            tenant: Tenant("default".into()),
            session: 3,
            engines: Vec::new(),
            same_host: true,
        },
        Welcome::Accepted {
            tenant: Tenant("engines".into()),
            session: 0,
            engines: vec![EngineId(2), EngineId(3)],
            same_host: false,
        },
        Welcome::Refused {
            reason: "invalid token".into(),
        },
    ]
}

fn sample_items() -> Items {
    let lists: Vec<Vec<Arg>> = sample_values()
        .chunks(3)
        .map(|c| c.iter().cloned().map(Arg::Value).collect())
        .chain([vec![Arg::Ref("x".into())]])
        .collect();
    Items::encode(&lists).expect("samples encode")
}

fn sample_limits() -> TaskLimits {
    TaskLimits {
        timeout_us: Some(2_000_000),
        memory_bytes: Some(64 << 20),
    }
}

fn sample_client_msgs() -> Vec<ClientMsg> {
    let requests = vec![
        Request::HasModules(vec![hash()]),
        Request::Upload(b"\0asm\x0d\0\x01\0".to_vec()),
        Request::Status,
        Request::Namespace {
            targets: vec![EngineId(0)],
            op: NamespaceOp::Push(
                wasp_proto::msg::Entries::encode(
                    &sample_values()
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (format!("n{i}"), v))
                        .collect::<Vec<_>>(),
                )
                .expect("samples encode"),
            ),
        },
        Request::Namespace {
            targets: vec![EngineId(1), EngineId(1)],
            op: NamespaceOp::Pull(vec!["a".into(), "b".into()]),
        },
        Request::Namespace {
            targets: vec![],
            op: NamespaceOp::Clear,
        },
        Request::Namespace {
            targets: vec![EngineId(0)],
            op: NamespaceOp::Load(hash()),
        },
        Request::Shutdown,
        Request::Db(DbRequest::GetResults(vec![
            TaskId::new(1, 2),
            TaskId::new(4, 0),
        ])),
        Request::Db(DbRequest::Status(vec![TaskId::new(1, 2)])),
        Request::Db(DbRequest::Abort(vec![TaskId::new(1, 3)])),
        Request::Db(DbRequest::Resubmit {
            ids: vec![TaskId::new(1, 2)],
            retry: RetryPolicy {
                retries: 2,
                escalate: true,
            },
        }),
        Request::Db(DbRequest::Query(Query {
            status: vec![Status::Failed, Status::Running],
            module: Some(hash()),
            func: Some("pow10".into()),
            engine: Some(EngineId(1)),
            submitted_after_us: Some(1),
            completed_before_us: Some(9),
            keys: vec!["status".into(), "result".into()],
            limit: Some(10),
            ..Query::default()
        })),
        Request::Db(DbRequest::Purge(vec![])),
    ];
    let mut msgs: Vec<ClientMsg> = requests
        .into_iter()
        .zip(1u64..)
        .map(|(request, id)| ClientMsg::Request { id, request })
        .collect();
    let specs = vec![TaskSpec {
        id: TaskId::new(1, 2),
        module: hash(),
        func: "pow10".into(),
        items: sample_items(),
        targets: Some(vec![EngineId(0), EngineId(1)]),
        limits: sample_limits(),
        retry: RetryPolicy {
            retries: 3,
            escalate: true,
        },
    }];
    msgs.push(ClientMsg::Submit {
        submission: wasp_proto::msg::Submission::whole(&specs),
        specs,
    });
    msgs
}

fn sample_result(ok: bool) -> TaskResult {
    TaskResult {
        id: TaskId::new(1, 9),
        outcome: if ok {
            Ok(Values::encode(
                &sample_values()
                    .into_iter()
                    .map(Some)
                    .chain([None])
                    .collect::<Vec<_>>(),
            )
            .expect("samples encode"))
        } else {
            Err(TaskError {
                kind: ErrorKind::Limit,
                message: "task exceeded the result size limit (result_bytes = 64 MiB)".into(),
                item: Some(3),
            })
        },
        meta: TaskMeta {
            engine: Some(EngineId(1)),
            submitted_us: 1,
            started_us: 2,
            completed_us: 3,
            stdout: "out\n".into(),
            stderr: "err\n".into(),
            logs: vec![LogLine {
                level: LogLevel::Warn,
                message: "careful".into(),
            }],
            peak_memory_bytes: 1 << 20,
            limits: sample_limits(),
            attempts: 2,
        },
    }
}

fn sample_to_client() -> Vec<ToClient> {
    let answers = vec![
        Answer::ModulesKnown(vec![true, false]),
        Answer::Uploaded(hash()),
        Answer::Status(ClusterStatus {
            engines: vec![EngineStatus {
                id: EngineId(0),
                name: "host:1".into(),
                outstanding: 2,
                done: 10,
                module_bytes_sent: 4096,
            }],
            queued: 5,
            running: 2,
            succeeded: 100,
            failed: 1,
            scheme: "leastload".into(),
            hwm: 0,
            records: RecordsStats {
                committed: 200,
                transactions: 7,
                commit_us: 3500,
                max_commit_us: 900,
            },
        }),
        Answer::Namespace(vec![
            Ok(wasp_proto::msg::Pulled::encode(&sample_values()).expect("samples encode")),
            Err("no such name".into()),
            Ok(wasp_proto::msg::Pulled::none()),
        ]),
        Answer::Error("module is too large".into()),
        Answer::ShuttingDown,
        Answer::Db(DbAnswer::Results(vec![
            ResultLookup::Finished(Box::new(sample_result(true))),
            ResultLookup::Pending(Status::Running),
            ResultLookup::NotFound,
        ])),
        Answer::Db(DbAnswer::Statuses(vec![Some(Status::Queued), None])),
        Answer::Db(DbAnswer::Resubmitted(vec![Some(TaskId::new(2, 0)), None])),
        Answer::Db(DbAnswer::Records(vec![TaskRecord {
            id: TaskId::new(1, 2),
            status: Some(Status::Succeeded),
            func: Some("pow10".into()),
            result: Some("[100]".into()),
            ..TaskRecord::default()
        }])),
        Answer::Db(DbAnswer::Purged(3)),
    ];
    let mut msgs: Vec<ToClient> = answers
        .into_iter()
        .zip(1u64..)
        .map(|(answer, id)| ToClient::Answer { id, answer })
        .collect();
    msgs.push(ToClient::Results(vec![
        sample_result(true),
        sample_result(false),
    ]));
    msgs.push(ToClient::Accepted(vec![
        TaskId::new(1, 2),
        TaskId::new(1, 3),
    ]));
    msgs.push(ToClient::Closing("a frame over the cap".into()));
    msgs
}

fn sample_run() -> RunTask {
    RunTask {
        id: TaskId::new(1, 2),
        tenant: Tenant("default".into()),
        module: hash(),
        func: "norm".into(),
        items: sample_items(),
        limits: sample_limits(),
        share: wasp_proto::msg::Share {
            sliced: true,
            weight: 3,
        },
    }
}

fn sample_to_engine() -> Vec<ToEngine> {
    vec![
        ToEngine::Module {
            hash: hash(),
            bytes: std::sync::Arc::new(b"\0asm\x0d\0\x01\0".to_vec()),
        },
        ToEngine::Run(sample_run()),
        ToEngine::Namespace {
            request: 7,
            tenant: Tenant("default".into()),
            quota_bytes: Some(1 << 20),
            op: std::sync::Arc::new(wasp_proto::msg::Encoded::new(NamespaceOp::Push(
                wasp_proto::msg::Entries::encode(&[("x".into(), Value::S64(3))])
                    .expect("samples encode"),
            ))),
        },
        ToEngine::Retract(TaskId::new(1, 2)),
        ToEngine::Abort(TaskId::new(1, 2)),
        ToEngine::Shutdown,
    ]
}

fn sample_from_engine() -> Vec<FromEngine> {
    vec![
        FromEngine::Heartbeat {
            resident_bytes: 123 << 20,
        },
        FromEngine::Done(sample_result(true)),
        FromEngine::Done(sample_result(false)),
        FromEngine::Namespace {
            request: 7,
            reply: Ok(wasp_proto::msg::Pulled::encode(&sample_values()).expect("samples encode")),
        },
        FromEngine::Namespace {
            request: 8,
            reply: Err("namespace limit".into()),
        },
        FromEngine::Retracted {
            task: TaskId::new(1, 2),
            run: Some(sample_run()),
        },
        FromEngine::Retracted {
            task: TaskId::new(1, 3),
            run: None,
        },
    ]
}
