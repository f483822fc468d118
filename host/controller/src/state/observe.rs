//! What the controller has seen, counted for `/metrics` (the Prometheus
//! text format): tasks by tenant and outcome, latencies as histograms,
//! bytes moved and module cache hits. The state feeds it as things happen
//! (sans-IO: times come from its clock); [`render`] writes the text.
//!
//! Every map here is keyed by tenant and outcome, both bounded (tenants are
//! configured; outcomes are [`ErrorKind`]s), so nothing grows with the
//! tasks.

use std::collections::BTreeMap;
use std::fmt::Write;

use wasp_proto::msg::ErrorKind;
use wasp_sched::TenantKey;

/// Histogram bucket bounds, in seconds: from 100 µs (a task on loopback)
/// to 5 minutes (a long task's latency).
const BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 60.0, 300.0,
];

/// A Prometheus histogram over [`BUCKETS`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Histogram {
    /// Observations at or below each bound (not cumulative here).
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    /// Counts one observation of `seconds`.
    pub(crate) fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.counts[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str) {
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

/// The outcome label of a task that ended: `succeeded`, or its error kind.
pub(crate) fn outcome(error: Option<ErrorKind>) -> &'static str {
    match error {
        None => "succeeded",
        Some(ErrorKind::Module) => "module",
        Some(ErrorKind::Call) => "call",
        Some(ErrorKind::Limit) => "limit",
        Some(ErrorKind::Trap) => "trap",
        Some(ErrorKind::EngineDied) => "engine_died",
        Some(ErrorKind::Unschedulable) => "unschedulable",
        Some(ErrorKind::Timeout) => "timeout",
        Some(ErrorKind::Memory) => "memory",
        Some(ErrorKind::Aborted) => "aborted",
        Some(ErrorKind::NotAccepted) => "not_accepted",
        Some(ErrorKind::Quota) => "quota",
    }
}

/// Counters and histograms since the controller started.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// Tasks that ended, by tenant (the scheduler's key: no name is
    /// copied per task) and outcome.
    pub(crate) ended: BTreeMap<(TenantKey, &'static str), u64>,
    /// Tasks sent to engines (each retry and each run after an engine
    /// died counts again).
    pub(crate) dispatched: u64,
    /// From a task's submission to its first dispatch.
    pub(crate) dispatch_wait: Histogram,
    /// From a task's submission to its result at the controller.
    pub(crate) task_latency: Histogram,
    /// A task's run on its engine, by the engine's clock.
    pub(crate) run_time: Histogram,
    /// Bytes of task arguments received from clients.
    pub(crate) argument_bytes: u64,
    /// Bytes of results (encoded values) sent back.
    pub(crate) result_bytes: u64,
    /// Bytes of module code sent to engines.
    pub(crate) module_bytes_sent: u64,
    /// A task's module was already on its engine's process: nothing sent.
    pub(crate) module_hits: u64,
    /// It was not: its bytes were sent.
    pub(crate) module_misses: u64,
}

/// What `/metrics` shows beside [`Observed`]: the state now.
pub(crate) struct Gauges {
    /// Queued and running tasks by tenant.
    pub(crate) by_tenant: Vec<(String, u64, u64)>,
    /// Engines holding a task, and engines holding none.
    pub(crate) busy_engines: u64,
    pub(crate) idle_engines: u64,
    /// The engine processes' resident memory, summed, and the largest.
    pub(crate) engines_resident_bytes: u64,
    pub(crate) engine_process_resident_bytes_max: u64,
}

