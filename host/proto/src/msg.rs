//! The messages of the wire protocol, shared by client, controller and
//! engines. Each connection carries one bidirectional stream of frames
//! (`codec`); every frame holds a batch (`Vec`) of one role's messages, so
//! that many small messages cost one frame.
//!
//! The connecting side speaks first with a [`Hello`] carrying the protocol
//! version and its token; nothing else is read or acted on before the
//! controller answers with a [`Welcome`].

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::bounded::{ListWithin, Meter, Metered};
use crate::codec::{Budget, CodecError};
use crate::hash::ModuleHash;
use crate::ids::{EngineId, TaskId, Tenant};
use crate::value::Value;

/// The protocol version; a peer with another version is refused at the
/// handshake. 3: task results travel as [`Values`] bytes. 4: issue 10
/// (per-task limits, peak memory, request ids, bounded values). 5: issue 11
/// (durable acceptance, retries, abort, the task database). 6: the
/// same-host channel (blob frames, `Hello::same_host_ticket`). 7: engines
/// of several slots on one connection ([`EngineHello::slots`], [`Slotted`]).
/// 8: heartbeats carry the engine process's resident memory (issue 16).
pub const PROTOCOL_VERSION: u32 = 8;

/// The first message on a connection, from the side that connected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u32,
    /// The secret from the connection file.
    pub token: String,
    /// Who is connecting.
    pub role: Role,
    /// The ticket the controller's same-host channel gave this peer's
    /// socket (`wasp_net::same_host`), when it could reach it: the
    /// controller binds that socket to this connection.
    pub same_host_ticket: Option<Vec<u8>>,
}

/// Who is connecting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Role {
    /// A client (the CLI or the Rust library).
    Client,
    /// An engine, with what it already has.
    Engine(EngineHello),
}

/// What an engine says about itself when it joins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineHello {
    /// A name for status displays, e.g. `host:pid`.
    pub name: String,
    /// Modules the engine already has compiled (its disk cache), so they are
    /// never sent to it.
    pub cached: Vec<ModuleHash>,
    /// How many engines this connection serves (`wasp engine --slots N`):
    /// each has its own engine id, namespaces and queue, and runs one task
    /// at a time; they share the process's runtime, compiled modules and
    /// this connection. At least 1, at most [`MAX_SLOTS`].
    pub slots: u32,
}

/// Most engines one connection may serve ([`EngineHello::slots`]).
pub const MAX_SLOTS: u32 = 1024;

/// A message for or from one engine of a connection: every frame between
/// an engine process and the controller is a batch of these. `slot` is the
/// engine's index in [`Welcome::Accepted::engines`] (0 for a process of
/// one slot); the controller never sends a message for a slot it did not
/// assign, and ends a connection that does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slotted<T> {
    /// The engine's index among its connection's engines.
    pub slot: u32,
    /// The message.
    pub msg: T,
}

/// The controller's answer to a [`Hello`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Welcome {
    /// The connection is accepted.
    Accepted {
        /// The tenant the token maps to (engines: the operator's tenant).
        tenant: Tenant,
        /// A client's session number: the high half of its task ids.
        session: u32,
        /// The engine ids assigned to an engine connection, one per slot in
        /// slot order ([`EngineHello::slots`]); empty for a client.
        engines: Vec<EngineId>,
        /// Whether the controller bound the peer's same-host socket to
        /// this connection: every frame after this one, both ways, is
        /// then a blob frame.
        same_host: bool,
    },
    /// The connection is refused; the controller closes it after this.
    Refused {
        /// Why, in words for the user.
        reason: String,
    },
}

/// What a client sends the controller: requests, each answered once by a
/// [`ToClient::Answer`] with the same id, and task submissions, whose
/// results come back unasked as they complete.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// A request; the controller answers it with a [`ToClient::Answer`]
    /// carrying `id`. Answers may come in any order (a namespace operation
    /// waits for its engines, a status does not): the id pairs them.
    Request {
        /// Chosen by the client, unique among its requests in flight.
        id: u64,
        /// What is asked.
        request: Request,
    },
    /// Run these tasks; each one's result comes back in a
    /// [`ToClient::Results`] batch as it completes.
    Submit {
        /// The submission these tasks are part of (a map leaves in
        /// several slices): the controller admits or refuses a submission
        /// whole, at its first slice.
        submission: Submission,
        /// The tasks.
        specs: Vec<TaskSpec>,
    },
}

/// One call of `apply` or `map`, whose tasks may leave in several
/// [`ClientMsg::Submit`] slices: the tenant's queued-task quota is checked
/// for all of them at the first slice, so that a submission is accepted
/// whole or refused whole, never in part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// The id of its first task: names the submission in every slice.
    pub first: TaskId,
    /// How many tasks it has in all its slices.
    pub tasks: u64,
}

impl Submission {
    /// A submission of exactly `specs`, in one slice.
    pub fn whole(specs: &[TaskSpec]) -> Self {
        Self {
            first: specs.first().map_or(TaskId(0), |spec| spec.id),
            tasks: specs.len() as u64,
        }
    }
}

/// A tenant's quotas. In a [`TenantRequest`], a field left `None` keeps
/// the tenant's setting (the controller's default, for a new tenant); in
/// a [`TenantInfo`], each field is the quota in force, `None` meaning no
/// quota beyond the engines' own limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Quotas {
    /// Most of its tasks on engines at once; more wait in the queue.
    pub running: Option<u64>,
    /// Most of its tasks waiting for an engine; a submission that would
    /// pass it is refused whole.
    pub queued: Option<u64>,
    /// Most bytes of modules the controller stores for it.
    pub module_bytes: Option<u64>,
    /// Most bytes of values in its namespace on each engine.
    pub namespace_bytes: Option<u64>,
    /// The ceiling of a task's wall-time limit, in microseconds: a task
    /// asking for more is refused; one asking for nothing runs under it.
    pub task_time_us: Option<u64>,
    /// The ceiling of a task's memory limit, in bytes, the same way.
    pub task_memory_bytes: Option<u64>,
}

