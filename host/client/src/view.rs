//! Views: [`LoadBalancedView`] (the scheduler picks the engine) and
//! [`DirectView`] (explicit engines), with ipyparallel's operations and
//! flags.
//!
//! Rust has no dynamic return types, so `block` keeps ipyparallel's meaning
//! this way: `apply` and `map` always return an [`AsyncResult`]; with
//! `block = true` they return it only once every result has arrived.
//! `apply_sync` returns the value itself.
//!
//! Both views carry per-task limits, as ipyparallel's `timeout` flag:
//! `timeout` (the wall time of each task, all items of a map chunk
//! together) and `memory` (its linear memory). Each engine caps them by its
//! own ceilings; unset, the engine's settings apply. And both carry
//! ipyparallel's `retries` flag: a task that fails is run again that many
//! times; with `escalate`, a retry after a time- or memory-limit failure
//! doubles that limit (up to the engine's ceiling). A task whose engine
//! dies under it is run again whatever `retries` says (up to the
//! controller's `max_engine_deaths`).

use std::time::Duration;

use wasp_proto::msg::{Arg, Entries, NamespaceOp, RetryPolicy, Submission, TaskLimits, TaskSpec};
use wasp_proto::{Array, EngineId, TaskId, Value};

use crate::async_result::AsyncResult;
use crate::client::Client;
use crate::error::ClientError;
use crate::module::Module;
use crate::plan::Plan;

/// The engine-choosing core shared by both views.
#[derive(Clone)]
struct ViewCore {
    client: Client,
    targets: Option<Vec<EngineId>>,
}

/// Tasks in the first frame of a submission; each next frame holds twice
/// as many, up to [`SUBMIT_SLICE`].
const FIRST_SLICE: usize = 16;

/// Most tasks in one submit message, and so in one frame (a submit ends a
/// frame): a frame of a million tasks would make the controller hold the
/// whole encoded frame and its decoded copy at once.
const SUBMIT_SLICE: usize = 4096;

/// The per-task flags both views carry, sent with each task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskFlags {
    /// Wall time per task, all items of a chunk together (ipyparallel's
    /// `timeout`); `None`: the engine's limit. Capped by the engine's.
    pub timeout: Option<Duration>,
    /// Linear memory per task, in bytes; `None`: the engine's limit.
    /// Capped by the engine's.
    pub memory: Option<u64>,
    /// How many times a failed task is run again (ipyparallel's
    /// `retries`).
    pub retries: u32,
    /// Whether a retry after a time- or memory-limit failure doubles that
    /// limit.
    pub escalate: bool,
}

/// The setters of the per-task flags both views have (ipyparallel's view
/// flags `timeout` and `retries`, and wasp's `memory` and `escalate`),
/// written once: each view holds its [`TaskFlags`] in `self.flags`.
macro_rules! task_flag_setters {
    () => {
        /// Sets `timeout`: each task's wall time.
        pub fn with_timeout(mut self, timeout: Duration) -> Self {
            self.flags.timeout = Some(timeout);
            self
        }

        /// Sets `memory`: each task's linear memory, in bytes.
        pub fn with_memory(mut self, bytes: u64) -> Self {
            self.flags.memory = Some(bytes);
            self
        }

        /// Sets `retries`: how many times a failed task runs again.
        pub fn with_retries(mut self, retries: u32) -> Self {
            self.flags.retries = retries;
            self
        }

        /// Sets `escalate`: a retry after a limit failure doubles that limit.
        pub fn with_escalate(mut self, escalate: bool) -> Self {
            self.flags.escalate = escalate;
            self
        }
    };
}

impl TaskFlags {
    fn limits(&self) -> TaskLimits {
        TaskLimits {
            timeout_us: self
                .timeout
                .map(|t| u64::try_from(t.as_micros()).unwrap_or(u64::MAX)),
            memory_bytes: self.memory,
        }
    }

    fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.retries,
            escalate: self.escalate,
        }
    }
}

fn to_args(values: Vec<Value>) -> Vec<Arg> {
    values.into_iter().map(Arg::Value).collect()
}

