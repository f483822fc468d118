//! `--launcher ssh` (ipyparallel's `SSHEngineSetLauncher`): engines on
//! the `--hosts`, started over ssh.
//!
//! For each host, one ssh session runs a short `sh` script, sent on its
//! stdin as ipyparallel's `sshx` does: it writes the engine connection
//! file into the remote profile folder (`security/wasp-engine.json`, mode
//! 0600, through the same ssh connection, so that one set of options
//! serves both), then starts each engine with `nohup wasp engine --file
//! ...` in the background, output in the remote `log/engine-I.log`, and
//! prints its pid as `__remote_pid=PID__`. The pids are recorded
//! ([`Remote`]); checking and stopping the engines are more short scripts
//! over ssh, which recognise an engine by its pid *and* the connection
//! file in its command line, so that a pid the remote kernel has given to
//! another process is never signalled.
//!
//! The engines dial the address the controller writes into the connection
//! file: with engines on other hosts, start the controller with `--ip
//! 0.0.0.0` (and `--location ADDR` where its own address is not the one
//! they reach). Engines are not restarted when they die: the supervisor
//! owns only its children.

use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::command;
use super::records::{self, Launched, Stop};
use super::shell::{self, quote};
use super::{Launch, Start, process_sizes, slot_flags};
use crate::cli::{LauncherArgs, SshArgs};

/// Engines on one host, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    /// The ssh command and its options, before the host.
    pub ssh: Vec<String>,
    /// The host as ssh takes it: `[user@]host`.
    pub host: String,
    /// The engines' connection file there, which their command lines
    /// name.
    pub file: String,
    /// The engines.
    pub engines: Vec<RemoteEngine>,
}

/// One engine on a remote host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteEngine {
    /// `engine-0`, ...
    pub role: String,
    /// Its process id there.
    pub pid: u32,
    /// Its stdout and stderr there.
    pub log: String,
}

/// One `[user@]host[:N]` of `--hosts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSpec {
    /// The destination as ssh takes it: `[user@]host`.
    pub host: String,
    /// How many engines to start there.
    pub engines: u32,
}

impl FromStr for HostSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let expected = || format!("{s:?} is not a host: expected [user@]host[:N], e.g. node1:4");
        let (user, rest) = match s.rsplit_once('@') {
            Some((user, rest)) => (Some(user), rest),
            None => (None, s),
        };
        let (host, count) = if let Some(bracketed) = rest.strip_prefix('[') {
            // An IPv6 address: `[fd00::1]` or `[fd00::1]:N`.
            let (inner, after) = bracketed.split_once(']').ok_or_else(expected)?;
            match after {
                "" => (inner, None),
                _ => (inner, Some(after.strip_prefix(':').ok_or_else(expected)?)),
            }
        } else {
            match rest.split_once(':') {
                // More than one colon: a bare IPv6 address, no count.
                Some((_, tail)) if tail.contains(':') => (rest, None),
                Some((host, count)) => (host, Some(count)),
                None => (rest, None),
            }
        };
        let engines = match count {
            None => 1,
            Some(count) => count
                .parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    format!("{s:?}: the engine count {count:?} is not a whole number above 0")
                })?,
        };
        // Only what a host name, an address or a user name holds: a `-`
        // first would read as an ssh option, a space or `;` as more words.
        let name_ok = |name: &str, extra: &str| {
            !name.is_empty()
                && !name.starts_with('-')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c) || extra.contains(c))
        };
        if !name_ok(host, ":%") || user.is_some_and(|u| !name_ok(u, "")) {
            return Err(expected());
        }
        let host = match user {
            Some(user) => format!("{user}@{host}"),
            None => host.to_owned(),
        };
        Ok(HostSpec { host, engines })
    }
}

/// The hosts of a `--hosts-file`: one `[user@]host[:N]` a line, `#`
/// starting a comment, blank lines skipped.
pub fn parse_hosts_file(text: &str) -> Result<Vec<HostSpec>, String> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.split('#').next().unwrap_or("").trim();
            (!line.is_empty()).then(|| line.parse().map_err(|e| format!("line {}: {e}", i + 1)))
        })
        .collect()
}