/// A metric's `# HELP` and `# TYPE` lines.
fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped, as the format asks.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text format (version 0.0.4) of `observed` and `gauges`;
/// `name` names a tenant's key.
pub(crate) fn render(
    observed: &Observed,
    gauges: &Gauges,
    name: impl Fn(TenantKey) -> String,
) -> String {
    let mut out = String::new();
    head(
        &mut out,
        "wasp_tasks_total",
        "counter",
        "Tasks that ended, by tenant and outcome (succeeded, or the error kind).",
    );
    for ((key, outcome), count) in &observed.ended {
        let tenant = label(&name(*key));
        let _ = writeln!(
            out,
            "wasp_tasks_total{{tenant=\"{tenant}\",outcome=\"{outcome}\"}} {count}"
        );
    }
    head(
        &mut out,
        "wasp_tasks_queued",
        "gauge",
        "Tasks waiting for an engine, by tenant.",
    );
    for (tenant, queued, _) in &gauges.by_tenant {
        let _ = writeln!(
            out,
            "wasp_tasks_queued{{tenant=\"{}\"}} {queued}",
            label(tenant)
        );
    }
    head(
        &mut out,
        "wasp_tasks_running",
        "gauge",
        "Tasks sent to an engine and not ended, by tenant.",
    );
    for (tenant, _, running) in &gauges.by_tenant {
        let _ = writeln!(
            out,
            "wasp_tasks_running{{tenant=\"{}\"}} {running}",
            label(tenant)
        );
    }
    head(
        &mut out,
        "wasp_engines",
        "gauge",
        "Connected engines by state: busy (holding a task) or idle.",
    );
    let _ = writeln!(
        out,
        "wasp_engines{{state=\"busy\"}} {}",
        gauges.busy_engines
    );
    let _ = writeln!(
        out,
        "wasp_engines{{state=\"idle\"}} {}",
        gauges.idle_engines
    );
    unlabelled(
        &mut out,
        "gauge",
        &[
            (
                "wasp_engines_resident_bytes",
                "Resident memory of the engine processes, summed, as their heartbeats said.",
                gauges.engines_resident_bytes,
            ),
            (
                "wasp_engine_process_resident_bytes_max",
                "Resident memory of the largest engine process, as its heartbeat said.",
                gauges.engine_process_resident_bytes_max,
            ),
        ],
    );
    head(
        &mut out,
        "wasp_dispatches_total",
        "counter",
        "Tasks sent to engines (a retried task counts each time).",
    );
    let _ = writeln!(out, "wasp_dispatches_total {}", observed.dispatched);
    for (name, help, histogram) in [
        (
            "wasp_dispatch_wait_seconds",
            "From a task's submission to its first dispatch to an engine.",
            &observed.dispatch_wait,
        ),
        (
            "wasp_task_latency_seconds",
            "From a task's submission to its result at the controller.",
            &observed.task_latency,
        ),
        (
            "wasp_task_run_seconds",
            "A task's run on its engine, by the engine's clock.",
            &observed.run_time,
        ),
    ] {
        head(&mut out, name, "histogram", help);
        histogram.render(&mut out, name);
    }
    unlabelled(
        &mut out,
        "counter",
        &[
            (
                "wasp_argument_bytes_total",
                "Bytes of task arguments received from clients.",
                observed.argument_bytes,
            ),
            (
                "wasp_result_bytes_total",
                "Bytes of task results sent back to clients.",
                observed.result_bytes,
            ),
            (
                "wasp_module_bytes_sent_total",
                "Bytes of module code sent to engines.",
                observed.module_bytes_sent,
            ),
            (
                "wasp_module_cache_hits_total",
                "Dispatches whose module the engine's process already had.",
                observed.module_hits,
            ),
            (
                "wasp_module_cache_misses_total",
                "Dispatches that sent the module's bytes first.",
                observed.module_misses,
            ),
        ],
    );
    out
}

/// Metrics of one sample each, without labels: each `(name, help, value)`
/// of type `kind`.
fn unlabelled(out: &mut String, kind: &str, metrics: &[(&str, &str, u64)]) {
    for &(name, help, value) in metrics {
        head(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_counted() {
        let mut histogram = Histogram::default();
        for seconds in [0.00005, 0.0003, 0.0003, 400.0] {
            histogram.observe(seconds);
        }
        let mut out = String::new();
        histogram.render(&mut out, "h");
        assert!(out.contains("h_bucket{le=\"0.0001\"} 1\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"0.0005\"} 3\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"300\"} 3\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("h_count 4\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut observed = Observed::default();
        observed
            .ended
            .insert((TenantKey(4), outcome(Some(ErrorKind::Trap))), 2);
        let gauges = Gauges {
            by_tenant: Vec::new(),
            busy_engines: 0,
            idle_engines: 0,
            engines_resident_bytes: 0,
            engine_process_resident_bytes_max: 0,
        };
        let text = render(&observed, &gauges, |key| {
            assert_eq!(key, TenantKey(4));
            "a\"b\\c\nd".to_owned()
        });
        assert!(
            text.contains("wasp_tasks_total{tenant=\"a\\\"b\\\\c\\nd\",outcome=\"trap\"} 2\n"),
            "{text}"
        );
    }
}
