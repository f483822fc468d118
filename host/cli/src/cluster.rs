//! `wasp cluster start | stop | status`, as ipcluster: a controller and N
//! engines as separate processes on this host.

use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use wasp_client::Client;
use wasp_net::Profile;

use crate::cli::{ClusterStartArgs, ProfileOnly};
use crate::serve::tokio_runtime;

/// How long `start` waits for the controller and engines to come up.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub fn start(args: &ClusterStartArgs) -> anyhow::Result<ExitCode> {
    let profile_name = &args.profile.profile;
    let profile = Profile::new(profile_name)?;
    let client_file = profile.client_file();
    let engine_file = profile.engine_file();
    // Old files would point at a controller that is gone.
    let _ = std::fs::remove_file(&client_file);
    let _ = std::fs::remove_file(&engine_file);

    let exe = std::env::current_exe().context("locating the wasp binary")?;
    let logs = profile.dir().join("log");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let mut children = Vec::new();
    let controller = spawn(
        Command::new(&exe)
            .args(["controller", "--profile", profile_name])
            .args(["--scheme", &args.scheduler.scheme])
            .args(["--hwm", &args.scheduler.hwm.to_string()])
            .args([
                "--prefetch",
                &format!("{}s", args.scheduler.prefetch.0.as_secs_f64()),
            ])
            .args(
                args.max_module_size
                    .iter()
                    .flat_map(|size| ["--max-module-size", size]),
            ),
        &logs.join("controller.log"),
    )?;
    children.push(controller);
    wait_for_file(&engine_file, &mut children)?;
    for i in 0..args.engines {
        let mut command = Command::new(&exe);
        command.args(["engine", "--profile", profile_name]);
        if let Some(size) = &args.max_namespace {
            command.args(["--max-namespace", size]);
        }
        if let Some(size) = &args.max_module_size {
            command.args(["--max-module-size", size]);
        }
        let engine = spawn(&mut command, &logs.join(format!("engine-{i}.log")))?;
        children.push(engine);
    }
    let pids: Vec<String> = children.iter().map(|c| c.id().to_string()).collect();
    std::fs::write(profile.dir().join("cluster.pids"), pids.join("\n"))
        .context("writing the cluster's pid file")?;

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
    kill_all(&mut children);
    Ok(ExitCode::SUCCESS)
}

fn spawn(command: &mut Command, log: &Path) -> anyhow::Result<Child> {
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("starting {command:?}"))
}

fn wait_for_file(path: &Path, children: &mut [Child]) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    while !path.exists() {
        if let Some(status) = children[0].try_wait()? {
            bail!("the controller exited at start ({status}); see its log");
        }
        if Instant::now() > deadline {
            bail!("the controller wrote no connection file within {START_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn kill_all(children: &mut [Child]) {
    for child in children.iter_mut().rev() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

pub fn stop(args: &ProfileOnly) -> anyhow::Result<ExitCode> {
    let profile = Profile::new(&args.profile.profile)?;
    tokio_runtime()?.block_on(async {
        let client = Client::connect_file(&profile.client_file())
            .await
            .context("connecting to the cluster")?;
        client.shutdown().await.context("stopping the cluster")
    })?;
    let _ = std::fs::remove_file(profile.client_file());
    let _ = std::fs::remove_file(profile.engine_file());
    eprintln!("wasp cluster stopped");
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