impl ViewCore {
    /// Splits items into chunks of `chunksize`, each allowed on the view's
    /// targets.
    fn chunks(&self, items: Vec<Vec<Arg>>, chunksize: usize) -> Plan {
        let chunksize = chunksize.max(1);
        let mut chunks = Vec::with_capacity(items.len().div_ceil(chunksize));
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            chunks.push((
                items.by_ref().take(chunksize).collect(),
                self.targets.clone(),
            ));
        }
        Plan::Chunks(chunks)
    }

    /// Checks every item's arguments against the signature, uploads the
    /// module if the controller lacks it, and submits one task per chunk,
    /// each with `flags`.
    ///
    /// Tasks leave in slices that start small and double: the engines
    /// start on the first tasks while the client still encodes the rest.
    async fn submit(
        &self,
        module: &Module,
        func: &str,
        plan: Plan,
        ordered: bool,
        single: bool,
        flags: TaskFlags,
    ) -> Result<AsyncResult, ClientError> {
        let (limits, retry) = (flags.limits(), flags.retry());
        let export = module.find(func)?;
        plan.check(&export.sig, single)?;
        self.client.ensure_module(module).await?;
        let sizes = plan.sizes();
        let ids: Vec<TaskId> = sizes.iter().map(|_| self.client.next_task_id()).collect();
        let rx = self.client.expect(&ids)?;
        // The controller admits the tasks whole or not at all, at the
        // first slice (its queued-task quota counts every slice).
        let submission = Submission {
            first: ids.first().copied().unwrap_or(TaskId(0)),
            tasks: ids.len() as u64,
        };
        let mut start = 0;
        let mut slice = FIRST_SLICE;
        while start < ids.len() {
            let end = (start + slice).min(ids.len());
            let specs = (start..end)
                .map(|t| {
                    let (items, targets) = plan.task(t)?;
                    Ok(TaskSpec {
                        id: ids[t],
                        module: module.hash,
                        func: func.to_owned(),
                        items,
                        targets,
                        limits,
                        retry,
                    })
                })
                .collect::<Result<Vec<TaskSpec>, ClientError>>();
            if let Err(err) = specs.and_then(|specs| self.client.send_tasks(submission, specs)) {
                // Tasks already sent run on; nobody waits for them.
                self.client.forget(&ids);
                return Err(err);
            }
            start = end;
            slice = (slice * 2).min(SUBMIT_SLICE);
            if start < ids.len() {
                // Lets the writer send this slice while the next is encoded.
                tokio::task::yield_now().await;
            }
        }
        Ok(AsyncResult::new(
            self.client.clone(),
            ids,
            sizes,
            rx,
            ordered,
            single,
        ))
    }
}

/// Turns several argument sequences into one argument list per item, as
/// Python's `map(f, xs, ys)` zips them (stopping at the shortest).
fn zip_sequences(sequences: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    let len = sequences.iter().map(Vec::len).min().unwrap_or(0);
    let mut iters: Vec<_> = sequences.into_iter().map(Vec::into_iter).collect();
    (0..len)
        .map(|_| iters.iter_mut().filter_map(Iterator::next).collect())
        .collect()
}

/// A view whose tasks the controller's scheduler places
/// (`rc.load_balanced_view()`).
#[derive(Clone)]
pub struct LoadBalancedView {
    core: ViewCore,
    /// Items per task in `map` (ipyparallel's default: 1).
    pub chunksize: usize,
    /// Whether `map` results iterate in submission order (else as they
    /// complete).
    pub ordered: bool,
    /// Whether `apply` and `map` wait for their results before returning.
    pub block: bool,
    /// Limits and retries of each task.
    pub flags: TaskFlags,
}

impl LoadBalancedView {
    pub(crate) fn new(client: Client, targets: Option<Vec<EngineId>>) -> Self {
        Self {
            core: ViewCore { client, targets },
            chunksize: 1,
            ordered: true,
            block: false,
            flags: TaskFlags::default(),
        }
    }

    /// Restricts the scheduler to these engines.
    pub fn with_targets(mut self, targets: impl Into<Vec<EngineId>>) -> Self {
        self.core.targets = Some(targets.into());
        self
    }

    /// Sets `chunksize`.
    pub fn with_chunksize(mut self, chunksize: usize) -> Self {
        self.chunksize = chunksize;
        self
    }

    /// Sets `ordered`.
    pub fn with_ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    /// Sets `block`.
    pub fn with_block(mut self, block: bool) -> Self {
        self.block = block;
        self
    }

    task_flag_setters!();

