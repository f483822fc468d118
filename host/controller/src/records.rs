//! Task records in SQLite, like ipyparallel's SQLiteDB hub backend, and the
//! source of truth of a controller that restarts: every accepted task with
//! its arguments (so it can run again, on another engine or after a
//! restart, and be replayed), how it ended, every module by hash with its
//! tenants (the bytes beside the database, in `modules/`), and the session
//! and engine numbers handed out, so ids are never reused.
//!
//! The database is written by one blocking thread fed through a bounded
//! channel. It commits whatever has queued up in one transaction (group
//! commit) and reports how many records are committed, which is when the
//! hub acknowledges submissions; under load a transaction holds many
//! records, when idle it holds one. Reads (the task database's questions)
//! go through the same channel, so they see every record sent before them.
//! When the writer falls behind the hub waits (see [`Records::catch_up`])
//! rather than queue records without bound.
//!
//! The WAL journal with `synchronous = NORMAL` survives the controller's
//! process dying at any point (kill -9); a power cut may lose the last
//! transactions (SQLite's documented trade-off; it never corrupts).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, watch};
use wasp_proto::db::{Query, Status, TaskRecord};
use wasp_proto::msg::{Arg, Items, RecordsStats, RetryPolicy, TaskLimits, TaskResult, Values};
use wasp_proto::{EngineId, ModuleHash, TaskId, Tenant, codec, value_to_json};

use crate::arg_files::{ArgFiles, IN_FILE_AT_LEAST};

/// Most records written in one transaction.
const BATCH: usize = 16384;

/// The least time between two commits while records keep coming (see
/// `Writer::run`). It delays acknowledgements (never results) by this
/// much at most.
const COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(5);

/// The records thread's nice value (see `Records::open`).
const WRITER_NICE: i32 = 10;

/// Records the channel to the writer holds: two full transactions (each
/// in flight costs a boxed spec, about 300 bytes, while it waits).
const QUEUE: usize = 2 * BATCH;

/// Read answers waiting for the hub (each a client's request in flight,
/// themselves bounded per client).
const READ_REPLIES: usize = 64;

/// The writer's counters, shared with the hub for `status` (what the
/// durable commit costs, for operators and `bench/`).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    committed: AtomicU64,
    transactions: AtomicU64,
    commit_us: AtomicU64,
    max_commit_us: AtomicU64,
}

impl Counters {
    /// A snapshot. The fields are read one by one, so a snapshot taken
    /// during a commit may count it in some and not others; that is fine
    /// for a figure.
    pub(crate) fn snapshot(&self) -> RecordsStats {
        RecordsStats {
            committed: self.committed.load(Ordering::Relaxed),
            transactions: self.transactions.load(Ordering::Relaxed),
            commit_us: self.commit_us.load(Ordering::Relaxed),
            max_commit_us: self.max_commit_us.load(Ordering::Relaxed),
        }
    }

    fn count(&self, records: u64, took_us: u64) {
        self.committed.fetch_add(records, Ordering::Relaxed);
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.commit_us.fetch_add(took_us, Ordering::Relaxed);
        self.max_commit_us.fetch_max(took_us, Ordering::Relaxed);
    }
}

/// What the records keep of a task to run it again.
#[derive(Clone, Debug)]
pub(crate) struct StoredTask {
    pub(crate) id: TaskId,
    pub(crate) tenant: Tenant,
    pub(crate) module: ModuleHash,
    pub(crate) func: String,
    pub(crate) items: Items,
    pub(crate) limits: TaskLimits,
    pub(crate) retry: RetryPolicy,
    pub(crate) targets: Option<Vec<EngineId>>,
    pub(crate) submitted_us: u64,
}

/// The parts of a task's spec kept as one blob.
#[derive(serde::Serialize, serde::Deserialize)]
struct SpecBlob {
    limits: TaskLimits,
    retry: RetryPolicy,
    targets: Option<Vec<EngineId>>,
}

/// One change to the records.
#[derive(Debug)]
pub(crate) enum Record {
    /// A task was accepted.
    Submitted(Box<StoredTask>),
    /// A task ended.
    Finished(Box<TaskResult>),
    /// A module was stored for a tenant.
    Module {
        hash: ModuleHash,
        tenant: Tenant,
        bytes: Arc<Vec<u8>>,
    },
    /// A client session began.
    Session { session: u32, tenant: Tenant },
    /// An engine joined.
    Engine { engine: EngineId, name: String },
    /// A tenant's namespace operation moved `bytes` of values (pushed to
    /// engines, or pulled from them), for its usage.
    NamespaceBytes { tenant: Tenant, bytes: u64 },
}

/// What a lookup reads of a task.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Want {
    Status,
    Result,
    Spec,
}

/// A question to the records, scoped to a tenant.
#[derive(Debug)]
pub(crate) enum Read {
    /// These tasks, in order.
    Lookup {
        tenant: Tenant,
        ids: Vec<TaskId>,
        want: Want,
    },
    /// The records a query matches.
    Query { tenant: Tenant, query: Query },
    /// Delete these finished tasks (all the tenant's if empty).
    Purge { tenant: Tenant, ids: Vec<TaskId> },
    /// Every tenant's usage as the records hold it (an admin's `wasp
    /// tenant list`).
    Usage,
    /// One task's whole record with its arguments, for the dashboard: of
    /// `tenant`, or of any tenant when `None` (an admin's view).
    Task { tenant: Option<Tenant>, id: TaskId },
}

/// A task as the dashboard shows it when clicked: its whole record, and
/// its arguments as JSON text.
#[derive(Debug)]
pub(crate) struct ShownTask {
    pub(crate) record: TaskRecord,
    /// `None` when the records no longer hold them.
    pub(crate) args: Option<String>,
    /// The most linear memory its instances held at once; `None` until it
    /// ends.
    pub(crate) peak_memory_bytes: Option<u64>,
}

/// Argument bytes the dashboard decodes to show; larger ones are named by
/// their size (a page is no place for a 100 MB array).
const SHOWN_ARGS_AT_MOST: usize = 256 * 1024;

/// One tenant's usage in the records kept (tasks culled past
/// `--max-records` no longer count).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RecordedUsage {
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    /// Engine time of its finished tasks, by the engines' clocks.
    pub(crate) engine_us: u64,
    /// Argument bytes it sent (as stored).
    pub(crate) argument_bytes: u64,
    /// Result bytes it was sent (as stored).
    pub(crate) result_bytes: u64,
    /// Bytes of the modules it stored.
    pub(crate) module_bytes: u64,
    /// Bytes of values its namespace operations moved.
    pub(crate) namespace_bytes: u64,
}

/// One task a lookup found.
#[derive(Debug)]
pub(crate) struct Found {
    /// Unfinished tasks read as [`Status::Queued`].
    pub(crate) status: Status,
    /// Its result, if finished and asked for.
    pub(crate) result: Option<TaskResult>,
    /// Its spec, if asked for and kept.
    pub(crate) spec: Option<StoredTask>,
}

/// The answer to a [`Read`].
#[derive(Debug)]
pub(crate) enum ReadReply {
    /// One entry per id, in order (`None`: not the tenant's, or absent).
    Lookup(Vec<Option<Found>>),
    /// The records a query matched.
    Records(Vec<TaskRecord>),
    /// How many were deleted.
    Purged(u64),
    /// Every tenant's usage, by name.
    Usage(std::collections::HashMap<Tenant, RecordedUsage>),
    /// The task, if the viewer may see it.
    Task(Option<Box<ShownTask>>),
    /// SQLite failed.
    Failed(String),
}

enum Job {
    Write(Record),
    Read(u64, Read),
}

/// What an earlier run left: loaded when the records are opened.
pub(crate) struct Loaded {
    /// The first session number not used before.
    pub(crate) next_session: u32,
    /// The first engine id not used before.
    pub(crate) next_engine: u32,
    /// Tasks that had not ended, oldest first.
    pub(crate) unfinished: Vec<StoredTask>,
    /// Modules and the tenants that stored them, with their bytes.
    pub(crate) modules: Vec<(ModuleHash, Tenant, Arc<Vec<u8>>)>,
}

