//! `wasp cluster start | stop | status`, as ipcluster: a controller and N
//! engines as separate processes on this host, under a supervisor that
//! restarts those that die ([`crate::supervise`]). `start` records their
//! pids in the profile folder; `stop` stops the supervisor, then asks the
//! processes to exit and kills those that do not (see
//! [`crate::processes`]).
//!
//! In the foreground, `cluster start` is the supervisor itself. With
//! `--daemon` it starts itself again, detached, with the hidden
//! `--supervisor` flag: that copy starts and supervises the cluster and
//! reports, in one line on its stdout, that the cluster is up (or why it
//! is not), which `cluster start --daemon` prints before it returns.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use wasp_client::Client;
use wasp_net::Profile;

use crate::cli::{ClusterStartArgs, ClusterStopArgs, ProfileOnly};
use crate::launcher::{self, Start};
use crate::processes;
use crate::serve::tokio_runtime;
use crate::supervise::{self, CONTROLLER, Mode, SUPERVISOR, Spec, Supervisor, SupervisorLog};

/// How long `start` waits for the controller to come up (the engines:
/// `--start-timeout`).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How often `start` checks, while it waits for them, that the engines
/// launched elsewhere still run.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// How long `stop` waits for the supervisor to hand over once told to.
const SUPERVISOR_EXIT: Duration = Duration::from_secs(10);

/// What the detached supervisor writes on its stdout once the cluster is
/// up, followed by the message for the user.
const READY: &str = "ready: ";

/// What it writes instead when the cluster could not start, followed by
/// the error.
const FAILED: &str = "error: ";

/// `wasp cluster start`: in the foreground, starts the cluster and
/// supervises it until Ctrl-C (which stops it) or `cluster stop`; with
/// `--daemon`, leaves that to a detached supervisor and returns once the
/// cluster is up.
pub fn start(args: &ClusterStartArgs) -> anyhow::Result<ExitCode> {
    if args.supervisor {
        return supervise_detached(args);
    }
    if args.daemon {
        return start_daemon(args);
    }
    let profile = Profile::new(&args.profile.profile)?;
    create_profile(&profile)?;
    let log = SupervisorLog::open(&profile, true, true)?;
    tokio_runtime()?.block_on(async {
        let mut supervisor = Supervisor::new(&profile, log)?;
        let launched = tokio::select! {
            launched = launch(&mut supervisor, &profile, args) => launched,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted while the cluster was starting")),
        };
        let message = match launched {
            Ok(message) => message,
            Err(err) => {
                abandon(&mut supervisor, &profile).await;
                return Err(err);
            }
        };
        eprintln!("{message}");
        eprintln!("press Ctrl-C to stop the cluster");
        supervisor.run(Mode::Foreground).await
    })
}

/// Creates the profile folder, private from the start whatever the umask
/// (it holds secrets and every tenant's results), and its log folder.
fn create_profile(profile: &Profile) -> anyhow::Result<()> {
    profile
        .create()
        .with_context(|| format!("creating the profile folder {}", profile.dir().display()))?;
    let logs = supervise::log_dir(profile);
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))
}

/// `cluster start --daemon`: starts the supervisor detached, and waits for
/// its one-line report.
fn start_daemon(args: &ClusterStartArgs) -> anyhow::Result<ExitCode> {
    let profile = Profile::new(&args.profile.profile)?;
    create_profile(&profile)?;
    // A fresh cluster: a fresh supervisor log.
    let log = SupervisorLog::open(&profile, true, false)?;
    drop(log);
    let log_path = supervise::log_file(&profile);
    let stderr = std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let exe = std::env::current_exe().context("locating the wasp binary")?;
    let mut child = Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .arg("--supervisor")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .context("starting the cluster's supervisor")?;
    let stdout = child
        .stdout
        .take()
        .context("the supervisor's stdout is not piped")?;
    let mut stdout = BufReader::new(stdout);
    let mut first = String::new();
    stdout
        .read_line(&mut first)
        .context("reading the supervisor's report")?;
    if let Some(message) = first.strip_prefix(READY) {
        eprintln!("{}", message.trim_end());
        return Ok(ExitCode::SUCCESS);
    }
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    let report = first + &rest;
    if let Some(err) = report.strip_prefix(FAILED) {
        bail!("{}", err.trim_end());
    }
    let status = child.wait().context("waiting for the supervisor")?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let last = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    bail!(
        "the cluster's supervisor exited at start ({status}): {last} (log: {})",
        log_path.display()
    )
}

