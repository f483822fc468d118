//! The command-line grammar (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::settings::{ByteSize, Seconds};

/// wasp: a WebAssembly sandboxed worker pool with ipyparallel's model.
#[derive(Debug, Parser)]
#[command(name = "wasp", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every function a component exports, with its WIT signature.
    Inspect(InspectArgs),
    /// Run one call of a component locally, in the sandbox.
    ///
    /// Arguments are JSON, typed by the function's WIT signature
    /// (`wasp run area.wasm area 3 7` prints `21`); text that is not JSON is
    /// taken as a string.
    Run(RunArgs),
    /// Create a task project in Rust, C, Python or JavaScript, wired to the
    /// `wasp:task` WIT package.
    New(NewArgs),
    /// Build a task project into a component with its language's
    /// toolchain, and print its exports with their WIT signatures.
    Build(BuildArgs),
    /// Run a controller: the hub and the scheduler (ipcontroller).
    Controller(ControllerArgs),
    /// Run an engine that joins a controller (ipengine).
    Engine(EngineArgs),
    /// Start, stop or inspect a local cluster (ipcluster).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Run one call on the cluster; print its result as JSON.
    Apply(ApplyArgs),
    /// Map a function over argument lists (one JSON array per line, from a
    /// file or stdin); print results as JSON lines.
    Map(MapArgs),
    /// Send a module to engines ahead of use, where it is compiled and
    /// cached (an engine that has it receives only its hash).
    Push(PushArgs),
    /// Print each engine's value of a name in its namespace (`dv['name']`).
    Pull(NameArgs),
    /// Split a JSON array across engines, contiguous and balanced, as `name`.
    Scatter(ScatterArgs),
    /// Concatenate the engines' values of a name, in engine order.
    Gather(NameArgs),
    /// Print recorded tasks' results (`Client.get_result`), waiting for
    /// unfinished ones: one JSON line per item, in id order.
    Result(TaskIdsArgs),
    /// Stop tasks: queued ones never run, running ones are interrupted.
    Abort(TaskIdsArgs),
    /// Run finished tasks again under new ids; print the new ids.
    Resubmit(ResubmitArgs),
    /// List the tenant's task records (`Client.db_query`).
    Tasks(TasksArgs),
    /// Rerun a recorded task locally, in the sandbox, and say whether its
    /// result matches the record (reads the profile's task database).
    Replay(ReplayArgs),
    /// Manage a running controller's tenants (admin tokens only).
    #[command(subcommand)]
    Tenant(TenantCommand),
}

/// `wasp tenant`: changes apply at once and are written to the profile's
/// `controller.json`.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Add a tenant (not an admin): writes `security/client-NAME.json` in
    /// the profile and prints its path.
    Add(TenantAddArgs),
    /// List the tenants: name, weight, admin, quotas, tasks and engine
    /// time.
    List(TenantListArgs),
    /// Change a tenant's fair-share weight or quotas (those not given are
    /// kept).
    Set(TenantSetArgs),
    /// Revoke a tenant at once: its clients are disconnected, its
    /// unfinished tasks aborted; its records are kept.
    Remove(TenantNameArgs),
}

/// `wasp tenant add` and `wasp tenant set`
#[derive(Debug, Args)]
pub struct TenantAddArgs {
    /// The tenant's name: letters, digits, '-' and '_'.
    pub name: String,
    /// Its share of engine time against other tenants with work queued.
    #[arg(long, default_value_t = 1)]
    pub weight: u32,
    #[command(flatten)]
    pub quotas: QuotaArgs,
    #[command(flatten)]
    pub profile: ConnectArgs,
}

/// `wasp tenant set`
#[derive(Debug, Args)]
pub struct TenantSetArgs {
    /// The tenant's name.
    pub name: String,
    /// Its new share of engine time against other tenants with work
    /// queued.
    #[arg(long)]
    pub weight: Option<u32>,
    #[command(flatten)]
    pub quotas: QuotaArgs,
    #[command(flatten)]
    pub profile: ConnectArgs,
}