/// The hub's side of the records thread.
pub(crate) struct Records {
    /// Bounded by [`QUEUE`] jobs; what does not fit waits in `backlog`.
    tx: mpsc::Sender<Job>,
    /// Jobs the channel had no room for. Bounded by what one batch of
    /// hub events produces: the hub calls [`Records::catch_up`], which
    /// empties it, before it takes more events.
    backlog: VecDeque<Job>,
    /// How many records are committed.
    pub(crate) committed: watch::Receiver<u64>,
    /// What the commits have cost so far.
    pub(crate) counters: Arc<Counters>,
    /// Answers to reads, by ticket.
    pub(crate) replies: mpsc::Receiver<(u64, ReadReply)>,
    /// Set when the database failed: the controller cannot keep its
    /// promises without it.
    pub(crate) failed: watch::Receiver<Option<String>>,
}

/// Where a module's bytes are kept.
fn module_path(dir: &Path, hash: &ModuleHash) -> PathBuf {
    dir.join(format!("{hash}.wasm"))
}

impl Records {
    /// Opens (creating if needed) the database, reads what an earlier run
    /// left, and starts the writer. `max_records` bounds the tasks kept:
    /// past it, the oldest finished ones are deleted.
    pub(crate) fn open(
        path: &Path,
        modules_dir: &Path,
        args_dir: &Path,
        max_records: u64,
    ) -> rusqlite::Result<(Self, Loaded)> {
        let conn = Connection::open(path)?;
        let schema = create_schema(&conn)?;
        let files = ArgFiles::new(args_dir);
        let loaded = load(&conn, modules_dir, &files)?;
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM tasks", [], |r| r.get(0))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let (committed_tx, committed) = watch::channel(0);
        let (failed_tx, failed) = watch::channel(None);
        let (replies_tx, replies) = mpsc::channel(READ_REPLIES);
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            counters: Arc::clone(&counters),
            conn,
            schema,
            modules_dir: modules_dir.to_path_buf(),
            files,
            max_records,
            rows: u64::try_from(rows).unwrap_or(0),
            committed: 0,
            committed_tx,
            replies_tx,
        };
        std::thread::Builder::new()
            .name("wasp-records".into())
            .spawn(move || {
                // The writer is batch work beside the latency-bound path
                // (client, hub, engines) on the same cores: at nice 10 it
                // yields to them and takes idle time, and group commit
                // turns any delay into bigger, cheaper transactions. The
                // bounded channel stops the hub if it falls behind for
                // good. Not fatal if refused.
                let tid = rustix::thread::gettid();
                if let Err(err) = rustix::process::setpriority_process(Some(tid), WRITER_NICE) {
                    tracing::debug!(cause = %err, "the records thread keeps its priority");
                }
                if let Err(err) = writer.run(rx) {
                    tracing::error!(cause = %err, "task records could not be written");
                    let _ = failed_tx.send(Some(err.to_string()));
                }
            })
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok((
            Self {
                tx,
                backlog: VecDeque::new(),
                committed,
                counters,
                replies,
                failed,
            },
            loaded,
        ))
    }

    /// Queues a change; the writer commits it soon.
    pub(crate) fn send(&mut self, record: Record) {
        self.push(Job::Write(record));
    }

    /// Queues a read, answered on [`Records::replies`] with `ticket`.
    pub(crate) fn read(&mut self, ticket: u64, read: Read) {
        self.push(Job::Read(ticket, read));
    }

    fn push(&mut self, job: Job) {
        if !self.backlog.is_empty() {
            self.backlog.push_back(job);
            return;
        }
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(job)) => self.backlog.push_back(job),
            // The writer stopped: `failed` says why, and the hub stops.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Hands the backlog to the writer, waiting while its channel is full:
    /// a controller whose disk is slower than its tasks slows down rather
    /// than holding ever more records in memory.
    pub(crate) async fn catch_up(&mut self) {
        while let Some(job) = self.backlog.pop_front() {
            if self.tx.send(job).await.is_err() {
                self.backlog.clear();
            }
        }
    }
}

/// What the schema of an existing database asks of the writer.
#[derive(Clone, Copy, Debug, Default)]
struct Schema {
    /// Databases written before the commit-cost work keep a `msg_id` text
    /// column (`NOT NULL`); newer ones derive it from `id` when read.
    msg_id: bool,
}

/// Rows are written to be cheap (the commit is on every task's path):
/// the module hash as 32 bytes, not 64 hex digits; no `msg_id` text (the
/// `s3-17` form is `id`'s two halves); no index beside the primary key
/// (db_query scans a tenant's rows in id order, and the table is bounded
/// by `--max-records`); the result kept once, as sent (`outcome`), and
/// turned into JSON only when a query asks for it.
fn create_schema(conn: &Connection) -> rusqlite::Result<Schema> {
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS tasks (
             id INTEGER PRIMARY KEY,
             tenant TEXT NOT NULL,
             module BLOB NOT NULL,
             func TEXT NOT NULL,
             items INTEGER NOT NULL,
             submitted_us INTEGER NOT NULL,
             engine INTEGER,
             started_us INTEGER,
             completed_us INTEGER,
             status TEXT NOT NULL,
             result TEXT,
             error TEXT,
             stdout TEXT,
             stderr TEXT
         );
         DROP INDEX IF EXISTS tasks_by_tenant;
         CREATE TABLE IF NOT EXISTS sessions (
             session INTEGER PRIMARY KEY,
             tenant TEXT NOT NULL
         );
         CREATE TABLE IF NOT EXISTS engines (
             id INTEGER PRIMARY KEY,
             name TEXT NOT NULL
         );
         CREATE TABLE IF NOT EXISTS modules (
             hash TEXT NOT NULL,
             tenant TEXT NOT NULL,
             size INTEGER NOT NULL,
             PRIMARY KEY (hash, tenant)
         );
         CREATE TABLE IF NOT EXISTS usage_totals (
             tenant TEXT PRIMARY KEY,
             succeeded INTEGER NOT NULL DEFAULT 0,
             failed INTEGER NOT NULL DEFAULT 0,
             engine_us INTEGER NOT NULL DEFAULT 0,
             argument_bytes INTEGER NOT NULL DEFAULT 0,
             result_bytes INTEGER NOT NULL DEFAULT 0,
             namespace_bytes INTEGER NOT NULL DEFAULT 0
         );",
    )?;
    // Checkpoints copy the WAL into the database; the hot pages (the
    // right edge of the table) are rewritten by every transaction, so a
    // longer WAL copies each of them once for many transactions. 16,384
    // pages is 64 MiB of WAL at most, truncated back after a checkpoint.
    conn.execute_batch(&format!(
        "PRAGMA wal_autocheckpoint = {WAL_PAGES};
         PRAGMA journal_size_limit = {};",
        WAL_PAGES * 4096
    ))?;
    // Columns added by issue 11, for databases written before it: the
    // arguments (to run a task again), the rest of its spec, and its
    // outcome as sent (the result, exactly). And of issue 13: the size of
    // the arguments' file, for arguments kept in one ([`ARGS`]).
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('tasks')")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for (name, kind) in [
        ("args", "BLOB"),
        ("spec", "BLOB"),
        ("outcome", "BLOB"),
        ("args_file", "INTEGER"),
    ] {
        if !columns.iter().any(|c| c == name) {
            conn.execute_batch(&format!("ALTER TABLE tasks ADD COLUMN {name} {kind}"))?;
        }
    }
    Ok(Schema {
        msg_id: columns.iter().any(|c| c == "msg_id"),
    })
}

/// A task's recorded arguments, as two columns of its `tasks` row: the
/// bytes (`args`), or, for arguments of [`IN_FILE_AT_LEAST`] or more, the
/// size of the file they are kept in instead (`args_file`, see
/// [`ArgFiles`]; `args` is then NULL). [`args_of`] reads them.
///
/// Why not big ones in the row: SQLite writes a row whole whenever any of
/// its columns changes, so a task's end (its status, times and outcome)
/// read and wrote its arguments again, and the checkpoint after: for an
/// 8 MB argument, 16 MB of I/O and tens of milliseconds of the records
/// thread's CPU beside the next task's transfer, on every call. Small ones
/// stay in the row: a second table would cost every task a second insert
/// on the commit path to save a few pages at its end.
const ARGS: &str = "args, args_file";

/// The arguments of a row selected with [`ARGS`] at column `at`: from the
/// row, or read from their file.
fn args_of(
    row: &rusqlite::Row<'_>,
    at: usize,
    id: TaskId,
    files: &ArgFiles,
) -> rusqlite::Result<Option<Vec<u8>>> {
    if row.get::<_, Option<i64>>(at + 1)?.is_some() {
        return files
            .read(id)
            .map(Some)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)));
    }
    row.get(at)
}

