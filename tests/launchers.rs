//! Issue 15, beyond one host: `wasp cluster start --launcher ssh|slurm`,
//! end to end against the real thing. The SSH tests start their own
//! OpenSSH server on loopback (its own config, host key and authorized key,
//! made here with ssh-keygen); the Slurm test starts its own single-node
//! Slurm (munged, slurmctld, slurmd) from a generated config. Both are
//! torn down by Drop guards, even when a test fails; a test that cannot
//! start its sshd or its Slurm fails with the reason (`scripts/setup`
//! installs them), never skips.
//!
//! "Remote" engines run on this host, but only as the launcher starts
//! them: over ssh, with the connection file copied into another folder, or
//! as `srun` tasks of a Slurm job. No wall clock is asserted: every wait is
//! for an event, under a generous deadline that fails saying what did not
//! happen.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use wasp_task_artifacts as tasks;

mod common;
use common::{running, wasp_command};

/// How long anything here may take to come up or go away.
const DEADLINE: Duration = Duration::from_secs(60);

/// Waits until `done` holds, checking every 50 ms; past [`DEADLINE`],
/// fails saying `what` did not happen, with what `context` tells.
fn wait_until(what: &str, mut done: impl FnMut() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {DEADLINE:?}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `command`; fails, with its output, unless it succeeds.
fn succeed(command: &mut Command) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{}",
        out.status,
        says(&out)
    );
    out
}

/// A command's stdout and stderr, for a message.
fn says(out: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts that the `cluster start` of `case` failed, saying `words`; its
/// stderr.
fn failed_saying(out: &Output, case: &str, words: &str) -> String {
    assert!(
        !out.status.success(),
        "{case}: cluster start succeeded:\n{}",
        says(out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains(words),
        "{case}: {words:?} not in:\n{stderr}"
    );
    stderr
}

/// A port nothing listens on now (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The end of a log file, for a message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "--- {} ---\n{}",
        path.display(),
        lines[lines.len().saturating_sub(30)..].join("\n")
    )
}

/// Fails with the reason if `program` is not installed.
fn require(program: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        found,
        "{program} is not installed: run scripts/setup, which installs this test's \
         openssh-server, slurm-wlm and munge"
    );
}

/// The processes, other than this one, whose command line or environment
/// holds `mark` (a temporary folder's path): what a cluster started from
/// that folder, wherever it was launched. Zombies are not counted.
fn processes_marked(mark: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && running(pid))
        .filter(|pid| {
            ["cmdline", "environ"].iter().any(|file| {
                std::fs::read(format!("/proc/{pid}/{file}"))
                    .is_ok_and(|bytes| String::from_utf8_lossy(&bytes).contains(mark))
            })
        })
        .collect()
}

/// The environment variable `name` of process `pid`.
fn environ(pid: u32, name: &str) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{name}=");
    String::from_utf8_lossy(&bytes)
        .split('\0')
        .find_map(|kv| kv.strip_prefix(&prefix).map(str::to_owned))
}