/// A tenant's quotas, each refused at submission with an error naming it;
/// one not given is the controller's default (`wasp tenant add`) or
/// unchanged (`wasp tenant set`).
#[derive(Debug, Args)]
pub struct QuotaArgs {
    /// Most of its tasks on engines at once; more wait their turn
    /// (default: no quota).
    #[arg(long, value_name = "N")]
    pub max_running: Option<u64>,
    /// Most of its tasks waiting for an engine; a submission that would
    /// pass it is refused whole (default: the controller's, 1,000,000).
    #[arg(long, value_name = "N")]
    pub max_queued: Option<u64>,
    /// Most bytes of modules stored for it (default: the controller's
    /// --max-module-storage, 1 GiB).
    #[arg(long, value_name = "SIZE")]
    pub max_module_bytes: Option<ByteSize>,
    /// Most bytes of values in its namespace on each engine (default: the
    /// engines' --max-namespace).
    #[arg(long, value_name = "SIZE")]
    pub max_namespace_bytes: Option<ByteSize>,
    /// The ceiling of a task's time limit: a task asking for more is
    /// refused, one asking for none runs under it (default: the engines'
    /// limit).
    #[arg(long, value_name = "SECONDS")]
    pub max_task_time: Option<Seconds>,
    /// The ceiling of a task's memory limit, the same way (default: the
    /// engines' limit).
    #[arg(long, value_name = "SIZE")]
    pub max_task_memory: Option<ByteSize>,
}

/// `wasp tenant list`
#[derive(Debug, Args)]
pub struct TenantListArgs {
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub profile: ConnectArgs,
}

/// `wasp tenant remove`
#[derive(Debug, Args)]
pub struct TenantNameArgs {
    /// The tenant's name.
    pub name: String,
    #[command(flatten)]
    pub profile: ConnectArgs,
}

/// Task ids, as printed by `--no-wait` (`s3-17`).
#[derive(Debug, Args)]
pub struct TaskIdsArgs {
    /// The task ids.
    #[arg(required = true, value_name = "MSG_ID")]
    pub ids: Vec<String>,
    /// Which profile folder to use.
    #[command(flatten)]
    pub profile: ConnectArgs,
}

/// `wasp resubmit`
#[derive(Debug, Args)]
pub struct ResubmitArgs {
    /// The tasks.
    #[command(flatten)]
    pub tasks: TaskIdsArgs,
    /// Print the new ids and return, rather than their results.
    #[arg(long)]
    pub no_wait: bool,
}

/// `wasp tasks`
#[derive(Debug, Args)]
pub struct TasksArgs {
    /// Only tasks in this status: queued, running, succeeded, failed
    /// (repeatable).
    #[arg(long)]
    pub status: Vec<String>,
    /// Only tasks calling this function.
    #[arg(long)]
    pub func: Option<String>,
    /// Only tasks that ran on this engine.
    #[arg(long)]
    pub engine: Option<u32>,
    /// At most this many (oldest first).
    #[arg(long, default_value_t = 1000)]
    pub limit: u32,
    /// One JSON object per task instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Which profile folder to use.
    #[command(flatten)]
    pub profile: ConnectArgs,
}

/// `wasp replay`
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The task to replay.
    #[arg(value_name = "MSG_ID")]
    pub id: String,
    /// Which profile folder to use.
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Runtime settings of the local run.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Which engines a DirectView command addresses.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// `all`, an engine id (`0`) or ids (`0,2`).
    #[arg(long, default_value = "all")]
    pub targets: String,
}

/// `wasp push`
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The component (.wasm).
    pub module: PathBuf,
    /// Which engines.
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Which profile folder to use.
    #[command(flatten)]
    pub profile: ConnectArgs,
}

/// `wasp pull` and `wasp gather`
#[derive(Debug, Args)]
pub struct NameArgs {
    /// The name in the engines' namespaces.
    pub name: String,
    /// Which engines.
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Which profile folder to use.
    #[command(flatten)]
    pub profile: ConnectArgs,
}