/// Task `id`'s recorded arguments in the task database `conn` of the
/// controller whose profile folder is `profile_dir`, as `wasp replay`
/// reads them; `None` if the task is not recorded, or was recorded without
/// them (before issue 11). A database no controller has opened since issue
/// 13 has no `args_file` column: its arguments are all in its rows.
pub fn recorded_args(
    conn: &Connection,
    profile_dir: &Path,
    id: TaskId,
) -> rusqlite::Result<Option<Vec<u8>>> {
    let files_kept: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('tasks') WHERE name = 'args_file'",
        [],
        |row| row.get(0),
    )?;
    let sql = if files_kept {
        format!("SELECT {ARGS} FROM tasks WHERE id = ?1")
    } else {
        "SELECT args, NULL FROM tasks WHERE id = ?1".to_owned()
    };
    let files = ArgFiles::new(&ArgFiles::dir_in(profile_dir));
    conn.query_row(&sql, params![id.0 as i64], |row| {
        args_of(row, 0, id, &files)
    })
    .optional()
    .map(Option::flatten)
}

/// WAL pages between automatic checkpoints (see [`create_schema`]).
const WAL_PAGES: u64 = 16_384;

/// A module hash as a row holds it: 32 bytes, or 64 hex digits in rows
/// written before the commit-cost work.
fn module_of(value: rusqlite::types::ValueRef<'_>) -> Option<ModuleHash> {
    match value {
        rusqlite::types::ValueRef::Blob(bytes) => bytes.try_into().ok().map(ModuleHash),
        rusqlite::types::ValueRef::Text(text) => std::str::from_utf8(text).ok()?.parse().ok(),
        _ => None,
    }
}

/// The statuses a row may hold for a task not yet ended (`pending`: before
/// issue 11).
const UNFINISHED: &str = "('queued', 'pending')";

/// The statuses of ended tasks (`ok`, `error`: before issue 11).
const FINISHED: &str = "('succeeded', 'failed', 'ok', 'error')";

fn status_of(text: &str) -> Status {
    match text {
        "succeeded" | "ok" => Status::Succeeded,
        "failed" | "error" => Status::Failed,
        "running" => Status::Running,
        _ => Status::Queued,
    }
}

fn load(conn: &Connection, modules_dir: &Path, files: &ArgFiles) -> rusqlite::Result<Loaded> {
    let max_session: i64 = conn.query_row(
        "SELECT MAX(COALESCE((SELECT MAX(session) FROM sessions), 0),
                    COALESCE((SELECT MAX(id >> 32) FROM tasks), 0))",
        [],
        |r| r.get(0),
    )?;
    let max_engine: Option<i64> =
        conn.query_row("SELECT MAX(id) FROM engines", [], |r| r.get(0))?;
    let next_session = u32::try_from(max_session.saturating_add(1)).unwrap_or(u32::MAX);
    let next_engine = max_engine.map_or(0, |m| {
        u32::try_from(m.saturating_add(1)).unwrap_or(u32::MAX)
    });

    // Tasks recorded without their arguments (before issue 11) cannot run
    // again: they end failed, saying so.
    conn.execute(
        &format!(
            "UPDATE tasks SET status = 'failed',
                 error = 'the controller stopped before the task ended, and its arguments were not recorded'
             WHERE status IN {UNFINISHED}
                 AND (spec IS NULL OR (args IS NULL AND args_file IS NULL))"
        ),
        [],
    )?;
    let mut unfinished = Vec::new();
    let mut select = conn.prepare(&format!(
        "SELECT id, tenant, module, func, items, submitted_us, {ARGS}, spec FROM tasks
         WHERE status IN {UNFINISHED} ORDER BY id"
    ))?;
    let mut rows = select.query([])?;
    let mut lost = Vec::new();
    while let Some(row) = rows.next()? {
        let id = TaskId(row.get::<_, i64>(0)? as u64);
        let args = match args_of(row, 6, id, files) {
            Ok(args) => args,
            Err(err) => {
                lost.push((id, err.to_string()));
                continue;
            }
        };
        match args.and_then(|args| stored_task(row, id, 1, args)) {
            Some(task) => unfinished.push(task),
            None => {
                tracing::warn!(task = %id, "a recorded task does not decode; it is left as it is")
            }
        }
    }
    drop(rows);
    drop(select);
    // Arguments in a file a power cut lost: the task cannot run again.
    for (id, cause) in lost {
        conn.execute(
            "UPDATE tasks SET status = 'failed', error = ?2 WHERE id = ?1",
            params![
                id.0 as i64,
                format!(
                    "the controller stopped before the task ended, and its arguments are lost: {cause}"
                )
            ],
        )?;
    }
    // Files no row names: a controller killed between a file and its row.
    let mut select = conn.prepare("SELECT id FROM tasks WHERE args_file IS NOT NULL")?;
    let in_files = select
        .query_map([], |row| Ok(TaskId(row.get::<_, i64>(0)? as u64)))?
        .collect::<rusqlite::Result<std::collections::HashSet<_>>>()?;
    drop(select);
    let swept = files.sweep(&in_files);
    if swept > 0 {
        tracing::info!(swept, "removed argument files no task record names");
    }

    let mut modules = Vec::new();
    let mut select = conn.prepare("SELECT hash, tenant FROM modules")?;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        let hash: String = row.get(0)?;
        let tenant: String = row.get(1)?;
        let Ok(hash) = hash.parse::<ModuleHash>() else {
            tracing::warn!(%hash, "a recorded module hash does not parse; skipped");
            continue;
        };
        let path = module_path(modules_dir, &hash);
        match std::fs::read(&path) {
            Ok(bytes) if ModuleHash::of(&bytes) == hash => {
                modules.push((hash, Tenant(tenant), Arc::new(bytes)));
            }
            Ok(_) => {
                tracing::warn!(path = %path.display(), "a stored module does not match its hash; skipped")
            }
            Err(err) => {
                tracing::warn!(path = %path.display(), cause = %err, "a stored module could not be read; skipped")
            }
        }
    }
    Ok(Loaded {
        next_session,
        next_engine,
        unfinished,
        modules,
    })
}

/// A task's spec, with its arguments `args`, from a row whose columns
/// from `first` on are `tenant, module, func, items, submitted_us`, then
/// [`ARGS`]' two, then `spec`.
fn stored_task(
    row: &rusqlite::Row<'_>,
    id: TaskId,
    first: usize,
    args: Vec<u8>,
) -> Option<StoredTask> {
    let tenant: String = row.get(first).ok()?;
    let module = module_of(row.get_ref(first + 1).ok()?)?;
    let func: String = row.get(first + 2).ok()?;
    let count: i64 = row.get(first + 3).ok()?;
    let submitted_us: i64 = row.get(first + 4).ok()?;
    let spec: Vec<u8> = row.get(first + 7).ok()?;
    let spec: SpecBlob = codec::decode(&spec).ok()?;
    Some(StoredTask {
        id,
        tenant: Tenant(tenant),
        module,
        func,
        items: Items::from_parts(u32::try_from(count).ok()?, args),
        limits: spec.limits,
        retry: spec.retry,
        targets: spec.targets,
        submitted_us: u64::try_from(submitted_us).ok()?,
    })
}

