//! The suite's scenarios on wasp, each on real processes over real QUIC:
//! the workloads of `bench/peers/*.py` (round trip, map, sleep, CPU-bound
//! speedup) on a running cluster, and the ones only wasp has a meaning for
//! (cold start with a cold and a warm compile cache, module push, controller
//! memory with a million tasks queued).
//!
//! Every function returns its figures as JSON (`serde_json::Value`), ready
//! for `results/suite.json`; the suite binary picks the headline figures out
//! of them for the table.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value as Json, json};
use wasp_client::{Client, Module};
use wasp_proto::Value;
use wasp_task_artifacts as tasks;

use crate::cluster::Cluster;

/// The 1, 5 and 15-minute load averages: how busy the machine was (other
/// work shares it), for reading the figures later.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Microseconds since the Unix epoch, the clock of the tasks' metadata.
pub fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The value at quantile `q` (0 to 1) of sorted samples, by nearest rank.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The 99th percentile of unsorted samples ([`percentile`] of a sorted
/// copy).
pub fn p99(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile(&sorted, 0.99)
}

/// The median of unsorted samples (of an even count, the mean of the two
/// middle ones, so that two samples do not give the larger).
pub fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 0 => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        n => sorted[n / 2],
    }
}

/// The Rust task components the scenarios run.
pub struct Tasks {
    /// `area(w, h)`: the trivial task of the round trip and the cold start.
    pub area: Module,
    /// `pow10(x)`: the map task.
    pub pow10: Module,
    /// `sleep-here(t)`: the seed's sleep scenario.
    pub sleep: Module,
    /// `cpu(n)`: the CPU-bound loop.
    pub cpu: Module,
}

impl Tasks {
    /// Reads the components built by `wasp-task-artifacts`.
    pub fn load() -> anyhow::Result<Self> {
        Ok(Self {
            area: Module::from_file(tasks::AREA)?,
            pow10: Module::from_file(tasks::POW10)?,
            sleep: Module::from_file(tasks::SLEEP)?,
            cpu: Module::from_file(tasks::CPU)?,
        })
    }
}

fn area_args() -> Vec<Value> {
    vec![Value::S64(3), Value::S64(7)]
}

/// Uploads and compiles every task on every engine and runs a little of
/// each workload, so that no timed figure pays for a first use.
pub async fn warm_up(client: &Client, tasks: &Tasks) -> anyhow::Result<()> {
    let lview = client.load_balanced_view();
    for _ in 0..20 {
        lview.apply_sync(&tasks.area, "area", area_args()).await?;
    }
    let all = client.view(client.ids().await?);
    for module in [&tasks.area, &tasks.pow10, &tasks.sleep, &tasks.cpu] {
        all.load(module).await?;
    }
    map_rate(client, &tasks.pow10, 1000, 1).await?;
    Ok(())
}

/// `apply_sync(area, 3, 7)` on the load-balanced view, `calls` times:
/// median and p99 in milliseconds.
pub async fn round_trip(client: &Client, area: &Module, calls: usize) -> anyhow::Result<Json> {
    let lview = client.load_balanced_view();
    let mut rtts = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let result = lview.apply_sync(area, "area", area_args()).await?;
        rtts.push(started.elapsed().as_secs_f64() * 1e3);
        if result != Some(Value::S64(21)) {
            bail!("area(3, 7) returned {result:?}");
        }
    }
    rtts.sort_by(f64::total_cmp);
    Ok(json!({
        "calls": calls,
        "median_ms": percentile(&rtts, 0.5),
        "p99_ms": percentile(&rtts, 0.99),
    }))
}

/// `map(pow10, items)` with `chunksize` on the load-balanced view, results
/// checked: items per second, from the call to the last result.
pub async fn map_rate(
    client: &Client,
    pow10: &Module,
    items: i64,
    chunksize: usize,
) -> anyhow::Result<f64> {
    // x % 32: every power fits in an s64, so no item traps.
    let xs: Vec<Value> = (0..items).map(|x| Value::S64(x % 32)).collect();
    let view = client.load_balanced_view().with_chunksize(chunksize);
    let started = Instant::now();
    let results = view.map(pow10, "pow10", vec![xs]).await?;
    let seconds = started.elapsed().as_secs_f64();
    if results.len() as i64 != items {
        bail!("{} results for {items} items", results.len());
    }
    for (x, r) in (0..items).zip(&results) {
        if *r != Some(Value::S64((x % 32).pow(10))) {
            bail!("wrong result for {x}: {r:?}");
        }
    }
    Ok(items as f64 / seconds)
}

