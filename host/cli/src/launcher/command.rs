//! Running the launchers' commands (`ssh`, `sbatch`, `squeue`,
//! `scancel`): a script on stdin, a deadline, and a failure told in the
//! command's own words (its stderr), so that `cluster start` says
//! "Connection refused" or "invalid partition specified" rather than only
//! that something failed.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::AsyncWriteExt;

use super::shell;

/// How long one command may take: an ssh to a host that drops packets
/// would otherwise wait for the kernel's TCP timeout, minutes.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What a command that ran to its end printed.
#[derive(Debug)]
pub struct Ran {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr, trimmed.
    pub stderr: String,
    /// Its exit status, for messages.
    pub status: std::process::ExitStatus,
}

/// Runs `argv` with `input` on its stdin (or none), within
/// [`COMMAND_TIMEOUT`]; an error only if it could not be run or did not
/// end in time.
pub async fn run(argv: &[String], input: Option<&str>) -> anyhow::Result<Ran> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| anyhow!("an empty command"))?;
    let line = shell::join(argv);
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A command abandoned at its deadline, or by a Ctrl-C that drops
        // the start-up, is not left running.
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run `{line}`"))?;
    if let Some(input) = input {
        let mut stdin = child.stdin.take().context("stdin is piped")?;
        // A command that exits without reading its input (ssh that cannot
        // connect) closes the pipe: its stderr says why, not the write.
        let _ = stdin.write_all(input.as_bytes()).await;
        drop(stdin);
    }
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| anyhow!("`{line}` did not finish within {COMMAND_TIMEOUT:?}"))?
        .with_context(|| format!("waiting for `{line}`"))?;
    Ok(Ran {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        status: output.status,
    })
}

/// Runs `argv` as [`run`] does and returns its stdout; a failure is an
/// error that quotes the command and its stderr.
pub async fn output(argv: &[String], input: Option<&str>) -> anyhow::Result<String> {
    let ran = run(argv, input).await?;
    if !ran.success {
        bail!("{}", failed(argv, &ran));
    }
    Ok(ran.stdout)
}

/// "`CMD` failed (exit status: N): STDERR".
pub fn failed(argv: &[String], ran: &Ran) -> String {
    let said = if ran.stderr.is_empty() {
        ran.stdout.trim()
    } else {
        &ran.stderr
    };
    format!("`{}` failed ({}): {said}", shell::join(argv), ran.status)
}

/// The values of `__key=value__` markers in a script's output, in order
/// (ipyparallel's convention: the markers stand out from whatever a login
/// shell prints on the way).
pub fn markers<'a>(output: &'a str, key: &str) -> Vec<&'a str> {
    let open = format!("__{key}=");
    output
        .lines()
        .filter_map(|line| {
            let at = line.find(&open)?;
            let rest = &line[at + open.len()..];
            rest.find("__").map(|end| &rest[..end])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_among_other_output() {
        let out = "Welcome!\n__remote_pid=12__\nnoise __remote_pid=34__ more\n__other=1__\n";
        assert_eq!(markers(out, "remote_pid"), ["12", "34"]);
        assert_eq!(markers(out, "other"), ["1"]);
        assert!(markers(out, "missing").is_empty());
    }

    #[tokio::test]
    async fn a_failure_is_told_in_the_commands_own_words() {
        let argv: Vec<String> = [
            "sh",
            "-c",
            "cat >/dev/null; echo 'no such partition' >&2; exit 3",
        ]
        .map(String::from)
        .into();
        let err = output(&argv, Some("input")).await.unwrap_err().to_string();
        assert!(err.contains("no such partition"), "{err}");
        assert!(err.contains("exit status: 3"), "{err}");
        let missing = vec!["/nonexistent/sbatch".to_owned()];
        let err = format!("{:#}", output(&missing, None).await.unwrap_err());
        assert!(err.contains("cannot run `/nonexistent/sbatch`"), "{err}");
        assert!(err.contains("No such file"), "{err}");
    }
}
