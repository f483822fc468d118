//! Launchers: what starts a cluster's engines (`wasp cluster start
//! --launcher local|ssh|slurm`), by ipyparallel's model (its
//! `LocalEngineSetLauncher`, `SSHEngineSetLauncher` and
//! `SlurmEngineSetLauncher`, whose setting names the flags follow).
//!
//! The controller always runs on this host, under the supervisor
//! ([`crate::supervise`]). The `local` launcher starts the engines as the
//! supervisor's children too, restarted when they die. The others start
//! engines that the supervisor cannot wait for: on other hosts over ssh,
//! or as a Slurm job. What they start is recorded in the profile folder as
//! soon as it is started ([`records`]), so that `wasp cluster stop`, run
//! from any process, can end it, and a start-up that fails part-way (a host
//! refuses ssh, an engine dies at once) ends what it had started.
//!
//! # Layout
//!
//! - [`local`], [`ssh`], [`slurm`]: one launcher each.
//! - [`records`]: the records of what was launched, and how each kind is
//!   checked at start-up and stopped.
//! - [`command`]: running `ssh`, `sbatch`, `scancel`, with a deadline,
//!   their failures told in their own words.
//! - [`shell`]: quoting and splitting shell words.
//!
//! # Adding a launcher
//!
//! A module with a `start` function taking its settings and a [`Start`],
//! and an arm in [`LauncherKind`] and in [`LauncherKind::start`]. If what
//! it starts is not a child of the supervisor, `start` records it with
//! [`records::append`] the moment it exists, and its record type becomes
//! an arm of [`records::Launched`], which says how to check and stop it.

pub(crate) mod command;
pub(crate) mod local;
pub(crate) mod records;
pub(crate) mod shell;
pub(crate) mod slurm;
pub(crate) mod ssh;

use std::path::PathBuf;

use wasp_net::Profile;

use crate::cli::LauncherArgs;
use crate::supervise::Supervisor;

/// Which launcher starts the engines (`--launcher`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LauncherKind {
    /// Engine processes on this host, children of the supervisor, which
    /// restarts them when they die.
    #[default]
    Local,
    /// Engines on the `--hosts`, started over ssh.
    Ssh,
    /// Engines in a Slurm job, submitted with sbatch.
    Slurm,
}

/// The cluster being started, as every launcher sees it.
pub struct Start<'a> {
    /// The profile folder, whose `security/wasp-engine.json` the engines
    /// read.
    pub profile: &'a Profile,
    /// The profile's name (`--profile`).
    pub profile_name: &'a str,
    /// How many engines `-n` asked for, if it was given.
    pub engines: Option<u32>,
    /// Engines per process (`--slots`), if it was given.
    pub slots: Option<u32>,
    /// The `wasp engine` flags every engine gets, wherever it runs (limits,
    /// `--reconnect-timeout`, ...), without `--file` or `--profile`.
    pub engine_flags: Vec<String>,
    /// The supervisor, for engines started as its children.
    pub supervisor: &'a mut Supervisor,
    /// Where what is started outside the supervisor is recorded.
    pub records: PathBuf,
}

/// What a launcher started.
#[derive(Debug)]
pub struct Launch {
    /// How many engines should join the controller.
    pub engines: u32,
    /// Where they run, for the message that the cluster is up.
    pub summary: String,
}

/// How many engines a launcher without hosts starts when `-n` is not
/// given.
pub const DEFAULT_ENGINES: u32 = 2;

/// How `engines` engines are grouped into engine processes, as the slots
/// of each (`wasp engine --slots`): `slots` a process when given (the last
/// may have fewer), else spread evenly over at most `processes`
/// processes, the larger groups first.
pub fn process_sizes(engines: u32, slots: Option<u32>, processes: u32) -> Vec<u32> {
    match slots {
        Some(slots) => {
            let slots = slots.max(1);
            (0..engines.div_ceil(slots))
                .map(|i| slots.min(engines - i * slots))
                .collect()
        }
        None if engines == 0 => Vec::new(),
        None => {
            let count = processes.clamp(1, engines);
            // The remainder goes one each to the first processes.
            (0..count)
                .map(|i| engines / count + u32::from(i < engines % count))
                .collect()
        }
    }
}

/// `wasp engine` flags for a process of `slots` engines.
pub fn slot_flags(slots: u32) -> Vec<String> {
    if slots > 1 {
        vec!["--slots".to_owned(), slots.to_string()]
    } else {
        Vec::new()
    }
}

impl LauncherKind {
    /// Starts the engines with the launcher's `settings`.
    pub async fn start(
        self,
        settings: &LauncherArgs,
        cx: &mut Start<'_>,
    ) -> anyhow::Result<Launch> {
        // Hosts given to another launcher are a mistake, not a preference:
        // the engines would start elsewhere than asked.
        if self != LauncherKind::Ssh
            && (!settings.ssh.hosts.is_empty() || settings.ssh.hosts_file.is_some())
        {
            anyhow::bail!("--hosts and --hosts-file are for --launcher ssh");
        }
        match self {
            LauncherKind::Local => local::start(cx),
            LauncherKind::Ssh => ssh::start(settings, cx).await,
            LauncherKind::Slurm => slurm::start(settings, cx).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_are_grouped_into_processes_by_slots_or_spread_over_processes() {
        assert_eq!(process_sizes(2, None, 2), vec![1, 1]);
        assert_eq!(process_sizes(1, None, 2), vec![1]);
        assert_eq!(process_sizes(5, None, 2), vec![3, 2]);
        assert_eq!(process_sizes(1000, None, 2), vec![500, 500]);
        assert_eq!(process_sizes(1000, Some(100), 2), vec![100; 10]);
        assert_eq!(process_sizes(7, Some(3), 2), vec![3, 3, 1]);
        assert_eq!(process_sizes(4, Some(1), 2), vec![1; 4]);
        assert_eq!(process_sizes(0, None, 2), Vec::<u32>::new());
        assert_eq!(slot_flags(1), Vec::<String>::new());
        assert_eq!(slot_flags(3), ["--slots", "3"]);
    }
}