impl Quotas {
    /// Each field of `self`, or else of `base`.
    pub fn or(self, base: Quotas) -> Quotas {
        Quotas {
            running: self.running.or(base.running),
            queued: self.queued.or(base.queued),
            module_bytes: self.module_bytes.or(base.module_bytes),
            namespace_bytes: self.namespace_bytes.or(base.namespace_bytes),
            task_time_us: self.task_time_us.or(base.task_time_us),
            task_memory_bytes: self.task_memory_bytes.or(base.task_memory_bytes),
        }
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Quotas::default()
    }
}

/// A client's request to the controller; see [`ClientMsg::Request`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Which of these modules does the controller hold for my tenant?
    /// Answered by [`Answer::ModulesKnown`].
    HasModules(Vec<ModuleHash>),
    /// Store a module's bytes. Answered by [`Answer::Uploaded`] or
    /// [`Answer::Error`].
    Upload(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Answered by [`Answer::Status`].
    Status,
    /// Apply a namespace operation on each of these engines. Answered by
    /// [`Answer::Namespace`], one reply per distinct target in the order
    /// of their first appearance (a target listed twice is applied once),
    /// or by [`Answer::Error`] if a target is not connected.
    Namespace {
        /// The engines, in the order their replies are wanted.
        targets: Vec<EngineId>,
        /// What to do on each.
        op: NamespaceOp,
    },
    /// Stop the controller and its engines (tokens with admin rights only).
    /// Answered by [`Answer::ShuttingDown`], or [`Answer::Error`] when
    /// refused.
    Shutdown,
    /// A question to the task database (results, statuses, abort,
    /// resubmit, queries, purge), scoped to the client's tenant.
    Db(crate::db::DbRequest),
    /// Tenant administration (`wasp tenant`), for admin tokens only;
    /// answered by [`Answer::Tenants`] or [`Answer::TenantAdded`], or
    /// [`Answer::Error`] saying why not.
    Tenants(TenantRequest),
}

/// A change to, or a look at, the controller's tenants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TenantRequest {
    /// Every tenant, its weight and its usage.
    List,
    /// A new tenant (not an admin) with a fresh token: the controller
    /// writes its connection file into the profile.
    Add {
        /// Its name: letters, digits, `-` and `_`.
        name: String,
        /// Its fair-share weight (at least 1).
        weight: u32,
        /// Its quotas; those left `None` are the controller's defaults.
        quotas: Quotas,
    },
    /// A new weight or new quotas for a tenant.
    Set {
        /// The tenant.
        name: String,
        /// Its new weight (at least 1); `None` keeps it.
        weight: Option<u32>,
        /// Its new quotas; those left `None` are kept.
        quotas: Quotas,
    },
    /// Revokes a tenant's token at once: its connections are closed and
    /// its unfinished tasks aborted; its records are kept.
    Remove {
        /// The tenant.
        name: String,
    },
}

/// One tenant as `wasp tenant list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantInfo {
    /// Its name.
    pub name: String,
    /// Its fair-share weight.
    pub weight: u32,
    /// Whether its token is an admin token.
    pub admin: bool,
    /// The quotas in force (its own, or the controller's defaults).
    pub quotas: Quotas,
    /// Its tasks waiting for an engine.
    pub queued: u64,
    /// Its tasks on engines.
    pub running: u64,
    /// Its tasks that succeeded since the controller started.
    pub succeeded: u64,
    /// Its tasks that failed since the controller started.
    pub failed: u64,
    /// Engine time its tasks ran since the controller started, in
    /// microseconds, as the engines measured it.
    pub engine_us: u64,
    /// Its usage as the task records hold it, across restarts (tasks
    /// culled past `--max-records` no longer count).
    pub recorded: TenantUsage,
}

/// A tenant's usage in the task records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantUsage {
    /// Its tasks that succeeded.
    pub succeeded: u64,
    /// Its tasks that failed.
    pub failed: u64,
    /// Engine time of its finished tasks, in microseconds.
    pub engine_us: u64,
    /// Argument bytes it sent, as stored.
    pub argument_bytes: u64,
    /// Result bytes it was sent, as stored.
    pub result_bytes: u64,
    /// Bytes of the modules it uploaded (each stored once per tenant).
    pub module_bytes: u64,
    /// Bytes of values its namespace operations moved: pushed, times the
    /// engines pushed to, and pulled.
    pub namespace_bytes: u64,
}

/// One task: a function of a module over one chunk of argument lists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The task's id (its `msg_id`).
    pub id: TaskId,
    /// The module, already uploaded.
    pub module: ModuleHash,
    /// The function, qualified or bare.
    pub func: String,
    /// One argument list per item: one item for `apply`, `chunksize` items
    /// for a `map` chunk.
    pub items: Items,
    /// Engines allowed to run it (`None`: any, chosen by the scheduler).
    pub targets: Option<Vec<EngineId>>,
    /// Limits the client asked for (ipyparallel's `timeout` flag, and a
    /// memory limit); the engine caps each by its own ceiling.
    pub limits: TaskLimits,
    /// What to do when the task fails (ipyparallel's `retries` flag).
    pub retry: RetryPolicy,
}

/// How a failed task is tried again (ipyparallel's `retries` flag, plus
/// escalation). Separate from engine deaths: a task whose engine dies
/// under it is always run again, up to the controller's
/// `max_engine_deaths`, whatever its policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// How many times a failed task is resubmitted before its failure is
    /// final (0: never).
    pub retries: u32,
    /// A retry after a time- or memory-limit failure doubles that limit
    /// (from what the task ran under), up to the engine's ceiling.
    pub escalate: bool,
}