    /// Runs `func(args...)` once, on the engine the scheduler picks.
    pub async fn apply(
        &self,
        module: &Module,
        func: &str,
        args: Vec<Value>,
    ) -> Result<AsyncResult, ClientError> {
        let mut result = self.apply_async(module, func, args).await?;
        if self.block {
            result.wait(None).await;
        }
        Ok(result)
    }

    /// Runs `func(args...)` once without waiting, whatever `block` says
    /// (ipyparallel's `apply_async`).
    pub async fn apply_async(
        &self,
        module: &Module,
        func: &str,
        args: Vec<Value>,
    ) -> Result<AsyncResult, ClientError> {
        self.apply_args(module, func, to_args(args)).await
    }

    /// Like [`LoadBalancedView::apply_async`], with arguments that may be
    /// references to a namespace value ([`crate::reference`]), resolved on
    /// whichever engine runs the call, as `lview.apply(f,
    /// parallel.Reference('a'))` after `rc[:].push({'a': A})`: the value
    /// moves to the engines once, not with each call.
    pub async fn apply_args(
        &self,
        module: &Module,
        func: &str,
        args: Vec<Arg>,
    ) -> Result<AsyncResult, ClientError> {
        let chunks = self.core.chunks(vec![args], 1);
        self.core
            .submit(module, func, chunks, true, true, self.flags)
            .await
    }

    /// Runs `func(args...)` once and returns its result.
    pub async fn apply_sync(
        &self,
        module: &Module,
        func: &str,
        args: Vec<Value>,
    ) -> Result<Option<Value>, ClientError> {
        self.apply_async(module, func, args)
            .await?
            .get_one(None)
            .await
    }

    /// `map(func, *sequences)`, not waiting: one task per `chunksize` items.
    pub async fn map_async(
        &self,
        module: &Module,
        func: &str,
        sequences: Vec<Vec<Value>>,
    ) -> Result<AsyncResult, ClientError> {
        let plan = Plan::columns(sequences, self.chunksize, self.core.targets.clone());
        let mut result = self
            .core
            .submit(module, func, plan, self.ordered, false, self.flags)
            .await?;
        if self.block {
            result.wait(None).await;
        }
        Ok(result)
    }

    /// `map(func, *sequences)`, waiting for every result.
    pub async fn map(
        &self,
        module: &Module,
        func: &str,
        sequences: Vec<Vec<Value>>,
    ) -> Result<Vec<Option<Value>>, ClientError> {
        self.map_async(module, func, sequences)
            .await?
            .get(None)
            .await
    }
}

/// A view on explicit engines (`rc[0]`, `rc[[0, 2]]`).
///
/// This subset: `apply` runs on the view's engines through the
/// scheduler with the targets fixed (one engine: exactly that engine).
#[derive(Clone)]
pub struct DirectView {
    core: ViewCore,
    targets: Vec<EngineId>,
    /// Limits and retries of each task.
    pub flags: TaskFlags,
}

impl DirectView {
    pub(crate) fn new(client: Client, targets: Vec<EngineId>) -> Self {
        Self {
            core: ViewCore {
                client,
                targets: Some(targets.clone()),
            },
            targets,
            flags: TaskFlags::default(),
        }
    }

    task_flag_setters!();

    /// The view's engines.
    pub fn targets(&self) -> &[EngineId] {
        &self.targets
    }

    /// Runs `func(args...)` once on each target, results in target order.
    pub async fn apply(
        &self,
        module: &Module,
        func: &str,
        args: Vec<Value>,
    ) -> Result<AsyncResult, ClientError> {
        self.apply_args(module, func, to_args(args)).await
    }

    /// [`DirectView::apply`] (which never waits), by ipyparallel's name.
    pub async fn apply_async(
        &self,
        module: &Module,
        func: &str,
        args: Vec<Value>,
    ) -> Result<AsyncResult, ClientError> {
        self.apply(module, func, args).await
    }

    /// Like [`DirectView::apply`], with arguments that may be references to
    /// each engine's own namespace value ([`crate::reference`]), as
    /// `dv.apply(f, parallel.Reference('id'))`.
    pub async fn apply_args(
        &self,
        module: &Module,
        func: &str,
        args: Vec<Arg>,
    ) -> Result<AsyncResult, ClientError> {
        let chunks = self
            .targets
            .iter()
            .map(|target| (vec![args.clone()], Some(vec![*target])))
            .collect();
        let single = self.targets.len() == 1;
        self.core
            .submit(module, func, Plan::Chunks(chunks), true, single, self.flags)
            .await
    }