/// The hosts `--hosts` or `--hosts-file` give.
fn hosts(args: &SshArgs) -> anyhow::Result<Vec<HostSpec>> {
    let hosts = match &args.hosts_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the hosts file {}", path.display()))?;
            parse_hosts_file(&text)
                .map_err(|e| anyhow::anyhow!("the hosts file {}: {e}", path.display()))?
        }
        None => args
            .hosts
            .iter()
            .filter(|h| !h.trim().is_empty())
            .map(|h| h.parse().map_err(|e| anyhow::anyhow!("--hosts: {e}")))
            .collect::<anyhow::Result<_>>()?,
    };
    if hosts.is_empty() {
        bail!("--launcher ssh needs --hosts host[:N],... or --hosts-file FILE");
    }
    Ok(hosts)
}

/// How many engines go to each host: all the hosts offer, or with `-n`
/// the first `n` of them, host by host (ipyparallel: `n` is an upper
/// limit on what `engines` lists). Asking more than the hosts offer is an
/// error, not a smaller cluster.
pub fn plan(hosts: &[HostSpec], n: Option<u32>) -> Result<Vec<HostSpec>, String> {
    let offered: u32 = hosts.iter().map(|h| h.engines).sum();
    let mut left = match n {
        None => offered,
        Some(n) if n > offered => {
            return Err(format!(
                "-n {n} asks for more engines than the hosts offer ({offered}); give counts as host:N"
            ));
        }
        Some(n) => n,
    };
    let mut plan = Vec::new();
    for host in hosts {
        if left == 0 {
            break;
        }
        let engines = host.engines.min(left);
        left -= engines;
        plan.push(HostSpec {
            host: host.host.clone(),
            engines,
        });
    }
    Ok(plan)
}

/// The remote profile folder: `--remote-profile-dir`, or this profile's
/// folder, relative to the home folder if it is in it (ipyparallel's
/// `_strip_home`): on the remote host, relative paths start at the home
/// folder ssh logs in to.
fn remote_profile_dir(args: &SshArgs, local: &Path) -> anyhow::Result<String> {
    if let Some(dir) = &args.remote_profile_dir {
        // Quoted in the scripts, a `~` would not expand: `~/x` means `x`
        // from the home folder, which is what a relative path does.
        let dir = dir.strip_prefix("~/").unwrap_or(dir).trim_end_matches('/');
        if dir.is_empty() || dir == "~" {
            bail!("--remote-profile-dir: give a folder, not the home folder itself");
        }
        return Ok(dir.to_owned());
    }
    let local = std::path::absolute(local)
        .with_context(|| format!("locating the profile folder {}", local.display()))?;
    let relative = std::env::home_dir()
        .filter(|home| !home.as_os_str().is_empty() && home != Path::new("/"))
        .and_then(|home| local.strip_prefix(home).ok().map(Path::to_path_buf))
        .filter(|rel| !rel.as_os_str().is_empty());
    let dir = relative.unwrap_or(local);
    dir.to_str()
        .map(str::to_owned)
        .with_context(|| format!("the profile folder {} is not UTF-8", dir.display()))
}

/// The ssh command and options of `--ssh-cmd` and `--ssh-args`.
fn ssh_command(args: &SshArgs) -> anyhow::Result<Vec<String>> {
    let mut ssh = shell::split(&args.ssh_cmd).map_err(|e| anyhow::anyhow!("--ssh-cmd: {e}"))?;
    if ssh.is_empty() {
        bail!("--ssh-cmd is empty");
    }
    if let Some(extra) = &args.ssh_args {
        ssh.extend(shell::split(extra).map_err(|e| anyhow::anyhow!("--ssh-args: {e}"))?);
    }
    Ok(ssh)
}

/// `ssh OPTIONS -- HOST sh -s`: a script on stdin, run by the remote
/// host's `sh` whatever the login shell (`--` keeps a host from being read
/// as an option).
fn ssh_argv(ssh: &[String], host: &str) -> Vec<String> {
    let mut argv = ssh.to_vec();
    argv.extend(["--".to_owned(), host.to_owned(), "sh -s".to_owned()]);
    argv
}

/// What ends the connection file in the launch script's here-document.
const END_OF_FILE: &str = "__WASP_CONNECTION_FILE__";

