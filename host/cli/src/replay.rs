//! `wasp replay MSG_ID`: reruns a recorded task locally, in the sandbox,
//! and says whether its result matches the record (no peer has this).
//!
//! The records keep every task's arguments and its module by hash
//! (issue 11), so a task can be run again long after its client left. This
//! reads the profile's task database and module store directly, as the
//! operator of the controller's host, read-only.

use std::process::ExitCode;

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use wasp_engine::CallContext;
use wasp_net::Profile;
use wasp_proto::msg::{Arg, Items, TaskResult};
use wasp_proto::{ModuleHash, TaskId, Value, codec, value_to_json};

use crate::cli::ReplayArgs;

/// A recorded task, as replay needs it.
struct Recorded {
    tenant: String,
    module: ModuleHash,
    func: String,
    items: Items,
    outcome: Option<TaskResult>,
}

fn read_record(profile: &Profile, id: TaskId) -> anyhow::Result<Recorded> {
    let path = profile.dir().join("tasks.sqlite");
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening the task database {}", path.display()))?;
    let row = conn
        .query_row(
            // The module hash is 32 bytes, or hex text in rows written
            // before the controller stored it as bytes.
            "SELECT tenant,
                    CASE typeof(module) WHEN 'blob' THEN lower(hex(module)) ELSE module END,
                    func, items, outcome
             FROM tasks WHERE id = ?1",
            params![id.0 as i64],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<Vec<u8>>>(4)?,
                ))
            },
        )
        .optional()?
        .with_context(|| format!("task {id} is not in {}", path.display()))?;
    let (tenant, module, func, count, outcome) = row;
    // Kept apart from the row, in the database or a file (issue 13).
    let args = wasp_controller::recorded_args(&conn, profile.dir(), id)
        .with_context(|| format!("reading the arguments of task {id}"))?;
    let Some(args) = args else {
        bail!("task {id} was recorded without its arguments (before wasp recorded them)");
    };
    let module = module
        .parse()
        .map_err(|err| anyhow::anyhow!("task {id}: its module hash {module:?}: {err}"))?;
    let count = u32::try_from(count).context("a negative item count")?;
    let outcome = outcome
        .map(|blob| codec::decode::<TaskResult>(&blob))
        .transpose()
        .with_context(|| format!("task {id}: its recorded outcome does not decode"))?;
    Ok(Recorded {
        tenant,
        module,
        func,
        items: Items::from_parts(count, args),
        outcome,
    })
}

fn json(value: Option<&Value>) -> String {
    value
        .map_or(serde_json::Value::Null, value_to_json)
        .to_string()
}

pub fn replay(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let id: TaskId = args
        .id
        .trim()
        .trim_matches('"')
        .parse()
        .map_err(anyhow::Error::msg)?;
    let profile = Profile::new(&args.profile.profile)?;
    let record = read_record(&profile, id)?;
    let items = record
        .items
        .decode()
        .with_context(|| format!("task {id}: its recorded arguments do not decode"))?;
    let mut lists = Vec::with_capacity(items.len());
    for item in items {
        let values = item
            .into_iter()
            .map(|arg| match arg {
                Arg::Value(value) => Ok(value),
                Arg::Ref(name) => Err(anyhow::anyhow!(
                    "task {id} takes @{name}, an engine's namespace value, which the records do not keep"
                )),
            })
            .collect::<anyhow::Result<Vec<Value>>>()?;
        lists.push(values);
    }
    let module_path = profile
        .dir()
        .join("modules")
        .join(format!("{}.wasm", record.module));
    let runtime = args.runtime.runtime()?;
    let (module, _) = crate::run::load_module(&runtime, &module_path)?;

    let tokio = crate::serve::tokio_runtime()?;
    let context = CallContext {
        engine_id: 0,
        tenant: record.tenant.clone(),
        task_id: id.to_string(),
    };
    // The items of a chunk share one instance, as on an engine.
    let replayed: Result<Vec<Option<Value>>, String> = tokio.block_on(async {
        let mut instance = runtime
            .instantiate(&module, context)
            .await
            .map_err(|report| format!("{:?}", report.result.err()))?;
        let mut values = Vec::with_capacity(lists.len());
        for (i, args) in lists.iter().enumerate() {
            let report = instance.call(&record.func, args).await;
            match report.result {
                Ok(value) => values.push(value),
                Err(err) => return Err(format!("item {i}: {err}")),
            }
        }
        Ok(values)
    });

    let recorded = record.outcome.map(|result| {
        result
            .outcome
            .map_err(|err| err.message)
            .and_then(|values| values.decode().map_err(|err| err.to_string()))
    });
    let n = lists.len();
    match (recorded, replayed) {
        (None, Ok(_)) => {
            println!("{id}: replayed {n} item(s) locally; the task has no recorded result yet");
            Ok(ExitCode::SUCCESS)
        }
        (None, Err(err)) => {
            println!("{id}: the replay failed ({err}); the task has no recorded result yet");
            Ok(ExitCode::FAILURE)
        }
        (Some(Ok(expected)), Ok(got)) if expected == got => {
            println!("{id}: replayed {n} item(s) locally: the results match the record");
            Ok(ExitCode::SUCCESS)
        }
        (Some(Ok(expected)), Ok(got)) => {
            let at = expected
                .iter()
                .zip(&got)
                .position(|(a, b)| a != b)
                .unwrap_or(expected.len().min(got.len()));
            println!(
                "{id}: the results differ from the record at item {at}: recorded {}, replayed {}",
                json(expected.get(at).and_then(Option::as_ref)),
                json(got.get(at).and_then(Option::as_ref))
            );
            Ok(ExitCode::FAILURE)
        }
        (Some(Err(recorded)), Err(err)) => {
            println!("{id}: failed again, as recorded (recorded: {recorded}; replayed: {err})");
            Ok(ExitCode::SUCCESS)
        }
        (Some(Err(recorded)), Ok(_)) => {
            println!("{id}: succeeded locally, but the record says it failed: {recorded}");
            Ok(ExitCode::FAILURE)
        }
        (Some(Ok(_)), Err(err)) => {
            println!("{id}: failed locally ({err}), but the record has its results");
            Ok(ExitCode::FAILURE)
        }
    }
}
