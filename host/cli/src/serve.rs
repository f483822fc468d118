//! `wasp controller` and `wasp engine`: the two long-running processes.

use std::process::ExitCode;

use anyhow::Context;
use wasp_controller::{Controller, ControllerConfig};
use wasp_engine::node::{NodeConfig, run_node};
use wasp_net::{ConnectionFile, Profile};

use crate::cli::{ControllerArgs, EngineArgs};

pub fn controller(args: &ControllerArgs) -> anyhow::Result<ExitCode> {
    let profile = Profile::new(&args.profile.profile)?;
    let mut config = ControllerConfig::new(profile.dir().to_owned());
    config.bind = std::net::SocketAddr::new(args.ip, args.port);
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
        eprintln!(
            "wasp controller listening on {}; client connection file: {}",
            controller.addr,
            controller.client_file.display()
        );
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
    let connection = ConnectionFile::read(&path)?;
    let connection_path = Some(path);
    let mut runtime = args.runtime.runtime_config();
    // An engine runs one task at a time; a few instances cover a chunk's
    // reuse and a load in flight.
    runtime.max_instances = 8;
    let name = format!("{}:{}", hostname(), std::process::id());
    // This thread computes: it keeps the kernel's default time slice even
    // when its parent asked for a short one (`wasp_net::wakeups`), so that
    // the threads carrying messages, which wake briefly, run ahead of it.
    wasp_net::wakeups::default_time_slice();
    let engine = tokio_runtime()?.block_on(run_node(NodeConfig {
        connection,
        connection_path,
        runtime,
        name,
        namespace_bytes: args
            .max_namespace
            .map_or(wasp_engine::node::DEFAULT_NAMESPACE_BYTES, |size| size.0),
        reconnect_timeout: args.reconnect_timeout.0,
    }))?;
    tracing::info!(%engine, "engine stopped");
    Ok(ExitCode::SUCCESS)
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
