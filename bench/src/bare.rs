//! The limit a wasp figure is compared with: plain wasmtime doing the least
//! a task call needs, with none of wasp's checks, limits or capture.
//!
//! The engine is configured as `wasp_engine::runtime`'s is (pooling
//! allocator with the same pool sizes, async support, the same stack
//! sizes) and with **epoch interruption on**, so the guest's compiled code,
//! epoch checks included, is the same; no ticker thread advances the epoch,
//! so the deadline (one tick, as wasp sets it) is never reached. The linker
//! holds WASI p2 (`wasmtime_wasi::p2::add_to_linker_async`) and trivial
//! `wasp:task` functions (the tasks import them), nothing else. A store
//! holds a default `WasiCtx` and a resource table, nothing else.

use wasmtime::component::{
    Component, ComponentExportIndex, Func, Instance, InstancePre, Linker, ResourceTable, Val,
};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasp_engine::Limits;

/// An engine configured exactly as wasp's runtime configures its own for
/// `limits` and `max_instances` (and the default resident memory per
/// slot), epoch interruption included.
pub fn engine(limits: &Limits, max_instances: u32) -> wasmtime::Result<Engine> {
    Engine::new(&wasp_engine::runtime::engine_config(
        limits,
        max_instances,
        wasp_engine::runtime::KEEP_RESIDENT,
    ))
}

/// The data of a bare store.
pub struct BareState {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for BareState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// A plain wasmtime engine and linker.
pub struct Bare {
    engine: Engine,
    linker: Linker<BareState>,
}

impl Bare {
    /// An [`engine`], and a linker with WASI p2 and trivial `wasp:task`
    /// functions.
    pub fn new(limits: &Limits, max_instances: u32) -> wasmtime::Result<Self> {
        let engine = engine(limits, max_instances)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        let mut identity = linker.instance("wasp:task/identity@0.1.0")?;
        identity.func_wrap("engine-id", |_, (): ()| Ok((0u32,)))?;
        identity.func_wrap("tenant", |_, (): ()| Ok((String::new(),)))?;
        identity.func_wrap("task-id", |_, (): ()| Ok((String::new(),)))?;
        let mut log = linker.instance("wasp:task/log@0.1.0")?;
        // Dynamic, because `level` is an enum: the line is dropped.
        log.func_new("log", |_, _, _, _| Ok(()))?;
        Ok(Self { engine, linker })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Links `component` once, as wasp does per module.
    pub fn pre(&self, component: &Component) -> wasmtime::Result<InstancePre<BareState>> {
        self.linker.instantiate_pre(component)
    }
}

/// A fresh store with a minimal `WasiCtx` and the epoch deadline one tick
/// away (never reached: nothing advances the bare engine's epoch).
pub fn store(engine: &Engine) -> Store<BareState> {
    let mut store = Store::new(
        engine,
        BareState {
            ctx: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    );
    store.set_epoch_deadline(1);
    store
}

/// The export index of `func` in the exported interface `interface`.
pub fn export_index(
    component: &Component,
    interface: &str,
    func: &str,
) -> Option<ComponentExportIndex> {
    let instance = component.get_export_index(None, interface)?;
    component.get_export_index(Some(&instance), func)
}

/// One fresh-store call: a new store, instantiation, a dynamic call.
pub async fn fresh_call(
    engine: &Engine,
    pre: &InstancePre<BareState>,
    func: &ComponentExportIndex,
    params: &[Val],
) -> wasmtime::Result<Val> {
    let mut store = store(engine);
    let instance = pre.instantiate_async(&mut store).await?;
    let func = get_func(&mut store, &instance, func)?;
    call(&mut store, func, params).await
}

/// Looks an exported function up in a live instance.
pub fn get_func(
    store: &mut Store<BareState>,
    instance: &Instance,
    func: &ComponentExportIndex,
) -> wasmtime::Result<Func> {
    instance
        .get_func(store, func)
        .ok_or_else(|| wasmtime::format_err!("the export is not a function"))
}

/// One dynamic call of a function with one result.
pub async fn call(
    store: &mut Store<BareState>,
    func: Func,
    params: &[Val],
) -> wasmtime::Result<Val> {
    let mut results = [Val::Bool(false)];
    func.call_async(store, params, &mut results).await?;
    let [result] = results;
    Ok(result)
}