/// The script that writes the connection file into `dir/security` and
/// starts one engine process per `(role, log, slots)` of `engines`,
/// printing each pid.
pub fn launch_script(
    connection: &str,
    dir: &str,
    wasp: &str,
    engine_flags: &[String],
    engines: &[(String, String, u32)],
) -> anyhow::Result<String> {
    if connection.lines().any(|line| line == END_OF_FILE) {
        bail!("the connection file holds the line {END_OF_FILE}");
    }
    let file = format!("{dir}/security/wasp-engine.json");
    let tmp = format!("{file}.tmp");
    let mut script = format!(
        "set -eu\n\
         umask 077\n\
         command -v {w} >/dev/null 2>&1 || {{ echo \"{w}: command not found on $(hostname) \
         (give its path with --remote-wasp)\" >&2; exit 127; }}\n\
         mkdir -p {security} {log}\n\
         cat > {tmp} <<'{END_OF_FILE}'\n\
         {connection}\n\
         {END_OF_FILE}\n\
         mv -f {tmp} {file}\n",
        w = quote(wasp),
        security = quote(&format!("{dir}/security")),
        log = quote(&format!("{dir}/log")),
        tmp = quote(&tmp),
        connection = connection.trim_end_matches('\n'),
        file = quote(&file),
    );
    for (_role, log, slots) in engines {
        let mut command = vec![
            wasp.to_owned(),
            "engine".into(),
            "--file".into(),
            file.clone(),
        ];
        command.extend(slot_flags(*slots));
        command.extend(engine_flags.iter().cloned());
        let command = shell::join(&command);
        // nohup: the engine outlives the ssh session (no SIGHUP at its
        // end); its output goes to the log, so that the session's channel
        // closes and ssh returns.
        script.push_str(&format!(
            "nohup {command} > {} 2>&1 < /dev/null &\necho \"__remote_pid=$!__\"\n",
            quote(log)
        ));
    }
    Ok(script)
}

/// A shell function: whether process `$1` runs (not a zombie) with `$2`
/// among its arguments. Where there is no /proc, `ps` is asked.
const OURS: &str = r#"ours() {
    if [ -r "/proc/$1/cmdline" ]; then
        case $(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) in Z*|X*|'') return 1 ;; esac
        tr '\0' '\n' < "/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$2"
    elif [ -d /proc/self ]; then
        return 1
    else
        ps -p "$1" -o args= 2>/dev/null | grep -qF -- "$2"
    fi
}
"#;

impl Remote {
    fn pids(&self) -> String {
        let pids: Vec<String> = self.engines.iter().map(|e| e.pid.to_string()).collect();
        pids.join(" ")
    }

    /// The script that prints `__exited=ROLE__` and the end of its log for
    /// each engine no longer running.
    pub fn check_script(&self) -> String {
        let mut script = OURS.to_owned();
        for engine in &self.engines {
            script.push_str(&format!(
                "if ! ours {} {}; then echo \"__exited={}__\"; tail -n 20 {} 2>&1; echo \"__end__\"; fi\n",
                engine.pid,
                quote(&self.file),
                engine.role,
                quote(&engine.log),
            ));
        }
        script.push_str("echo \"__checked=1__\"\n");
        script
    }

    /// The script that waits up to `how.grace` for the engines to exit
    /// (after SIGTERM if `how.terminate`), kills those left, and prints
    /// `__killed=PID__` for each killed and `__running=PID__` for each that
    /// even SIGKILL left running after 10 s.
    pub fn stop_script(&self, how: Stop) -> String {
        let tenths = how.grace.as_millis().div_ceil(100);
        format!(
            "{OURS}\
             F={file}\n\
             live() {{ for p in {pids}; do if ours \"$p\" \"$F\"; then printf '%s ' \"$p\"; fi; done; }}\n\
             if [ {terminate} = 1 ]; then for p in $(live); do kill -TERM \"$p\" 2>/dev/null || true; done; fi\n\
             i=0\n\
             while [ -n \"$(live)\" ] && [ \"$i\" -lt {tenths} ]; do sleep 0.1; i=$((i+1)); done\n\
             for p in $(live); do kill -KILL \"$p\" 2>/dev/null || true; echo \"__killed=${{p}}__\"; done\n\
             i=0\n\
             while [ -n \"$(live)\" ] && [ \"$i\" -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n\
             for p in $(live); do echo \"__running=${{p}}__\"; done\n\
             echo \"__stopped=1__\"\n",
            file = quote(&self.file),
            pids = self.pids(),
            terminate = u8::from(how.terminate),
        )
    }