    /// Runs `func(args...)` on the targets and returns the results: the bare
    /// value for a single engine (as ipyparallel does), else one per target.
    pub async fn apply_sync(
        &self,
        module: &Module,
        func: &str,
        args: Vec<Value>,
    ) -> Result<Value, ClientError> {
        let mut result = self.apply(module, func, args).await?;
        let values = result.get(None).await?;
        if self.targets.len() == 1 {
            return Ok(values
                .into_iter()
                .next()
                .flatten()
                .unwrap_or(Value::Option(None)));
        }
        Ok(Value::List(
            values
                .into_iter()
                .map(|v| v.unwrap_or(Value::Option(None)))
                .collect(),
        ))
    }
}

impl DirectView {
    async fn namespace(&self, op: NamespaceOp) -> Result<Vec<Vec<Value>>, ClientError> {
        self.core.client.namespace(self.targets.clone(), op).await
    }

    /// Sets `name = value` in every target's namespace (`dv.push`).
    pub async fn push(&self, values: Vec<(String, Value)>) -> Result<(), ClientError> {
        let typed = values.iter().map(|(_, v)| v.typed_bytes()).sum();
        let entries = Entries::encode_spilling(&values, wasp_net::same_host::spill_for(typed))
            .map_err(|err| {
                ClientError::Namespace(format!("the values to push do not encode: {err}"))
            })?;
        self.namespace(NamespaceOp::Push(entries)).await.map(drop)
    }

    /// Each target's value of `name`, in target order (`dv['name']`,
    /// `dv.pull('name')`).
    pub async fn pull(&self, name: &str) -> Result<Vec<Value>, ClientError> {
        let replies = self
            .namespace(NamespaceOp::Pull(vec![name.to_owned()]))
            .await?;
        Ok(replies.into_iter().flatten().collect())
    }

    /// Each target's values of several names: one list per target, in
    /// target order, the values in the order of `names`.
    pub async fn pull_names(&self, names: &[&str]) -> Result<Vec<Vec<Value>>, ClientError> {
        let names = names.iter().map(|n| (*n).to_owned()).collect();
        self.namespace(NamespaceOp::Pull(names)).await
    }

    /// `map(func, *sequences)` as ipyparallel's DirectView does it: the
    /// items split into one contiguous, balanced chunk per target; results
    /// in item order.
    pub async fn map_async(
        &self,
        module: &Module,
        func: &str,
        sequences: Vec<Vec<Value>>,
    ) -> Result<AsyncResult, ClientError> {
        let items: Vec<Value> = zip_sequences(sequences)
            .into_iter()
            .map(Value::Tuple)
            .collect();
        let chunks = partition(items, self.targets.len())
            .into_iter()
            .zip(&self.targets)
            .filter(|(part, _)| !part.is_empty())
            .map(|(part, target)| {
                let part = part
                    .into_iter()
                    .map(|item| match item {
                        Value::Tuple(args) => to_args(args),
                        other => vec![Arg::Value(other)],
                    })
                    .collect();
                (part, Some(vec![*target]))
            })
            .collect();
        self.core
            .submit(module, func, Plan::Chunks(chunks), true, false, self.flags)
            .await
    }

    /// [`DirectView::map_async`], waiting for every result.
    pub async fn map(
        &self,
        module: &Module,
        func: &str,
        sequences: Vec<Vec<Value>>,
    ) -> Result<Vec<Option<Value>>, ClientError> {
        self.map_async(module, func, sequences)
            .await?
            .get(None)
            .await
    }

    /// Removes every name from the targets' namespaces.
    pub async fn clear(&self) -> Result<(), ClientError> {
        self.namespace(NamespaceOp::Clear).await.map(drop)
    }

    /// Splits `seq` into contiguous, balanced parts, one per target, and
    /// pushes part i to target i as `name` (`dv.scatter`). With `flatten`,
    /// a one-item part is pushed as the item itself, not a one-item list.
    pub async fn scatter(
        &self,
        name: &str,
        seq: Vec<Value>,
        flatten: bool,
    ) -> Result<(), ClientError> {
        let parts = partition(seq, self.targets.len());
        let values = parts.into_iter().map(|part| {
            if flatten && part.len() == 1 {
                part.into_iter().next().unwrap_or(Value::List(Vec::new()))
            } else {
                Value::List(part)
            }
        });
        self.push_parts(name, values).await
    }