/// `wasp scatter`
#[derive(Debug, Args)]
pub struct ScatterArgs {
    /// The name to set on each engine.
    pub name: String,
    /// A file holding one JSON array (default: stdin). Values are typed by
    /// their JSON: integers become s64, other numbers f64, arrays lists (or
    /// tuples when mixed), objects records.
    pub input: Option<PathBuf>,
    /// Push a one-item part as the item itself, not a one-item list.
    #[arg(long)]
    pub flatten: bool,
    /// Which engines.
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Which profile folder to use.
    #[command(flatten)]
    pub profile: ConnectArgs,
}

/// Which cluster to talk to.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// The profile name: its folder is $WASP_DIR/profile_NAME (default
    /// ~/.wasp/profile_NAME).
    #[arg(long, default_value = "default")]
    pub profile: String,
}

/// Which cluster to talk to, and as which tenant.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The profile name: its folder is $WASP_DIR/profile_NAME (default
    /// ~/.wasp/profile_NAME).
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// Connect with this connection file instead of the profile's, acting
    /// as its tenant (e.g. the `client-NAME.json` of `wasp tenant add`).
    #[arg(long, value_name = "CONN.json")]
    pub file: Option<std::path::PathBuf>,
}

/// Scheduler settings.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// The load-balancing scheme: leastload, lru, plainrandom, twobin, weighted.
    #[arg(long, default_value = "leastload")]
    pub scheme: String,
    /// Max outstanding tasks per engine (0 = unlimited).
    #[arg(long, default_value_t = 1)]
    pub hwm: u32,
    /// Queued work an engine may hold beyond --hwm, in expected run time
    /// (its recent tasks' run time): short tasks are sent ahead so that an
    /// engine does not wait a round trip for each; tasks longer than this
    /// get no extra room. 0 turns it off (ipyparallel's behaviour).
    #[arg(long, default_value = "1ms")]
    pub prefetch: Seconds,
    /// Time-slice engines between tenants (on or off): when every engine
    /// is busy, the tenant whose turn it is runs a task beside another
    /// tenant's at once, each suspended in turn at the engine's epoch
    /// ticks (1 ms) and given time by weight, instead of waiting for that
    /// task to end. A cluster of one tenant never slices.
    #[arg(
        long,
        value_name = "on|off",
        default_value = "on",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::Set,
    )]
    pub time_slice: bool,
}

/// `wasp controller`
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Which profile folder to use.
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Where to listen, and where peers dial.
    #[command(flatten)]
    pub listen: ListenArgs,
    /// Largest module a client may upload [default: 256MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_module_size: Option<ByteSize>,
    /// Most bytes of modules stored for one tenant [default: 1GiB];
    /// an upload past it is refused with an error naming this limit.
    #[arg(long, value_name = "SIZE")]
    pub max_module_storage: Option<ByteSize>,
    /// Task durability settings.
    #[command(flatten)]
    pub hub: HubArgs,
    /// Scheduler settings.
    #[command(flatten)]
    pub scheduler: SchedulerArgs,
}

/// Where the controller listens and where its connection files say it is
/// (`wasp controller`, `wasp cluster start`).
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Address to listen on (0.0.0.0: every interface, for engines and
    /// clients on other hosts).
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: std::net::IpAddr,
    /// Port to listen on (0: any free port, the last run's if it is free).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The address engines and clients dial, written into the connection
    /// files (ipyparallel's --location): an IP address or a host name
    /// (resolved here, at start), with :PORT if they reach the controller
    /// on another port than it listens on (a relay or a NAT) [default:
    /// --ip, or with --ip 0.0.0.0 this host's address].
    #[arg(long, value_name = "ADDR")]
    pub location: Option<crate::settings::LocationArg>,
    /// Serve the dashboard here: the live page (sign in with a tenant's
    /// token) and `/metrics` in the Prometheus text format (for an admin
    /// token); off unless given, and on loopback when given without an
    /// address [default when on: 127.0.0.1:8790].
    #[arg(long, value_name = "ADDR", num_args = 0..=1,
          default_missing_value = crate::settings::DEFAULT_DASHBOARD)]
    pub dashboard: Option<std::net::SocketAddr>,
}