/// The seed's `sleep_here` over `[.01 * t for t in range(100)]`:
/// serial_time / wall_time (ideal: the engine count).
pub async fn sleep_ratio(client: &Client, sleep: &Module) -> anyhow::Result<f64> {
    let times: Vec<Value> = (0..100).map(|t| Value::F64(0.01 * f64::from(t))).collect();
    let mut amr = client
        .load_balanced_view()
        .map_async(sleep, "sleep-here", vec![times])
        .await?;
    amr.get(None).await?;
    Ok(amr.serial_time() / amr.wall_time())
}

/// Seconds one engine spends in `cpu(n)`, by the task's own start and end
/// times (the round trip excluded): the median of three calls on the
/// client's load-balanced view.
pub async fn cpu_seconds(client: &Client, cpu: &Module, n: u64) -> anyhow::Result<f64> {
    let lview = client.load_balanced_view();
    let mut samples = Vec::new();
    for _ in 0..3 {
        let mut amr = lview.apply_async(cpu, "cpu", vec![Value::U64(n)]).await?;
        amr.get(None).await?;
        samples.push(amr.serial_time());
    }
    Ok(median(&samples))
}

/// Items in the CPU scenario, and how many of them the serial baseline runs
/// (then scaled up), as the peers do.
const CPU_ITEMS: usize = 64;
const CPU_SERIAL_ITEMS: usize = 16;

/// 64 items of `cpu(n)`, `n` calibrated so that one call takes about
/// 20 ms on an engine: the speedup of the load-balanced map (chunksize 1,
/// every engine) over one engine running them back to back.
///
/// The serial baseline is one task of 16 items on the first engine (one
/// chunk: no scheduling between items), times 4, as the peers measure 16
/// calls and scale. Serial and parallel runs alternate for `rounds` rounds,
/// taking turns at going first, and the speedup is the ratio of their
/// medians: a slow spell of the machine then falls on both, and cannot
/// push the speedup above the engine count as a lucky baseline can.
pub async fn cpu_speedup(client: &Client, cpu: &Module, rounds: usize) -> anyhow::Result<Json> {
    // Calibrate from a call long enough to time well, then check.
    let probe = 2_000_000;
    let per_step = cpu_seconds(client, cpu, probe).await? / probe as f64;
    let n = ((0.020 / per_step) as u64).max(1);
    let one_call = cpu_seconds(client, cpu, n).await?;

    let ids = client.ids().await?;
    let first = *ids.first().context("no engine for the CPU scenario")?;
    let serial_view = client
        .load_balanced_view()
        .with_targets(vec![first])
        .with_chunksize(CPU_SERIAL_ITEMS);
    let parallel_view = client.load_balanced_view().with_chunksize(1);
    let serial_items = vec![Value::U64(n); CPU_SERIAL_ITEMS];
    let parallel_items = vec![Value::U64(n); CPU_ITEMS];
    let scale = (CPU_ITEMS / CPU_SERIAL_ITEMS) as f64;

    let (mut serial, mut parallel) = (Vec::new(), Vec::new());
    let (mut balance, mut busy, mut task_ms) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        for serial_turn in [round % 2 == 0, round % 2 == 1] {
            let started = Instant::now();
            if serial_turn {
                serial_view
                    .map(cpu, "cpu", vec![serial_items.clone()])
                    .await?;
                serial.push(started.elapsed().as_secs_f64() * scale);
            } else {
                let mut amr = parallel_view
                    .map_async(cpu, "cpu", vec![parallel_items.clone()])
                    .await?;
                amr.get(None).await?;
                let wall = started.elapsed().as_secs_f64();
                parallel.push(wall);
                // Why a speedup falls short: items per engine (balance),
                // and the share of the wall time the engines spent inside
                // tasks (below 1: gaps between tasks; tasks slower than
                // `one_call_ms`: the CPU was shared with other work).
                let mut per_engine = vec![0u32; ids.len()];
                for meta in amr.metadata().into_iter().flatten() {
                    if let Some(i) = ids.iter().position(|id| Some(*id) == meta.engine) {
                        per_engine[i] += 1;
                    }
                }
                balance.push(per_engine);
                busy.push(amr.serial_time() / (wall * ids.len() as f64));
                task_ms.push(amr.serial_time() / CPU_ITEMS as f64 * 1e3);
            }
        }
    }
    let speedup = median(&serial) / median(&parallel);
    Ok(json!({
        "n": n,
        "one_call_ms": one_call * 1e3,
        "engines": ids.len(),
        "serial_engine": first.0,
        "rounds": rounds,
        "serial_s_x4": serial,
        "parallel_s": parallel,
        "serial_s_median": median(&serial),
        "parallel_s_median": median(&parallel),
        "parallel_items_per_engine": balance,
        "parallel_engine_busy": busy,
        "parallel_task_ms_mean": task_ms,
        "speedup": speedup,
    }))
}

