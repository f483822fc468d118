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
//! The `suite` binary runs these scenarios and more, beside the peers; this
//! one is the quick look at the four of them.

use std::path::PathBuf;

use serde_json::json;
use wasp_bench::cluster::Cluster;
use wasp_bench::workloads::{self, Tasks};

const ENGINES: u32 = 2;
const RTT_CALLS: usize = 1000;
const MAP1_ITEMS: i64 = 5_000;
const MAP100_ITEMS: i64 = 100_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cluster = Cluster::start(ENGINES)?;
    let client = cluster.client().await?;
    let tasks = Tasks::load()?;
    workloads::warm_up(&client, &tasks).await?;

    let rtt = workloads::round_trip(&client, &tasks.area, RTT_CALLS).await?;
    let rtt_median = rtt["median_ms"].as_f64().unwrap_or(f64::NAN);
    let rtt_p99 = rtt["p99_ms"].as_f64().unwrap_or(f64::NAN);
    let map1 = workloads::map_rate(&client, &tasks.pow10, MAP1_ITEMS, 1).await?;
    let map100 = workloads::map_rate(&client, &tasks.pow10, MAP100_ITEMS, 100).await?;
    let sleep_ratio = workloads::sleep_ratio(&client, &tasks.sleep).await?;
    drop(client);
    cluster.stop()?;

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