/// Per-task limits a client may ask for, below the engine's ceilings. A
/// field left `None` takes the engine's setting; a value above the
/// engine's ceiling is capped to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLimits {
    /// Wall time for the whole task (all items of a chunk together), in
    /// microseconds.
    pub timeout_us: Option<u64>,
    /// Linear memory of the task's instance, in bytes.
    pub memory_bytes: Option<u64>,
}

/// A task argument: a value, or a reference to a name in the namespace of
/// the engine that runs the task (ipyparallel's `parallel.Reference`).
/// The engine replaces a reference with its own value of that name, and
/// checks it against the function's signature there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Arg {
    /// A value sent with the task.
    Value(Value),
    /// The running engine's value of this name.
    Ref(String),
}

impl From<Value> for Arg {
    fn from(value: Value) -> Self {
        Arg::Value(value)
    }
}

/// An operation on the namespaces of explicit engines (a DirectView's
/// `push`, `pull`, `clear`, and module `load`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum NamespaceOp {
    /// Set these names to these values: encoded by the client, decoded
    /// only by the engines, so that the controller forwards a 100 MB push
    /// as the bytes (or, on one host, the memory file) it received.
    Push(Entries),
    /// Read these names.
    Pull(Vec<String>),
    /// Remove every name.
    Clear,
    /// Compile and cache this module now (its bytes are sent first if the
    /// engine lacks them).
    Load(ModuleHash),
}

/// What one engine answered to a [`NamespaceOp`]: the pulled values (none
/// for other operations), or why it failed.
pub type NamespaceReply = Result<Pulled, String>;

/// The controller's messages to a client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToClient {
    /// The answer to the request with this id.
    Answer {
        /// The id of the [`ClientMsg::Request`] answered.
        id: u64,
        /// The answer.
        answer: Answer,
    },
    /// Results of tasks, as they complete (not asked for by a request).
    Results(Vec<TaskResult>),
    /// These submitted tasks are committed to the controller's records:
    /// from now on each reaches exactly one final state, whatever dies,
    /// and its result can be fetched by id (`get_result`). Sent after the
    /// commit, so it may come after the task's result.
    Accepted(Vec<TaskId>),
    /// The controller is closing this connection, for this reason (e.g. a
    /// frame over its size limit, which could not be read far enough to
    /// learn which request it held). Every request in flight fails with
    /// it.
    Closing(String),
}

/// The controller's answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Answer {
    /// Answer to [`Request::HasModules`], one flag per hash.
    ModulesKnown(Vec<bool>),
    /// Answer to [`Request::Upload`].
    Uploaded(ModuleHash),
    /// Answer to [`Request::Status`].
    Status(ClusterStatus),
    /// Answer to [`Request::Namespace`]: one reply per distinct target,
    /// in order.
    Namespace(Vec<NamespaceReply>),
    /// The request failed (e.g. an upload over the module size limit).
    Error(String),
    /// Answer to [`Request::Shutdown`]: the controller is stopping.
    ShuttingDown,
    /// Answer to [`Request::Db`].
    Db(crate::db::DbAnswer),
    /// Answer to [`TenantRequest::List`], [`TenantRequest::Set`] and
    /// [`TenantRequest::Remove`]: the tenants after it.
    Tenants(Vec<TenantInfo>),
    /// Answer to [`TenantRequest::Add`]: where its connection file was
    /// written, on the controller's host.
    TenantAdded {
        /// The tenant.
        name: String,
        /// The connection file's path.
        file: String,
    },
}

/// What the controller sends an engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToEngine {
    /// A module's bytes, sent only when the engine lacks it, always before
    /// the first task that needs it.
    Module {
        /// The module's hash.
        hash: ModuleHash,
        /// Its bytes (encoded as one byte string, not byte by byte), shared:
        /// the controller sends every engine the one copy it stores.
        #[serde(with = "shared_vec")]
        bytes: Arc<Vec<u8>>,
    },
    /// Run a task.
    Run(RunTask),
    /// Apply a namespace operation for a tenant; answered by
    /// [`FromEngine::Namespace`] with the same request number.
    Namespace {
        /// Pairs the answer with the request.
        request: u64,
        /// Whose namespace.
        tenant: Tenant,
        /// The tenant's namespace quota, in bytes of values, if it has
        /// one below the engine's own limit: a push past it is refused,
        /// naming it.
        quota_bytes: Option<u64>,
        /// What to do; shared by the engines the operation goes to, and
        /// encoded once for all of them.
        op: Arc<Encoded<NamespaceOp>>,
    },
    /// Hand this task back if it has not started (work stealing); answered
    /// by [`FromEngine::Retracted`].
    Retract(TaskId),
    /// Stop this task: drop it if queued, interrupt it at the next epoch
    /// tick if running. Its `Done` (an [`ErrorKind::Aborted`] failure, or
    /// its result if it finished first) follows as usual.
    Abort(TaskId),
    /// Finish what is running and exit.
    Shutdown,
}

/// A task as an engine receives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunTask {
    /// The task's id.
    pub id: TaskId,
    /// The tenant that submitted it.
    pub tenant: Tenant,
    /// The module to run.
    pub module: ModuleHash,
    /// The function.
    pub func: String,
    /// The argument lists, one per item.
    pub items: Items,
    /// The limits the client asked for (see [`TaskLimits`]).
    pub limits: TaskLimits,
    /// How the engine shares its time with other tenants' tasks.
    pub share: Share,
}

/// How an engine shares its time between the tenants whose tasks it runs
/// at once (the controller's `--time-slice`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// Run the task at once, beside the engine's running task (another
    /// tenant's), rather than after the tasks it holds; the two take turns
    /// at the engine's epoch ticks. An engine runs one such task at a time,
    /// after any it already runs.
    pub sliced: bool,
    /// The task's tenant's fair-share weight: while tasks take turns, each
    /// runs for time in proportion to it (0 counts as 1).
    pub weight: u32,
}