/// The records `cluster start` kept of what it launched.
fn launched(profile: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(profile.join("cluster.launched"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON record"))
        .collect()
}

/// The engines' process ids as `wasp cluster status` names them
/// (`HOST:PID`).
fn engine_pids(status: &str) -> Vec<u32> {
    status
        .lines()
        .filter(|l| l.trim_start().starts_with("engine "))
        .filter_map(|l| {
            l.split_whitespace()
                .nth(2)?
                .rsplit(':')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// A cluster started from a temporary folder, stopped when dropped,
/// whatever became of the test: `wasp cluster stop`, then SIGKILL for
/// any process still marked with the folder (or the remote one).
struct Stopper<'a> {
    dir: &'a tempfile::TempDir,
    marks: Vec<String>,
    env: Vec<(String, String)>,
}

impl Stopper<'_> {
    fn wasp(&self, args: &[&str]) -> Output {
        let mut command = wasp_command(self.dir);
        command.args(args);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command.output().expect("spawn wasp")
    }

    fn profile(&self) -> PathBuf {
        self.dir.path().join("profile_default")
    }
}

impl Drop for Stopper<'_> {
    fn drop(&mut self) {
        if self.profile().join("cluster.pids").exists()
            || self.profile().join("cluster.launched").exists()
        {
            let _ = self.wasp(&["cluster", "stop", "--grace", "1s"]);
        }
        for mark in &self.marks {
            for pid in processes_marked(mark) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

/// A real OpenSSH server on 127.0.0.1 with its own host key, accepting
/// this user with a key made for the test; killed when dropped.
struct Sshd {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
}

impl Sshd {
    fn start() -> Self {
        let sshd = "/usr/sbin/sshd";
        assert!(
            Path::new(sshd).exists(),
            "no {sshd}: run scripts/setup, which installs openssh-server"
        );
        require("ssh");
        require("ssh-keygen");
        let dir = tempfile::tempdir().expect("temp dir");
        for key in ["host_key", "client_key"] {
            succeed(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", ""])
                    .arg("-f")
                    .arg(dir.path().join(key)),
            );
        }
        std::fs::copy(
            dir.path().join("client_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .expect("authorized_keys");
        // sshd refuses to start without its privilege separation folder,
        // which the service creates at boot, and no service runs here.
        std::fs::create_dir_all("/run/sshd").expect("creating /run/sshd (run as root)");
        let log = dir.path().join("sshd.log");
        // A port found free may be taken before sshd binds it: try again.
        for _ in 0..5 {
            let port = free_port();
            let d = dir.path().display();
            let config = format!(
                "Port {port}\n\
                 ListenAddress 127.0.0.1\n\
                 HostKey {d}/host_key\n\
                 AuthorizedKeysFile {d}/authorized_keys\n\
                 PidFile {d}/sshd.pid\n\
                 PermitRootLogin prohibit-password\n\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 Subsystem sftp internal-sftp\n"
            );
            let config_path = dir.path().join("sshd_config");
            std::fs::write(&config_path, config).expect("sshd_config");
            let mut child = Command::new(sshd)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("sshd.log"))
                .spawn()
                .expect("spawn sshd");
            let deadline = Instant::now() + DEADLINE;
            loop {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("Server listening on") {
                    let known = format!(
                        "[127.0.0.1]:{port} {}",
                        std::fs::read_to_string(dir.path().join("host_key.pub")).expect("host key")
                    );
                    std::fs::write(dir.path().join("known_hosts"), known).expect("known_hosts");
                    return Self { dir, child, port };
                }
                if let Some(status) = child.try_wait().expect("wait sshd") {
                    if text.contains("Address already in use") {
                        break;
                    }
                    panic!("sshd exited at start ({status}):\n{text}");
                }
                assert!(
                    Instant::now() < deadline,
                    "sshd did not listen within {DEADLINE:?}:\n{text}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("sshd found no free port in 5 tries:\n{}", tail(&log));
    }

    /// `--ssh-args` that reach this server, as a real deployment would
    /// pass its port and key: strictly checked against its host key.
    fn ssh_args(&self) -> String {
        let d = self.dir.path().display();
        format!(
            "-p {} -i {d}/client_key -o IdentitiesOnly=yes -o UserKnownHostsFile={d}/known_hosts \
             -o StrictHostKeyChecking=yes -o BatchMode=yes",
            self.port
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `area(3, 7)` on every engine of a cluster of two answers 21 from each.
fn each_of_two_engines_runs_a_task(stopper: &Stopper<'_>) {
    let out = stopper.wasp(&["apply", "--targets", "all", tasks::AREA, "area", "3", "7"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[21,21]\n",
        "{}",
        says(&out)
    );
}

/// `wasp cluster start --daemon --launcher ssh` with `args`.
fn ssh_start(stopper: &Stopper<'_>, args: &[&str]) -> Output {
    let mut all = vec!["cluster", "start", "--daemon", "--launcher", "ssh"];
    all.extend_from_slice(args);
    stopper.wasp(&all)
}

#[test]
fn ssh_engines_join_run_tasks_and_stop_with_the_cluster() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    // The remote hosts' profile folder: another folder than this one's,
    // as on another host.
    let remote = tempfile::tempdir().expect("temp dir");
    let remote_dir = remote.path().to_str().expect("utf-8").to_owned();
    let stopper = Stopper {
        dir: &dir,
        marks: vec![dir.path().to_str().unwrap().to_owned(), remote_dir.clone()],
        env: Vec::new(),
    };
    let ssh_args = sshd.ssh_args();
    let out = ssh_start(
        &stopper,
        &[
            "--hosts",
            "127.0.0.1:2",
            // Two processes, whose stop this test follows one by one (by
            // default a host's engines are the slots of one process).
            "--slots",
            "1",
            "--ssh-args",
            &ssh_args,
            "--remote-wasp",
            env!("CARGO_BIN_EXE_wasp"),
            "--remote-profile-dir",
            &remote_dir,
        ],
    );
    assert!(
        out.status.success(),
        "cluster start failed:\n{}\n{}",
        says(&out),
        tail(&sshd.dir.path().join("sshd.log"))
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("2 engines (ids [0, 1]) over ssh on 127.0.0.1:2"),
        "{}",
        says(&out)
    );

    // The record: both engines, their remote pids, the ssh options to
    // reach them again.
    let records = launched(&stopper.profile());
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record["launcher"], "ssh");
    assert_eq!(record["host"], "127.0.0.1");
    let remote_file = format!("{remote_dir}/security/wasp-engine.json");
    assert_eq!(record["file"], remote_file.as_str());
    let pids: Vec<u32> = record["engines"]
        .as_array()
        .expect("engines")
        .iter()
        .map(|e| e["pid"].as_u64().expect("pid") as u32)
        .collect();
    assert_eq!(pids.len(), 2);

    // The connection file was copied, private, and the engines run on it,
    // started by sshd (not by the supervisor).
    let local_file = stopper.profile().join("security/wasp-engine.json");
    assert_eq!(
        std::fs::read(&remote_file).expect("the copied connection file"),
        std::fs::read(&local_file).expect("the connection file")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&remote_file)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    for &pid in &pids {
        assert!(running(pid), "remote engine {pid} does not run");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(
            cmdline.contains(&format!("engine --file {remote_file}")),
            "{cmdline}"
        );
        assert_eq!(
            environ(pid, "WASP_DIR"),
            None,
            "engine {pid} came from the cluster's own environment"
        );
    }

    // Joined, and each runs a task.
    let out = stopper.wasp(&["cluster", "status"]);
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(status.contains("; 2 engines;"), "{status}");
    let mut joined = engine_pids(&status);
    joined.sort_unstable();
    let mut expected = pids.clone();
    expected.sort_unstable();
    assert_eq!(joined, expected, "{status}");
    each_of_two_engines_runs_a_task(&stopper);

    // Stopped with the cluster, from another process than the one that
    // launched them: engine-0, stopped (SIGSTOP), cannot answer, and is
    // killed over ssh once the grace period has passed.
    succeed(Command::new("kill").args(["-STOP", &pids[0].to_string()]));
    let out = stopper.wasp(&["cluster", "stop", "--grace", "2s"]);
    assert!(out.status.success(), "cluster stop failed:\n{}", says(&out));
    let killed = format!(
        "killed 1 that had not exited after 2s: engine-0 on 127.0.0.1 (pid {})",
        pids[0]
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&killed),
        "{killed:?} not in:\n{}",
        says(&out)
    );
    nothing_left_after_stop(
        &stopper,
        &pids,
        &[&remote_dir, dir.path().to_str().unwrap()],
    );
}

/// After `cluster stop`: the engines `pids` are gone, the launch records
/// with them, and no process is left that names one of `marks`.
fn nothing_left_after_stop(stopper: &Stopper<'_>, pids: &[u32], marks: &[&str]) {
    for &pid in pids {
        assert!(!running(pid), "engine {pid} runs after cluster stop");
    }
    assert!(
        !stopper.profile().join("cluster.launched").exists(),
        "the records outlived the stop"
    );
    let left = || -> Vec<_> { marks.iter().flat_map(|m| processes_marked(m)).collect() };
    wait_until(
        "nothing of the cluster left running",
        || left().is_empty(),
        || format!("{:?}", left()),
    );
}

#[test]
fn an_ssh_launch_that_fails_fails_start_in_its_own_words_and_leaves_nothing_running() {
    let sshd = Sshd::start();
    let ssh_args = sshd.ssh_args();
    let wasp = env!("CARGO_BIN_EXE_wasp");
    let closed = format!("-p {} -o BatchMode=yes", free_port());
    let cases: [(&str, Vec<&str>, &str); 4] = [
        (
            "ssh refused",
            vec!["--hosts", "127.0.0.1", "--ssh-args", &closed],
            "Connection refused",
        ),
        (
            "no wasp on the remote host",
            vec![
                "--hosts",
                "127.0.0.1",
                "--ssh-args",
                &ssh_args,
                "--remote-wasp",
                "/nonexistent/wasp",
            ],
            "/nonexistent/wasp: command not found on",
        ),
        (
            // The second host's key is unknown: its ssh fails after the
            // first host's engines run, and those must be stopped.
            "the second host refused",
            vec![
                "--hosts",
                "127.0.0.1:2,localhost:1",
                "--ssh-args",
                &ssh_args,
                "--remote-wasp",
                wasp,
            ],
            "Host key verification failed",
        ),
        (
            "engines that exit at start",
            vec![
                "--hosts",
                "127.0.0.1:2",
                "--ssh-args",
                &ssh_args,
                "--remote-wasp",
                "/bin/false",
            ],
            "exited at start; its log is empty",
        ),
    ];
    for (case, args, words) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let remote = tempfile::tempdir().expect("temp dir");
        let remote_dir = remote.path().to_str().unwrap().to_owned();
        let stopper = Stopper {
            dir: &dir,
            marks: vec![dir.path().to_str().unwrap().to_owned(), remote_dir.clone()],
            env: Vec::new(),
        };
        let mut args = args.clone();
        args.extend(["--remote-profile-dir", &remote_dir]);
        let out = ssh_start(&stopper, &args);
        failed_saying(&out, case, words);
        wait_until(
            &format!("{case}: nothing of the cluster left running"),
            || {
                processes_marked(dir.path().to_str().unwrap()).is_empty()
                    && processes_marked(&remote_dir).is_empty()
            },
            || {
                format!(
                    "{:?} {:?}",
                    processes_marked(dir.path().to_str().unwrap()),
                    processes_marked(&remote_dir)
                )
            },
        );
        assert!(
            !stopper.profile().join("cluster.launched").exists(),
            "{case}: records left"
        );
        assert!(
            !stopper.profile().join("cluster.pids").exists(),
            "{case}: pids left"
        );
    }
}

/// A real single-node Slurm of its own: munged with its own key and
/// socket, slurmctld and slurmd from a generated config on free ports,
/// all in a temporary folder; its jobs cancelled and its daemons killed
/// when dropped.
///
/// This container has no cgroups and no systemd: processes are tracked
/// through /proc (`proctrack/linuxproc`), tasks are not bound
/// (`task/none`), nothing is accounted, and slurmd takes the node's size
/// from the config (`config_overrides`) so that the test does not depend
/// on the host's cores.
struct Slurm {
    dir: tempfile::TempDir,
    conf: PathBuf,
    daemons: Vec<(&'static str, Child)>,
}

/// The partition and node of the test's Slurm.
const PARTITION: &str = "wasptest";
const NODE: &str = "waspnode";

impl Slurm {
    fn start() -> Self {
        for program in [
            "munged",
            "slurmctld",
            "slurmd",
            "sbatch",
            "squeue",
            "scancel",
            "sinfo",
            "srun",
        ] {
            require(program);
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().to_owned();
        for sub in ["munge", "state", "spool", "log"] {
            std::fs::create_dir_all(d.join(sub)).expect("slurm folders");
        }
        let mut slurm = Self {
            conf: d.join("slurm.conf"),
            dir,
            daemons: Vec::new(),
        };
        // munged: a key of its own (mode 0600, or munged refuses it).
        let key = d.join("munge/munge.key");
        let mut bytes = vec![0u8; 1024];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
            .expect("random key");
        std::fs::write(&key, bytes).expect("munge key");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let socket = d.join("munge/munge.socket");
        slurm.spawn(
            "munged",
            Command::new("munged")
                .args(["--foreground", "--force"])
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--key-file={}", key.display()))
                .arg(format!(
                    "--pid-file={}",
                    d.join("munge/munged.pid").display()
                ))
                .arg(format!(
                    "--seed-file={}",
                    d.join("munge/munged.seed").display()
                ))
                .arg(format!("--log-file={}", d.join("log/munged.log").display())),
        );
        wait_until(
            "munged makes its socket",
            || socket.exists(),
            || slurm.logs(),
        );

        // slurmctld only runs where SlurmctldHost names this host.
        let host =
            String::from_utf8(succeed(Command::new("hostname").arg("-s")).stdout).expect("utf-8");
        let host = host.trim();
        let config = format!(
            "ClusterName=wasptest\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmctldPort={ctld}\n\
             SlurmdPort={slurmd}\n\
             SlurmUser=root\n\
             SlurmdUser=root\n\
             AuthType=auth/munge\n\
             CredType=cred/munge\n\
             AuthInfo=socket={socket}\n\
             StateSaveLocation={d}/state\n\
             SlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\n\
             SlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/log/slurmctld.log\n\
             SlurmdLogFile={d}/log/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             JobCompType=jobcomp/none\n\
             SchedulerType=sched/builtin\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_Core\n\
             SlurmdParameters=config_overrides\n\
             MpiDefault=none\n\
             SwitchType=switch/none\n\
             MailProg=/bin/true\n\
             KillWait=5\n\
             ReturnToService=2\n\
             NodeName={NODE} NodeAddr=127.0.0.1 CPUs=4 Sockets=1 CoresPerSocket=4 ThreadsPerCore=1 RealMemory=4000 State=UNKNOWN\n\
             PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP\n",
            ctld = free_port(),
            slurmd = free_port(),
            socket = socket.display(),
            d = d.display(),
        );
        std::fs::write(&slurm.conf, config).expect("slurm.conf");
        let conf = slurm.conf.clone();
        slurm.spawn(
            "slurmctld",
            Command::new("slurmctld").arg("-D").arg("-f").arg(&conf),
        );
        slurm.spawn(
            "slurmd",
            Command::new("slurmd")
                .args(["-D", "-N", NODE])
                .arg("-f")
                .arg(&conf),
        );
        wait_until(
            "the Slurm node is idle",
            || {
                let out = slurm
                    .command("sinfo")
                    .args(["-h", "-n", NODE, "-o", "%t"])
                    .output();
                out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
            },
            || slurm.logs(),
        );
        slurm
    }

    /// Starts a daemon in the foreground, its output in the log folder;
    /// fails with its log if it exits at once.
    fn spawn(&mut self, name: &'static str, command: &mut Command) {
        let log = self.dir.path().join(format!("log/{name}.out"));
        let file = std::fs::File::create(&log).expect("log");
        let child = command
            .env("SLURM_CONF", &self.conf)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.daemons.push((name, child));
    }

    /// A Slurm command talking to this Slurm.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("SLURM_CONF", &self.conf);
        command
    }

    /// The daemons' logs, and which have exited, for a failure's message.
    fn logs(&self) -> String {
        let mut text = String::new();
        let log = self.dir.path().join("log");
        for name in [
            "munged.out",
            "munged.log",
            "slurmctld.out",
            "slurmctld.log",
            "slurmd.out",
            "slurmd.log",
        ] {
            text.push_str(&tail(&log.join(name)));
            text.push('\n');
        }
        text
    }

    /// The state of `job` as squeue tells it; empty once it has left the
    /// queue.
    fn job_state(&self, job: &str) -> String {
        let out = self
            .command("squeue")
            .args(["-h", "-j", job, "-o", "%T"])
            .output()
            .expect("squeue");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        // Whatever the test left in the queue, then the daemons.
        if let Ok(out) = self.command("squeue").args(["-h", "-o", "%i"]).output() {
            for job in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = self.command("scancel").arg(job).status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline
            && self
                .command("squeue")
                .args(["-h", "-o", "%i"])
                .output()
                .is_ok_and(|o| !o.stdout.is_empty())
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        for (_, child) in self.daemons.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A job's step daemons outlive slurmd; they hold the test's
        // folder in their command lines or environment.
        for pid in processes_marked(self.dir.path().to_str().unwrap_or("/nonexistent")) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

#[test]
fn a_slurm_job_of_engines_joins_and_is_cancelled_with_the_cluster() {
    let slurm = Slurm::start();
    let conf = slurm.conf.to_str().expect("utf-8").to_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    let stopper = Stopper {
        dir: &dir,
        marks: vec![dir.path().to_str().unwrap().to_owned()],
        env: vec![("SLURM_CONF".into(), conf.clone())],
    };
    let out = stopper.wasp(&[
        "cluster",
        "start",
        "--daemon",
        "--launcher",
        "slurm",
        "-n",
        "2",
        "--slurm-partition",
        PARTITION,
        "--slurm-timelimit",
        "30",
        "--slurm-option=--comment=wasp-launcher-test",
    ]);
    assert!(
        out.status.success(),
        "cluster start failed:\n{}\n{}",
        says(&out),
        slurm.logs()
    );
    let records = launched(&stopper.profile());
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["launcher"], "slurm");
    let job = records[0]["job_id"].as_str().expect("job id").to_owned();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("in Slurm job {job}")),
        "{}",
        says(&out)
    );

    // The job script: the built-in template with the settings given.
    let script = std::fs::read_to_string(stopper.profile().join("slurm_engine.sbatch"))
        .expect("the job script");
    for line in [
        "#SBATCH --ntasks=2",
        "#SBATCH --partition=wasptest",
        "#SBATCH --time=30",
        "#SBATCH --comment=wasp-launcher-test",
    ] {
        assert!(
            script.lines().any(|l| l == line),
            "{line:?} not in:\n{script}"
        );
    }

    // The job runs, and the engines that joined are its tasks.
    assert_eq!(slurm.job_state(&job), "RUNNING");
    let out = stopper.wasp(&["cluster", "status"]);
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(status.contains("; 2 engines;"), "{status}");
    let pids = engine_pids(&status);
    assert_eq!(pids.len(), 2, "{status}");
    for &pid in &pids {
        assert_eq!(
            environ(pid, "SLURM_JOB_ID").as_deref(),
            Some(job.as_str()),
            "engine {pid} is not in job {job}"
        );
        assert!(
            environ(pid, "SLURM_PROCID").is_some(),
            "engine {pid} is not an srun task"
        );
    }
    each_of_two_engines_runs_a_task(&stopper);

    // `cluster stop` ends the job, and the engines with it: one engine,
    // stopped (SIGSTOP), cannot answer, so its task keeps the job running
    // until scancel ends it.
    succeed(Command::new("kill").args(["-STOP", &pids[0].to_string()]));
    let out = stopper.wasp(&["cluster", "stop", "--grace", "2s"]);
    assert!(out.status.success(), "cluster stop failed:\n{}", says(&out));
    let cancelled = format!("Slurm job {job} (cancelled)");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&cancelled),
        "{cancelled:?} not in:\n{}",
        says(&out)
    );
    assert_eq!(slurm.job_state(&job), "", "job {job} is still in the queue");
    nothing_left_after_stop(&stopper, &pids, &[dir.path().to_str().unwrap()]);

    // A job Slurm refuses fails the start in sbatch's words, leaving
    // nothing running.
    let refused = tempfile::tempdir().expect("temp dir");
    let stopper = Stopper {
        dir: &refused,
        marks: vec![refused.path().to_str().unwrap().to_owned()],
        env: vec![("SLURM_CONF".into(), conf)],
    };
    let out = stopper.wasp(&[
        "cluster",
        "start",
        "--daemon",
        "--launcher",
        "slurm",
        "--slurm-partition",
        "nosuch",
    ]);
    failed_saying(
        &out,
        "a job for a partition Slurm does not have",
        "invalid partition specified: nosuch",
    );
    wait_until(
        "nothing of the refused cluster left running",
        || processes_marked(refused.path().to_str().unwrap()).is_empty(),
        || format!("{:?}", processes_marked(refused.path().to_str().unwrap())),
    );
    assert!(!stopper.profile().join("cluster.pids").exists());
}

/// `--launcher slurm` where there is no sbatch fails with the reason.
#[test]
fn a_missing_sbatch_fails_the_start_and_leaves_nothing_running() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stopper = Stopper {
        dir: &dir,
        marks: vec![dir.path().to_str().unwrap().to_owned()],
        env: Vec::new(),
    };
    let out = stopper.wasp(&[
        "cluster",
        "start",
        "--daemon",
        "--launcher",
        "slurm",
        "--slurm-submit-command",
        "/nonexistent/bin/sbatch",
    ]);
    let stderr = failed_saying(
        &out,
        "a missing sbatch",
        "cannot run `/nonexistent/bin/sbatch",
    );
    assert!(stderr.contains("No such file or directory"), "{stderr}");
    wait_until(
        "nothing of the cluster left running",
        || processes_marked(dir.path().to_str().unwrap()).is_empty(),
        || format!("{:?}", processes_marked(dir.path().to_str().unwrap())),
    );
}
