//! The peers: ipyparallel, Dask distributed and Ray, run by their own
//! scripts (`bench/peers/*.py`, mirrors of `../shared/bench/peers/`) with
//! the Python of the virtualenv `scripts/bench` makes.
//!
//! Each peer's scenario script prints one JSON object on its last line of
//! stdout; its cold start (`cold_start.py`) is timed from outside, as the
//! whole process. A peer that fails or hangs is recorded as an error and
//! the suite goes on without its figures.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value as Json, json};
use tokio::process::Command;

/// One peer system.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    /// Its name in the table and the JSON.
    pub name: &'static str,
    /// Its scenario script in `bench/peers/`.
    pub script: &'static str,
    /// Its argument to `cold_start.py`.
    pub cold_start_arg: &'static str,
}

/// The three peers, in the table's column order.
pub const PEERS: [Peer; 3] = [
    Peer {
        name: "ipyparallel",
        script: "ipp_bench.py",
        cold_start_arg: "ipp",
    },
    Peer {
        name: "dask",
        script: "dask_bench.py",
        cold_start_arg: "dask",
    },
    Peer {
        name: "ray",
        script: "ray_bench.py",
        cold_start_arg: "ray",
    },
];

/// How long one peer script may run before it is killed (the full scenario
/// run of the slowest peer takes about a minute on a 2-core VM).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(900);

/// Where the peer scripts are.
pub fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// Runs `python SCRIPT ARGS` in a scratch working directory (Dask writes
/// its spill folder there) and returns its stdout, failing with the tail of
/// its stderr if it fails.
async fn run_python(python: &Path, script: &str, args: &[&str]) -> anyhow::Result<String> {
    let scratch = tempfile::tempdir()?;
    let child = Command::new(python)
        .arg(scripts_dir().join(script))
        .args(args)
        .current_dir(scratch.path())
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} {script}", python.display()))?;
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| format!("{script} {args:?} ran longer than {SCRIPT_TIMEOUT:?}"))??;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "{script} {args:?} failed ({}):\n{}",
            out.status,
            tail.join("\n")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The peer's scenario script with `items` items on `engines` engines: its
/// JSON object (`rtt_ms_median`, `map_chunk1_tasks_per_s`, ...).
pub async fn scenarios(
    python: &Path,
    peer: &Peer,
    items: u32,
    engines: u32,
) -> anyhow::Result<Json> {
    json_script(
        python,
        peer.script,
        &[&items.to_string(), &engines.to_string()],
    )
    .await
}

/// Runs `python SCRIPT ARGS` (a script in `bench/peers/`) and returns the
/// JSON object on the last line of its stdout that holds one.
pub async fn json_script(python: &Path, script: &str, args: &[&str]) -> anyhow::Result<Json> {
    let stdout = run_python(python, script, args).await?;
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("{script} printed no JSON line:\n{stdout}"))?;
    serde_json::from_str(last).with_context(|| format!("{script} printed bad JSON: {last}"))
}

/// The peer's cold start, `samples` times: `cold_start.py PEER` timed as
/// the whole process (interpreter start, imports, cluster start, first
/// result, shutdown), in seconds.
pub async fn cold_start(python: &Path, peer: &Peer, samples: usize) -> anyhow::Result<Json> {
    let mut seconds = Vec::new();
    for _ in 0..samples {
        let started = Instant::now();
        run_python(python, "cold_start.py", &[peer.cold_start_arg]).await?;
        seconds.push(started.elapsed().as_secs_f64());
    }
    Ok(json!({
        "samples_s": seconds,
        "median_s": crate::workloads::median(&seconds),
    }))
}