/// A list of `T`, one per item of a task, as bytes: one side encodes it
/// once, and the controller forwards the bytes as they came, reading only
/// the count, so a chunk of a hundred items costs it one allocation, not a
/// hundred. [`Items`] (a task's argument lists) and [`Values`] (its
/// results) are the two kinds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Packed<T> {
    /// How many items the bytes hold (as the sender says; checked when
    /// they are decoded).
    count: u32,
    /// `Vec<T>`, encoded by [`codec::encode`](crate::codec::encode);
    /// shared, so that the controller keeps a task's arguments for a retry
    /// while an engine holds them, without a copy. A big list decoded from
    /// a frame is a slice of the frame itself, not a copy of it
    /// ([`codec::decode_frame`](crate::codec::decode_frame)).
    #[serde(with = "shared_bytes")]
    bytes: Bytes,
    #[serde(skip)]
    kind: PhantomData<fn() -> T>,
}

/// A task's argument lists, one per item: the client encodes them, only
/// the engine that runs the task decodes them.
pub type Items = Packed<Vec<Arg>>;

/// Makes the bytes of an encoding somewhere other than a buffer of its
/// own: runs the encoder it is given against a writer, and returns what
/// was written. A client on the controller's host spills a big argument
/// into a sealed memory file (`wasp_net::same_host::spill`), which is then
/// passed on as it is, not copied again.
pub type Spill =
    fn(&mut dyn FnMut(&mut dyn std::io::Write) -> std::io::Result<()>) -> std::io::Result<Bytes>;

/// The names and values of a namespace push ([`NamespaceOp::Push`]).
pub type Entries = Packed<(String, Value)>;

/// The values of a namespace pull, in the order of their names: encoded
/// by the engine, decoded only by the client, so that the controller
/// forwards a 100 MB `gather` as the bytes (or, on one host, the memory
/// file) it received.
pub type Pulled = Packed<Value>;

impl Pulled {
    /// No values: the reply to an operation that pulls none.
    pub fn none() -> Self {
        Self {
            count: 0,
            // What the encoding of an empty list is: its length, 0.
            bytes: Bytes::from_static(&[0]),
            kind: PhantomData,
        }
    }
}

/// A task's results, one per item (`None` for a function without a
/// result): the engine encodes them, only the client (and the controller's
/// records, for their JSON) decode them.
pub type Values = Packed<Option<Value>>;