/// The records thread's state.
struct Writer {
    conn: Connection,
    schema: Schema,
    modules_dir: PathBuf,
    /// Big arguments' files.
    files: ArgFiles,
    max_records: u64,
    /// Rows in `tasks`.
    rows: u64,
    /// Records committed so far.
    committed: u64,
    committed_tx: watch::Sender<u64>,
    counters: Arc<Counters>,
    replies_tx: mpsc::Sender<(u64, ReadReply)>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Job>) -> rusqlite::Result<()> {
        let mut batch = Vec::with_capacity(BATCH);
        let mut last_commit: Option<Instant> = None;
        while rx.blocking_recv_many(&mut batch, BATCH) > 0 {
            // Group commit: while records keep coming, commit at most
            // once per COMMIT_INTERVAL, taking in what arrives meanwhile.
            // A transaction's cost is mostly per page, not per row, and a
            // short task submitted and ended in one interval is written
            // once. The first record after a quiet spell is committed at
            // once.
            if let Some(due) = last_commit.map(|at| at + COMMIT_INTERVAL) {
                let now = Instant::now();
                if now < due && batch.len() < BATCH {
                    std::thread::sleep(due - now);
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                }
            }
            // Writes up to each read are one transaction, committed before
            // the read runs.
            let mut writes = Vec::new();
            for job in batch.drain(..) {
                match job {
                    Job::Write(record) => writes.push(record),
                    Job::Read(ticket, read) => {
                        self.commit(&mut writes)?;
                        let reply = self
                            .read(read)
                            .unwrap_or_else(|err| ReadReply::Failed(err.to_string()));
                        if self.replies_tx.blocking_send((ticket, reply)).is_err() {
                            return Ok(());
                        }
                    }
                }
            }
            if !writes.is_empty() {
                self.commit(&mut writes)?;
                last_commit = Some(Instant::now());
            }
        }
        Ok(())
    }

    /// Writes `writes` in one transaction, culls, and reports the commit.
    fn commit(&mut self, writes: &mut Vec<Record>) -> rusqlite::Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        store_files(&self.modules_dir, &self.files, writes)?;
        let inserted = write_batch(&mut self.conn, self.schema, writes)?;
        self.rows += inserted;
        if self.rows > self.max_records {
            self.cull()?;
        }
        self.committed += writes.len() as u64;
        let took_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.counters.count(writes.len() as u64, took_us);
        writes.clear();
        let _ = self.committed_tx.send(self.committed);
        Ok(())
    }

    /// Deletes the oldest finished tasks past `max_records` (ipyparallel's
    /// DictDB `record_limit`); unfinished ones are never culled.
    ///
    /// Their usage is added to `usage_totals` in the same transaction, so
    /// a tenant's usage keeps every task it ever ran.
    fn cull(&mut self) -> rusqlite::Result<()> {
        let excess = self.rows - self.max_records;
        let excess = i64::try_from(excess).unwrap_or(i64::MAX);
        let tx = self.conn.transaction()?;
        start_retiring(&tx)?;
        tx.execute(
            &format!(
                "INSERT INTO retiring SELECT id FROM tasks WHERE status IN {FINISHED}
                 ORDER BY completed_us, id LIMIT ?1"
            ),
            params![excess],
        )?;
        let (deleted, in_files) = retire(&tx)?;
        tx.commit()?;
        self.files.remove(&in_files);
        self.rows = self.rows.saturating_sub(deleted as u64);
        if deleted > 0 {
            tracing::info!(
                deleted,
                max_records = self.max_records,
                "culled the oldest finished task records"
            );
        }
        Ok(())
    }

    fn read(&mut self, read: Read) -> rusqlite::Result<ReadReply> {
        match read {
            Read::Lookup { tenant, ids, want } => {
                let mut select = self.conn.prepare_cached(&format!(
                    "SELECT status, outcome, id, tenant, module, func, items, submitted_us, {ARGS}, spec
                     FROM tasks WHERE id = ?1 AND tenant = ?2"
                ))?;
                let mut found = Vec::with_capacity(ids.len());
                for id in ids {
                    let row = select
                        .query_row(params![id.0 as i64, tenant.0], |row| {
                            let status = status_of(&row.get::<_, String>(0)?);
                            let result = match want {
                                Want::Result => row
                                    .get::<_, Option<Vec<u8>>>(1)?
                                    .and_then(|blob| codec::decode::<TaskResult>(&blob).ok()),
                                _ => None,
                            };
                            let spec = match want {
                                Want::Spec => args_of(row, 8, id, &self.files)?
                                    .and_then(|args| stored_task(row, id, 3, args)),
                                _ => None,
                            };
                            Ok(Found {
                                status,
                                result,
                                spec,
                            })
                        })
                        .optional()?;
                    found.push(row);
                }
                Ok(ReadReply::Lookup(found))
            }
            Read::Query { tenant, query } => {
                query_records(&self.conn, &tenant, &query).map(ReadReply::Records)
            }
            Read::Purge { tenant, ids } => {
                // A purge keeps the tenant's usage (`retire`): purging its
                // records does not erase what it used.
                let tx = self.conn.transaction()?;
                start_retiring(&tx)?;
                if ids.is_empty() {
                    tx.execute(
                        &format!(
                            "INSERT INTO retiring SELECT id FROM tasks
                             WHERE tenant = ?1 AND status IN {FINISHED}"
                        ),
                        params![tenant.0],
                    )?;
                } else {
                    let mut select = tx.prepare_cached(&format!(
                        "INSERT OR IGNORE INTO retiring SELECT id FROM tasks
                         WHERE id = ?1 AND tenant = ?2 AND status IN {FINISHED}"
                    ))?;
                    for id in ids {
                        select.execute(params![id.0 as i64, tenant.0])?;
                    }
                }
                let (deleted, in_files) = retire(&tx)?;
                tx.commit()?;
                self.files.remove(&in_files);
                self.rows = self.rows.saturating_sub(deleted as u64);
                Ok(ReadReply::Purged(deleted as u64))
            }
            Read::Usage => usage(&self.conn).map(ReadReply::Usage),
            Read::Task { tenant, id } => self.shown_task(tenant.as_ref(), id).map(ReadReply::Task),
        }
    }

    /// Task `id`'s record and arguments, if it is `tenant`'s (any
    /// tenant's when `None`).
    fn shown_task(
        &self,
        tenant: Option<&Tenant>,
        id: TaskId,
    ) -> rusqlite::Result<Option<Box<ShownTask>>> {
        let mut select = self.conn.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS}, tenant, {ARGS} FROM tasks WHERE id = ?1"
        ))?;
        let mut rows = select.query(params![id.0 as i64])?;
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        let owner: String = row.get(14)?;
        if tenant.is_some_and(|t| t.0 != owner) {
            return Ok(None);
        }
        // The outcome is decoded once, for both its result and its peak
        // memory.
        let mut record = record_of(row, |key| key != "result")?;
        let outcome = row
            .get::<_, Option<Vec<u8>>>(13)?
            .and_then(|outcome| codec::decode::<TaskResult>(&outcome).ok());
        let peak_memory_bytes = outcome.as_ref().map(|r| r.meta.peak_memory_bytes);
        record.result = match outcome {
            Some(result) => values_json(result),
            // Rows written before issue 11 hold only the JSON.
            None => row.get(10)?,
        };
        // Arguments kept in a file are measured before they are read: a
        // 100 MB array is named by its size, not loaded to be refused.
        let in_file = row.get::<_, Option<i64>>(16)?.is_some();
        let file_len = in_file
            .then(|| std::fs::metadata(self.files.path(id)).map(|m| m.len()))
            .and_then(Result::ok);
        let args = match file_len {
            Some(len) if len > SHOWN_ARGS_AT_MOST as u64 => Some(too_large_to_show(len)),
            _ => args_of(row, 15, id, &self.files)?
                .map(|bytes| args_json(record.items.unwrap_or(1), bytes)),
        };
        Ok(Some(Box::new(ShownTask {
            record,
            args,
            peak_memory_bytes,
        })))
    }
}

/// What the dashboard shows of arguments of `len` bytes, more than it
/// decodes.
fn too_large_to_show(len: u64) -> String {
    format!(
        "({len} bytes of arguments: more than the {SHOWN_ARGS_AT_MOST} bytes the dashboard shows)"
    )
}

/// A task's recorded arguments as JSON text: the argument list of a task
/// of one item, the list of them for a chunk; a reference to an engine's
/// value shows as `{"ref": NAME}`.
fn args_json(count: u32, bytes: Vec<u8>) -> String {
    if bytes.len() > SHOWN_ARGS_AT_MOST {
        return too_large_to_show(bytes.len() as u64);
    }
    let lists = match Items::from_parts(count, bytes).decode() {
        Ok(lists) => lists,
        Err(err) => return format!("(the arguments cannot be decoded: {err})"),
    };
    let json = |args: &Vec<Arg>| -> serde_json::Value {
        args.iter()
            .map(|arg| match arg {
                Arg::Value(value) => value_to_json(value),
                Arg::Ref(name) => serde_json::json!({ "ref": name }),
            })
            .collect()
    };
    match lists.as_slice() {
        [one] => json(one).to_string(),
        many => serde_json::Value::from_iter(many.iter().map(json)).to_string(),
    }
}

