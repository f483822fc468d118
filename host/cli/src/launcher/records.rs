//! The records of what the launchers started outside the supervisor
//! (`PROFILE/cluster.launched`, one JSON object a line): engines on other
//! hosts, Slurm jobs. Each record holds all it takes to reach what it
//! names again (the ssh command and options, the scancel command), so
//! that `wasp cluster stop` stops it from any process, and a failed
//! start-up stops what it had started.
//!
//! A record is appended the moment its launch succeeds, before anything
//! else can fail; a record whose stop fails is kept, so that `cluster
//! stop` can be run again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use wasp_net::Profile;

use super::{slurm, ssh};

/// One thing a launcher started, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "launcher", rename_all = "lowercase")]
pub enum Launched {
    /// Engines on one host, started over ssh.
    Ssh(ssh::Remote),
    /// A Slurm job of engines.
    Slurm(slurm::Job),
}

/// How a stop goes.
#[derive(Clone, Copy, Debug)]
pub struct Stop {
    /// How long the engines have to exit (the controller has asked them
    /// to) before they are killed.
    pub grace: Duration,
    /// Whether to ask them with SIGTERM first: the controller could not
    /// ask them.
    pub terminate: bool,
}

impl Launched {
    /// At start-up, while the engines have yet to join: an error if what
    /// was launched has already ended, saying why where it can.
    pub async fn check(&self) -> anyhow::Result<()> {
        match self {
            Launched::Ssh(remote) => remote.check().await,
            Launched::Slurm(job) => job.check().await,
        }
    }

    /// Stops it; returns what had to be killed.
    pub async fn stop(&self, how: Stop) -> anyhow::Result<Vec<String>> {
        match self {
            Launched::Ssh(remote) => remote.stop(how).await,
            Launched::Slurm(job) => job.stop(how).await,
        }
    }
}

impl std::fmt::Display for Launched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Launched::Ssh(remote) => remote.fmt(f),
            Launched::Slurm(job) => job.fmt(f),
        }
    }
}

/// The records' file in a profile folder.
pub fn path(profile: &Profile) -> PathBuf {
    profile.dir().join("cluster.launched")
}

/// Reads the records; none if there is no file.
pub fn read(path: &Path) -> anyhow::Result<Vec<Launched>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{} line {}: not a launch record", path.display(), i + 1))
        })
        .collect()
}

/// Writes `records`, replacing the file (atomically, private: a record
/// may name hosts and accounts); no records, no file.
pub fn write(path: &Path, records: &[Launched]) -> anyhow::Result<()> {
    if records.is_empty() {
        return match std::fs::remove_file(path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        };
    }
    let mut text = String::new();
    for record in records {
        text.push_str(&serde_json::to_string(record).context("encoding a launch record")?);
        text.push('\n');
    }
    wasp_net::connfile::write_private(path, text.as_bytes())
        .with_context(|| format!("writing the launch records {}", path.display()))
}

/// Adds `record` to the file.
pub fn append(path: &Path, record: Launched) -> anyhow::Result<()> {
    let mut records = read(path)?;
    records.push(record);
    write(path, &records)
}

/// Checks every record ([`Launched::check`]).
pub async fn check_all(path: &Path) -> anyhow::Result<()> {
    for record in read(path)? {
        record.check().await?;
    }
    Ok(())
}

/// Stops every record, each whatever became of the others; those stopped
/// leave the file, which goes once it is empty. Returns what had to be
/// killed; an error names every record that could not be stopped.
pub async fn stop_all(path: &Path, how: Stop) -> anyhow::Result<Vec<String>> {
    let mut killed = Vec::new();
    let mut kept = Vec::new();
    let mut errors = Vec::new();
    for record in read(path)? {
        match record.stop(how).await {
            Ok(k) => killed.extend(k),
            Err(err) => {
                errors.push(format!("{record}: {err:#}"));
                kept.push(record);
            }
        }
    }
    write(path, &kept)?;
    if !errors.is_empty() {
        anyhow::bail!(
            "could not stop {} (kept in {} for another `wasp cluster stop`)",
            errors.join("; "),
            path.display()
        );
    }
    Ok(killed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.launched");
        assert!(read(&path).unwrap().is_empty(), "no file: no records");
        let remote = Launched::Ssh(ssh::Remote {
            ssh: vec!["ssh".into(), "-p".into(), "2222".into()],
            host: "user@node1".into(),
            file: ".wasp/profile_default/security/wasp-engine.json".into(),
            engines: vec![ssh::RemoteEngine {
                role: "engine-0".into(),
                pid: 4242,
                log: ".wasp/profile_default/log/engine-0.log".into(),
            }],
        });
        let job = Launched::Slurm(slurm::Job {
            job_id: "17".into(),
            scancel: vec!["scancel".into()],
            squeue: vec!["squeue".into()],
            output: "/p/log/slurm-engines-17.out".into(),
        });
        append(&path, remote.clone()).unwrap();
        append(&path, job.clone()).unwrap();
        assert_eq!(read(&path).unwrap(), vec![remote, job]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(r#"{"launcher":"ssh","#), "{text}");
        write(&path, &[]).unwrap();
        assert!(!path.exists(), "no records, no file");
        std::fs::write(&path, "{\"launcher\":\"pbs\"}\n").unwrap();
        let err = format!("{:#}", read(&path).unwrap_err());
        assert!(err.contains("line 1: not a launch record"), "{err}");
    }
}