impl<T> Default for Packed<T> {
    fn default() -> Self {
        Self {
            count: 0,
            bytes: Bytes::new(),
            kind: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> Packed<T> {
    /// Encodes a list.
    pub fn encode(items: &[T]) -> Result<Self, CodecError> {
        Self::encode_as(items.len(), &items, None)
    }

    /// [`Packed::encode`] into the bytes `spill` makes, when it is given
    /// (for a list the caller expects to be big: its encoding is written
    /// once, where it will be sent from, with no buffer between); if it
    /// fails, into a buffer of its own as `encode` does.
    pub fn encode_spilling(items: &[T], spill: Option<Spill>) -> Result<Self, CodecError> {
        Self::encode_as(items.len(), &items, spill)
    }

    /// `count` items, serialized by `list` as a `Vec<T>` would be.
    fn encode_as(
        count: usize,
        list: &impl Serialize,
        spill: Option<Spill>,
    ) -> Result<Self, CodecError> {
        let count = u32::try_from(count).map_err(|_| CodecError::Encode {
            reason: format!("{count} items are more than a task may hold"),
        })?;
        let spilled = spill.and_then(|spill| {
            spill(&mut |writer| {
                crate::codec::encode_to_writer(list, writer).map_err(std::io::Error::other)
            })
            .ok()
        });
        let bytes = match spilled {
            Some(bytes) => bytes,
            None => Bytes::from(crate::codec::encode(list)?),
        };
        Ok(Self {
            count,
            bytes,
            kind: PhantomData,
        })
    }

    /// A list as stored: `count` items encoded in `bytes` (checked when
    /// decoded, as a list from the wire is).
    pub fn from_parts(count: u32, bytes: Vec<u8>) -> Self {
        Self {
            count,
            bytes: Bytes::from(bytes),
            kind: PhantomData,
        }
    }

    /// The encoded items, as [`Packed::from_parts`] takes them back.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How many bytes the encoded items take.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// How many items there are.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The items; an error if the bytes do not decode or hold another
    /// number of items than they claim.
    pub fn decode(&self) -> Result<Vec<T>, CodecError> {
        let items: Vec<T> = crate::codec::decode(&self.bytes)?;
        self.check_count(items)
    }

    /// [`Packed::decode`] for a receiver that passes big typed lists on
    /// rather than reading them (an engine: into a guest's memory, or into
    /// its namespace and later a guest's): each is an
    /// [`Array::Shared`](crate::Array::Shared), a slice of these bytes (the
    /// memory file or frame they came in) rather than a copy, when it is
    /// at least [`SLICE_AT_LEAST`](crate::codec::SLICE_AT_LEAST) and a
    /// quarter of them.
    pub fn decode_sharing(&self) -> Result<Vec<T>, CodecError> {
        let items: Vec<T> = crate::codec::decode_seed_sharing(PhantomData::<Vec<T>>, &self.bytes)?;
        self.check_count(items)
    }
}

/// `packed`'s items, each decoded within `budget`: decoding stops at the
/// first value that takes an item past it, before the rest of the list is
/// read ([`CodecError::OverBudget`], naming the item and the limit).
fn decode_within_budget<T: Metered>(
    packed: &Packed<T>,
    budget: Budget,
) -> Result<Vec<T>, CodecError> {
    {
        let meter = Meter::new(budget.bytes);
        let items = crate::codec::decode_seed(
            ListWithin::new(&meter, packed.count as usize),
            &packed.bytes,
        )
        .map_err(|err| {
            if meter.over() {
                CodecError::OverBudget {
                    item: meter.item(),
                    budget,
                }
            } else {
                err
            }
        })?;
        packed.check_count(items)
    }
}

impl<T> Packed<T> {
    /// `items` if there are as many as the sender said.
    fn check_count(&self, items: Vec<T>) -> Result<Vec<T>, CodecError> {
        if items.len() != self.count as usize {
            return Err(CodecError::Decode {
                len: self.bytes.len(),
                reason: format!(
                    "the bytes hold {} items where the task says {}",
                    items.len(),
                    self.count
                ),
            });
        }
        Ok(items)
    }
}

impl Values {
    /// The results, each decoded within `budget` (the result limit, e.g.
    /// `Budget { name: "result_bytes", bytes }`), as
    /// [`Value::cost_bytes`] counts memory (a `None` costs nothing).
    /// Decoding stops at the first value that takes a result past it.
    pub fn decode_within(&self, budget: Budget) -> Result<Vec<Option<Value>>, CodecError> {
        decode_within_budget(self, budget)
    }
}

impl Items {
    /// The argument lists, each item's list decoded within `budget` (the
    /// engine's argument limit, `Budget { name: "arg_bytes", bytes }`), as
    /// [`Value::cost_bytes`] counts memory, summed over the item's
    /// arguments (a reference costs what a string of its name would).
    /// Decoding stops at the first value that takes an item past it,
    /// before the rest of the list is read, with
    /// [`CodecError::OverBudget`] naming the item and the limit.
    pub fn decode_within(&self, budget: Budget) -> Result<Vec<Vec<Arg>>, CodecError> {
        decode_within_budget(self, budget)
    }

    /// Encodes the argument lists of items `range` of a `map` over
    /// `sequences`: item `i`'s arguments are `sequences[0][i],
    /// sequences[1][i], ...`, as Python's `map(f, xs, ys)` zips them. The
    /// bytes are those [`Items::encode`] makes of the zipped lists, without
    /// building them: a hundred thousand items are then a hundred thousand
    /// fewer allocations for the client.
    ///
    /// `range` must lie within every sequence.
    pub fn encode_columns(
        sequences: &[Vec<Value>],
        range: std::ops::Range<usize>,
    ) -> Result<Self, CodecError> {
        Self::encode_columns_spilling(sequences, range, None)
    }

    /// [`Items::encode_columns`] into the bytes `spill` makes, as
    /// [`Packed::encode_spilling`].
    pub fn encode_columns_spilling(
        sequences: &[Vec<Value>],
        range: std::ops::Range<usize>,
        spill: Option<Spill>,
    ) -> Result<Self, CodecError> {
        if let Some(short) = sequences.iter().find(|s| s.len() < range.end) {
            return Err(CodecError::Encode {
                reason: format!(
                    "items {range:?} lie beyond a sequence of {} values",
                    short.len()
                ),
            });
        }
        Self::encode_as(range.len(), &Columns { sequences, range }, spill)
    }
}

/// Items `range` of a `map` over `sequences`, serialized as the
/// `Vec<Vec<Arg>>` of their zipped argument lists.
struct Columns<'a> {
    sequences: &'a [Vec<Value>],
    range: std::ops::Range<usize>,
}

/// One item of [`Columns`]: its argument list.
struct Row<'a> {
    sequences: &'a [Vec<Value>],
    item: usize,
}

/// [`Arg::Value`] by reference: the same variant (index and name), so it
/// serializes as an `Arg` does.
#[derive(Serialize)]
#[serde(rename = "Arg")]
enum ArgRef<'a> {
    Value(&'a Value),
}

impl Serialize for Columns<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.range.len()))?;
        for item in self.range.clone() {
            seq.serialize_element(&Row {
                sequences: self.sequences,
                item,
            })?;
        }
        seq.end()
    }
}

impl Serialize for Row<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.sequences.len()))?;
        for sequence in self.sequences {
            seq.serialize_element(&ArgRef::Value(&sequence[self.item]))?;
        }
        seq.end()
    }
}

/// Shared bytes on the wire: one byte string, as `serde_bytes` writes a
/// `Vec<u8>`.
/// A module's bytes, shared: the store's copy, which an engine takes as a
/// `Vec` (`Arc::unwrap_or_clone`) to compile.
mod shared_vec {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        bytes: &Arc<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serde_bytes::serialize(bytes.as_slice(), serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Arc<Vec<u8>>, D::Error> {
        serde_bytes::ByteBuf::deserialize(deserializer).map(|b| Arc::new(b.into_vec()))
    }
}

/// A [`Packed`] list's bytes, shared, in one allocation. In a blob frame
/// (`codec::encode_blob_frame`), an enum: the bytes inline, or, when they
/// are big, where they are among the frame's blobs.
mod shared_bytes {
    use std::fmt;

    use bytes::Bytes;
    use serde::de::{EnumAccess, Error, SeqAccess, VariantAccess, Visitor};
    use serde::{Deserializer, Serialize, Serializer};

    use crate::codec::{self, BlobPlace};

    /// The cases of the blob-frame form.
    const CASES: &[&str] = &["Inline", "Blob"];

    pub(super) fn serialize<S: Serializer>(
        bytes: &Bytes,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        if codec::encoding_blob_frame() {
            if let Some(place) = codec::put_blob(bytes) {
                return serializer.serialize_newtype_variant(
                    "Wire",
                    1,
                    CASES[1],
                    &(place, bytes.len() as u64),
                );
            }
            return serializer.serialize_newtype_variant("Wire", 0, CASES[0], &Inline(bytes));
        }
        Inline(bytes).serialize(serializer)
    }

    /// Bytes written where they are, in the frame.
    struct Inline<'a>(&'a Bytes);

