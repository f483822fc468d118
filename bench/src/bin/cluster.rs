//! The cluster benchmark: a real local cluster (`wasp cluster start -n 2`,
//! separate processes, QUIC on loopback) driven by the Rust client, on the
//! seed's workloads as `../shared/bench/peers/*.py` run them for
//! ipyparallel, Dask and Ray:
//!
//! - `apply_sync` round trip: median and p99 over 1,000 calls;
//! - `map` with chunksize 1: tasks/s over 5,000 items of `pow10`;
//! - `map` with chunksize 100: items/s over 100,000 items of `pow10`;
//! - the seed's `sleep_here` over `[.01 * t for t in range(100)]`:
//!   serial_time / wall_time (ideal: the engine count).
//!
//! Run with `cargo build --release -p wasp-cli && cargo run --release -p
//! wasp-bench --bin cluster -j2` (the wasp binary must sit beside this one).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::json;
use wasp_client::{Client, Module};
use wasp_proto::Value;
use wasp_task_artifacts as tasks;

const ENGINES: u32 = 2;
const RTT_CALLS: usize = 1000;
const MAP1_ITEMS: i64 = 5_000;
const MAP100_ITEMS: i64 = 100_000;

struct Cluster {
    wasp: PathBuf,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let wasp = exe.with_file_name("wasp");
        if !wasp.exists() {
            bail!(
                "{} not found: build it first with `cargo build --release -p wasp-cli`",
                wasp.display()
            );
        }
        let cluster = Self {
            wasp,
            dir: tempfile::tempdir()?,
        };
        let out = cluster.run(&["cluster", "start", "-n", &ENGINES.to_string(), "--daemon"])?;
        if !out.status.success() {
            bail!(
                "cluster start failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(cluster)
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        Command::new(&self.wasp)
            .args(args)
            .env("WASP_DIR", self.dir.path())
            .env("WASP_CACHE_DIR", self.dir.path().join("cache"))
            .output()
            .context("running wasp")
    }

    fn client_file(&self) -> PathBuf {
        self.dir
            .path()
            .join("profile_default/security/wasp-client.json")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.run(&["cluster", "stop"]);
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn map_rate(
    client: &Client,
    pow10: &Module,
    items: i64,
    chunksize: usize,
) -> anyhow::Result<f64> {
    let xs: Vec<Value> = (0..items).map(|x| Value::S64(x % 32)).collect();
    let view = client.load_balanced_view().with_chunksize(chunksize);
    let started = Instant::now();
    let results = view.map(pow10, "pow10", vec![xs]).await?;
    let seconds = started.elapsed().as_secs_f64();
    for (x, r) in (0..items).zip(&results) {
        if *r != Some(Value::S64((x % 32).pow(10))) {
            bail!("wrong result for {x}: {r:?}");
        }
    }
    Ok(items as f64 / seconds)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let client = Client::connect_file(&cluster.client_file()).await?;
    let area = Module::from_file(tasks::AREA)?;
    let pow10 = Module::from_file(tasks::POW10)?;
    let sleep = Module::from_file(tasks::SLEEP)?;
    let lview = client.load_balanced_view();

    // Warm up: modules uploaded, pushed and compiled on both engines.
    for _ in 0..20 {
        lview
            .apply_sync(&area, "area", vec![Value::S64(3), Value::S64(7)])
            .await?;
    }
    map_rate(&client, &pow10, 1000, 1).await?;

    let mut rtts = Vec::with_capacity(RTT_CALLS);
    for _ in 0..RTT_CALLS {
        let started = Instant::now();
        lview
            .apply_sync(&area, "area", vec![Value::S64(3), Value::S64(7)])
            .await?;
        rtts.push(started.elapsed().as_secs_f64() * 1e3);
    }
    rtts.sort_by(f64::total_cmp);
    let (rtt_median, rtt_p99) = (percentile(&rtts, 0.5), percentile(&rtts, 0.99));

    let map1 = map_rate(&client, &pow10, MAP1_ITEMS, 1).await?;
    let map100 = map_rate(&client, &pow10, MAP100_ITEMS, 100).await?;

    let times: Vec<Value> = (0..100).map(|t| Value::F64(0.01 * f64::from(t))).collect();
    let mut amr = lview.map_async(&sleep, "sleep-here", vec![times]).await?;
    amr.get(None).await?;
    let sleep_ratio = amr.serial_time() / amr.wall_time();

    println!("## wasp cluster, {ENGINES} engines (this run)\n");
    println!("| figure | wasp |");
    println!("|---|---|");
    println!("| apply_sync round trip, median ({RTT_CALLS} calls) | {rtt_median:.3} ms |");
    println!("| apply_sync round trip, p99 | {rtt_p99:.3} ms |");
    println!("| map, chunksize 1 ({MAP1_ITEMS} items) | {map1:.0} tasks/s |");
    println!("| map, chunksize 100 ({MAP100_ITEMS} items) | {map100:.0} items/s |");
    println!("| sleep_here serial_time / wall_time (ideal {ENGINES}) | {sleep_ratio:.3} |");

    let results = json!({
        "bench": "cluster",
        "engines": ENGINES,
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs(),
        "rtt_ms_median": rtt_median,
        "rtt_ms_p99": rtt_p99,
        "map_chunk1_tasks_per_s": map1,
        "map_chunk100_items_per_s": map100,
        "sleep_serial_over_wall": sleep_ratio,
    });
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results/cluster.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
