//! `--launcher slurm` (ipyparallel's `SlurmEngineSetLauncher`): the
//! engines as one Slurm job of N tasks, each `srun` task an engine; with
//! `--slots S`, N / S tasks, each an engine process of S engines.
//!
//! The job script comes from a template (the built-in
//! [`DEFAULT_TEMPLATE`], or `--slurm-template FILE`), filled in as
//! ipyparallel fills its `batch_template`: `{n}`, `{program_and_args}`,
//! `{profile_dir}`, `{output_file}`, ... with `{{` and `}}` for braces
//! ([`render`]). It is written to `PROFILE/slurm_engine.sbatch` and
//! submitted with `sbatch`; the job id it prints is recorded ([`Job`]),
//! and `cluster stop` cancels the job with `scancel`.
//!
//! As ipyparallel assumes, the nodes share this host's file system: the
//! engines read the profile's own connection file, and run this `wasp`
//! binary unless `--remote-wasp` names another. They dial the address in
//! that file, so the controller must listen where the nodes reach it
//! (`--ip 0.0.0.0`, and `--location ADDR` if need be).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::command;
use super::records::{self, Launched, Stop};
use super::shell;
use super::{DEFAULT_ENGINES, Launch, Start, slot_flags};
use crate::cli::{LauncherArgs, SlurmArgs};

/// The built-in job script: N tasks, one engine each, output in the
/// profile's log folder; `{directives}` holds an `#SBATCH` line for each
/// setting given (`--slurm-partition`, ...).
pub const DEFAULT_TEMPLATE: &str = "#!/bin/sh
#SBATCH --job-name={job_name}
#SBATCH --ntasks={n}
#SBATCH --output={output_file}
#SBATCH --export=ALL
{directives}
srun {program_and_args}
";

/// The job script's name in the profile folder (ipyparallel's
/// batch_file_name).
const SCRIPT: &str = "slurm_engine.sbatch";

/// How long a cancelled job may take to leave the queue: Slurm signals
/// the tasks, then kills them after its KillWait (30 s by default).
const CANCEL_WAIT: Duration = Duration::from_secs(90);

/// How often the queue is asked while waiting.
const POLL: Duration = Duration::from_millis(250);

/// A submitted job, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The id sbatch printed.
    pub job_id: String,
    /// The scancel command.
    pub scancel: Vec<String>,
    /// The squeue command.
    pub squeue: Vec<String>,
    /// The job's output file (its `%j` replaced), for why it ended.
    pub output: String,
}