    impl Serialize for Inline<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let bytes = self.0;
            if codec::cuts(bytes) {
                // Their length here and their bytes as a part of their own
                // (`codec::encode_frame_parts`): what bincode writes for
                // bytes, a varint length then the bytes, in two pieces.
                let written = serializer.serialize_u64(bytes.len() as u64)?;
                codec::cut(bytes);
                return Ok(written);
            }
            serde_bytes::serialize(&bytes[..], serializer)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Bytes, D::Error> {
        if codec::decoding_blob_frame() {
            return deserializer.deserialize_enum("Wire", CASES, Wire);
        }
        deserializer.deserialize_bytes(SharedBytes)
    }

    /// The blob-frame form: inline bytes, or a blob's place and length.
    struct Wire;

    impl<'de> Visitor<'de> for Wire {
        type Value = Bytes;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes inline or in a blob")
        }

        fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
            let (case, access) = data.variant::<u32>()?;
            match case {
                0 => access.newtype_variant_seed(InlineSeed),
                1 => {
                    let (place, len): (BlobPlace, u64) = access.newtype_variant()?;
                    codec::take_blob(place, len).map_err(A::Error::custom)
                }
                other => Err(A::Error::custom(format!(
                    "no case {other} of bytes in a blob frame"
                ))),
            }
        }
    }

    /// Inline bytes in a blob frame, read as outside one.
    struct InlineSeed;

    impl<'de> serde::de::DeserializeSeed<'de> for InlineSeed {
        type Value = Bytes;

        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Bytes, D::Error> {
            deserializer.deserialize_bytes(SharedBytes)
        }
    }

    /// A slice of the frame being decoded when the bytes are the bulk of
    /// it (`codec::frame_slice`); otherwise copied once, from the input
    /// straight into their own allocation.
    struct SharedBytes;

    impl<'de> Visitor<'de> for SharedBytes {
        type Value = Bytes;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes")
        }

        fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
            Ok(codec::frame_slice(bytes).unwrap_or_else(|| Bytes::copy_from_slice(bytes)))
        }

        fn visit_byte_buf<E: Error>(self, bytes: Vec<u8>) -> Result<Self::Value, E> {
            Ok(Bytes::from(bytes))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            // Formats without a bytes type (JSON) send a sequence of
            // numbers; the size hint is the peer's word, so it is capped.
            let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(byte) = seq.next_element()? {
                bytes.push(byte);
            }
            Ok(Bytes::from(bytes))
        }
    }
}

/// A value sent to many peers, encoded once: in a frame encoded in parts
/// ([`codec::encode_frame_parts`](crate::codec::encode_frame_parts)), a big
/// one's encoding is made the first time and is a part of its own in every
/// frame that carries it, rather than encoded again into each. On the
/// wire it is the value itself, encoded as it would be inline, so a peer
/// decodes it as a plain `T`. A namespace push of 100 MB to two engines
/// costs the controller the value and one encoding, not one per engine.
#[derive(Clone, Debug)]
pub struct Encoded<T> {
    value: T,
    encoding: std::sync::OnceLock<Bytes>,
}

impl<T> Encoded<T> {
    /// Wraps `value`, not yet encoded.
    pub fn new(value: T) -> Self {
        Self {
            value,
            encoding: std::sync::OnceLock::new(),
        }
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> std::ops::Deref for Encoded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: PartialEq> PartialEq for Encoded<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Serialize> Serialize for Encoded<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // In a blob frame, the value itself: its big byte strings are
        // blobs, which a plain encoding made once cannot hold.
        if crate::codec::in_parts() && !crate::codec::encoding_blob_frame() {
            // Encoded once, even by writers racing for it (each engine's
            // writer encodes on a thread of its own): the others wait for
            // the first. A value that does not encode is left empty here,
            // and its inline encoding below says why.
            let encoding = self.encoding.get_or_init(|| {
                crate::codec::encode(&self.value)
                    .map(Bytes::from)
                    .unwrap_or_default()
            });
            if !encoding.is_empty() {
                // The encoding is the value's bytes as they would be
                // inline: a part of its own, with nothing written here (a
                // unit is no bytes in bincode). A small one too: it is
                // made already, and would only be made again inline.
                crate::codec::cut(encoding);
                return serializer.serialize_unit();
            }
        }
        self.value.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Encoded<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Encoded::new)
    }
}

/// What an engine sends the controller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FromEngine {
    /// I am alive (sent every second by each slot).
    Heartbeat {
        /// The engine process's resident memory, in bytes (every slot of
        /// a process reports the same); 0 where the system does not say.
        resident_bytes: u64,
    },
    /// A task finished (its `meta.submitted` is filled in by the controller).
    Done(TaskResult),
    /// The answer to a [`ToEngine::Namespace`].
    Namespace {
        /// The request's number.
        request: u64,
        /// The answer.
        reply: NamespaceReply,
    },
    /// The answer to a [`ToEngine::Retract`].
    Retracted {
        /// The task asked for.
        task: TaskId,
        /// The task handed back, unstarted; `None` if it had started (its
        /// `Done` follows or went before).
        run: Option<RunTask>,
    },
}

/// The outcome of one task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// The task's id.
    pub id: TaskId,
    /// One result per item, or the error that stopped the task.
    pub outcome: Result<Values, TaskError>,
    /// Where, when, and what it printed.
    pub meta: TaskMeta,
}

/// Why a task failed, as it travels to the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskError {
    /// The kind of failure.
    pub kind: ErrorKind,
    /// What went wrong, in words (the engine's error text).
    pub message: String,
    /// For a chunk, which item failed (0-based).
    pub item: Option<u32>,
}