/// `bytes` with a custom section appended: the same component under
/// another content hash, so that every sample of a first push is a true
/// first (not in any engine's memory or disk cache). A component may carry
/// custom sections anywhere; nothing reads this one.
pub fn with_nonce(bytes: &[u8], nonce: u64) -> Vec<u8> {
    const NAME: &[u8] = b"wasp-bench-nonce";
    let mut section = Vec::new();
    leb128(&mut section, NAME.len() as u64);
    section.extend_from_slice(NAME);
    section.extend_from_slice(&nonce.to_le_bytes());
    let mut out = bytes.to_vec();
    out.push(0); // custom section id
    leb128(&mut out, section.len() as u64);
    out.extend_from_slice(&section);
    out
}

fn leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// DirectView `load` (push) of a module to every engine: the first push of
/// a module no one has seen (upload to the controller, transfer to each
/// engine, compilation there), `firsts` times with a new nonce each, and
/// the push of a module every engine already holds (only its hash
/// travels), `cached` times. Medians in milliseconds.
pub async fn module_push(
    client: &Client,
    bytes: &[u8],
    firsts: usize,
    cached: usize,
) -> anyhow::Result<Json> {
    let all = client.view(client.ids().await?);
    let mut first_ms = Vec::new();
    let mut module = None;
    for _ in 0..firsts {
        // The nonce: a clock reading, so that reruns on a kept cache
        // directory also start cold.
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64;
        let fresh = Module::from_bytes(with_nonce(bytes, nonce))?;
        let started = Instant::now();
        all.load(&fresh).await?;
        first_ms.push(started.elapsed().as_secs_f64() * 1e3);
        module = Some(fresh);
    }
    let module = module.context("module_push needs at least one first push")?;
    let mut cached_ms = Vec::new();
    for _ in 0..cached {
        let started = Instant::now();
        all.load(&module).await?;
        cached_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(json!({
        "bytes": bytes.len(),
        "engines": all.targets().len(),
        "first_ms": first_ms,
        "first_ms_median": median(&first_ms),
        "cached_ms": cached_ms,
        "cached_ms_median": median(&cached_ms),
    }))
}

/// One cold start: seconds from spawning `wasp cluster start -n ENGINES
/// --daemon` to the first result of `area(3, 7)` through a newly connected
/// client, with `cache` as the engines' compile cache; and seconds until
/// `wasp cluster stop` has returned as well, the span the peers' figure
/// covers (their whole process is timed, shutdown included).
async fn cold_start_once(
    engines: u32,
    area: &Module,
    cache: PathBuf,
) -> anyhow::Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let cluster = Cluster::start_with_cache(engines, dir, cache)?;
    let client = cluster.client().await?;
    let result = client
        .load_balanced_view()
        .apply_sync(area, "area", area_args())
        .await?;
    let first_result = started.elapsed().as_secs_f64();
    if result != Some(Value::S64(21)) {
        bail!("area(3, 7) returned {result:?}");
    }
    drop(client);
    cluster.stop()?;
    Ok((first_result, started.elapsed().as_secs_f64()))
}

