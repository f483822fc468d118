//! Many engines (issue 15, item 3): what an engine costs as a slot of a
//! process (`wasp engine --slots N`) against a process of its own; how
//! soon 1,000 engines are registered and ready; a 100,000-item map over
//! them; and the controller's CPU per dispatch with 1,000 engines
//! connected, against 2.
//!
//! ```text
//! engines [--processes P] [--slots S] [--items N] [--out FILE]
//! ```
//!
//! Starts `wasp controller` and `wasp engine` processes itself (the
//! release build beside this binary), each in a temporary profile folder,
//! so that it chooses how engines are grouped into processes. Memory is
//! the resident set (`VmRSS`) after every engine has run a task; CPU is
//! utime + stime from `/proc`. Writes `bench/results/engines.json`.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use wasp_bench::processes::{Processes, Shape, registered};
use wasp_bench::workloads::{self, process_memory};
use wasp_client::{Client, Module};
use wasp_proto::Value;
use wasp_task_artifacts as tasks;

/// Runs `pow10` once on every engine (each then holds the module and a
/// spare instance, as a working engine does).
async fn run_everywhere(rc: &Client, pow10: &Module) -> anyhow::Result<()> {
    let ids = rc.ids().await?;
    let results = rc
        .view(ids.clone())
        .apply(pow10, "pow10", vec![Value::S64(2)])
        .await?
        .get(None)
        .await?;
    if results.len() != ids.len() || results.iter().any(|r| *r != Some(Value::S64(1024))) {
        bail!("pow10(2) did not give 1024 on every engine: {results:?}");
    }
    Ok(())
}

/// What one engine costs: as a process of its own, and as one more slot
/// of a process of `slots`. A first process compiles the module into the
/// shared disk cache, so that the two measured load it alike from there.
async fn memory(pow10: &Module, slots: u32) -> anyhow::Result<serde_json::Value> {
    let mut cluster = Processes::start()?;
    let rc = Client::connect_file(&cluster.client_file()).await?;
    cluster.engine(1)?;
    registered(&rc, 1).await?;
    run_everywhere(&rc, pow10).await?;
    let single = cluster.engine(1)?;
    let slotted = cluster.engine(slots)?;
    registered(&rc, 2 + slots as usize).await?;
    run_everywhere(&rc, pow10).await?;
    // Settled: the spare instances made after the last results.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (process, _) = process_memory(single)?;
    let (many, _) = process_memory(slotted)?;
    let per_slot = (many as f64 - process as f64) / f64::from(slots - 1);
    Ok(json!({
        "engine_process_rss_bytes": process,
        "slots": slots,
        "slotted_process_rss_bytes": many,
        "rss_per_additional_slot_bytes": per_slot,
        "goal_per_slot_bytes": 2 << 20,
        "met": per_slot <= f64::from(2u32 << 20),
    }))
}

/// Registers `processes` x `slots` engines, then maps `items` over them.
async fn many(
    pow10: &Module,
    processes: u32,
    slots: u32,
    items: i64,
) -> anyhow::Result<serde_json::Value> {
    let mut cluster = Processes::start()?;
    let rc = Client::connect_file(&cluster.client_file()).await?;
    let n = (processes * slots) as usize;
    let started = Instant::now();
    for _ in 0..processes {
        cluster.engine(slots)?;
    }
    registered(&rc, n).await?;
    let registration_s = started.elapsed().as_secs_f64();
    // The first map sends and compiles the module everywhere; the timed
    // one is the second.
    workloads::map_rate(&rc, pow10, 2 * n as i64, 1).await?;
    let controller = cluster.controller_pid().to_string();
    let cpu_before = workloads::process_cpu(&controller)?;
    let map_started = Instant::now();
    let rate = workloads::map_rate(&rc, pow10, items, 1).await?;
    let map_s = map_started.elapsed().as_secs_f64();
    let cpu = workloads::process_cpu(&controller)? - cpu_before;
    let status = rc.status().await?;
    let busy = status.engines.iter().filter(|e| e.done > 0).count();
    Ok(json!({
        "processes": processes,
        "slots": slots,
        "engines": n,
        "registration_s": registration_s,
        "map_items": items,
        "map_s": map_s,
        "map_items_per_s": rate,
        "engines_that_ran_tasks": busy,
        "controller_cpu_us_per_dispatch": cpu * 1e6 / items as f64,
    }))
}

/// Many engines per process: memory, registration, a map, controller CPU.
#[derive(clap::Parser)]
struct Args {
    #[command(flatten)]
    shape: Shape,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args { shape } = clap::Parser::parse();
    let (processes, slots, items, out) = (
        shape.processes,
        shape.slots,
        shape.items,
        shape.out("engines"),
    );
    let pow10 = Module::from_file(tasks::POW10)?;
    let memory = memory(&pow10, slots + 1).await?;
    println!("{memory:#}");
    let baseline = many(&pow10, 1, 2, items).await?;
    println!("{baseline:#}");
    let thousand = many(&pow10, processes, slots, items).await?;
    println!("{thousand:#}");
    let ratio = thousand["controller_cpu_us_per_dispatch"]
        .as_f64()
        .unwrap_or(f64::NAN)
        / baseline["controller_cpu_us_per_dispatch"]
            .as_f64()
            .unwrap_or(f64::NAN);
    let report = json!({
        "meta": { "loadavg_at_start": workloads::loadavg(), "unix_us": workloads::unix_us() },
        "memory": memory,
        "two_engines": baseline,
        "many_engines": thousand,
        "controller_cpu_per_dispatch_many_over_two": ratio,
        "registration_goal_s": 2.0,
        "registration_met": thousand["registration_s"].as_f64().is_some_and(|s| s < 2.0),
    });
    std::fs::write(&out, format!("{report:#}\n"))
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
