//! Benchmark rows, printed as a markdown table and written as JSON.

use serde_json::{Value as Json, json};

use crate::timing::Stats;

/// One figure of one task: wasp's time beside its limit.
#[derive(Clone, Debug)]
pub struct Row {
    /// The task (`area`, `norm`, ...).
    pub task: String,
    /// What was timed, in wasp's terms.
    pub figure: &'static str,
    /// wasp's figures.
    pub wasp: Stats,
    /// What the limit is (`Component::deserialize_file`, ...).
    pub bare_label: &'static str,
    /// The limit's figures.
    pub bare: Stats,
    /// The largest acceptable `wasp / bare` ratio of medians, if the
    /// figure has a target.
    pub target: Option<f64>,
}

impl Row {
    /// `wasp / bare`, of medians.
    pub fn ratio(&self) -> f64 {
        self.wasp.median_ns / self.bare.median_ns
    }

    /// Whether the target is met; `None` without a target.
    pub fn met(&self) -> Option<bool> {
        self.target.map(|target| self.ratio() <= target)
    }

    fn to_json(&self) -> Json {
        json!({
            "task": self.task,
            "figure": self.figure,
            "wasp": stats_json(&self.wasp),
            "bare_limit": self.bare_label,
            "bare": stats_json(&self.bare),
            "ratio": round(self.ratio(), 3),
            "target": self.target,
            "met": self.met(),
        })
    }
}

fn stats_json(stats: &Stats) -> Json {
    json!({
        "median_ns": round(stats.median_ns, 1),
        "p99_ns": round(stats.p99_ns, 1),
        "samples": stats.samples,
        "calls_per_sample": stats.batch,
    })
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// A duration in nanoseconds, in the unit that suits it: `147 ns`,
/// `8.61 us`, `13.2 ms`.
pub fn human(ns: f64) -> String {
    let (value, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "us")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.digits$} {unit}")
}

/// The rows as a markdown table: medians, with p99 in parentheses.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| task | figure | wasp | bare limit | ratio | target | met? |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let target = row
            .target
            .map_or_else(|| "-".to_owned(), |t| format!("<= {t}x"));
        let met = match row.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        out.push_str(&format!(
            "| {} | {} | {} (p99 {}) | {}: {} (p99 {}) | {:.2}x | {} | {} |\n",
            row.task,
            row.figure,
            human(row.wasp.median_ns),
            human(row.wasp.p99_ns),
            row.bare_label,
            human(row.bare.median_ns),
            human(row.bare.p99_ns),
            row.ratio(),
            target,
            met,
        ));
    }
    out
}

/// The command line that ran `bench`, as its result file records it: the
/// benchmark's name and this process's arguments.
pub fn command_line(bench: &str) -> String {
    std::iter::once(bench.to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What every result file says about its run: which benchmark, the command,
/// whether it was a smoke run, when, on what machine, and how busy the
/// machine was when it started (other work skews the figures). Take it
/// before timing, and add the benchmark's own fields to it.
pub fn run_meta(bench: &str, command: &str, quick: bool) -> serde_json::Map<String, Json> {
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned));
    let unix_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let meta = json!({
        "bench": bench,
        "command": command,
        "quick": quick,
        "unix_time": unix_time,
        "arch": std::env::consts::ARCH,
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "loadavg_at_start": load_average,
    });
    match meta {
        Json::Object(map) => map,
        _ => unreachable!("a json! object literal is an object"),
    }
}

/// Writes `json` (pretty, with a final newline) to `path`, creating its
/// folder.
pub fn write_json(path: &std::path::Path, json: &Json) -> anyhow::Result<()> {
    use anyhow::Context;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, serde_json::to_string_pretty(json)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The rows as JSON, under `meta` (a JSON object describing the run).
pub fn to_json(meta: Json, rows: &[Row]) -> Json {
    json!({
        "meta": meta,
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_in_their_unit() {
        assert_eq!(human(147.0), "147 ns");
        assert_eq!(human(8_612.0), "8.61 us");
        assert_eq!(human(13_200_000.0), "13.2 ms");
    }
}
