//! Task records in SQLite, like ipyparallel's SQLiteDB hub backend: what
//! ran, for whom, where, when, and how it ended, so results outlive the
//! client that asked for them.
//!
//! The database is written by one blocking thread fed through a bounded
//! channel, in batches of one transaction each, so the hub does not wait on
//! disk while the writer keeps up; when it falls behind, the hub waits
//! (see [`Records::catch_up`]) rather than queue records without bound.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, params};
use tokio::sync::mpsc;
use wasp_proto::msg::{TaskResult, Values};
use wasp_proto::{ModuleHash, TaskId, Tenant, value_to_json};

/// Most records written in one transaction.
const BATCH: usize = 16384;

/// How long the writer waits after a transaction before the next: records
/// reach the file at most this much later than they would otherwise.
const LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// One change to the records.
pub(crate) enum Record {
    /// A task was accepted.
    Submitted {
        id: TaskId,
        tenant: Arc<Tenant>,
        module: ModuleHash,
        func: Arc<str>,
        items: usize,
        submitted_us: u64,
    },
    /// A task ended.
    Finished(Box<TaskResult>),
}

/// Records the channel to the writer holds: four full transactions.
const QUEUE: usize = 4 * BATCH;

/// The sending side of the records thread.
pub(crate) struct Records {
    /// Bounded by [`QUEUE`] records; what does not fit waits in `backlog`.
    tx: mpsc::Sender<Record>,
    /// Records the channel had no room for. Bounded by what one batch of
    /// hub events produces: the hub calls [`Records::catch_up`], which
    /// empties it, before it takes more events.
    backlog: VecDeque<Record>,
}

impl Records {
    /// Opens (creating if needed) the database and starts its writer.
    pub(crate) fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS tasks (
                 id INTEGER PRIMARY KEY,
                 msg_id TEXT NOT NULL,
                 tenant TEXT NOT NULL,
                 module TEXT NOT NULL,
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
             CREATE INDEX IF NOT EXISTS tasks_by_tenant ON tasks (tenant, submitted_us);",
        )?;
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("wasp-records".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Self {
            tx,
            backlog: VecDeque::new(),
        })
    }

    /// Queues a change; the writer applies it soon.
    pub(crate) fn send(&mut self, record: Record) {
        if !self.backlog.is_empty() {
            self.backlog.push_back(record);
            return;
        }
        match self.tx.try_send(record) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(record)) => self.backlog.push_back(record),
            // The writer only stops when the database fails; the hub goes
            // on without records then (logged by the writer).
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Hands the backlog to the writer, waiting while its channel is full:
    /// a controller whose disk is slower than its tasks slows down rather
    /// than holding ever more records in memory.
    pub(crate) async fn catch_up(&mut self) {
        while let Some(record) = self.backlog.pop_front() {
            if self.tx.send(record).await.is_err() {
                self.backlog.clear();
            }
        }
    }
}

fn writer(mut conn: Connection, mut rx: mpsc::Receiver<Record>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.blocking_recv_many(&mut batch, BATCH) > 0 {
        if let Err(err) = write_batch(&mut conn, &batch) {
            tracing::error!(cause = %err, "task records could not be written; continuing without them");
            return;
        }
        // Let records gather: one transaction per task (and one wakeup of
        // this thread per task on the hub's side) would cost more than the
        // task itself when tasks are short. A full batch means a backlog:
        // no pause then.
        if batch.len() < BATCH {
            std::thread::sleep(LINGER);
        }
        batch.clear();
    }
}

fn write_batch(conn: &mut Connection, batch: &[Record]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO tasks (id, msg_id, tenant, module, func, items, submitted_us, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending')",
        )?;
        let mut finish = tx.prepare_cached(
            "UPDATE tasks SET engine = ?2, started_us = ?3, completed_us = ?4, status = ?5,
                 result = ?6, error = ?7, stdout = ?8, stderr = ?9
             WHERE id = ?1",
        )?;
        for record in batch {
            match record {
                Record::Submitted {
                    id,
                    tenant,
                    module,
                    func,
                    items,
                    submitted_us,
                } => {
                    insert.execute(params![
                        id.0 as i64,
                        id.to_string(),
                        tenant.0,
                        module.to_string(),
                        &**func,
                        *items as i64,
                        *submitted_us as i64,
                    ])?;
                }
                Record::Finished(result) => {
                    // The one place the controller decodes results: the
                    // hub forwards them unread.
                    let (status, value, error) = match result.outcome.as_ref().map(Values::decode) {
                        Ok(Ok(values)) => {
                            let json: Vec<_> = values
                                .iter()
                                .map(|v| v.as_ref().map_or(serde_json::Value::Null, value_to_json))
                                .collect();
                            ("ok", Some(serde_json::Value::from(json).to_string()), None)
                        }
                        // The client fails such a task too.
                        Ok(Err(err)) => (
                            "error",
                            None,
                            Some(format!("the results do not decode: {err}")),
                        ),
                        Err(err) => ("error", None, Some(err.message.clone())),
                    };
                    let meta = &result.meta;
                    finish.execute(params![
                        result.id.0 as i64,
                        meta.engine.map(|e| e.0),
                        meta.started_us as i64,
                        meta.completed_us as i64,
                        status,
                        value,
                        error,
                        meta.stdout,
                        meta.stderr,
                    ])?;
                }
            }
        }
    }
    tx.commit()
}