/// Whether `task`'s arguments are kept as a file rather than in its row
/// ([`ARGS`]).
fn args_in_file(task: &StoredTask) -> bool {
    task.items.as_bytes().len() >= IN_FILE_AT_LEAST
}

/// Writes the files that rows of `writes` name, before the rows are
/// committed: a module's bytes, and a task's arguments of
/// [`IN_FILE_AT_LEAST`] or more ([`ARGS`]). A row is committed only once
/// its file is on disk.
fn store_files(modules_dir: &Path, files: &ArgFiles, writes: &[Record]) -> rusqlite::Result<()> {
    for record in writes {
        let stored = match record {
            Record::Module { hash, bytes, .. } => store_module_file(modules_dir, hash, bytes),
            Record::Submitted(task) if args_in_file(task) => {
                files.write(task.id, task.items.as_bytes())
            }
            _ => Ok(()),
        };
        stored.map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    }
    Ok(())
}

/// Writes a module's bytes under its hash, whole or not at all (a temporary
/// file renamed into place).
fn store_module_file(dir: &Path, hash: &ModuleHash, bytes: &[u8]) -> std::io::Result<()> {
    let path = module_path(dir, hash);
    if path.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{hash}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &path)
}

/// `db_query`: the tenant's records matching `query`, oldest first.
fn query_records(
    conn: &Connection,
    tenant: &Tenant,
    query: &Query,
) -> rusqlite::Result<Vec<TaskRecord>> {
    let mut sql = format!("SELECT {RECORD_COLUMNS} FROM tasks WHERE tenant = ?1");
    let mut args: Vec<rusqlite::types::Value> = vec![tenant.0.clone().into()];
    // `clause` with its `?` numbered for `value`.
    let mut bind = |sql: &mut String, clause: &str, value: rusqlite::types::Value| {
        args.push(value);
        let number = format!("?{}", args.len());
        sql.push_str(" AND ");
        sql.push_str(&clause.replace('?', &number));
    };
    if !query.status.is_empty() {
        let mut names: Vec<&str> = Vec::new();
        for status in &query.status {
            match status {
                Status::Queued | Status::Running => names.extend(["queued", "pending"]),
                Status::Succeeded => names.extend(["succeeded", "ok"]),
                Status::Failed => names.extend(["failed", "error"]),
            }
        }
        names.sort_unstable();
        names.dedup();
        let list: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
        sql.push_str(&format!(" AND status IN ({})", list.join(", ")));
    }
    if let Some(module) = &query.module {
        // Either form (see `module_of`).
        bind(
            &mut sql,
            "module IN (?, lower(hex(?)))",
            module.0.to_vec().into(),
        );
    }
    if let Some(func) = &query.func {
        bind(&mut sql, "func = ?", func.clone().into());
    }
    if let Some(engine) = query.engine {
        bind(&mut sql, "engine = ?", i64::from(engine.0).into());
    }
    let times = [
        ("submitted_us >= ?", query.submitted_after_us),
        ("submitted_us < ?", query.submitted_before_us),
        ("completed_us >= ?", query.completed_after_us),
        ("completed_us < ?", query.completed_before_us),
    ];
    for (clause, value) in times {
        if let Some(us) = value {
            bind(
                &mut sql,
                clause,
                i64::try_from(us).unwrap_or(i64::MAX).into(),
            );
        }
    }
    let limit = query.limit.map_or(wasp_proto::db::MAX_IDS, |l| {
        (l as usize).min(wasp_proto::db::MAX_IDS)
    });
    sql.push_str(&format!(" ORDER BY id LIMIT {limit}"));

    let keys: Vec<&str> = if query.keys.is_empty() {
        TaskRecord::DEFAULT_KEYS.to_vec()
    } else {
        query.keys.iter().map(String::as_str).collect()
    };
    let want = |key: &str| keys.contains(&key);
    let mut select = conn.prepare(&sql)?;
    let mut rows = select.query(rusqlite::params_from_iter(args))?;
    let mut records = Vec::new();
    while let Some(row) = rows.next()? {
        let record = record_of(row, want)?;
        records.push(record);
    }
    Ok(records)
}

/// The columns of a task's record, in the order [`record_of`] reads them.
const RECORD_COLUMNS: &str = "id, status, module, func, items, engine, submitted_us, started_us,
     completed_us, error, result, stdout, stderr, outcome";

/// The record of a row selected with [`RECORD_COLUMNS`] first, with the
/// fields `want` names.
fn record_of(row: &rusqlite::Row<'_>, want: impl Fn(&str) -> bool) -> rusqlite::Result<TaskRecord> {
    let us = |i: usize| -> rusqlite::Result<Option<u64>> {
        Ok(row
            .get::<_, Option<i64>>(i)?
            .and_then(|v| u64::try_from(v).ok()))
    };
    let mut record = TaskRecord {
        id: TaskId(row.get::<_, i64>(0)? as u64),
        ..TaskRecord::default()
    };
    if want("status") {
        record.status = Some(status_of(&row.get::<_, String>(1)?));
    }
    if want("module") {
        record.module = module_of(row.get_ref(2)?);
    }
    if want("func") {
        record.func = Some(row.get(3)?);
    }
    if want("items") {
        record.items = u32::try_from(row.get::<_, i64>(4)?).ok();
    }
    if want("engine") {
        record.engine = row
            .get::<_, Option<i64>>(5)?
            .and_then(|e| u32::try_from(e).ok())
            .map(EngineId);
    }
    if want("submitted") {
        record.submitted_us = us(6)?;
    }
    if want("started") {
        record.started_us = us(7)?;
    }
    if want("completed") {
        record.completed_us = us(8)?;
    }
    if want("error") {
        record.error = row.get(9)?;
    }
    if want("result") {
        record.result = match row.get::<_, Option<Vec<u8>>>(13)? {
            Some(outcome) => result_json(&outcome),
            // Rows written before issue 11 hold only the JSON.
            None => row.get(10)?,
        };
    }
    if want("stdout") {
        record.stdout = row.get(11)?;
    }
    if want("stderr") {
        record.stderr = row.get(12)?;
    }
    Ok(record)
}

/// Empties the temporary table of the task rows about to be deleted.
fn start_retiring(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS retiring (id INTEGER PRIMARY KEY);
         DELETE FROM retiring;",
    )
}

