//! `--launcher local` (the default; ipyparallel's
//! `LocalEngineSetLauncher`): engine processes on this host, children of
//! the supervisor, which restarts one that dies and records them all in
//! `cluster.pids`. Nothing is recorded in `cluster.launched`.

use super::{DEFAULT_ENGINES, Launch, Start};
use crate::supervise::{self, Spec};

/// Starts `-n` engines (default [`DEFAULT_ENGINES`]) under the supervisor.
pub fn start(cx: &mut Start<'_>) -> anyhow::Result<Launch> {
    let engines = cx.engines.unwrap_or(DEFAULT_ENGINES);
    let logs = supervise::log_dir(cx.profile);
    for i in 0..engines {
        let mut args = vec![
            "engine".to_owned(),
            "--profile".into(),
            cx.profile_name.to_owned(),
        ];
        args.extend(cx.engine_flags.iter().cloned());
        cx.supervisor.start(Spec {
            role: format!("engine-{i}"),
            args,
            log: logs.join(format!("engine-{i}.log")),
        })?;
    }
    Ok(Launch {
        engines,
        summary: "on this host, supervised".to_owned(),
    })
}