/// Kinds of task failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The module was not uploaded, or did not load on the engine.
    Module,
    /// No such function, or arguments that do not fit its signature.
    Call,
    /// A host-enforced limit was exceeded.
    Limit,
    /// The guest trapped or panicked.
    Trap,
    /// The engine running the task left or died.
    EngineDied,
    /// No engine can run the task (its targets are gone).
    Unschedulable,
    /// The task ran past its wall-time limit (ipyparallel's `TimeoutError`).
    Timeout,
    /// The task's instance needed more linear memory than its limit.
    Memory,
    /// A client aborted the task.
    Aborted,
    /// The client lost its controller before the task was accepted (its
    /// submission was never committed), so it never ran: set by the
    /// client when it reconnects, never sent by a controller.
    NotAccepted,
    /// The submission would pass one of the tenant's quotas (queued
    /// tasks, a task time or memory ceiling): refused whole, it never
    /// ran. The message names the quota and its value.
    Quota,
}

/// Where and when a task ran, and what it printed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMeta {
    /// The engine that ran it, if any did.
    pub engine: Option<EngineId>,
    /// When the controller received it (microseconds since the Unix epoch).
    pub submitted_us: u64,
    /// When the engine started it.
    pub started_us: u64,
    /// When the engine finished it.
    pub completed_us: u64,
    /// Captured stdout, lossily decoded as UTF-8.
    pub stdout: String,
    /// Captured stderr, lossily decoded as UTF-8.
    pub stderr: String,
    /// Lines logged through `wasp:task/log`.
    pub logs: Vec<LogLine>,
    /// The most linear memory the task's instances held at once, in bytes,
    /// so that a user can size the memory limit.
    pub peak_memory_bytes: u64,
    /// The limits the task ran under: what its client asked for, capped by
    /// the engine's ceilings, or the engine's defaults. A retry with
    /// escalation doubles the one it exceeded.
    pub limits: TaskLimits,
    /// How many times the task ran before this outcome and did not finish
    /// (its engine died) or failed and was retried.
    pub attempts: u32,
}

/// How severe a log line is (`wasp:task/log.level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LogLevel {
    /// Fine detail.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal progress.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

/// One line a task logged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Its level.
    pub level: LogLevel,
    /// Its text.
    pub message: String,
}

/// A snapshot of the cluster for `wasp cluster status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The connected engines.
    pub engines: Vec<EngineStatus>,
    /// Tasks waiting for an engine.
    pub queued: u64,
    /// Tasks running or sent to an engine.
    pub running: u64,
    /// Tasks completed successfully since the controller started.
    pub succeeded: u64,
    /// Tasks failed since the controller started.
    pub failed: u64,
    /// The scheduler scheme, e.g. `leastload`.
    pub scheme: String,
    /// The scheduler's high-water mark (0 = unlimited).
    pub hwm: u32,
    /// What writing the task records has cost since the controller
    /// started: the price of acknowledging a submission only once it is
    /// committed.
    pub records: RecordsStats,
}

/// The task records' writer, counted since the controller started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordsStats {
    /// Records committed (submissions, results, modules, sessions,
    /// engines).
    pub committed: u64,
    /// Transactions they were committed in (group commit: one holds
    /// whatever queued up while the previous one was written).
    pub transactions: u64,
    /// Microseconds spent writing and committing them, in total.
    pub commit_us: u64,
    /// The longest transaction, in microseconds.
    pub max_commit_us: u64,
}

/// One engine in a [`ClusterStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStatus {
    /// Its id.
    pub id: EngineId,
    /// Its name (`host:pid`).
    pub name: String,
    /// Tasks dispatched to it and not finished.
    pub outstanding: u32,
    /// Tasks it has finished.
    pub done: u64,
    /// Module bytes the controller has sent it.
    pub module_bytes_sent: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_encode_as_the_zipped_argument_lists() {
        let xs: Vec<Value> = (0..7).map(Value::S64).collect();
        let ys: Vec<Value> = (0..9).map(|i| Value::String(format!("y{i}"))).collect();
        let sequences = [xs.clone(), ys.clone()];
        let zipped: Vec<Vec<Arg>> = (2..6)
            .map(|i| vec![Arg::Value(xs[i].clone()), Arg::Value(ys[i].clone())])
            .collect();
        let columns = Items::encode_columns(&sequences, 2..6).unwrap();
        assert_eq!(columns, Items::encode(&zipped).unwrap());
        assert_eq!(columns.decode().unwrap(), zipped);
        // Past the shortest sequence is an error, not a panic.
        let err = Items::encode_columns(&sequences, 5..8).unwrap_err();
        assert!(
            err.to_string().contains("beyond a sequence of 7 values"),
            "{err}"
        );
    }

    #[test]
    fn items_round_trip_and_keep_their_count() {
        let lists = vec![
            vec![Arg::Value(Value::S64(3)), Arg::Ref("x".into())],
            vec![
                Arg::Value(Value::String("é".into())),
                Arg::Value(Value::F64(0.5)),
            ],
        ];
        let items = Items::encode(&lists).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items.decode().unwrap(), lists);
        assert!(Items::default().is_empty());
        assert_eq!(Items::default().decode().map(|l| l.len()).ok(), None);
        assert_eq!(Pulled::none(), Pulled::encode(&[]).unwrap());
        assert_eq!(Pulled::none().decode().unwrap(), vec![]);
    }

    #[test]
    fn values_round_trip_and_travel_as_bytes() {
        let values = vec![Some(Value::S64(-7)), None, Some(Value::String("x".into()))];
        let packed = Values::encode(&values).unwrap();
        assert_eq!(packed.len(), 3);
        assert_eq!(packed.decode().unwrap(), values);
        // Inside a message, the values are one byte string, copied whole.
        let result = TaskResult {
            id: TaskId::new(1, 2),
            outcome: Ok(packed.clone()),
            meta: TaskMeta::default(),
        };
        let bytes = crate::codec::encode(&result).unwrap();
        let back: TaskResult = crate::codec::decode(&bytes).unwrap();
        assert_eq!(back.outcome.unwrap().decode().unwrap(), values);
    }

    #[test]
    fn items_that_lie_about_their_count_do_not_decode() {
        let mut items = Items::encode(&[vec![Arg::Value(Value::U32(1))]]).unwrap();
        items.count = 5;
        let err = items.decode().unwrap_err().to_string();
        assert!(
            err.contains("the bytes hold 1 items where the task says 5"),
            "{err}"
        );
        items.count = 1;
        items.bytes = items.bytes.slice(..1);
        assert!(items.decode().is_err());
    }
}