    /// At start-up: an error if an engine has exited, with the last line
    /// of its log.
    pub async fn check(&self) -> anyhow::Result<()> {
        let argv = ssh_argv(&self.ssh, &self.host);
        let out = command::output(&argv, Some(&self.check_script()))
            .await
            .with_context(|| format!("checking the engines on {}", self.host))?;
        if command::markers(&out, "checked").is_empty() {
            bail!(
                "checking the engines on {}: the script did not finish: {out}",
                self.host
            );
        }
        let Some(role) = command::markers(&out, "exited")
            .first()
            .map(|r| r.to_string())
        else {
            return Ok(());
        };
        let engine = self.engines.iter().find(|e| e.role == role);
        let marker = format!("__exited={role}__");
        let tail = out
            .split_once(&marker)
            .map(|(_, rest)| rest.split("__end__").next().unwrap_or(""))
            .unwrap_or("");
        let last = tail.lines().rfind(|l| !l.trim().is_empty()).map(str::trim);
        let said = last.map_or("its log is empty".to_owned(), |l| {
            format!("its log ends {l:?}")
        });
        let (pid, log) = engine.map_or((0, ""), |e| (e.pid, e.log.as_str()));
        bail!(
            "{role} on {} (pid {pid}) exited at start; {said} ({}:{log})",
            self.host,
            self.host
        )
    }

    /// Stops the engines; returns those killed.
    pub async fn stop(&self, how: Stop) -> anyhow::Result<Vec<String>> {
        let argv = ssh_argv(&self.ssh, &self.host);
        let out = command::output(&argv, Some(&self.stop_script(how)))
            .await
            .with_context(|| format!("stopping the engines on {}", self.host))?;
        if command::markers(&out, "stopped").is_empty() {
            bail!(
                "stopping the engines on {}: the script did not finish: {out}",
                self.host
            );
        }
        let name = |pid: &str| {
            let role = self
                .engines
                .iter()
                .find(|e| e.pid.to_string() == pid)
                .map_or("engine", |e| e.role.as_str());
            format!("{role} on {} (pid {pid})", self.host)
        };
        let running: Vec<String> = command::markers(&out, "running")
            .into_iter()
            .map(name)
            .collect();
        if !running.is_empty() {
            bail!("still running 10s after SIGKILL: {}", running.join(", "));
        }
        Ok(command::markers(&out, "killed")
            .into_iter()
            .map(name)
            .collect())
    }
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let engines: Vec<String> = self
            .engines
            .iter()
            .map(|e| format!("{} (pid {})", e.role, e.pid))
            .collect();
        write!(f, "{} on {}", engines.join(", "), self.host)
    }
}