/// Deletes the task rows listed in `retiring`, adding their usage to
/// `usage_totals` first, so that a tenant's usage keeps every task it ran
/// whatever is culled or purged. Returns how many rows went, and the tasks
/// whose argument files are to be removed once the transaction commits.
fn retire(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<(usize, Vec<TaskId>)> {
    tx.execute(
        &format!(
            "INSERT INTO usage_totals
                 (tenant, succeeded, failed, engine_us, argument_bytes, result_bytes)
             SELECT {USAGE_SUMS}
             FROM tasks WHERE id IN (SELECT id FROM retiring) GROUP BY tenant
             ON CONFLICT (tenant) DO UPDATE SET
                 succeeded = succeeded + excluded.succeeded,
                 failed = failed + excluded.failed,
                 engine_us = engine_us + excluded.engine_us,
                 argument_bytes = argument_bytes + excluded.argument_bytes,
                 result_bytes = result_bytes + excluded.result_bytes"
        ),
        [],
    )?;
    let in_files = tx
        .prepare(
            "SELECT id FROM tasks WHERE args_file IS NOT NULL AND id IN (SELECT id FROM retiring)",
        )?
        .query_map([], |row| Ok(TaskId(row.get::<_, i64>(0)? as u64)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let deleted = tx.execute(
        "DELETE FROM tasks WHERE id IN (SELECT id FROM retiring)",
        [],
    )?;
    tx.execute("DELETE FROM retiring", [])?;
    Ok((deleted, in_files))
}

/// A tenant's usage summed over task rows, as `tenant, succeeded, failed,
/// engine_us, argument_bytes, result_bytes` (with a `GROUP BY tenant`).
const USAGE_SUMS: &str = "tenant,
    SUM(status IN ('succeeded', 'ok')),
    SUM(status IN ('failed', 'error')),
    SUM(CASE WHEN status IN ('succeeded', 'failed', 'ok', 'error')
                  AND completed_us > started_us
             THEN completed_us - started_us ELSE 0 END),
    SUM(COALESCE(args_file, LENGTH(args), 0)),
    SUM(COALESCE(LENGTH(outcome), 0))";

/// Every tenant's usage in the records: one scan of the tasks table
/// (bounded by `--max-records`) and of the modules table, for an admin's
/// occasional look, plus
/// the totals of the rows culled or purged (`usage_totals`).
fn usage(conn: &Connection) -> rusqlite::Result<std::collections::HashMap<Tenant, RecordedUsage>> {
    let mut usage = std::collections::HashMap::<Tenant, RecordedUsage>::new();
    let count = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut tasks = conn.prepare(&format!(
        "SELECT {USAGE_SUMS}, 0 FROM tasks GROUP BY tenant
         UNION ALL
         SELECT tenant, succeeded, failed, engine_us, argument_bytes, result_bytes,
                namespace_bytes
         FROM usage_totals"
    ))?;
    let mut rows = tasks.query([])?;
    while let Some(row) = rows.next()? {
        let entry = usage.entry(Tenant(row.get(0)?)).or_default();
        let field = |i: usize| -> rusqlite::Result<u64> {
            Ok(count(row.get::<_, Option<i64>>(i)?.unwrap_or(0)))
        };
        entry.succeeded += field(1)?;
        entry.failed += field(2)?;
        entry.engine_us += field(3)?;
        entry.argument_bytes += field(4)?;
        entry.result_bytes += field(5)?;
        entry.namespace_bytes += field(6)?;
    }
    let mut modules = conn.prepare("SELECT tenant, SUM(size) FROM modules GROUP BY tenant")?;
    let mut rows = modules.query([])?;
    while let Some(row) = rows.next()? {
        usage.entry(Tenant(row.get(0)?)).or_default().module_bytes =
            count(row.get::<_, Option<i64>>(1)?.unwrap_or(0));
    }
    Ok(usage)
}

/// How a finished task's row reads.
struct Ending<'a> {
    status: &'static str,
    error: Option<String>,
    /// The result as sent, whole (`TaskResult` encoded), if it encodes.
    outcome: Option<&'a [u8]>,
    meta: &'a wasp_proto::msg::TaskMeta,
}

impl<'a> Ending<'a> {
    /// The row of `result`, its outcome encoded into `buf`.
    fn of(result: &'a TaskResult, buf: &'a mut Vec<u8>) -> Self {
        // The one place the controller decodes results (the hub forwards
        // them unread): a result that does not decode failed, as the
        // client fails it.
        let (status, error) = match result.outcome.as_ref().map(Values::decode) {
            Ok(Ok(_)) => ("succeeded", None),
            Ok(Err(err)) => ("failed", Some(format!("the results do not decode: {err}"))),
            Err(err) => ("failed", Some(err.message.clone())),
        };
        let outcome = codec::encode_into(result, buf).ok().map(|()| &buf[..]);
        Self {
            status,
            error,
            outcome,
            meta: &result.meta,
        }
    }
}

/// A result's values as a JSON array (`db_query`'s `result` key), from
/// the outcome a row keeps; `None` for a failed task.
fn result_json(outcome: &[u8]) -> Option<String> {
    values_json(codec::decode(outcome).ok()?)
}

/// A result's values as a JSON array; `None` for a failed task.
fn values_json(result: TaskResult) -> Option<String> {
    let values = result.outcome.ok()?.decode().ok()?;
    let json: Vec<_> = values
        .iter()
        .map(|v| v.as_ref().map_or(serde_json::Value::Null, value_to_json))
        .collect();
    Some(serde_json::Value::from(json).to_string())
}

/// Writes a batch in one transaction; returns how many task rows it added.
///
/// A task that ends in the batch that submits it (a short task, under
/// group commit) is written once, as ended, rather than inserted and then
/// updated.
fn write_batch(conn: &mut Connection, schema: Schema, batch: &[Record]) -> rusqlite::Result<u64> {
    let ended_here: std::collections::HashMap<TaskId, &TaskResult> = batch
        .iter()
        .filter_map(|record| match record {
            Record::Finished(result) => Some((result.id, &**result)),
            _ => None,
        })
        .collect();
    let mut written_ended = std::collections::HashSet::new();
    // Encoding buffers, reused row after row.
    let (mut spec_buf, mut outcome_buf) = (Vec::new(), Vec::new());
    let tx = conn.transaction()?;
    let mut inserted = 0;
    {
        // A task id is never reused (sessions continue across restarts),
        // so a conflict is a bug: IGNORE keeps the first record rather
        // than overwrite it. `?2` (msg_id) is bound only for databases
        // that keep it.
        let columns = if schema.msg_id { "msg_id, " } else { "" };
        let msg_id = if schema.msg_id { "?2, " } else { "" };
        let mut insert = tx.prepare_cached(&format!(
            "INSERT OR IGNORE INTO tasks
                 (id, {columns}tenant, module, func, items, submitted_us, status, spec,
                  engine, started_us, completed_us, error, stdout, stderr, outcome,
                  args, args_file)
             VALUES (?1, {msg_id}?3, ?4, ?5, ?6, ?7, ?9, ?8, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                     ?17, ?18)"
        ))?;
        let mut finish = tx.prepare_cached(
            "UPDATE tasks SET engine = ?2, started_us = ?3, completed_us = ?4, status = ?5,
                 error = ?6, stdout = ?7, stderr = ?8, outcome = ?9
             WHERE id = ?1",
        )?;
        let mut module = tx.prepare_cached(
            "INSERT OR IGNORE INTO modules (hash, tenant, size) VALUES (?1, ?2, ?3)",
        )?;
        let mut session =
            tx.prepare_cached("INSERT OR IGNORE INTO sessions (session, tenant) VALUES (?1, ?2)")?;
        let mut engine =
            tx.prepare_cached("INSERT OR REPLACE INTO engines (id, name) VALUES (?1, ?2)")?;
        let mut namespace = tx.prepare_cached(
            "INSERT INTO usage_totals (tenant, namespace_bytes) VALUES (?1, ?2)
             ON CONFLICT (tenant) DO UPDATE SET
                 namespace_bytes = namespace_bytes + excluded.namespace_bytes",
        )?;
        for record in batch {
            match record {
                Record::Submitted(task) => {
                    codec::encode_into(
                        &SpecBlob {
                            limits: task.limits,
                            retry: task.retry,
                            targets: task.targets.clone(),
                        },
                        &mut spec_buf,
                    )
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                    let ending = ended_here
                        .get(&task.id)
                        .map(|result| Ending::of(result, &mut outcome_buf));
                    if ending.is_some() {
                        written_ended.insert(task.id);
                    }
                    let meta = ending.as_ref().map(|e| e.meta);
                    // Big arguments are in the file `store_files` wrote.
                    let args = task.items.as_bytes();
                    let in_file = args_in_file(task);
                    inserted += insert.execute(params![
                        task.id.0 as i64,
                        schema.msg_id.then(|| task.id.to_string()),
                        task.tenant.0,
                        &task.module.0[..],
                        task.func,
                        task.items.len() as i64,
                        task.submitted_us as i64,
                        &spec_buf[..],
                        ending.as_ref().map_or("queued", |e| e.status),
                        meta.and_then(|m| m.engine.map(|e| e.0)),
                        meta.map(|m| m.started_us as i64),
                        meta.map(|m| m.completed_us as i64),
                        ending.as_ref().and_then(|e| e.error.as_deref()),
                        meta.map(|m| m.stdout.as_str()),
                        meta.map(|m| m.stderr.as_str()),
                        ending.as_ref().and_then(|e| e.outcome),
                        (!in_file).then_some(args),
                        in_file.then_some(args.len() as i64),
                    ])? as u64;
                }
                Record::Finished(result) => {
                    if written_ended.contains(&result.id) {
                        continue;
                    }
                    let ending = Ending::of(result, &mut outcome_buf);
                    let meta = ending.meta;
                    finish.execute(params![
                        result.id.0 as i64,
                        meta.engine.map(|e| e.0),
                        meta.started_us as i64,
                        meta.completed_us as i64,
                        ending.status,
                        ending.error,
                        meta.stdout,
                        meta.stderr,
                        ending.outcome,
                    ])?;
                }
                Record::Module {
                    hash,
                    tenant,
                    bytes,
                } => {
                    module.execute(params![hash.to_string(), tenant.0, bytes.len() as i64])?;
                }
                Record::Session { session: s, tenant } => {
                    session.execute(params![s, tenant.0])?;
                }
                Record::Engine { engine: e, name } => {
                    engine.execute(params![e.0, name])?;
                }
                Record::NamespaceBytes { tenant, bytes } => {
                    namespace
                        .execute(params![tenant.0, i64::try_from(*bytes).unwrap_or(i64::MAX)])?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasp_proto::Value;
    use wasp_proto::msg::{Arg, TaskMeta};

    fn tenant() -> Tenant {
        Tenant("default".into())
    }

    fn submitted(seq: u32, module: ModuleHash) -> Record {
        Record::Submitted(Box::new(StoredTask {
            id: TaskId::new(1, seq),
            tenant: tenant(),
            module,
            func: "pow10".into(),
            items: Items::encode(&[vec![Arg::Value(Value::S64(i64::from(seq)))]]).expect("encodes"),
            limits: TaskLimits::default(),
            retry: RetryPolicy::default(),
            targets: None,
            submitted_us: 1_000 + u64::from(seq),
        }))
    }

    fn finished(seq: u32) -> Record {
        Record::Finished(Box::new(TaskResult {
            id: TaskId::new(1, seq),
            outcome: Ok(Values::encode(&[Some(Value::S64(i64::from(seq) * 10))]).expect("encodes")),
            meta: TaskMeta {
                completed_us: 5_000,
                stdout: format!("task {seq}\n"),
                ..TaskMeta::default()
            },
        }))
    }

    fn query(conn: &Connection, module: Option<ModuleHash>) -> Vec<TaskRecord> {
        let query = Query {
            module,
            keys: vec![
                "status".into(),
                "module".into(),
                "result".into(),
                "stdout".into(),
            ],
            ..Query::default()
        };
        query_records(conn, &tenant(), &query).expect("query runs")
    }

    #[test]
    fn a_task_ended_in_the_batch_that_submits_it_is_one_row_written_ended() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = Connection::open(dir.path().join("tasks.sqlite")).expect("opens");
        let schema = create_schema(&conn).expect("schema");
        assert!(!schema.msg_id, "a new database derives msg_id");
        let module = ModuleHash::of(b"module");
        let first = [submitted(1, module), submitted(2, module), finished(1)];
        assert_eq!(write_batch(&mut conn, schema, &first).expect("writes"), 2);
        let records = query(&conn, None);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].status, Some(Status::Succeeded));
        assert_eq!(records[0].result.as_deref(), Some("[10]"));
        assert_eq!(records[0].stdout.as_deref(), Some("task 1\n"));
        assert_eq!(records[1].status, Some(Status::Queued));
        assert_eq!(records[1].result, None);

        // Ended in a later batch: the row is updated.
        assert_eq!(
            write_batch(&mut conn, schema, &[finished(2)]).expect("writes"),
            0
        );
        let records = query(&conn, Some(module));
        assert_eq!(records[1].status, Some(Status::Succeeded));
        assert_eq!(records[1].result.as_deref(), Some("[20]"));
        assert_eq!(records[1].module, Some(module));

        // The result reads back exactly as sent, for get_result.
        let blob: Vec<u8> = conn
            .query_row(
                "SELECT outcome FROM tasks WHERE id = ?1",
                [TaskId::new(1, 1).0 as i64],
                |r| r.get(0),
            )
            .expect("row");
        let result: TaskResult = codec::decode(&blob).expect("decodes");
        let Record::Finished(sent) = finished(1) else {
            unreachable!()
        };
        assert_eq!(result, *sent);
    }

    /// Issue 13: a typed list's argument and result are kept as their
    /// bytes (plus a few), not as a node or a JSON number per item.
    #[test]
    fn typed_lists_are_kept_as_their_bytes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = Connection::open(dir.path().join("tasks.sqlite")).expect("opens");
        let schema = create_schema(&conn).expect("schema");
        let files = ArgFiles::new(&dir.path().join("args"));
        let module = ModuleHash::of(b"module");
        let v: Vec<f64> = (0..100_000).map(f64::from).collect();
        let Record::Submitted(task) = big_submitted(1, module, v.clone()) else {
            unreachable!()
        };
        let Record::Finished(mut done) = finished(1) else {
            unreachable!()
        };
        done.outcome = Ok(Values::encode(&[Some(Value::from(v))]).expect("encodes"));
        let batch = [Record::Submitted(task), Record::Finished(done)];
        store_files(dir.path(), &files, &batch).expect("files");
        write_batch(&mut conn, schema, &batch).expect("writes");
        let outcome: i64 = conn
            .query_row(
                "SELECT length(outcome) FROM tasks WHERE id = ?1",
                [TaskId::new(1, 1).0 as i64],
                |r| r.get(0),
            )
            .expect("row");
        let args = std::fs::metadata(files.path(TaskId::new(1, 1)))
            .expect("the arguments' file")
            .len();
        for (what, len) in [("args", args as i64), ("outcome", outcome)] {
            assert!(
                (800_000..800_200).contains(&len),
                "{what}: {len} bytes for 800,000 bytes of f64"
            );
        }
    }

    /// A task of one argument, `v`, of 800 kB for 100,000 items.
    fn big_submitted(seq: u32, module: ModuleHash, v: Vec<f64>) -> Record {
        let Record::Submitted(mut task) = submitted(seq, module) else {
            unreachable!()
        };
        task.items = Items::encode(&[vec![Arg::Value(Value::from(v))]]).expect("encodes");
        Record::Submitted(task)
    }

    /// The frames in the WAL, checkpointing them (`PASSIVE`) or emptying
    /// it (`TRUNCATE`): the pages written since the last `TRUNCATE`.
    fn wal_frames(conn: &Connection, mode: &str) -> i64 {
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(1))
            .expect("checkpoints")
    }

    /// Issue 13: a task's end writes its status, times and outcome, not
    /// its big arguments again: they are a file ([`ARGS`]). In the row,
    /// SQLite wrote them again with it at every task's end.
    #[test]
    fn a_tasks_end_does_not_write_its_arguments_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = Connection::open(dir.path().join("tasks.sqlite")).expect("opens");
        let schema = create_schema(&conn).expect("schema");
        let files = ArgFiles::new(&ArgFiles::dir_in(dir.path()));
        let module = ModuleHash::of(b"module");
        let batch = [big_submitted(1, module, vec![0.5; 100_000])];
        store_files(dir.path(), &files, &batch).expect("files");
        write_batch(&mut conn, schema, &batch).expect("writes");
        wal_frames(&conn, "TRUNCATE");
        write_batch(&mut conn, schema, &[finished(1)]).expect("writes");
        let frames = wal_frames(&conn, "PASSIVE");
        // 800 kB is 200 pages of 4 KiB; the end touches the row's leaf.
        assert!(
            (1..5).contains(&frames),
            "the task's end wrote {frames} pages; its 800 kB of arguments are 200"
        );
    }

    /// Issue 13: big arguments (800 kB) are a file beside the database,
    /// written before their row and never through the WAL; read back for a
    /// restart, `wasp replay` and a resubmission, counted in the tenant's
    /// usage, and removed with their record.
    #[test]
    fn big_arguments_are_a_file_read_back_and_removed_with_their_record() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = Connection::open(dir.path().join("tasks.sqlite")).expect("opens");
        let schema = create_schema(&conn).expect("schema");
        let files = ArgFiles::new(&ArgFiles::dir_in(dir.path()));
        let module = ModuleHash::of(b"module");
        let id = TaskId::new(1, 1);
        let batch = [big_submitted(
            1,
            module,
            (0..100_000).map(f64::from).collect(),
        )];
        let Record::Submitted(task) = &batch[0] else {
            unreachable!()
        };
        let args = task.items.as_bytes().to_vec();
        wal_frames(&conn, "TRUNCATE");
        store_files(dir.path(), &files, &batch).expect("files");
        write_batch(&mut conn, schema, &batch).expect("writes");
        let frames = wal_frames(&conn, "PASSIVE");
        assert!(
            frames < 10,
            "recording the task wrote {frames} pages; its 800 kB of arguments would be 200"
        );
        assert_eq!(std::fs::read(files.path(id)).expect("the file"), args);

        // A restart runs it again with its arguments; replay reads them.
        let loaded = load(&conn, dir.path(), &files).expect("loads");
        assert_eq!(loaded.unfinished.len(), 1);
        assert!(loaded.unfinished[0].items.as_bytes() == &args[..]);
        assert!(recorded_args(&conn, dir.path(), id).expect("reads") == Some(args.clone()));
        let used = usage(&conn).expect("usage");
        assert_eq!(used[&tenant()].argument_bytes, args.len() as u64);

        // Ended and purged: the file goes with the row.
        write_batch(&mut conn, schema, &[finished(1)]).expect("writes");
        let tx = conn.transaction().expect("begins");
        start_retiring(&tx).expect("retiring");
        tx.execute("INSERT INTO retiring VALUES (?1)", [id.0 as i64])
            .expect("retires");
        let (deleted, in_files) = retire(&tx).expect("retires");
        tx.commit().expect("commits");
        assert_eq!((deleted, in_files.as_slice()), (1, &[id][..]));
        assert_eq!(
            usage(&conn).expect("usage")[&tenant()].argument_bytes,
            args.len() as u64
        );
    }

    /// A file whose row never committed (a controller killed between the
    /// two) is removed at the next start; a row whose file is gone (a
    /// power cut) fails its task, saying why, rather than running it
    /// without its arguments.
    #[test]
    fn a_start_sweeps_stray_argument_files_and_fails_a_task_whose_file_is_lost() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = Connection::open(dir.path().join("tasks.sqlite")).expect("opens");
        let schema = create_schema(&conn).expect("schema");
        let files = ArgFiles::new(&ArgFiles::dir_in(dir.path()));
        let module = ModuleHash::of(b"module");
        let batch = [
            big_submitted(1, module, vec![1.0; 100_000]),
            big_submitted(2, module, vec![2.0; 100_000]),
        ];
        store_files(dir.path(), &files, &batch).expect("files");
        write_batch(&mut conn, schema, &batch).expect("writes");
        let stray = TaskId::new(1, 3);
        files.write(stray, b"never committed").expect("writes");
        std::fs::remove_file(files.path(TaskId::new(1, 2))).expect("a power cut");

        let loaded = load(&conn, dir.path(), &files).expect("loads");
        let ids: Vec<TaskId> = loaded.unfinished.iter().map(|t| t.id).collect();
        assert_eq!(ids, [TaskId::new(1, 1)]);
        assert!(!files.path(stray).exists(), "the stray file is swept");
        assert!(files.path(TaskId::new(1, 1)).exists());
        let (status, error): (String, String) = conn
            .query_row(
                "SELECT status, error FROM tasks WHERE id = ?1",
                [TaskId::new(1, 2).0 as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("row");
        assert_eq!(status, "failed");
        assert!(
            error.contains("arguments are lost") && error.contains("s1-2.args"),
            "{error}"
        );
    }

    /// A task recorded before issue 13, its arguments in its row, still
    /// runs again after a restart.
    #[test]
    fn arguments_kept_in_the_row_before_issue_13_still_load() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = Connection::open(dir.path().join("tasks.sqlite")).expect("opens");
        // The schema of issue 11, without `args_file`.
        conn.execute_batch(
            "CREATE TABLE tasks (
                 id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, module BLOB NOT NULL,
                 func TEXT NOT NULL, items INTEGER NOT NULL, submitted_us INTEGER NOT NULL,
                 engine INTEGER, started_us INTEGER, completed_us INTEGER,
                 status TEXT NOT NULL, result TEXT, error TEXT, stdout TEXT, stderr TEXT,
                 args BLOB, spec BLOB, outcome BLOB);",
        )
        .expect("old schema");
        let module = ModuleHash::of(b"module");
        let items = Items::encode(&[vec![Arg::Value(Value::S64(7))]]).expect("encodes");
        let spec = codec::encode(&SpecBlob {
            limits: TaskLimits::default(),
            retry: RetryPolicy::default(),
            targets: None,
        })
        .expect("encodes");
        conn.execute(
            "INSERT INTO tasks (id, tenant, module, func, items, submitted_us, status, args, spec)
             VALUES (?1, 'default', ?2, 'pow10', 1, 7, 'queued', ?3, ?4)",
            params![
                TaskId::new(1, 7).0 as i64,
                &module.0[..],
                items.as_bytes(),
                spec
            ],
        )
        .expect("old row");
        // `wasp replay` on a database no controller has opened since.
        assert_eq!(
            recorded_args(&conn, dir.path(), TaskId::new(1, 7)).expect("reads"),
            Some(items.as_bytes().to_vec())
        );
        create_schema(&conn).expect("schema");
        let files = ArgFiles::new(&ArgFiles::dir_in(dir.path()));
        let loaded = load(&conn, dir.path(), &files).expect("loads");
        assert_eq!(
            loaded.unfinished.len(),
            1,
            "the old row is not failed for want of arguments"
        );
        assert_eq!(loaded.unfinished[0].items.as_bytes(), items.as_bytes());
        assert_eq!(
            recorded_args(&conn, dir.path(), TaskId::new(1, 7)).expect("reads"),
            Some(items.as_bytes().to_vec())
        );
    }

    /// Issue 12: a tenant's usage as the records hold it.
    #[test]
    fn usage_sums_each_tenants_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = Connection::open(dir.path().join("tasks.sqlite")).expect("opens");
        let schema = create_schema(&conn).expect("schema");
        let module = ModuleHash::of(b"module");
        let mut batch = vec![
            submitted(1, module),
            submitted(2, module),
            submitted(3, module),
            finished(1),
            Record::Module {
                hash: module,
                tenant: tenant(),
                bytes: Arc::new(vec![0; 1234]),
            },
        ];
        if let Record::Finished(result) = &mut batch[3] {
            result.meta.started_us = 1_000;
            result.meta.completed_us = 3_500;
        }
        write_batch(&mut conn, schema, &batch).expect("writes");
        let usage = usage(&conn).expect("usage");
        let mine = usage.get(&tenant()).expect("the tenant's usage");
        assert_eq!((mine.succeeded, mine.failed), (1, 0), "{mine:?}");
        assert_eq!(mine.engine_us, 2_500);
        assert_eq!(mine.module_bytes, 1234);
        assert!(mine.argument_bytes > 0 && mine.result_bytes > 0, "{mine:?}");
        assert_eq!(usage.len(), 1, "no other tenant appears");
    }

    #[test]
    fn a_database_written_before_keeps_its_msg_ids_and_text_module_hashes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = Connection::open(dir.path().join("tasks.sqlite")).expect("opens");
        // The schema of issue 11's first version: msg_id, the module in
        // hex, an index by tenant.
        conn.execute_batch(
            "CREATE TABLE tasks (
                 id INTEGER PRIMARY KEY, msg_id TEXT NOT NULL, tenant TEXT NOT NULL,
                 module TEXT NOT NULL, func TEXT NOT NULL, items INTEGER NOT NULL,
                 submitted_us INTEGER NOT NULL, engine INTEGER, started_us INTEGER,
                 completed_us INTEGER, status TEXT NOT NULL, result TEXT, error TEXT,
                 stdout TEXT, stderr TEXT, args BLOB, spec BLOB, outcome BLOB);
             CREATE INDEX tasks_by_tenant ON tasks (tenant, submitted_us);",
        )
        .expect("old schema");
        let module = ModuleHash::of(b"module");
        conn.execute(
            "INSERT INTO tasks (id, msg_id, tenant, module, func, items, submitted_us, status, result)
             VALUES (?1, 's1-7', 'default', ?2, 'pow10', 1, 7, 'succeeded', '[70]')",
            params![TaskId::new(1, 7).0 as i64, module.to_string()],
        )
        .expect("old row");
        let schema = create_schema(&conn).expect("schema");
        assert!(schema.msg_id, "an old database keeps its msg_id column");
        write_batch(&mut conn, schema, &[submitted(8, module)]).expect("writes");
        let msg_id: String = conn
            .query_row(
                "SELECT msg_id FROM tasks WHERE id = ?1",
                [TaskId::new(1, 8).0 as i64],
                |r| r.get(0),
            )
            .expect("row");
        assert_eq!(msg_id, "s1-8");
        // Both rows match a query by module, whichever form they hold it in.
        let records = query(&conn, Some(module));
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|r| r.module == Some(module)));
        assert_eq!(records[0].result.as_deref(), Some("[70]"));
        let index: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'tasks_by_tenant'",
                [],
                |r| r.get(0),
            )
            .expect("reads");
        assert_eq!(index, 0, "the index every insert paid for is gone");
    }
}
