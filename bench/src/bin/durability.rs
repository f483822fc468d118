//! The durability benchmark of issue 11: what "nothing accepted is lost"
//! costs, on real local clusters (`wasp cluster start --daemon`, supervised,
//! QUIC on loopback) and, for the engine kill, beside Ray and Dask.
//!
//! ```text
//! durability [--quick] [--skip-peers] [--python PATH] [--before DIR] [--out PATH]
//! ```
//!
//! - **Engine killed mid-map**: 4 engines, a 10,000-item map (chunksize 1)
//!   of `sleep-here(2 ms)`, once with no fault and once with one busy
//!   engine killed (`kill -9`) when a quarter of the results are in; the
//!   supervisor restarts it. The ratio of wall times, and the detection
//!   time it includes (`--heartbeat-timeout`: a killed engine's QUIC
//!   connection ends silently). Ray and Dask run the same map and kill
//!   (`peers/kill_worker.py`).
//! - **Controller restart**: a 2,000-item map on 2 engines, the controller
//!   killed when a tenth of the results are in; the supervisor starts it
//!   again on the same profile. From the kill to a new client connected,
//!   to the first result of a task that was unfinished at the kill
//!   (`get_result`), and to the last.
//! - **Commit cost**: map chunksize 1 (5,000 items) and chunksize 100
//!   (100,000 items) of `pow10`, with the controller's records counters
//!   (`ClusterStatus::records`) read before and after each: records per
//!   transaction and time per commit.
//! - **Before and after** (`--before DIR`): the `cluster` benchmark of
//!   another build (`DIR/cluster`, with its `wasp` beside it; build one with
//!   `scripts/bench-before COMMIT`) and of this one, taking turns for five
//!   rounds: the `apply_sync` round trip and map throughput at chunksize 1
//!   and 100.
//!
//! Prints a markdown table and writes `results/durability.json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value as Json, json};
use wasp_bench::cluster::{self, Cluster};
use wasp_bench::peers;
use wasp_bench::workloads::{self, Tasks, loadavg, median};
use wasp_client::{AsyncResult, Client, Module};
use wasp_proto::Value;
use wasp_proto::msg::RecordsStats;

/// Engines of the kill scenario.
const KILL_ENGINES: u32 = 4;
/// How soon a silent engine is declared dead in the kill scenario.
const HEARTBEAT_TIMEOUT_S: f64 = 3.0;
/// The kill scenario's task: seconds each item sleeps.
const KILL_SLEEP_S: f64 = 0.002;
/// The share of results in when the engine (or controller) is killed.
const KILL_AT: f64 = 0.25;
const RESTART_AT: f64 = 0.1;
/// The restart scenario's task: seconds each item sleeps.
const RESTART_SLEEP_S: f64 = 0.005;
/// Longest wait for anything in a scenario (a hang, not a figure).
const PATIENCE: Duration = Duration::from_secs(300);

struct Plan {
    kill_items: usize,
    restart_items: usize,
    map1_items: i64,
    map100_items: i64,
    before_rounds: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                kill_items: 2_000,
                restart_items: 500,
                map1_items: 1_000,
                map100_items: 20_000,
                before_rounds: 1,
            }
        } else {
            Self {
                kill_items: 10_000,
                restart_items: 2_000,
                map1_items: 5_000,
                map100_items: 100_000,
                before_rounds: 5,
            }
        }
    }
}

struct Options {
    quick: bool,
    skip_peers: bool,
    python: PathBuf,
    before: Option<PathBuf>,
    out: PathBuf,
}