/// Starts the engines on the hosts, host by host, recording each host's
/// engines as soon as they run.
pub async fn start(settings: &LauncherArgs, cx: &mut Start<'_>) -> anyhow::Result<Launch> {
    let args = &settings.ssh;
    let plan = plan(&hosts(args)?, cx.engines).map_err(anyhow::Error::msg)?;
    let ssh = ssh_command(args)?;
    let wasp = settings.remote_wasp.as_deref().unwrap_or("wasp");
    let dir = remote_profile_dir(args, cx.profile.dir())?;
    let local_file = cx.profile.engine_file();
    let connection = std::fs::read_to_string(&local_file)
        .with_context(|| format!("reading {}", local_file.display()))?;
    let mut next = 0;
    let mut processes = 0;
    let mut started = Vec::new();
    for host in &plan {
        // One process a host holds its engines as slots, unless --slots
        // groups them otherwise.
        let sizes = process_sizes(host.engines, cx.slots, 1);
        let engines: Vec<(String, String, u32)> = (processes..)
            .zip(&sizes)
            .map(|(i, &slots)| {
                (
                    format!("engine-{i}"),
                    format!("{dir}/log/engine-{i}.log"),
                    slots,
                )
            })
            .collect();
        processes += sizes.len();
        let script = launch_script(&connection, &dir, wasp, &cx.engine_flags, &engines)?;
        let out = command::output(&ssh_argv(&ssh, &host.host), Some(&script))
            .await
            .with_context(|| format!("starting engines on {} over ssh", host.host))?;
        let pids: Vec<u32> = command::markers(&out, "remote_pid")
            .into_iter()
            .filter_map(|pid| pid.parse().ok())
            .collect();
        let engines: Vec<RemoteEngine> = engines
            .into_iter()
            .zip(&pids)
            .map(|((role, log, _slots), &pid)| RemoteEngine { role, pid, log })
            .collect();
        let remote = Remote {
            ssh: ssh.clone(),
            host: host.host.clone(),
            file: format!("{dir}/security/wasp-engine.json"),
            engines,
        };
        // Recorded before anything else can fail, even short of engines,
        // so that those started are stopped.
        if !remote.engines.is_empty() {
            records::append(&cx.records, Launched::Ssh(remote.clone()))?;
        }
        if pids.len() != sizes.len() {
            bail!(
                "started {} of {} engine processes on {}: the launch script printed: {}",
                pids.len(),
                sizes.len(),
                host.host,
                out.trim()
            );
        }
        started.push(format!("{}:{}", host.host, host.engines));
        next += host.engines;
    }
    Ok(Launch {
        engines: next,
        summary: format!("over ssh on {}", started.join(", ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(host: &str, engines: u32) -> HostSpec {
        HostSpec {
            host: host.into(),
            engines,
        }
    }

    #[test]
    fn hosts_parse_with_users_counts_and_ipv6() {
        for (text, want) in [
            ("node1", host("node1", 1)),
            ("node1:4", host("node1", 4)),
            (
                " alice@node-2.example.org:2 ",
                host("alice@node-2.example.org", 2),
            ),
            ("127.0.0.1:2", host("127.0.0.1", 2)),
            ("[fd00::1]:3", host("fd00::1", 3)),
            ("[fd00::1]", host("fd00::1", 1)),
            ("fd00::1", host("fd00::1", 1)),
            ("bob@[fe80::1%eth0]:2", host("bob@fe80::1%eth0", 2)),
        ] {
            assert_eq!(text.parse::<HostSpec>(), Ok(want), "{text}");
        }
        for (text, says) in [
            ("", "is not a host"),
            ("node1:0", "not a whole number above 0"),
            ("node1:x", "not a whole number above 0"),
            ("-oProxyCommand=x", "is not a host"),
            ("node1;reboot", "is not a host"),
            ("a b", "is not a host"),
            ("[fd00::1", "is not a host"),
            ("@node1", "is not a host"),
        ] {
            let err = text.parse::<HostSpec>().expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn a_hosts_file_has_one_host_a_line_and_comments() {
        let text = "# the rack\nnode1:2\n\n  node2   # the spare\nnode3:1\n";
        assert_eq!(
            parse_hosts_file(text).unwrap(),
            [host("node1", 2), host("node2", 1), host("node3", 1)]
        );
        let err = parse_hosts_file("node1\nnode2:0\n").unwrap_err();
        assert!(err.starts_with("line 2: "), "{err}");
    }

    #[test]
    fn n_takes_the_first_engines_host_by_host() {
        let hosts = [host("a", 2), host("b", 3)];
        assert_eq!(plan(&hosts, None).unwrap(), hosts);
        assert_eq!(plan(&hosts, Some(3)).unwrap(), [host("a", 2), host("b", 1)]);
        assert_eq!(plan(&hosts, Some(1)).unwrap(), [host("a", 1)]);
        let err = plan(&hosts, Some(6)).unwrap_err();
        assert!(
            err.contains("more engines than the hosts offer (5)"),
            "{err}"
        );
    }

    /// The launch script run by a real `sh`, with a stand-in for `wasp`
    /// that records its arguments: the connection file lands private and
    /// whole, and each engine's pid is printed.
    #[test]
    fn the_launch_script_writes_the_file_and_starts_each_engine() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake wasp");
        std::fs::write(&fake, "#!/bin/sh\necho \"$@\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let profile = dir
            .path()
            .join("remote profile")
            .to_str()
            .unwrap()
            .to_owned();
        // A process of one engine, and one of three slots.
        let engines: Vec<(String, String, u32)> = [1, 3]
            .into_iter()
            .enumerate()
            .map(|(i, slots)| {
                (
                    format!("engine-{i}"),
                    format!("{profile}/log/engine-{i}.log"),
                    slots,
                )
            })
            .collect();
        let connection = "{\"address\": \"127.0.0.1:1\", \"token\": \"it's $secret\"}\n";
        let script = launch_script(
            connection,
            &profile,
            fake.to_str().unwrap(),
            &["--max-memory".into(), "64MiB".into()],
            &engines,
        )
        .unwrap();
        let out = std::process::Command::new("sh")
            .arg("-s")
            .stdin(
                std::fs::File::open({
                    let path = dir.path().join("script");
                    std::fs::write(&path, &script).unwrap();
                    path
                })
                .unwrap(),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(command::markers(&stdout, "remote_pid").len(), 2, "{stdout}");
        let file = format!("{profile}/security/wasp-engine.json");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), connection);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // The background engines write their logs soon after.
        let log = format!("{profile}/log/engine-1.log");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::fs::read_to_string(&log).unwrap_or_default().is_empty() {
            assert!(std::time::Instant::now() < deadline, "no engine log");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(
            std::fs::read_to_string(&log).unwrap().trim(),
            format!("engine --file {file} --slots 3 --max-memory 64MiB")
        );
        let first = format!("{profile}/log/engine-0.log");
        while std::fs::read_to_string(&first)
            .unwrap_or_default()
            .is_empty()
        {
            assert!(std::time::Instant::now() < deadline, "no engine log");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(
            std::fs::read_to_string(&first).unwrap().trim(),
            format!("engine --file {file} --max-memory 64MiB")
        );
    }

    /// Runs `script` with a real `sh`, as ssh would on the remote host.
    fn sh(script: &str) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("sh")
            .arg("-s")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The check and stop scripts against real processes: one running,
    /// one stopped (SIGSTOP, so that only SIGKILL ends it), one whose pid
    /// does not hold the connection file (another process now: never
    /// signalled).
    #[test]
    fn the_scripts_check_and_stop_only_the_engines_they_name() {
        // `tail -f FILE` holds FILE as an argument, as an engine holds its
        // connection file.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wasp-engine.json");
        std::fs::write(&file, "{}").unwrap();
        let file = file.to_str().unwrap().to_owned();
        let spawn = |path: &str| {
            std::process::Command::new("tail")
                .args(["-f", path])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        let mut running = spawn(&file);
        let mut stopped = spawn(&file);
        let mut other = spawn("/dev/null");
        let kill = |pid: u32, signal: &str| {
            let status = std::process::Command::new("kill")
                .args([signal, &pid.to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        };
        kill(stopped.id(), "-STOP");
        let engine = |i: usize, pid: u32| RemoteEngine {
            role: format!("engine-{i}"),
            pid,
            log: dir
                .path()
                .join(format!("engine-{i}.log"))
                .to_str()
                .unwrap()
                .to_owned(),
        };
        std::fs::write(
            dir.path().join("engine-2.log"),
            "starting\nwasp: error: no controller\n",
        )
        .unwrap();
        let remote = Remote {
            ssh: vec!["ssh".into()],
            host: "node1".into(),
            file: file.clone(),
            engines: vec![
                engine(0, running.id()),
                engine(1, stopped.id()),
                engine(2, other.id()),
            ],
        };
        let out = sh(&remote.check_script());
        assert_eq!(command::markers(&out, "checked"), ["1"], "{out}");
        assert_eq!(command::markers(&out, "exited"), ["engine-2"], "{out}");
        assert!(out.contains("wasp: error: no controller"), "{out}");

        let out = sh(&remote.stop_script(Stop {
            grace: std::time::Duration::from_millis(300),
            terminate: true,
        }));
        assert_eq!(command::markers(&out, "stopped"), ["1"], "{out}");
        // SIGTERM ended the running one; the stopped one needed SIGKILL.
        assert_eq!(
            command::markers(&out, "killed"),
            [stopped.id().to_string()],
            "{out}"
        );
        assert!(command::markers(&out, "running").is_empty(), "{out}");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(running.wait().unwrap().signal(), Some(15));
        assert_eq!(stopped.wait().unwrap().signal(), Some(9));
        assert_eq!(
            other.try_wait().unwrap(),
            None,
            "a process the record does not name was signalled"
        );
        other.kill().unwrap();
        other.wait().unwrap();
    }

    #[test]
    fn a_missing_remote_wasp_is_named() {
        let script = launch_script("{}", "/tmp/nowhere", "/nonexistent/wasp", &[], &[]).unwrap();
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(127));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("/nonexistent/wasp: command not found on"),
            "{stderr}"
        );
    }
}