/// Fills in `template`: `{name}` becomes the field's value, `{{` and `}}`
/// are braces (Python's `str.format`, as ipyparallel's templates). An
/// unknown field or a lone brace is an error naming it.
pub fn render(template: &str, fields: &[(&str, String)]) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        out.push_str(&rest[..at]);
        let brace = &rest[at..];
        if let Some(after) = brace.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = brace.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if let Some(after) = brace.strip_prefix('{') {
            let end = after.find('}').ok_or_else(|| {
                format!(
                    "an unclosed {{ in the template: {:?}",
                    line_of(template, at)
                )
            })?;
            let name = &after[..end];
            let value = fields.iter().find(|(n, _)| *n == name).ok_or_else(|| {
                let known: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown field {{{name}}} in the template (known: {}; write {{{{ and }}}} for braces)",
                    known.join(", ")
                )
            })?;
            out.push_str(&value.1);
            rest = &after[end + 1..];
        } else {
            return Err(format!(
                "a lone }} in the template (write }}}} for a brace): {:?}",
                line_of(template, at)
            ));
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The line of `text` holding byte `at`, for an error.
fn line_of(text: &str, at: usize) -> &str {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    &text[start..end]
}

/// The `#SBATCH` lines of the settings given, in a fixed order.
pub fn directives(args: &SlurmArgs) -> Result<String, String> {
    let settings = [
        ("--partition", &args.slurm_partition),
        ("--account", &args.slurm_account),
        ("--qos", &args.slurm_qos),
        ("--time", &args.slurm_timelimit),
        ("--mem", &args.slurm_mem),
    ];
    let mut lines: Vec<String> = settings
        .iter()
        .filter_map(|(flag, value)| value.as_ref().map(|v| format!("#SBATCH {flag}={v}")))
        .collect();
    if let Some(cpus) = args.slurm_cpus_per_engine {
        lines.push(format!("#SBATCH --cpus-per-task={cpus}"));
    }
    lines.extend(args.slurm_option.iter().map(|o| format!("#SBATCH {o}")));
    // A newline in a value would end the directive and start a command.
    if let Some(bad) = lines.iter().find(|l| l.contains(['\n', '\r'])) {
        return Err(format!("a Slurm setting holds a line break: {bad:?}"));
    }
    Ok(lines.join("\n"))
}

/// The fields a template may use (ipyparallel's names where it has them);
/// `n` is the job's task count.
pub fn fields(
    args: &SlurmArgs,
    n: u32,
    cluster_id: &str,
    profile_dir: &str,
    output_file: &str,
    program: &[String],
    program_args: &[String],
) -> Result<Vec<(&'static str, String)>, String> {
    let setting = |value: &Option<String>| value.clone().unwrap_or_default();
    let all: Vec<String> = program.iter().chain(program_args).cloned().collect();
    Ok(vec![
        ("n", n.to_string()),
        ("cluster_id", cluster_id.to_owned()),
        ("job_name", format!("wasp-engines-{cluster_id}")),
        ("profile_dir", profile_dir.to_owned()),
        ("output_file", output_file.to_owned()),
        ("program", shell::join(program)),
        ("program_args", shell::join(program_args)),
        ("program_and_args", shell::join(&all)),
        ("directives", directives(args)?),
        ("queue", setting(&args.slurm_partition)),
        ("partition", setting(&args.slurm_partition)),
        ("account", setting(&args.slurm_account)),
        ("qos", setting(&args.slurm_qos)),
        ("timelimit", setting(&args.slurm_timelimit)),
        ("mem", setting(&args.slurm_mem)),
        (
            "cpus_per_task",
            args.slurm_cpus_per_engine
                .map(|c| c.to_string())
                .unwrap_or_default(),
        ),
    ])
}

/// The job id in sbatch's output: its first number (ipyparallel's
/// job_id_regexp `\d+`), from `Submitted batch job 42` or, with
/// `--parsable`, `42;cluster`.
pub fn parse_job_id(output: &str) -> Option<String> {
    let start = output.find(|c: char| c.is_ascii_digit())?;
    let digits: String = output[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some(digits)
}

/// `name` beside the submit command when that is a path (a Slurm
/// installed outside PATH), else from PATH.
fn beside(submit: &str, name: &str) -> String {
    match Path::new(submit).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(name).to_string_lossy().into_owned(),
        _ => name.to_owned(),
    }
}

fn utf8(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// Writes the job script and submits it, recording the job.
pub async fn start(settings: &LauncherArgs, cx: &mut Start<'_>) -> anyhow::Result<Launch> {
    let args = &settings.slurm;
    let n = cx.engines.unwrap_or(DEFAULT_ENGINES);
    let submit = shell::split(&args.slurm_submit_command)
        .map_err(|e| anyhow::anyhow!("--slurm-submit-command: {e}"))?;
    let Some(program_name) = submit.first() else {
        bail!("--slurm-submit-command is empty");
    };
    let profile_dir =
        std::path::absolute(cx.profile.dir()).context("locating the profile folder")?;
    let wasp = match &settings.remote_wasp {
        Some(wasp) => wasp.clone(),
        None => utf8(&std::env::current_exe().context("locating the wasp binary")?)?.to_owned(),
    };
    let file = profile_dir.join("security").join("wasp-engine.json");
    let output_file = profile_dir.join("log").join("slurm-engines-%j.out");
    let mut program_args = vec!["--file".to_owned(), utf8(&file)?.to_owned()];
    // With --slots, each task is a process of that many engines.
    let tasks = match cx.slots {
        Some(slots) if !n.is_multiple_of(slots) => bail!(
            "with --launcher slurm, -n ({n}) must be a multiple of --slots ({slots}): each \
             Slurm task runs one engine process of --slots engines"
        ),
        Some(slots) => {
            program_args.extend(slot_flags(slots));
            n / slots
        }
        None => n,
    };
    program_args.extend(cx.engine_flags.iter().cloned());
    let program = vec![wasp, "engine".to_owned()];
    let fields = fields(
        args,
        tasks,
        cx.profile_name,
        utf8(&profile_dir)?,
        utf8(&output_file)?,
        &program,
        &program_args,
    )
    .map_err(anyhow::Error::msg)?;
    let template = match &args.slurm_template {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the Slurm template {}", path.display()))?,
        None => DEFAULT_TEMPLATE.to_owned(),
    };
    let script = render(&template, &fields).map_err(|e| match &args.slurm_template {
        Some(path) => anyhow::anyhow!("{}: {e}", path.display()),
        None => anyhow::anyhow!(e),
    })?;
    let script_path: PathBuf = profile_dir.join(SCRIPT);
    std::fs::write(&script_path, &script)
        .with_context(|| format!("writing the job script {}", script_path.display()))?;

    let mut argv = submit.clone();
    argv.push(utf8(&script_path)?.to_owned());
    let out = command::output(&argv, None)
        .await
        .context("submitting the engines' Slurm job")?;
    let job_id = parse_job_id(&out).with_context(|| {
        format!(
            "no job id in what `{}` printed: {}",
            shell::join(&argv),
            out.trim()
        )
    })?;
    let job = Job {
        output: utf8(&output_file)?.replace("%j", &job_id),
        scancel: vec![beside(program_name, "scancel")],
        squeue: vec![beside(program_name, "squeue")],
        job_id: job_id.clone(),
    };
    records::append(&cx.records, Launched::Slurm(job))?;
    Ok(Launch {
        engines: n,
        summary: format!("in Slurm job {job_id} (script {})", script_path.display()),
    })
}

/// Where a job is, as squeue tells.
#[derive(Debug, PartialEq, Eq)]
enum Queued {
    /// In the queue, in this state (PENDING, RUNNING, COMPLETING, ...).
    In(String),
    /// No longer in the queue, or in a final state.
    Gone,
}

/// States a job ends in (squeue lists some for a while after).
const FINAL: &[&str] = &[
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "TIMEOUT",
];

impl Job {
    async fn queued(&self) -> anyhow::Result<Queued> {
        let mut argv = self.squeue.clone();
        argv.extend(["-h", "-j", &self.job_id, "-o", "%T"].map(String::from));
        let ran = command::run(&argv, None).await?;
        if !ran.success {
            // Once a finished job has left slurmctld's memory (MinJobAge),
            // squeue refuses its id.
            if ran.stderr.contains("Invalid job id") {
                return Ok(Queued::Gone);
            }
            bail!("{}", command::failed(&argv, &ran));
        }
        let state = ran.stdout.trim().to_owned();
        Ok(if state.is_empty() || FINAL.contains(&state.as_str()) {
            Queued::Gone
        } else {
            Queued::In(state)
        })
    }

    /// At start-up: an error if the job has ended, with the last line of
    /// its output.
    pub async fn check(&self) -> anyhow::Result<()> {
        if self.queued().await? == Queued::Gone {
            let text = std::fs::read_to_string(&self.output).unwrap_or_default();
            let said = text
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .map_or("its output is empty".to_owned(), |l| {
                    format!("its output ends {:?}", l.trim())
                });
            bail!(
                "Slurm job {} ended before its engines joined; {said} ({})",
                self.job_id,
                self.output
            );
        }
        Ok(())
    }

    /// Waits up to `how.grace` for the job to end by itself (its engines
    /// were asked to exit), then cancels it and waits for it to leave the
    /// queue. Returns the job if it had to be cancelled.
    pub async fn stop(&self, how: Stop) -> anyhow::Result<Vec<String>> {
        let grace = if how.terminate {
            Duration::ZERO
        } else {
            how.grace
        };
        let deadline = Instant::now() + grace;
        while self.queued().await? != Queued::Gone {
            if Instant::now() >= deadline {
                let mut argv = self.scancel.clone();
                argv.push(self.job_id.clone());
                let ran = command::run(&argv, None).await?;
                if !ran.success && !ran.stderr.contains("Invalid job id") {
                    bail!("{}", command::failed(&argv, &ran));
                }
                let deadline = Instant::now() + CANCEL_WAIT;
                loop {
                    match self.queued().await? {
                        Queued::Gone => {
                            return Ok(vec![format!("Slurm job {} (cancelled)", self.job_id)]);
                        }
                        Queued::In(state) if Instant::now() > deadline => {
                            bail!(
                                "Slurm job {} is still {state} {CANCEL_WAIT:?} after scancel",
                                self.job_id
                            )
                        }
                        Queued::In(_) => tokio::time::sleep(POLL).await,
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(Vec::new())
    }
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slurm job {}", self.job_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slurm_args() -> SlurmArgs {
        SlurmArgs {
            slurm_partition: None,
            slurm_account: None,
            slurm_qos: None,
            slurm_timelimit: None,
            slurm_cpus_per_engine: None,
            slurm_mem: None,
            slurm_option: Vec::new(),
            slurm_template: None,
            slurm_submit_command: "sbatch".into(),
        }
    }

    fn fields_for(args: &SlurmArgs) -> Vec<(&'static str, String)> {
        fields(
            args,
            4,
            "default",
            "/home/me/.wasp/profile_default",
            "/home/me/.wasp/profile_default/log/slurm-engines-%j.out",
            &["/opt/wasp bin/wasp".into(), "engine".into()],
            &[
                "--file".into(),
                "/home/me/.wasp/profile_default/security/wasp-engine.json".into(),
            ],
        )
        .unwrap()
    }

    #[test]
    fn the_built_in_script_has_the_settings_given_and_the_engine_command() {
        let plain = render(DEFAULT_TEMPLATE, &fields_for(&slurm_args())).unwrap();
        assert_eq!(
            plain,
            "#!/bin/sh\n\
             #SBATCH --job-name=wasp-engines-default\n\
             #SBATCH --ntasks=4\n\
             #SBATCH --output=/home/me/.wasp/profile_default/log/slurm-engines-%j.out\n\
             #SBATCH --export=ALL\n\
             \n\
             srun '/opt/wasp bin/wasp' engine --file /home/me/.wasp/profile_default/security/wasp-engine.json\n"
        );
        let mut args = slurm_args();
        args.slurm_partition = Some("gpu".into());
        args.slurm_timelimit = Some("1:00:00".into());
        args.slurm_cpus_per_engine = Some(8);
        args.slurm_mem = Some("16G".into());
        args.slurm_option = vec!["--constraint=avx2".into(), "--exclusive".into()];
        let script = render(DEFAULT_TEMPLATE, &fields_for(&args)).unwrap();
        assert!(
            script.contains(
                "#SBATCH --export=ALL\n\
                 #SBATCH --partition=gpu\n\
                 #SBATCH --time=1:00:00\n\
                 #SBATCH --mem=16G\n\
                 #SBATCH --cpus-per-task=8\n\
                 #SBATCH --constraint=avx2\n\
                 #SBATCH --exclusive\n\
                 srun "
            ),
            "{script}"
        );
        args.slurm_option = vec!["--x\nrm -rf /".into()];
        let err = fields(&args, 1, "d", "/p", "/p/o", &[], &[]).unwrap_err();
        assert!(err.contains("line break"), "{err}");
    }

    #[test]
    fn a_users_template_gets_ipyparallels_fields_and_braces() {
        let mut args = slurm_args();
        args.slurm_partition = Some("short".into());
        let template = "#!/bin/bash\n#SBATCH -p {queue} -n {n}\nfor i in $(seq {n}); do :; done\n\
                        f() {{ echo ${{SLURM_JOB_ID}}; }}\nsrun {program} {program_args}\n";
        let script = render(template, &fields_for(&args)).unwrap();
        assert_eq!(
            script,
            "#!/bin/bash\n#SBATCH -p short -n 4\nfor i in $(seq 4); do :; done\n\
             f() { echo ${SLURM_JOB_ID}; }\nsrun '/opt/wasp bin/wasp' engine --file \
             /home/me/.wasp/profile_default/security/wasp-engine.json\n"
        );
        let err = render("srun {program_and_arg}\n", &fields_for(&args)).unwrap_err();
        assert!(err.contains("unknown field {program_and_arg}"), "{err}");
        assert!(err.contains("program_and_args"), "{err}");
        let err = render("echo ${SLURM_JOB_ID}\n", &fields_for(&args)).unwrap_err();
        assert!(err.contains("unknown field {SLURM_JOB_ID}"), "{err}");
        let err = render("a }\n", &[]).unwrap_err();
        assert!(err.contains("a lone }"), "{err}");
        let err = render("a {n\n", &[]).unwrap_err();
        assert!(err.contains("an unclosed {"), "{err}");
    }

    #[test]
    fn job_ids_come_from_sbatchs_output() {
        assert_eq!(
            parse_job_id("Submitted batch job 42\n").as_deref(),
            Some("42")
        );
        assert_eq!(parse_job_id("1234;cluster\n").as_deref(), Some("1234"));
        assert_eq!(parse_job_id("nothing"), None);
        assert_eq!(beside("sbatch", "scancel"), "scancel");
        assert_eq!(
            beside("/opt/slurm/bin/sbatch", "scancel"),
            "/opt/slurm/bin/scancel"
        );
    }
}
