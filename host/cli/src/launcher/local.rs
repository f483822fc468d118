//! `--launcher local` (the default; ipyparallel's
//! `LocalEngineSetLauncher`): engine processes on this host, children of
//! the supervisor, which restarts one that dies and records them all in
//! `cluster.pids`. Nothing is recorded in `cluster.launched`.
//!
//! The engines are spread over one process per core (each process's slots
//! share its runtime and connection, `wasp engine --slots`), so that a
//! thousand engines are a few processes, while two engines on two cores
//! are still two processes, each computing on its own core; `--slots S`
//! groups them S to a process instead.

use super::{DEFAULT_ENGINES, Launch, Start, process_sizes, slot_flags};
use crate::supervise::{self, Spec};

/// Starts `-n` engines (default [`DEFAULT_ENGINES`]) under the supervisor.
pub fn start(cx: &mut Start<'_>) -> anyhow::Result<Launch> {
    let engines = cx.engines.unwrap_or(DEFAULT_ENGINES);
    let logs = supervise::log_dir(cx.profile);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let sizes = process_sizes(engines, cx.slots, cores);
    for (i, slots) in sizes.iter().enumerate() {
        let mut args = vec![
            "engine".to_owned(),
            "--profile".into(),
            cx.profile_name.to_owned(),
        ];
        args.extend(slot_flags(*slots));
        args.extend(cx.engine_flags.iter().cloned());
        cx.supervisor.start(Spec {
            role: format!("engine-{i}"),
            args,
            log: logs.join(format!("engine-{i}.log")),
        })?;
    }
    let summary = if sizes.len() == engines as usize {
        "on this host, supervised".to_owned()
    } else {
        format!("in {} processes on this host, supervised", sizes.len())
    };
    Ok(Launch { engines, summary })
}
