//! `wasp controller` and `wasp engine`: the two long-running processes.

use std::process::ExitCode;

use anyhow::Context;
use wasp_controller::{Controller, ControllerConfig};
use wasp_engine::node::{ConnectionSource, NodeConfig, run_node};
use wasp_net::Profile;

use crate::cli::{ControllerArgs, EngineArgs};

pub fn controller(args: &ControllerArgs) -> anyhow::Result<ExitCode> {
    let profile = Profile::new(&args.profile.profile)?;
    let mut config = ControllerConfig::new(profile.dir().to_owned());
    config.bind = args.listen.bind();
    config.dashboard = args.listen.dashboard;
    config.location = args
        .listen
        .location
        .as_ref()
        .map(|location| location.resolve(config.bind.is_ipv6()))
        .transpose()?;
    config.scheme = args
        .scheduler
        .scheme
        .parse()
        .map_err(|e| anyhow::anyhow!("--scheme: {e}"))?;
    config.hwm = args.scheduler.hwm;
    if let Some(size) = args.max_module_size {
        config.max_module_bytes = size.0;
    }
    config.max_engine_deaths = args.hub.max_engine_deaths;
    config.max_records = args.hub.max_records;
    config.same_host = !args.hub.no_same_host;
    config.heartbeat_timeout = args.hub.heartbeat_timeout.0;
    if let Some(size) = args.max_module_storage {
        config.max_module_storage = size.0 as u64;
    }
    config.prefetch = args.scheduler.prefetch.0;
    config.time_slice = args.scheduler.time_slice;
    // The controller carries every message: it should run the moment one
    // arrives, even while engines compute on every core of its host.
    let prompt = wasp_net::wakeups::prefer_prompt_wakeups();
    tracing::debug!(prompt, "asked for a short time slice");
    tokio_runtime()?.block_on(async {
        let controller = Controller::start(config)
            .await
            .context("starting the controller")?;
        let dialled = if controller.location == controller.addr {
            String::new()
        } else {
            format!(" (peers dial {})", controller.location)
        };
        eprintln!(
            "wasp controller listening on {}{dialled}; client connection file: {}",
            controller.addr,
            controller.client_file.display()
        );
        if let Some(dashboard) = controller.dashboard {
            eprintln!(
                "wasp dashboard on http://{dashboard}/ (sign in with a tenant's token; \
                 Prometheus metrics at http://{dashboard}/metrics, for an admin token)"
            );
        }
        // The log's warning is not shown by default (RUST_LOG=error); this
        // one strands every engine on another host, so it is said here too.
        if controller.addr.ip().is_unspecified() && controller.location.ip().is_loopback() {
            eprintln!(
                "wasp: warning: found no address of this host to write for --ip {}: the \
                 connection files say {}, which only this host can dial; pass --location ADDR",
                controller.addr.ip(),
                controller.location
            );
        }
        let stop = tokio::signal::ctrl_c();
        tokio::select! {
            _ = controller_wait(&controller) => {}
            _ = stop => controller.stop(),
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn controller_wait(controller: &Controller) {
    controller.stopped().await;
    // Give the connection writers a moment to deliver the engines' Shutdown
    // and the endpoint's close frames, so peers learn at once rather than
    // at their idle timeout.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
}

pub fn engine(args: &EngineArgs) -> anyhow::Result<ExitCode> {
    let path = match &args.file {
        Some(path) => path.clone(),
        None => Profile::new(&args.profile.profile)?.engine_file(),
    };
    let slots = args.slots;
    let mut runtime = args.runtime.runtime_config();
    // Each slot runs one task at a time; a few instances cover a chunk's
    // reuse, the spare made ahead and a task sliced in beside.
    runtime.max_instances = instances_for(slots);
    let name = format!("{}:{}", hostname(), std::process::id());
    // This thread computes: it keeps the kernel's default time slice even
    // when its parent asked for a short one (`wasp_net::wakeups`), so that
    // the threads carrying messages, which wake briefly, run ahead of it.
    wasp_net::wakeups::default_time_slice();
    let node = run_node(NodeConfig {
        connection: ConnectionSource::File(path),
        runtime,
        name,
        slots,
        namespace_bytes: args
            .max_namespace
            .map_or(wasp_engine::node::DEFAULT_NAMESPACE_BYTES, |size| size.0),
        start_timeout: args.start_timeout.0,
        reconnect_timeout: args.reconnect_timeout.0,
    });
    let engines = engine_runtime(slots)?.block_on(node)?;
    tracing::info!(?engines, "engine stopped");
    Ok(ExitCode::SUCCESS)
}

/// The instance pool of a process of `slots` engines: per slot, the
/// running task's instance, the spare made ahead and a task sliced in
/// beside, and one more for a load in flight.
fn instances_for(slots: u32) -> u32 {
    slots.saturating_mul(4).saturating_add(4)
}

/// The runtime of an engine process: one thread for one slot (see
/// [`tokio_runtime`]); for several, a thread per core, up to one per
/// slot, so that the slots' guests compute in parallel.
fn engine_runtime(slots: u32) -> anyhow::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cores.min(slots as usize);
    if threads <= 1 {
        return tokio_runtime();
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// The runtime of every wasp process: one thread. The controller's and the
/// engine's work is short event handling (the hub, the connections) or
/// already off the async thread (the engine compiles on the blocking pool,
/// the controller writes records on its own thread), and a guest call
/// yields at every epoch tick; a client command waits on the network. One
/// thread saves the cross-thread wakeups that a multi-threaded runtime pays
/// on every message (most of the round trip's cost on a 2-core machine,
/// measured with perf).
pub fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