/// How the controller keeps tasks (`wasp controller`, `wasp cluster
/// start`).
#[derive(Debug, Args)]
pub struct HubArgs {
    /// A task whose engine dies under it this many times fails (Dask's
    /// KilledWorker); until then it runs again elsewhere.
    #[arg(long, default_value_t = wasp_controller::config::DEFAULT_MAX_ENGINE_DEATHS)]
    pub max_engine_deaths: u32,
    /// Most task records kept; past it the oldest finished are deleted
    /// (ipyparallel's record_limit).
    #[arg(long, default_value_t = wasp_controller::config::DEFAULT_MAX_RECORDS)]
    pub max_records: u64,
    /// Move every value through QUIC, even to clients and engines on this
    /// host, rather than big ones as memory files they map.
    #[arg(long)]
    pub no_same_host: bool,
    /// An engine silent this long is declared dead and disconnected, and
    /// its tasks run elsewhere (engines send a heartbeat every second).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub heartbeat_timeout: Seconds,
}

/// `wasp engine`
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// The engine connection file (default: the profile's
    /// security/wasp-engine.json).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Which profile folder to use.
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Most bytes one tenant's namespace may hold on this engine
    /// [default: 256MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_namespace: Option<ByteSize>,
    /// How many engines this process serves: each has its own engine id,
    /// namespaces and queue and runs one task at a time; they share one
    /// runtime, compile cache and connection (an engine more costs far
    /// less than a process more).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(wasp_proto::msg::MAX_SLOTS)))]
    pub slots: u32,
    /// How long to wait at start for the connection file to appear and a
    /// controller to answer, with backoff (ipyparallel's registration
    /// timeout); 0 makes one attempt. A controller that refuses the engine
    /// ends it at once.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub start_timeout: Seconds,
    /// How long to keep trying to reach a controller after the connection
    /// to it is lost (it crashed or was restarted), with backoff from 100ms
    /// to 5s, re-reading the connection file each time; 0 exits at the
    /// loss. Compiled modules are kept across reconnects.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub reconnect_timeout: Seconds,
    /// Runtime settings.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// `wasp cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start a controller on this host and N engines, and supervise them:
    /// a process that dies unasked is restarted with backoff, and one that
    /// keeps dying is given up on (logged in PROFILE/log/supervisor.log).
    /// With --launcher ssh or slurm the engines run on other hosts or in a
    /// Slurm job, and are not restarted.
    Start(Box<ClusterStartArgs>),
    /// Stop the cluster: its supervisor first, then its controller and
    /// engines: ask them to exit, then kill (SIGKILL) any process `cluster
    /// start` started that has not exited after the grace period, over ssh
    /// too; cancel its Slurm job.
    Stop(ClusterStopArgs),
    /// Show engines, queue and tasks done.
    Status(ProfileOnly),
}

/// Arguments that only name the profile.
#[derive(Debug, Args)]
pub struct ProfileOnly {
    /// Which profile folder to use.
    #[command(flatten)]
    pub profile: ConnectArgs,
}

