//! `wasp cluster start | stop | status`, as ipcluster: a controller and N
//! engines as separate processes on this host. `start` records their pids
//! in the profile folder; `stop` asks them to exit and kills those that do
//! not (see [`crate::processes`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use wasp_client::Client;
use wasp_net::Profile;

use crate::cli::{ClusterStartArgs, ClusterStopArgs, ProfileOnly};
use crate::processes;
use crate::serve::tokio_runtime;

/// How long `start` waits for the controller and engines to come up.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The file, in the profile folder, that lists the processes `start`
/// started.
fn pid_file(profile: &Profile) -> PathBuf {
    profile.dir().join("cluster.pids")
}

pub fn start(args: &ClusterStartArgs) -> anyhow::Result<ExitCode> {
    let profile_name = &args.profile.profile;
    let profile = Profile::new(profile_name)?;
    // The profile holds secrets and every tenant's results: private from
    // the start, whatever the umask.
    profile
        .create()
        .with_context(|| format!("creating the profile folder {}", profile.dir().display()))?;
    let client_file = profile.client_file();
    let engine_file = profile.engine_file();
    // Old files would point at a controller that is gone.
    let _ = std::fs::remove_file(&client_file);
    let _ = std::fs::remove_file(&engine_file);

    let exe = std::env::current_exe().context("locating the wasp binary")?;
    let logs = profile.dir().join("log");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let mut children = Vec::new();
    let mut started = Vec::new();
    let controller = spawn(
        Command::new(&exe)
            .args(["controller", "--profile", profile_name])
            .args(["--scheme", &args.scheduler.scheme])
            .args(["--hwm", &args.scheduler.hwm.to_string()])
            .args(["--prefetch", &args.scheduler.prefetch.to_string()])
            .args(args.hub.to_flags())
            .args(
                args.runtime
                    .max_module_size
                    .iter()
                    .flat_map(|size| ["--max-module-size".to_owned(), size.to_string()]),
            ),
        &logs.join("controller.log"),
    )?;
    started.push(processes::Started::new("controller", controller.id()));
    children.push(controller);
    let recorded = processes::write(&pid_file(&profile), &started);
    let up = recorded
        .and_then(|()| wait_for_file(&engine_file, &mut children, &logs.join("controller.log")));
    if let Err(err) = up {
        kill_all(&mut children);
        return Err(err);
    }
    let engine_flags = args.runtime.to_flags();
    for i in 0..args.engines {
        let mut command = Command::new(&exe);
        command.args(["engine", "--profile", profile_name]);
        if let Some(size) = &args.max_namespace {
            command.args(["--max-namespace", &size.to_string()]);
        }
        command.args(&engine_flags);
        let spawned =
            spawn(&mut command, &logs.join(format!("engine-{i}.log"))).and_then(|engine| {
                started.push(processes::Started::new(format!("engine-{i}"), engine.id()));
                children.push(engine);
                processes::write(&pid_file(&profile), &started)
            });
        if let Err(err) = spawned {
            kill_all(&mut children);
            return Err(err);
        }
    }

    let tokio = tokio_runtime()?;
    let client = tokio.block_on(async {
        let client = Client::connect_file(&client_file).await?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ids = client.ids().await?;
            if ids.len() >= args.engines as usize {
                eprintln!(
                    "wasp cluster started: controller and {} engines (ids {:?}); logs in {}",
                    ids.len(),
                    ids.iter().map(|i| i.0).collect::<Vec<_>>(),
                    logs.display()
                );
                return anyhow::Ok(client);
            }
            if Instant::now() > deadline {
                bail!(
                    "only {} of {} engines joined within {START_TIMEOUT:?}",
                    ids.len(),
                    args.engines
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let client = match client {
        Ok(client) => client,
        Err(err) => {
            kill_all(&mut children);
            return Err(err);
        }
    };
    if args.daemon {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("press Ctrl-C to stop the cluster");
    tokio.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
        let _ = client.shutdown().await;
    });
    // The processes are this one's children: wait for them (reaping them),
    // killing those that outlast the grace period.
    let deadline = Instant::now() + DEFAULT_GRACE;
    while Instant::now() < deadline
        && children
            .iter_mut()
            .any(|child| matches!(child.try_wait(), Ok(None)))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    kill_all(&mut children);
    let _ = std::fs::remove_file(pid_file(&profile));
    Ok(ExitCode::SUCCESS)
}

/// How long the cluster's processes have to exit on request when the
/// foreground `cluster start` is interrupted (`cluster stop` has a flag).
const DEFAULT_GRACE: Duration = Duration::from_secs(5);

fn spawn(command: &mut Command, log: &Path) -> anyhow::Result<Child> {
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("starting {command:?}"))
}

/// Waits for the controller (`children[0]`) to write `path`; if it exits
/// first, the error gives the last line of its `log`, which says why.
fn wait_for_file(path: &Path, children: &mut [Child], log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    while !path.exists() {
        if let Some(status) = children[0].try_wait()? {
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
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Kills (SIGKILL) and reaps every child still running.
fn kill_all(children: &mut [Child]) {
    for child in children.iter_mut().rev() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Asks the cluster to stop, then ends every process `start` recorded:
/// those that have not exited after `--grace` are killed.
pub fn stop(args: &ClusterStopArgs) -> anyhow::Result<ExitCode> {
    let profile = Profile::new(&args.profile.profile)?;
    let started = processes::read(&pid_file(&profile))?;
    let asked = tokio_runtime()?.block_on(async {
        let client = Client::connect_file(&profile.client_file())
            .await
            .context("connecting to the cluster")?;
        client.shutdown().await.context("stopping the cluster")
    });
    if let Err(err) = asked {
        if started.is_empty() {
            return Err(err);
        }
        // The controller is gone or wedged; its processes may not be.
        eprintln!("wasp: could not ask the cluster to stop ({err:#}); ending its processes");
        processes::terminate(&started);
    }
    let killed = processes::end(&started, args.grace.0)?;
    let _ = std::fs::remove_file(profile.client_file());
    let _ = std::fs::remove_file(profile.engine_file());
    let _ = std::fs::remove_file(pid_file(&profile));
    if killed.is_empty() {
        eprintln!("wasp cluster stopped");
    } else {
        let names: Vec<String> = killed.iter().map(ToString::to_string).collect();
        eprintln!(
            "wasp cluster stopped; killed {} that had not exited after {}: {}",
            names.len(),
            args.grace,
            names.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn status(args: &ProfileOnly) -> anyhow::Result<ExitCode> {
    let profile = Profile::new(&args.profile.profile)?;
    let status = tokio_runtime()?.block_on(async {
        let client = Client::connect_file(&profile.client_file())
            .await
            .context("connecting to the cluster")?;
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
    for engine in &status.engines {
        println!(
            "  engine {}: {}  outstanding {}  done {}  module bytes received {}",
            engine.id, engine.name, engine.outstanding, engine.done, engine.module_bytes_sent
        );
    }
    Ok(ExitCode::SUCCESS)
}
