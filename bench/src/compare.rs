//! The suite's table: one row per figure, wasp beside each peer, the best
//! peer, wasp's ratio to it, the target and whether it is met.
//!
//! Targets are of two kinds: a ratio to the best peer of the same run (the
//! throughput and latency rows: figures on this machine kind move by up to
//! 3x between days, ratios within one run do not), or a bound on wasp's own
//! figure (speedups, memory), which no peer sets.

use serde_json::{Value as Json, json};

/// The peers' column names, in order.
pub const PEER_NAMES: [&str; 3] = ["ipyparallel", "dask", "ray"];

/// Which direction is better for a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Times, memory: less is better.
    Lower,
    /// Rates, speedups: more is better.
    Higher,
}

/// What a row must reach.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// Informative: no target.
    None,
    /// `wasp / best peer <= x`.
    RatioAtMost(f64),
    /// `wasp / best peer >= x`.
    RatioAtLeast(f64),
    /// `wasp >= x`.
    AtLeast(f64),
    /// `wasp < x`.
    Below(f64),
}

/// One figure of the suite.
#[derive(Clone, Debug)]
pub struct Row {
    /// What was measured.
    pub figure: String,
    /// Its unit (`ms`, `tasks/s`, ...).
    pub unit: &'static str,
    /// Which direction is better.
    pub better: Better,
    /// wasp's figure, if measured.
    pub wasp: Option<f64>,
    /// Each peer's figure, in [`PEER_NAMES`] order, if measured.
    pub peers: [Option<f64>; 3],
    /// The target.
    pub target: Target,
}

impl Row {
    /// The best peer figure of this run: its index and value.
    pub fn best_peer(&self) -> Option<(usize, f64)> {
        let measured = self
            .peers
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (i, v)));
        match self.better {
            Better::Lower => measured.min_by(|a, b| a.1.total_cmp(&b.1)),
            Better::Higher => measured.max_by(|a, b| a.1.total_cmp(&b.1)),
        }
    }

    /// `wasp / best peer`.
    pub fn ratio(&self) -> Option<f64> {
        Some(self.wasp? / self.best_peer()?.1)
    }

    /// Whether the target is met: `None` without a target or without the
    /// figures it needs (peers skipped or failed).
    pub fn met(&self) -> Option<bool> {
        match self.target {
            Target::None => None,
            Target::RatioAtMost(x) => self.ratio().map(|r| r <= x),
            Target::RatioAtLeast(x) => self.ratio().map(|r| r >= x),
            Target::AtLeast(x) => self.wasp.map(|w| w >= x),
            Target::Below(x) => self.wasp.map(|w| w < x),
        }
    }

    fn target_text(&self) -> String {
        match self.target {
            Target::None => "-".to_owned(),
            // The issue states these as fractions: 1/10, 1/5 of the best.
            Target::RatioAtMost(x) if x < 1.0 => format!("<= 1/{} of best", 1.0 / x),
            Target::RatioAtMost(x) => format!("<= {x}x best"),
            Target::RatioAtLeast(x) => format!(">= {x}x best"),
            Target::AtLeast(x) => format!(">= {x}"),
            Target::Below(x) => format!("< {x} {}", self.unit),
        }
    }

    fn to_json(&self) -> Json {
        let peers: serde_json::Map<String, Json> = PEER_NAMES
            .iter()
            .zip(&self.peers)
            .map(|(name, v)| ((*name).to_owned(), json!(v)))
            .collect();
        json!({
            "figure": self.figure,
            "unit": self.unit,
            "better": match self.better { Better::Lower => "lower", Better::Higher => "higher" },
            "wasp": self.wasp,
            "peers": peers,
            "best_peer": self.best_peer().map(|(i, v)| json!({"name": PEER_NAMES[i], "value": v})),
            "ratio_wasp_over_best": self.ratio(),
            "target": self.target_text(),
            "met": self.met(),
        })
    }
}

/// A figure for the table: three significant digits, thousands separated.
pub fn number(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let abs = x.abs();
    if abs >= 1000.0 {
        let whole = x.round() as i64;
        let digits = whole.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        return if whole < 0 { format!("-{out}") } else { out };
    }
    let decimals = if abs >= 100.0 {
        0
    } else if abs >= 10.0 {
        1
    } else {
        // 1.975 must not read as 1.98 beside a target of 1.98.
        3
    };
    format!("{x:.decimals$}")
}

fn cell(value: Option<f64>, unit: &str) -> String {
    match value {
        Some(v) if unit.is_empty() => number(v),
        Some(v) => format!("{} {unit}", number(v)),
        None => "-".to_owned(),
    }
}

/// The rows as a markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| figure | wasp | ipyparallel | dask | ray | best peer | ratio wasp/best | target | met? |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let best = row
            .best_peer()
            .map_or_else(|| "-".to_owned(), |(i, _)| PEER_NAMES[i].to_owned());
        let ratio = row
            .ratio()
            .map_or_else(|| "-".to_owned(), |r| format!("{}x", number(r)));
        let met = match row.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {best} | {ratio} | {} | {met} |\n",
            row.figure,
            cell(row.wasp, row.unit),
            cell(row.peers[0], row.unit),
            cell(row.peers[1], row.unit),
            cell(row.peers[2], row.unit),
            row.target_text(),
        ));
    }
    out
}

/// The rows as JSON.
pub fn to_json(rows: &[Row]) -> Json {
    Json::Array(rows.iter().map(Row::to_json).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(better: Better, wasp: f64, peers: [Option<f64>; 3], target: Target) -> Row {
        Row {
            figure: "f".to_owned(),
            unit: "ms",
            better,
            wasp: Some(wasp),
            peers,
            target,
        }
    }

    #[test]
    fn best_peer_follows_the_direction() {
        let peers = [Some(10.0), None, Some(2.0)];
        let lower = row(Better::Lower, 0.1, peers, Target::RatioAtMost(0.1));
        assert_eq!(lower.best_peer(), Some((2, 2.0)));
        assert_eq!(lower.met(), Some(true));
        let higher = row(Better::Higher, 100.0, peers, Target::RatioAtLeast(20.0));
        assert_eq!(higher.best_peer(), Some((0, 10.0)));
        assert_eq!(higher.met(), Some(false));
    }

    #[test]
    fn ratio_targets_need_a_peer() {
        let r = row(Better::Lower, 1.0, [None; 3], Target::RatioAtMost(0.2));
        assert_eq!(r.met(), None);
        let own = row(Better::Lower, 400.0, [None; 3], Target::Below(500.0));
        assert_eq!(own.met(), Some(true));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(1_234_567.4), "1,234,567");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(0.31749), "0.317");
        assert_eq!(number(1.973), "1.973");
    }
}