/// `wasp cluster stop`
#[derive(Debug, Args)]
pub struct ClusterStopArgs {
    /// How long the processes have to exit on request before they are
    /// killed, e.g. `5s`, `500ms`.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub grace: Seconds,
    /// Which profile folder to use.
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// `wasp cluster start`
#[derive(Debug, Args)]
pub struct ClusterStartArgs {
    /// How many engines [default: 2; with --launcher ssh, the sum of the
    /// hosts' counts, of which -n takes the first N].
    #[arg(short = 'n', long = "n")]
    pub engines: Option<u32>,
    /// What starts the engines, and its settings.
    #[command(flatten)]
    pub launch: LauncherArgs,
    /// How long to wait for the engines to join before the start fails
    /// and what was started is stopped (a Slurm job may wait in its
    /// queue).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub start_timeout: Seconds,
    /// Return once the cluster is up, leaving it running under a
    /// supervisor process in the background.
    #[arg(long)]
    pub daemon: bool,
    /// Run as the background supervisor of `--daemon`: report start-up on
    /// stdout in one line, then supervise (set by `cluster start --daemon`
    /// when it starts itself again detached).
    #[arg(long, hide = true)]
    pub supervisor: bool,
    /// Most bytes one tenant's namespace may hold on each engine
    /// [default: 256MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_namespace: Option<ByteSize>,
    /// How long each engine keeps trying to reach the controller after
    /// losing it (`wasp engine --reconnect-timeout`) [default: 60s].
    #[arg(long, value_name = "DURATION")]
    pub reconnect_timeout: Option<Seconds>,
    /// The engines' runtime settings, passed on to each engine: their limits
    /// are the ceilings of the limits a client asks for per task, and
    /// --max-module-size also bounds what the controller accepts (a Python
    /// component is about 18MB).
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Which profile folder to use.
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Scheduler settings.
    #[command(flatten)]
    pub scheduler: SchedulerArgs,
    /// Task durability settings, passed on to the controller.
    #[command(flatten)]
    pub hub: HubArgs,
    /// Where the controller listens and where peers dial, passed on to it.
    #[command(flatten)]
    pub listen: ListenArgs,
}

/// Which launcher starts a cluster's engines, and the settings of each
/// (`wasp cluster start`; see [`crate::launcher`]).
#[derive(Debug, Args)]
pub struct LauncherArgs {
    /// What starts the engines: `local` (processes on this host, restarted
    /// when they die), `ssh` (on the --hosts, over ssh), `slurm` (a batch
    /// job, submitted with sbatch). The controller always runs here.
    #[arg(long, value_enum, default_value_t)]
    pub launcher: crate::launcher::LauncherKind,
    /// Engines per engine process (`wasp engine --slots`): they share the
    /// process's runtime, compiled modules and connection [default: local,
    /// -n spread over one process per core; ssh, one process per host;
    /// slurm, one engine per task].
    #[arg(long, value_name = "S",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(wasp_proto::msg::MAX_SLOTS)))]
    pub slots: Option<u32>,
    /// The `wasp` binary the launched engines run (ipyparallel's
    /// engine_cmd) [default: `wasp` on the remote PATH for ssh; this
    /// binary's own path for slurm, whose nodes usually share its file
    /// system].
    #[arg(long, value_name = "PATH")]
    pub remote_wasp: Option<String>,
    /// The ssh launcher's settings.
    #[command(flatten)]
    pub ssh: SshArgs,
    /// The Slurm launcher's settings.
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

/// `--launcher ssh` (ipyparallel's SSHEngineSetLauncher).
#[derive(Debug, Args)]
#[command(next_help_heading = "SSH launcher (--launcher ssh)")]
pub struct SshArgs {
    /// The hosts to start engines on, comma-separated, each
    /// `[user@]host[:N]` with N engines (default 1); IPv6 addresses in
    /// brackets (ipyparallel's `engines`).
    #[arg(long, value_name = "HOST[:N],...", value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// A file of hosts, one `[user@]host[:N]` a line; `#` starts a
    /// comment.
    #[arg(long, value_name = "FILE", conflicts_with = "hosts")]
    pub hosts_file: Option<PathBuf>,
    /// The ssh command (ipyparallel's ssh_cmd), split into words as sh
    /// would.
    #[arg(long, value_name = "COMMAND", default_value = "ssh")]
    pub ssh_cmd: String,
    /// Options for every ssh, before the host, split into words as sh
    /// would, e.g. `--ssh-args='-p 2222 -i ~/.ssh/wasp'` (ipyparallel's
    /// ssh_args; no `~` or `$` is expanded here).
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub ssh_args: Option<String>,
    /// The profile folder on the remote hosts, where the engine connection
    /// file goes (security/wasp-engine.json) and the engines' logs (log/);
    /// relative to the remote home unless absolute (ipyparallel's
    /// remote_profile_dir) [default: this profile's folder, relative to the
    /// home folder if it is in it].
    #[arg(long, value_name = "DIR")]
    pub remote_profile_dir: Option<String>,
}

/// `--launcher slurm` (ipyparallel's SlurmEngineSetLauncher): each
/// setting given becomes an `#SBATCH` directive of the built-in job
/// script.
#[derive(Debug, Args)]
#[command(next_help_heading = "Slurm launcher (--launcher slurm)")]
pub struct SlurmArgs {
    /// The partition to submit to (ipyparallel's queue) [default: the
    /// cluster's default].
    #[arg(long, value_name = "NAME")]
    pub slurm_partition: Option<String>,
    /// The account to charge.
    #[arg(long, value_name = "NAME")]
    pub slurm_account: Option<String>,
    /// The quality of service.
    #[arg(long, value_name = "NAME")]
    pub slurm_qos: Option<String>,
    /// The job's time limit, in Slurm's forms: `MINUTES`, `H:M:S`,
    /// `D-H` ... (ipyparallel's timelimit).
    #[arg(long, value_name = "TIME")]
    pub slurm_timelimit: Option<String>,
    /// CPUs for each engine (`--cpus-per-task`).
    #[arg(long, value_name = "N")]
    pub slurm_cpus_per_engine: Option<u32>,
    /// Memory per node, in Slurm's form (`--mem`, e.g. `4G`).
    #[arg(long, value_name = "SIZE")]
    pub slurm_mem: Option<String>,
    /// An extra `#SBATCH` directive, e.g. `--slurm-option=--constraint=avx2`
    /// (repeatable; ipyparallel's options).
    #[arg(long, value_name = "OPTION", allow_hyphen_values = true)]
    pub slurm_option: Vec<String>,
    /// A job script template that replaces the built-in one
    /// (ipyparallel's batch_template_file): `{n}`, `{program_and_args}`,
    /// `{directives}`, ... are filled in, `{{` and `}}` are braces.
    #[arg(long, value_name = "FILE")]
    pub slurm_template: Option<PathBuf>,
    /// The submit command (ipyparallel's submit_command), split into
    /// words as sh would; squeue and scancel are looked for beside it.
    #[arg(long, value_name = "COMMAND", default_value = "sbatch")]
    pub slurm_submit_command: String,
}

/// `wasp apply`
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The component (.wasm).
    pub module: PathBuf,
    /// The function.
    pub func: String,
    /// The arguments, one JSON value each; `@name` is each engine's own
    /// namespace value of `name` (a Reference).
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Run on these engines (`all`, `0`, `0,2`) instead of where the
    /// scheduler chooses.
    #[arg(long)]
    pub targets: Option<String>,
    /// Print the task ids (JSON lines) once the controller has committed
    /// the tasks, and return; `wasp result` fetches the results.
    #[arg(long)]
    pub no_wait: bool,
    /// Per-task limits.
    #[command(flatten)]
    pub limits: TaskLimitArgs,
    /// Which profile folder to use.
    #[command(flatten)]
    pub profile: ConnectArgs,
}

/// Limits a client asks for per task (`wasp apply`, `wasp map`); each
/// engine caps them by its own ceilings (`wasp engine --timeout
/// --max-memory`, also flags of `wasp cluster start`).
#[derive(Debug, Args)]
pub struct TaskLimitArgs {
    /// Wall time per task, all items of a chunk together, e.g. `30s`,
    /// `500ms` [default: the engine's --timeout].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<Seconds>,
    /// Linear memory per task, e.g. `64MiB` [default: the engine's
    /// --max-memory].
    #[arg(long, value_name = "BYTES")]
    pub memory: Option<ByteSize>,
    /// Run a failed task again up to this many times (ipyparallel's
    /// retries). A task whose engine dies is run again regardless.
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
    /// A retry after a time- or memory-limit failure doubles that limit
    /// (up to the engine's ceiling).
    #[arg(long)]
    pub escalate: bool,
}

/// `wasp map`
#[derive(Debug, Args)]
pub struct MapArgs {
    /// The component (.wasm).
    pub module: PathBuf,
    /// The function.
    pub func: String,
    /// File of argument lists, one JSON array per line (default: stdin).
    pub input: Option<PathBuf>,
    /// Items per task.
    #[arg(long, default_value_t = 1)]
    pub chunksize: usize,
    /// Print results as they complete instead of in input order.
    #[arg(long)]
    pub unordered: bool,
    /// Print the task ids (JSON lines, one per chunk) once the controller
    /// has committed the tasks, and return.
    #[arg(long)]
    pub no_wait: bool,
    /// Per-task limits.
    #[command(flatten)]
    pub limits: TaskLimitArgs,
    /// Which profile folder to use.
    #[command(flatten)]
    pub profile: ConnectArgs,
}

/// The languages `wasp new` and `wasp build` know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, with the guest SDK (crate wasp-guest) and cargo.
    Rust,
    /// C, with wit-bindgen's C bindings, clang and wasi-libc.
    C,
    /// Python, with componentize-py.
    Python,
    /// JavaScript, with componentize-js.
    Js,
}