fn options() -> anyhow::Result<Options> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut options = Options {
        quick: false,
        skip_peers: false,
        python: root.join("../target/peers-venv/bin/python"),
        before: None,
        out: root.join("results/durability.json"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--skip-peers" => options.skip_peers = true,
            "--python" => options.python = args.next().context("--python needs a path")?.into(),
            "--before" => {
                options.before = Some(args.next().context("--before needs a folder")?.into());
            }
            "--out" => options.out = args.next().context("--out needs a path")?.into(),
            other => bail!(
                "unknown argument {other:?} (expected --quick, --skip-peers, --python PATH, --before DIR or --out PATH)"
            ),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    wasp_bench::options::block_on_main(run())
}

async fn run() -> anyhow::Result<()> {
    let options = options()?;
    let plan = Plan::new(options.quick);
    let tasks = Tasks::load()?;
    let started = Instant::now();
    let mut results = serde_json::Map::new();
    results.insert("bench".into(), json!("durability"));
    results.insert("quick".into(), json!(options.quick));
    results.insert("loadavg_at_start".into(), json!(loadavg()));

    eprintln!("== engine killed mid-map");
    let kill = engine_kill(&tasks.sleep, plan.kill_items).await?;
    let mut peer_kills = serde_json::Map::new();
    if !options.skip_peers {
        for peer in ["ray", "dask"] {
            eprintln!("== {peer}: worker killed mid-map");
            let figure = peers::json_script(
                &options.python,
                "kill_worker.py",
                &[
                    peer,
                    &plan.kill_items.to_string(),
                    &KILL_ENGINES.to_string(),
                    &KILL_SLEEP_S.to_string(),
                    &KILL_AT.to_string(),
                ],
            )
            .await
            .unwrap_or_else(|err| json!({ "error": format!("{err:#}") }));
            peer_kills.insert(peer.into(), figure);
        }
    }
    eprintln!("== controller restart");
    let restart = controller_restart(&tasks.sleep, plan.restart_items).await?;
    eprintln!("== commit cost");
    let commits = commit_cost(&tasks, plan.map1_items, plan.map100_items).await?;
    let before = match &options.before {
        Some(dir) => {
            eprintln!("== before ({}) and after", dir.display());
            Some(before_and_after(dir, plan.before_rounds)?)
        }
        None => None,
    };

    println!(
        "{}",
        table(&kill, &peer_kills, &restart, &commits, before.as_ref())
    );
    results.insert("engine_kill".into(), kill);
    results.insert("peer_kill".into(), Json::Object(peer_kills));
    results.insert("controller_restart".into(), restart);
    results.insert("commit_cost".into(), commits);
    if let Some(before) = before {
        results.insert("before_and_after".into(), before);
    }
    results.insert("loadavg_at_end".into(), json!(loadavg()));
    results.insert("seconds".into(), json!(started.elapsed().as_secs_f64()));
    wasp_bench::report::write_json(&options.out, &Json::Object(results))?;
    eprintln!("wrote {}", options.out.display());
    Ok(())
}

/// Polls `check` every 5 ms until it holds, for at most [`PATIENCE`].
async fn until(
    what: &str,
    mut check: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    while !check().await? {
        if Instant::now() > deadline {
            bail!("gave up waiting after {PATIENCE:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

fn kill9(pid: u32) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -9 {pid} failed");
    }
    Ok(())
}

/// `sleep-here(t)` over `items` items, chunksize 1, submitted.
async fn sleep_map(
    client: &Client,
    sleep: &Module,
    items: usize,
    t: f64,
) -> anyhow::Result<AsyncResult> {
    let times = vec![Value::F64(t); items];
    Ok(client
        .load_balanced_view()
        .map_async(sleep, "sleep-here", vec![times])
        .await?)
}

/// Results that are missing or not an engine id (what `sleep-here`
/// returns), after waiting for all of them.
async fn lost(result: &mut AsyncResult, items: usize) -> usize {
    match result.get(None).await {
        Ok(values) => {
            let good = values
                .iter()
                .filter(|v| matches!(v, Some(Value::U32(_))))
                .count();
            items - good.min(items)
        }
        Err(_) => items,
    }
}

/// The engine kill scenario (see the module comment).
async fn engine_kill(sleep: &Module, items: usize) -> anyhow::Result<Json> {
    let timeout = format!("{HEARTBEAT_TIMEOUT_S}s");
    let cluster = Cluster::start_with(KILL_ENGINES, &["--heartbeat-timeout", &timeout])?;
    let client = cluster.client().await?;
    client.view(client.ids().await?).load(sleep).await?;

    let started = Instant::now();
    let mut clean = sleep_map(&client, sleep, items, KILL_SLEEP_S).await?;
    let clean_lost = lost(&mut clean, items).await;
    let clean_s = started.elapsed().as_secs_f64();

    let engines_before = cluster.pids("engine")?;
    let started = Instant::now();
    let mut faulty = sleep_map(&client, sleep, items, KILL_SLEEP_S).await?;
    until("a quarter of the results", async || {
        Ok(faulty.progress() as f64 >= KILL_AT * items as f64)
    })
    .await?;
    let status = client.status().await?;
    let victim = status
        .engines
        .iter()
        .find(|e| e.outstanding > 0)
        .and_then(|e| e.name.rsplit(':').next()?.parse::<u32>().ok())
        .context("no busy engine to kill")?;
    kill9(victim)?;
    let killed_at_s = started.elapsed().as_secs_f64();
    let progress_at_kill = faulty.progress();
    let faulty_lost = lost(&mut faulty, items).await;
    let faulty_s = started.elapsed().as_secs_f64();
    let engines_after = cluster.pids("engine")?;
    let restarted = engines_after.iter().any(|p| !engines_before.contains(p));
    drop(client);
    cluster.stop()?;
    Ok(json!({
        "items": items,
        "engines": KILL_ENGINES,
        "sleep_s": KILL_SLEEP_S,
        "kill_at": KILL_AT,
        "heartbeat_timeout_s": HEARTBEAT_TIMEOUT_S,
        "fault_free_s": clean_s,
        "with_kill_s": faulty_s,
        "killed_at_s": killed_at_s,
        "results_in_at_kill": progress_at_kill,
        "ratio": faulty_s / clean_s,
        "lost_or_wrong_fault_free": clean_lost,
        "lost_or_wrong_with_kill": faulty_lost,
        "supervisor_restarted_engine": restarted,
    }))
}

/// The controller restart scenario (see the module comment).
async fn controller_restart(sleep: &Module, items: usize) -> anyhow::Result<Json> {
    let cluster = Cluster::start(2)?;
    let first_pid = cluster.controller_pid()?;
    let client = cluster.client().await?;
    client.view(client.ids().await?).load(sleep).await?;
    let mut result = sleep_map(&client, sleep, items, RESTART_SLEEP_S).await?;
    if !result.wait_accepted(Some(PATIENCE)).await {
        bail!("the map was not accepted within {PATIENCE:?}");
    }
    until("a tenth of the results", async || {
        Ok(result.progress() as f64 >= RESTART_AT * items as f64)
    })
    .await?;
    kill9(first_pid)?;
    let killed = Instant::now();
    // What had arrived by the kill (nothing arrives after it).
    let done_at_kill = result.progress();
    let ids = result.msg_ids().to_vec();
    let unfinished: Vec<_> = ids
        .iter()
        .zip(result.metadata())
        .filter(|(_, meta)| meta.is_none())
        .map(|(id, _)| *id)
        .collect();
    drop(result);
    drop(client);

    // Connection attempts fail until the supervisor has started the new
    // controller (the old one's port and certificate come back with it).
    let mut client = None;
    until("a client of the restarted controller", async || {
        if cluster.controller_pid().is_ok_and(|pid| pid != first_pid) {
            client = Client::connect_file(&cluster.client_file()).await.ok();
        }
        Ok(client.is_some())
    })
    .await?;
    let client = client.context("connected")?;
    let connected_s = killed.elapsed().as_secs_f64();
    let mut reloaded = client.get_result(&unfinished).await?;
    until("the first reloaded result", async || {
        Ok(reloaded.progress() > 0)
    })
    .await?;
    let first_s = killed.elapsed().as_secs_f64();
    let mut all = client.get_result(&ids).await?;
    let lost = lost(&mut all, ids.len()).await;
    let all_s = killed.elapsed().as_secs_f64();
    drop(client);
    cluster.stop()?;
    Ok(json!({
        "items": items,
        "sleep_s": RESTART_SLEEP_S,
        "results_in_at_kill": done_at_kill,
        "unfinished_at_kill": unfinished.len(),
        "kill_to_client_connected_s": connected_s,
        "kill_to_first_reloaded_result_s": first_s,
        "kill_to_last_result_s": all_s,
        "lost_or_wrong": lost,
    }))
}

/// The records counters' change over one map: records and transactions,
/// and time per commit.
fn commit_delta(before: &RecordsStats, after: &RecordsStats, items_per_s: f64) -> Json {
    let records = after.committed - before.committed;
    let transactions = (after.transactions - before.transactions).max(1);
    let commit_us = after.commit_us - before.commit_us;
    json!({
        "items_per_s": items_per_s,
        "records": records,
        "transactions": transactions,
        "records_per_transaction": records as f64 / transactions as f64,
        "ms_per_commit": commit_us as f64 / transactions as f64 / 1e3,
        "us_per_record": commit_us as f64 / records.max(1) as f64,
        "longest_commit_ms_so_far": after.max_commit_us as f64 / 1e3,
    })
}

/// The commit cost scenario (see the module comment).
async fn commit_cost(tasks: &Tasks, map1_items: i64, map100_items: i64) -> anyhow::Result<Json> {
    let cluster = Cluster::start(2)?;
    let client = cluster.client().await?;
    workloads::warm_up(&client, tasks).await?;
    let mut out = serde_json::Map::new();
    for (name, items, chunksize) in [
        ("chunksize_1", map1_items, 1),
        ("chunksize_100", map100_items, 100),
    ] {
        let before = client.status().await?.records;
        let rate = workloads::map_rate(&client, &tasks.pow10, items, chunksize).await?;
        let after = client.status().await?.records;
        out.insert(name.into(), commit_delta(&before, &after, rate));
    }
    drop(client);
    cluster.stop()?;
    Ok(Json::Object(out))
}

/// The `cluster` benchmark's figures compared before and after: the key
/// each has in the results, and the start of its row in the table.
const COMPARED: [(&str, &str); 3] = [
    ("round_trip_ms", "| apply_sync round trip, median "),
    ("chunksize_1", "| map, chunksize 1 "),
    ("chunksize_100", "| map, chunksize 100 "),
];

/// One `cluster` benchmark run's [`COMPARED`] figures, read from its
/// markdown table.
fn cluster_run(binary: &Path) -> anyhow::Result<[f64; 3]> {
    let out = std::process::Command::new(binary)
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let figure = |row: &str| -> anyhow::Result<f64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(row))
            .with_context(|| format!("no {row:?} row in:\n{text}"))?;
        line.split('|')
            .nth(2)
            .and_then(|cell| cell.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("no figure in {line:?}"))
    };
    Ok([
        figure(COMPARED[0].1)?,
        figure(COMPARED[1].1)?,
        figure(COMPARED[2].1)?,
    ])
}

/// The before-and-after scenario (see the module comment).
fn before_and_after(before_dir: &Path, rounds: usize) -> anyhow::Result<Json> {
    let before_bin = before_dir.join("cluster");
    let after_bin = cluster::wasp_binary()?.with_file_name("cluster");
    let mut before = vec![Vec::new(); COMPARED.len()];
    let mut after = vec![Vec::new(); COMPARED.len()];
    for round in 0..rounds {
        // Taking turns at going first.
        let order = if round % 2 == 0 {
            [(&before_bin, &mut before), (&after_bin, &mut after)]
        } else {
            [(&after_bin, &mut after), (&before_bin, &mut before)]
        };
        for (binary, samples) in order {
            for (figure, list) in cluster_run(binary)?.into_iter().zip(samples.iter_mut()) {
                list.push(figure);
            }
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("before".into(), json!(before_dir.display().to_string()));
    out.insert("rounds".into(), json!(rounds));
    for (i, (key, _)) in COMPARED.iter().enumerate() {
        let (b, a) = (median(&before[i]), median(&after[i]));
        out.insert(
            (*key).into(),
            json!({ "before": before[i], "after": after[i], "median_before": b, "median_after": a, "after_over_before": a / b }),
        );
    }
    Ok(Json::Object(out))
}

fn f(json: &Json, key: &str) -> f64 {
    json[key].as_f64().unwrap_or(f64::NAN)
}

fn table(
    kill: &Json,
    peers: &serde_json::Map<String, Json>,
    restart: &Json,
    commits: &Json,
    before: Option<&Json>,
) -> String {
    let mut t = String::from("## durability (issue 11)\n\n| figure | value |\n|---|---|\n");
    let mut row = |name: String, value: String| t.push_str(&format!("| {name} | {value} |\n"));
    let kill_row = |k: &Json| {
        format!(
            "{:.2}x ({:.2} s over {:.2} s), lost or wrong: {}",
            f(k, "ratio"),
            f(k, "with_kill_s"),
            f(k, "fault_free_s"),
            k["lost_or_wrong_with_kill"]
        )
    };
    row(
        format!(
            "wasp, {} items on {KILL_ENGINES} engines, one killed at {:.0}%: wall time over fault-free",
            kill["items"],
            KILL_AT * 100.0
        ),
        kill_row(kill),
    );
    row(
        "wasp, when the engine was killed, and how soon its death is noticed".into(),
        format!(
            "at {:.2} s, {} results in; noticed at the {HEARTBEAT_TIMEOUT_S} s heartbeat timeout, while the other engines work on; restarted by the supervisor: {}",
            f(kill, "killed_at_s"),
            kill["results_in_at_kill"],
            kill["supervisor_restarted_engine"]
        ),
    );
    for (name, k) in peers {
        let value = match k.get("error") {
            Some(err) => format!("failed: {err}"),
            None => kill_row(k),
        };
        row(
            format!("{name}, the same map and kill: wall time over fault-free"),
            value,
        );
    }
    row(
        "controller kill -9 to the first result of a reloaded task".into(),
        format!(
            "{:.2} s (client connected at {:.2} s, last result at {:.2} s, lost or wrong: {})",
            f(restart, "kill_to_first_reloaded_result_s"),
            f(restart, "kill_to_client_connected_s"),
            f(restart, "kill_to_last_result_s"),
            restart["lost_or_wrong"]
        ),
    );
    for name in ["chunksize_1", "chunksize_100"] {
        let c = &commits[name];
        row(
            format!("commit cost, map {}", name.replace('_', " ")),
            format!(
                "{:.0} items/s; {:.1} records per transaction, {:.3} ms per commit ({:.2} us per record)",
                f(c, "items_per_s"),
                f(c, "records_per_transaction"),
                f(c, "ms_per_commit"),
                f(c, "us_per_record")
            ),
        );
    }
    if let Some(b) = before {
        for (name, _) in COMPARED {
            let c = &b[name];
            let (what, unit, digits) = match name {
                "round_trip_ms" => ("apply_sync round trip", "ms", 3),
                _ => ("map", "items/s", 0),
            };
            row(
                format!(
                    "{what} {}, after over before (median of {} runs each)",
                    name.trim_start_matches("round_trip_ms").replace('_', " "),
                    b["rounds"]
                ),
                format!(
                    "{:.3}x ({:.digits$} over {:.digits$} {unit})",
                    f(c, "after_over_before"),
                    f(c, "median_after"),
                    f(c, "median_before")
                ),
            );
        }
    }
    t
}