    /// [`DirectView::scatter`] of a typed list (an array of numbers or
    /// bytes): each target gets its part as a typed list, sent as its
    /// bytes, never item by item. With `flatten`, a one-item part is
    /// pushed as the item itself.
    pub async fn scatter_array(
        &self,
        name: &str,
        array: &Array,
        flatten: bool,
    ) -> Result<(), ClientError> {
        let values = array
            .split(self.targets.len())
            .into_iter()
            .map(|part| match part.get(0) {
                Some(item) if flatten && part.len() == 1 => item,
                _ => Value::from(part),
            });
        self.push_parts(name, values).await
    }

    /// Pushes the i-th of `values` as `name` to the i-th target.
    async fn push_parts(
        &self,
        name: &str,
        values: impl Iterator<Item = Value>,
    ) -> Result<(), ClientError> {
        for (value, target) in values.zip(&self.targets) {
            let view = DirectView::new(self.core.client.clone(), vec![*target]);
            view.push(vec![(name.to_owned(), value)]).await?;
        }
        Ok(())
    }

    /// Concatenates the targets' values of `name`, in target order
    /// (`dv.gather`): lists are joined (typed lists item by item), other
    /// values appended as items.
    pub async fn gather(&self, name: &str) -> Result<Vec<Value>, ClientError> {
        let mut all = Vec::new();
        for value in self.pull(name).await? {
            match value {
                Value::List(items) => all.extend(items),
                Value::Array(array) => all.extend(array.to_values()),
                item => all.push(item),
            }
        }
        Ok(all)
    }

    /// [`DirectView::gather`] of typed lists: the targets' typed lists of
    /// `name` joined into one, in target order, without a value per item
    /// (a scalar, as `scatter_array` with `flatten` leaves, counts as a
    /// one-item list). An error if a target holds something else, or
    /// lists of another element type.
    pub async fn gather_array(&self, name: &str) -> Result<Array, ClientError> {
        let mut parts = Vec::new();
        for value in self.pull(name).await? {
            let part = match value {
                Value::Array(array) => std::sync::Arc::unwrap_or_clone(array),
                Value::List(items) if items.is_empty() => Array::F64(Vec::new()),
                other => Array::of_scalar(&other).ok_or_else(|| {
                    ClientError::Namespace(format!(
                        "gather_array({name:?}): a target holds {}, not a list of numbers",
                        other.kind()
                    ))
                })?,
            };
            parts.push(part);
        }
        Array::concat(&parts).ok_or_else(|| {
            ClientError::Namespace(format!(
                "gather_array({name:?}): the targets hold lists of different element types"
            ))
        })
    }

    /// Sends `module` to the targets ahead of use, where it is compiled and
    /// cached; an engine that has it receives only its hash.
    pub async fn load(&self, module: &Module) -> Result<(), ClientError> {
        self.core.client.ensure_module(module).await?;
        self.namespace(NamespaceOp::Load(module.hash))
            .await
            .map(drop)
    }
}

/// ipyparallel's partitioning for `scatter`: `n` items into `parts`
/// contiguous parts whose sizes differ by at most one, the larger first.
pub fn partition(seq: Vec<Value>, parts: usize) -> Vec<Vec<Value>> {
    let parts = parts.max(1);
    let (base, extra) = (seq.len() / parts, seq.len() % parts);
    let mut items = seq.into_iter();
    (0..parts)
        .map(|p| items.by_ref().take(base + usize::from(p < extra)).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_flags_become_task_limits_and_retry_policy() {
        assert_eq!(TaskFlags::default().limits(), TaskLimits::default());
        let flags = TaskFlags {
            timeout: Some(Duration::from_millis(1500)),
            memory: Some(16 << 20),
            retries: 2,
            escalate: true,
        };
        assert_eq!(
            flags.limits(),
            TaskLimits {
                timeout_us: Some(1_500_000),
                memory_bytes: Some(16 << 20),
            }
        );
        assert_eq!(
            flags.retry(),
            RetryPolicy {
                retries: 2,
                escalate: true
            }
        );
        let forever = TaskFlags {
            timeout: Some(Duration::MAX),
            ..TaskFlags::default()
        };
        assert_eq!(forever.limits().timeout_us, Some(u64::MAX), "saturates");
    }
}