impl Lang {
    /// The language's name for people.
    pub fn label(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::C => "C",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }
}

/// `wasp new`
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The project folder to create; its name is the task's name
    /// (lowercase words joined by `-`, e.g. `word-count`).
    pub path: PathBuf,
    /// The language of the task.
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// The wasp repository, whose guest-sdk/ a Rust task depends on
    /// [default: the checkout this binary was built from].
    #[arg(long, value_name = "DIR", env = "WASP_REPO")]
    pub repo: Option<PathBuf>,
}

/// `wasp build`
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The project folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Where to write the component [default: DIR/target/NAME.wasm].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// The wasp repository, where ./scripts/setup installs componentize-py
    /// (target/py-venv) and componentize-js (target/node); tools on PATH
    /// come first [default: the checkout this binary was built from].
    #[arg(long, value_name = "DIR", env = "WASP_REPO")]
    pub repo: Option<PathBuf>,
    /// Runtime settings (for loading the component built).
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// `wasp inspect`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The component (.wasm).
    pub module: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Runtime settings.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// `wasp run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The component (.wasm).
    pub module: PathBuf,
    /// The function: its bare name, or `interface#name` when ambiguous.
    pub func: String,
    /// The arguments, one JSON value each.
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Runtime settings.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Settings of the local runtime: the limits and the compile cache.
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// Largest module accepted [default: 256MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_module_size: Option<ByteSize>,
    /// Linear memory per task [default: 512MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<ByteSize>,
    /// Wall-clock time per task (instantiation and every item of a chunk
    /// together), e.g. `30s`, `500ms` [default: 300s].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<Seconds>,
    /// Time to wait for a module to compile [default: 300s]; the compiler
    /// cannot be cancelled and finishes in the background.
    #[arg(long, value_name = "DURATION")]
    pub compile_timeout: Option<Seconds>,
    /// Wasm stack per call [default: 1MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_stack: Option<ByteSize>,
    /// Arguments of one call [default: 64MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_args: Option<ByteSize>,
    /// Result of one call, and a chunk's results and output together,
    /// counted as host memory [default: 64MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_result: Option<ByteSize>,
    /// Captured stdout, stderr and logs per call, each [default: 1MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_output: Option<ByteSize>,
    /// Entries in a task's WASI resource table [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_wasi_handles: Option<usize>,
    /// Bytes one `wasi:random` call may ask for [default: 1MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_random: Option<ByteSize>,
    /// Where compiled modules are cached [default: $XDG_CACHE_HOME/wasp/modules
    /// or ~/.cache/wasp/modules].
    #[arg(long, value_name = "DIR", env = "WASP_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile without reading or writing the disk cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// Guest memory kept resident per instance slot between tasks
    /// [default: 16MiB]. A task whose memory grows past it takes page
    /// faults for the rest on every run; more makes big-argument tasks
    /// faster (an 8 MB `norm` end to end: 17.7 ms with 1MiB, 12.7 ms with
    /// 16MiB) at the cost of up to this much idle memory per slot (an
    /// engine has 16).
    #[arg(long, value_name = "SIZE")]
    pub keep_resident: Option<ByteSize>,
}