/// The detached supervisor of `cluster start --daemon`.
fn supervise_detached(args: &ClusterStartArgs) -> anyhow::Result<ExitCode> {
    // A session of its own: no controlling terminal, so neither a Ctrl-C
    // nor the hangup of the terminal that ran `cluster start` reaches it.
    if let Err(err) = rustix::process::setsid() {
        eprintln!("wasp: supervisor: setsid failed ({err}); staying in the caller's session");
    }
    let profile = Profile::new(&args.profile.profile)?;
    let log = SupervisorLog::open(&profile, false, false)?;
    tokio_runtime()?.block_on(async {
        let mut supervisor = Supervisor::new(&profile, log)?;
        match launch(&mut supervisor, &profile, args).await {
            Ok(message) => {
                if let Err(err) = report(&format!("{READY}{message}")) {
                    // Nobody waits for the cluster: its `cluster start`
                    // was interrupted. A cluster nobody knows is up would
                    // run on unseen.
                    supervisor.log.say(&format!(
                        "cannot report to `cluster start` ({err}); stopping the cluster"
                    ));
                    abandon(&mut supervisor, &profile).await;
                    supervisor.remove_pid_file();
                    return Ok(ExitCode::FAILURE);
                }
                supervisor.run(Mode::Daemon).await
            }
            Err(err) => {
                abandon(&mut supervisor, &profile).await;
                supervisor
                    .log
                    .say(&format!("the cluster could not start: {err:#}"));
                let _ = report(&format!("{FAILED}{err:#}"));
                Ok(ExitCode::FAILURE)
            }
        }
    })
}

/// Writes the supervisor's one-line report on its stdout; nothing is
/// written there afterwards (its reader has gone).
fn report(line: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", line.replace('\n', " "))?;
    out.flush()
}

