//! Views: [`LoadBalancedView`] (the scheduler picks the engine) and
//! [`DirectView`] (explicit engines), with ipyparallel's operations and
//! flags.
//!
//! Rust has no dynamic return types, so `block` keeps ipyparallel's meaning
//! this way: `apply` and `map` always return an [`AsyncResult`]; with
//! `block = true` they return it only once every result has arrived.
//! `apply_sync` returns the value itself.

use wasp_proto::msg::TaskSpec;
use wasp_proto::{EngineId, Value};

use crate::async_result::AsyncResult;
use crate::client::Client;
use crate::error::ClientError;
use crate::module::Module;

/// The engine-choosing core shared by both views.
#[derive(Clone)]
struct ViewCore {
    client: Client,
    targets: Option<Vec<EngineId>>,
}

/// One task to submit: its items and the engines allowed to run it.
type Chunk = (Vec<Vec<Value>>, Option<Vec<EngineId>>);

impl ViewCore {
    /// Splits items into chunks of `chunksize`, each allowed on the view's
    /// targets.
    fn chunks(&self, items: Vec<Vec<Value>>, chunksize: usize) -> Vec<Chunk> {
        let chunksize = chunksize.max(1);
        let mut chunks = Vec::with_capacity(items.len().div_ceil(chunksize));
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            chunks.push((
                items.by_ref().take(chunksize).collect(),
                self.targets.clone(),
            ));
        }
        chunks
    }

    /// Checks every item's arguments against the signature, uploads the
    /// module if the controller lacks it, and submits one task per chunk.
    async fn submit(
        &self,
        module: &Module,
        func: &str,
        chunks: Vec<Chunk>,
        ordered: bool,
        single: bool,
    ) -> Result<AsyncResult, ClientError> {
        let export = module.find(func)?;
        for (i, args) in chunks.iter().flat_map(|(items, _)| items).enumerate() {
            export.sig.check_args(args).map_err(|err| {
                let which = if single {
                    String::new()
                } else {
                    format!("item {i}: ")
                };
                ClientError::Arguments(format!("{which}{err}"))
            })?;
        }
        self.client.ensure_module(module).await?;
        let mut sizes = Vec::with_capacity(chunks.len());
        let specs: Vec<TaskSpec> = chunks
            .into_iter()
            .map(|(items, targets)| {
                sizes.push(items.len());
                TaskSpec {
                    id: self.client.next_task_id(),
                    module: module.hash,
                    func: func.to_owned(),
                    items,
                    targets,
                }
            })
            .collect();
        let ids = specs.iter().map(|s| s.id).collect();
        let rx = self.client.submit(specs)?;
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
}

impl LoadBalancedView {
    pub(crate) fn new(client: Client, targets: Option<Vec<EngineId>>) -> Self {
        Self {
            core: ViewCore { client, targets },
            chunksize: 1,
            ordered: true,
            block: false,
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

    /// Runs `func(args...)` once, on the engine the scheduler picks.
    pub async fn apply(
        &self,
        module: &Module,
        func: &str,
        args: Vec<Value>,
    ) -> Result<AsyncResult, ClientError> {
        let chunks = self.core.chunks(vec![args], 1);
        let mut result = self.core.submit(module, func, chunks, true, true).await?;
        if self.block {
            result.wait(None).await;
        }
        Ok(result)
    }

    /// Runs `func(args...)` once and returns its result.
    pub async fn apply_sync(
        &self,
        module: &Module,
        func: &str,
        args: Vec<Value>,
    ) -> Result<Option<Value>, ClientError> {
        let chunks = self.core.chunks(vec![args], 1);
        let mut result = self.core.submit(module, func, chunks, true, true).await?;
        result.get_one(None).await
    }

    /// `map(func, *sequences)`, not waiting: one task per `chunksize` items.
    pub async fn map_async(
        &self,
        module: &Module,
        func: &str,
        sequences: Vec<Vec<Value>>,
    ) -> Result<AsyncResult, ClientError> {
        let chunks = self.core.chunks(zip_sequences(sequences), self.chunksize);
        let mut result = self
            .core
            .submit(module, func, chunks, self.ordered, false)
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
}

impl DirectView {
    pub(crate) fn new(client: Client, targets: Vec<EngineId>) -> Self {
        Self {
            core: ViewCore {
                client,
                targets: Some(targets.clone()),
            },
            targets,
        }
    }

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
        let chunks = self
            .targets
            .iter()
            .map(|target| (vec![args.clone()], Some(vec![*target])))
            .collect();
        let single = self.targets.len() == 1;
        self.core.submit(module, func, chunks, true, single).await
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