#[cfg(test)]
mod frame_slices {
    use bytes::Bytes;

    use super::*;
    use crate::codec::{self, SLICE_AT_LEAST};

    /// Whether `inner` lies inside `outer`'s memory.
    fn inside(inner: &[u8], outer: &[u8]) -> bool {
        let (start, end) = (
            outer.as_ptr() as usize,
            outer.as_ptr() as usize + outer.len(),
        );
        (start..=end).contains(&(inner.as_ptr() as usize))
    }

    fn results(lists: Vec<Values>) -> Bytes {
        let frame = codec::encode(&lists).unwrap();
        Bytes::from(frame)
    }

    #[test]
    fn a_big_list_decoded_from_a_frame_is_a_slice_of_it_and_a_small_one_a_copy() {
        let big = Values::encode(&[Some(Value::from(vec![7u8; 4 * SLICE_AT_LEAST]))]).unwrap();
        let payload = results(vec![big.clone()]);
        let decoded: Vec<Values> = codec::decode_frame(payload.clone()).unwrap();
        assert_eq!(decoded, vec![big.clone()]);
        assert!(
            inside(decoded[0].as_bytes(), &payload),
            "sliced, not copied"
        );
        // Decoded without the frame, or smaller than the slicing size, or
        // beside as many other bytes (not the bulk of the frame): copied.
        let copied: Vec<Values> = codec::decode(&payload).unwrap();
        assert!(!inside(copied[0].as_bytes(), &payload));
        let small = Values::encode(&[Some(Value::from(vec![7u8; 100]))]).unwrap();
        let payload = results(vec![small]);
        let decoded: Vec<Values> = codec::decode_frame(payload.clone()).unwrap();
        assert!(!inside(decoded[0].as_bytes(), &payload));
        let payload = results(vec![big.clone(), big.clone()]);
        let decoded: Vec<Values> = codec::decode_frame(payload.clone()).unwrap();
        assert_eq!(decoded, vec![big.clone(), big]);
        assert!(decoded.iter().all(|v| !inside(v.as_bytes(), &payload)));
    }

    #[test]
    fn a_frame_in_parts_is_the_frame_with_big_lists_shared_not_copied() {
        let big = Values::encode(&[Some(Value::from(vec![7u8; 2 * SLICE_AT_LEAST]))]).unwrap();
        let small = Values::encode(&[Some(Value::from(vec![1.5f64; 10]))]).unwrap();
        for lists in [
            vec![],
            vec![small.clone()],
            vec![big.clone()],
            vec![small.clone(), big.clone(), small.clone(), big.clone()],
        ] {
            let parts = codec::encode_frame_parts(&lists).unwrap();
            let joined: Vec<u8> = parts.iter().flat_map(|part| part.iter().copied()).collect();
            assert_eq!(joined, codec::encode_frame(&lists).unwrap());
            let bigs = lists
                .iter()
                .filter(|l| l.byte_len() >= SLICE_AT_LEAST)
                .count();
            // Each big list is a part of its own: its very bytes.
            let shared = parts
                .iter()
                .filter(|part| lists.iter().any(|l| part.as_ptr() == l.as_bytes().as_ptr()))
                .count();
            assert_eq!(shared, bigs);
            assert!(parts.len() <= 2 * bigs + 1);
        }
    }

    #[test]
    fn an_operation_for_many_engines_is_encoded_once_and_decodes_as_sent() {
        let push = NamespaceOp::Push(
            Entries::encode(&[("x".to_owned(), Value::from(vec![0.5f64; SLICE_AT_LEAST]))])
                .unwrap(),
        );
        let op = Arc::new(Encoded::new(push.clone()));
        let to_engine = |engine: u64| ToEngine::Namespace {
            request: engine,
            tenant: Tenant("t".to_owned()),
            quota_bytes: None,
            op: op.clone(),
        };
        // Two engines' frames, as their writers encode them.
        let (first, second) = (vec![to_engine(1)], vec![to_engine(2)]);
        let parts = [&first, &second].map(|msgs| codec::encode_frame_parts(msgs).unwrap());
        for (msgs, parts) in [&first, &second].into_iter().zip(&parts) {
            let joined: Vec<u8> = parts.iter().flat_map(|part| part.iter().copied()).collect();
            assert_eq!(joined, codec::encode_frame(msgs).unwrap());
            let decoded: Vec<ToEngine> = codec::decode(&joined[codec::PREFIX_LEN..]).unwrap();
            assert!(matches!(&decoded[0], ToEngine::Namespace { op, .. } if ***op == push));
        }
        // The op's encoding is one buffer, a part of both frames.
        let biggest = |parts: &[Bytes]| parts.iter().max_by_key(|p| p.len()).unwrap().as_ptr();
        assert_eq!(biggest(&parts[0]), biggest(&parts[1]));
        // A small op too is the frame it would be inline.
        let small = ToEngine::Namespace {
            request: 3,
            tenant: Tenant("t".to_owned()),
            quota_bytes: Some(7),
            op: Arc::new(Encoded::new(NamespaceOp::Pull(vec!["x".to_owned()]))),
        };
        let parts = codec::encode_frame_parts(&vec![small.clone(), small.clone()]).unwrap();
        let joined: Vec<u8> = parts.iter().flat_map(|part| part.iter().copied()).collect();
        assert_eq!(
            joined,
            codec::encode_frame(&vec![small.clone(), small]).unwrap()
        );
    }
}