/// Starts the controller and the engines, and waits for the engines to
/// join. Returns the message that says the cluster is up.
async fn launch(
    supervisor: &mut Supervisor,
    profile: &Profile,
    args: &ClusterStartArgs,
) -> anyhow::Result<String> {
    let profile_name = &args.profile.profile;
    let client_file = profile.client_file();
    let engine_file = profile.engine_file();
    // Old files would point at a controller that is gone. Only a fresh
    // start removes them: a controller the supervisor restarts rewrites
    // them, and engines that outlived the old one re-read them.
    let _ = std::fs::remove_file(&client_file);
    let _ = std::fs::remove_file(&engine_file);
    let logs = supervise::log_dir(profile);

    let mut controller = vec![
        "controller".to_owned(),
        "--profile".into(),
        profile_name.clone(),
    ];
    controller.extend(["--scheme".to_owned(), args.scheduler.scheme.clone()]);
    controller.extend(["--hwm".to_owned(), args.scheduler.hwm.to_string()]);
    controller.extend(["--prefetch".to_owned(), args.scheduler.prefetch.to_string()]);
    let time_slice = if args.scheduler.time_slice {
        "on"
    } else {
        "off"
    };
    controller.extend(["--time-slice".to_owned(), time_slice.to_owned()]);
    controller.extend(args.hub.to_flags());
    controller.extend(args.listen.to_flags());
    if let Some(size) = args.runtime.max_module_size {
        controller.extend(["--max-module-size".to_owned(), size.to_string()]);
    }
    let controller_log = logs.join("controller.log");
    supervisor.start(Spec {
        role: CONTROLLER.to_owned(),
        args: controller,
        log: controller_log.clone(),
    })?;
    wait_for_file(&engine_file, supervisor, &controller_log).await?;

    let mut engine_flags = Vec::new();
    if let Some(size) = &args.max_namespace {
        engine_flags.extend(["--max-namespace".to_owned(), size.to_string()]);
    }
    if let Some(timeout) = &args.reconnect_timeout {
        engine_flags.extend(["--reconnect-timeout".to_owned(), timeout.to_string()]);
    }
    engine_flags.extend(args.runtime.to_flags());
    let records = launcher::records::path(profile);
    let mut cx = Start {
        profile,
        profile_name,
        engines: args.engines,
        slots: args.launch.slots,
        engine_flags,
        supervisor,
        records: records.clone(),
    };
    let launch = args.launch.launcher.start(&args.launch, &mut cx).await?;

    let client = Client::connect_file(&client_file).await?;
    let timeout = args.start_timeout.0;
    let deadline = Instant::now() + timeout;
    let mut next_check = Instant::now() + CHECK_EVERY;
    loop {
        let ids = client.ids().await?;
        if ids.len() >= launch.engines as usize {
            let dashboard = match args.listen.dashboard {
                Some(addr) if addr.port() != 0 => format!("; dashboard on http://{addr}/"),
                Some(_) => "; the dashboard's address is in the controller's log".to_owned(),
                None => String::new(),
            };
            return Ok(format!(
                "wasp cluster started: controller and {} engines (ids {:?}) {}; logs in {}{dashboard}",
                ids.len(),
                ids.iter().map(|i| i.0).collect::<Vec<_>>(),
                launch.summary,
                logs.display()
            ));
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {} engines joined within {timeout:?}",
                ids.len(),
                launch.engines
            );
        }
        // An engine launched elsewhere that died at once (no `wasp` there,
        // a controller it cannot reach) would otherwise be waited for
        // until the deadline, and its reason left unsaid.
        if Instant::now() >= next_check {
            launcher::records::check_all(&records).await?;
            next_check = Instant::now() + CHECK_EVERY;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ends what a start-up that failed had started: the engines launched
/// elsewhere (at once: nothing asked them to stop), then the supervisor's
/// processes. A failure to stop is told, not returned: the start-up's own
/// error is the one to report.
async fn abandon(supervisor: &mut Supervisor, profile: &Profile) {
    let how = launcher::records::Stop {
        grace: Duration::ZERO,
        terminate: true,
    };
    if let Err(err) = launcher::records::stop_all(&launcher::records::path(profile), how).await {
        supervisor.log.say(&format!("{err:#}"));
    }
    supervisor.kill_all();
    supervisor.remove_pid_file();
}

/// Waits for the controller (the supervisor's first process) to write
/// `path`; if it exits first, the error gives the last line of its `log`,
/// which says why.
async fn wait_for_file(
    path: &std::path::Path,
    supervisor: &mut Supervisor,
    log: &std::path::Path,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    while !path.exists() {
        if let Some(status) = supervisor.exited(0)? {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let last = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
            bail!(
                "the controller exited at start ({status}): {last} (log: {})",
                log.display()
            );
        }
        if Instant::now() > deadline {
            bail!("the controller wrote no connection file within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Stops the supervisor that the pid file lists, if it runs: sends it
/// SIGTERM and waits until it has handed the cluster over (it rewrites the
/// pid file without itself, then restarts nothing) or exited, so that it
/// restarts nothing `stop` ends, and the pid file lists what runs now.
fn stop_supervisor(pid_file: &std::path::Path) -> anyhow::Result<Option<processes::Started>> {
    let listed = |pid: u32| -> anyhow::Result<bool> {
        Ok(processes::read(pid_file)?
            .iter()
            .any(|p| p.role == SUPERVISOR && p.pid == pid))
    };
    let Some(supervisor) = processes::read(pid_file)?
        .into_iter()
        .find(|p| p.role == SUPERVISOR && p.alive())
    else {
        return Ok(None);
    };
    processes::terminate(std::slice::from_ref(&supervisor));
    let deadline = Instant::now() + SUPERVISOR_EXIT;
    while supervisor.alive() && listed(supervisor.pid)? {
        if Instant::now() > deadline {
            // A supervisor left running could restart what `stop` ends.
            processes::end(std::slice::from_ref(&supervisor), Duration::ZERO)?;
            eprintln!(
                "wasp: the supervisor did not answer SIGTERM within {SUPERVISOR_EXIT:?}; killed it"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Some(supervisor))
}

/// Stops the supervisor, then asks the cluster to stop and ends every
/// process `start` recorded: those that have not exited after `--grace`
/// are killed.
pub fn stop(args: &ClusterStopArgs) -> anyhow::Result<ExitCode> {
    let profile = Profile::new(&args.profile.profile)?;
    let pid_file = supervise::pid_file(&profile);
    let supervisor = stop_supervisor(&pid_file)?;
    // Read again: the supervisor may have restarted a process before it
    // handed over.
    let started: Vec<processes::Started> = processes::read(&pid_file)?
        .into_iter()
        .filter(|p| p.role != SUPERVISOR)
        .collect();
    // What was launched elsewhere: engines over ssh, Slurm jobs.
    let records = launcher::records::path(&profile);
    let launched = launcher::records::read(&records)?;
    let runtime = tokio_runtime()?;
    let asked = runtime.block_on(async {
        let client = Client::connect_file(&profile.client_file())
            .await
            .context("connecting to the cluster")?;
        client.shutdown().await.context("stopping the cluster")
    });
    let asked = match asked {
        Ok(()) => true,
        Err(err) if started.is_empty() && launched.is_empty() => return Err(err),
        Err(err) => {
            // The controller is gone or wedged; its processes may not be.
            eprintln!("wasp: could not ask the cluster to stop ({err:#}); ending its processes");
            processes::terminate(&started);
            false
        }
    };
    let how = launcher::records::Stop {
        grace: args.grace.0,
        terminate: !asked,
    };
    // Both wait out the same grace period, side by side.
    let (local, remote) = runtime.block_on(async {
        let local = tokio::task::spawn_blocking(move || processes::end(&started, how.grace));
        let remote = launcher::records::stop_all(&records, how).await;
        (local.await, remote)
    });
    let mut killed: Vec<String> = local
        .context("waiting for the cluster's processes")??
        .iter()
        .map(ToString::to_string)
        .collect();
    // The supervisor exits once it has reaped the last of them.
    if let Some(supervisor) = supervisor {
        killed.extend(
            processes::end(&[supervisor], SUPERVISOR_EXIT)?
                .iter()
                .map(ToString::to_string),
        );
    }
    let _ = std::fs::remove_file(profile.client_file());
    let _ = std::fs::remove_file(profile.engine_file());
    let _ = std::fs::remove_file(&pid_file);
    // Engines that could not be stopped are kept in the records, for
    // another `cluster stop`.
    killed.extend(remote?);
    if killed.is_empty() {
        eprintln!("wasp cluster stopped");
    } else {
        eprintln!(
            "wasp cluster stopped; killed {} that had not exited after {}: {}",
            killed.len(),
            args.grace,
            killed.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `wasp cluster status`: the scheduler, the engines and the task counts.
pub fn status(args: &ProfileOnly) -> anyhow::Result<ExitCode> {
    let status = tokio_runtime()?.block_on(async {
        let client = crate::remote::connect(&args.profile).await?;
        anyhow::Ok(client.status().await?)
    })?;
    println!(
        "scheme {} (hwm {}); {} engines; queued {}, running {}, succeeded {}, failed {}",
        status.scheme,
        status.hwm,
        status.engines.len(),
        status.queued,
        status.running,
        status.succeeded,
        status.failed
    );
    let records = &status.records;
    if records.transactions > 0 {
        println!(
            "records: {} committed in {} transactions (mean {:.1} per transaction, {:.3} ms per commit, longest {:.3} ms)",
            records.committed,
            records.transactions,
            records.committed as f64 / records.transactions as f64,
            records.commit_us as f64 / records.transactions as f64 / 1e3,
            records.max_commit_us as f64 / 1e3,
        );
    }
    for engine in &status.engines {
        println!(
            "  engine {}: {}  outstanding {}  done {}  module bytes received {}",
            engine.id, engine.name, engine.outstanding, engine.done, engine.module_bytes_sent
        );
    }
    Ok(ExitCode::SUCCESS)
}