/// Cold start, `samples` times with an empty compile cache (each its own)
/// and `samples` times with a cache primed by an earlier, untimed cluster
/// (the engines deserialize `area` instead of compiling it). Cold and warm
/// samples alternate. Seconds to the first result, and to the cluster
/// stopped.
pub async fn cold_start(engines: u32, area: &Module, samples: usize) -> anyhow::Result<Json> {
    let warm_cache = tempfile::tempdir()?;
    cold_start_once(engines, area, warm_cache.path().to_owned()).await?;
    let (mut cold, mut cold_stop, mut warm, mut warm_stop) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..samples {
        let empty = tempfile::tempdir()?;
        let (first, stopped) = cold_start_once(engines, area, empty.path().join("cache")).await?;
        cold.push(first);
        cold_stop.push(stopped);
        let (first, stopped) = cold_start_once(engines, area, warm_cache.path().to_owned()).await?;
        warm.push(first);
        warm_stop.push(stopped);
    }
    Ok(json!({
        "engines": engines,
        "cold_cache_s": cold,
        "cold_cache_s_median": median(&cold),
        "cold_cache_with_stop_s": cold_stop,
        "cold_cache_with_stop_s_median": median(&cold_stop),
        "warm_cache_s": warm,
        "warm_cache_s_median": median(&warm),
        "warm_cache_with_stop_s": warm_stop,
        "warm_cache_with_stop_s_median": median(&warm_stop),
    }))
}

/// utime + stime of `/proc/PID/stat` (`PID` may be `self`), in seconds.
pub fn process_cpu(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is the first, utime the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').context("a /proc stat line")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("a /proc stat field")?
            .parse::<f64>()?)
    };
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// `VmRSS` and `VmHWM` of a process, in bytes, from `/proc/PID/status`.
pub fn process_memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{path} has no {name}"))?;
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .with_context(|| format!("{path}: {line}"))?
            .parse()
            .with_context(|| format!("{path}: {line}"))?;
        Ok(kib * 1024)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// How long the memory scenario waits for the controller to queue
/// everything.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(600);

/// A controller with no engines, `items` tasks of `pow10` submitted (map,
/// chunksize 1, not waiting): the controller's resident memory (`VmRSS`)
/// once its status counts them all queued, and its peak (`VmHWM`).
pub async fn queued_memory(pow10: &Module, items: u64) -> anyhow::Result<Json> {
    let cluster = Cluster::start(0)?;
    let pid = cluster.controller_pid()?;
    let (idle_rss, _) = process_memory(pid)?;
    let client = cluster.client().await?;
    let xs: Vec<Value> = (0..items).map(|x| Value::S64((x % 32) as i64)).collect();
    let started = Instant::now();
    let amr = client
        .load_balanced_view()
        .with_chunksize(1)
        .map_async(pow10, "pow10", vec![xs])
        .await?;
    let submitted_s = started.elapsed().as_secs_f64();
    let queued = loop {
        let status = client.status().await?;
        if status.queued >= items {
            break status.queued;
        }
        if started.elapsed() > QUEUE_TIMEOUT {
            bail!(
                "the controller queued {} of {items} tasks in {QUEUE_TIMEOUT:?}",
                status.queued
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let queued_s = started.elapsed().as_secs_f64();
    let (rss, hwm) = process_memory(pid)?;
    drop(amr);
    drop(client);
    cluster.stop()?;
    Ok(json!({
        "items": items,
        "queued": queued,
        "submit_returned_s": submitted_s,
        "all_queued_s": queued_s,
        "idle_rss_bytes": idle_rss,
        "rss_bytes": rss,
        "hwm_bytes": hwm,
        "rss_mb": rss as f64 / 1e6,
        "hwm_mb": hwm as f64 / 1e6,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A nonce makes another module of the same exports, under a new hash.
    #[test]
    fn a_nonce_changes_the_hash_not_the_module() {
        let bytes = std::fs::read(tasks::AREA).expect("the area task is built");
        let plain = Module::from_bytes(bytes.clone()).expect("area reads");
        let one = Module::from_bytes(with_nonce(&bytes, 1)).expect("area with a nonce reads");
        let two = Module::from_bytes(with_nonce(&bytes, 2)).expect("area with a nonce reads");
        assert_ne!(plain.hash, one.hash);
        assert_ne!(one.hash, two.hash);
        assert_eq!(plain.funcs, one.funcs);
    }

    #[test]
    fn medians_of_even_counts_take_the_middle_pair() {
        assert_eq!(median(&[3.0, 1.0]), 2.0);
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        assert!(median(&[]).is_nan());
    }
}
