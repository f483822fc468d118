//! `wasp result`, `wasp abort`, `wasp resubmit`, `wasp tasks`: the task
//! database from the command line, as the tenant of the profile's client
//! connection file.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value as Json, json};
use wasp_client::{AsyncResult, ClientError, Query, Status, TaskRecord};
use wasp_proto::{EngineId, TaskId};

use crate::cli::{ResubmitArgs, TaskIdsArgs, TasksArgs};
use crate::remote::{connect, print_accepted, print_value};
use crate::serve::tokio_runtime;

fn parse_ids(texts: &[String]) -> anyhow::Result<Vec<TaskId>> {
    texts
        .iter()
        // `--no-wait` prints JSON strings; take them quoted or bare.
        .map(|t| {
            t.trim()
                .trim_matches('"')
                .parse()
                .map_err(anyhow::Error::msg)
        })
        .collect()
}

/// Prints every item's result, one JSON line each, in task order; a failed
/// task's error goes to stderr. Fails (exit 1) if any task failed.
async fn print_results(result: &mut AsyncResult) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    while let Some(value) = result.next().await {
        match value {
            Ok(value) => writeln!(out, "{}", print_value(value.as_ref()))?,
            Err(ClientError::Remote(err)) => {
                failed += 1;
                eprintln!("wasp: {err}");
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn result(args: &TaskIdsArgs) -> anyhow::Result<ExitCode> {
    let ids = parse_ids(&args.ids)?;
    tokio_runtime()?.block_on(async {
        let client = connect(&args.profile).await?;
        let mut result = client.get_result(&ids).await?;
        print_results(&mut result).await
    })
}

pub fn abort(args: &TaskIdsArgs) -> anyhow::Result<ExitCode> {
    let ids = parse_ids(&args.ids)?;
    tokio_runtime()?.block_on(async {
        let client = connect(&args.profile).await?;
        let statuses = client.abort(&ids).await?;
        let mut missing = Vec::new();
        for (id, status) in ids.iter().zip(statuses) {
            match status {
                Some(status) => println!("{id} {}", status.name()),
                None => missing.push(*id),
            }
        }
        if !missing.is_empty() {
            return Err(ClientError::UnknownTasks(missing).into());
        }
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

pub fn resubmit(args: &ResubmitArgs) -> anyhow::Result<ExitCode> {
    let ids = parse_ids(&args.tasks.ids)?;
    tokio_runtime()?.block_on(async {
        let client = connect(&args.tasks.profile).await?;
        let mut result = client.resubmit(&ids).await?;
        if args.no_wait {
            print_accepted(&mut result).await?;
            return Ok(ExitCode::SUCCESS);
        }
        print_results(&mut result).await
    })
}

pub fn tasks(args: &TasksArgs) -> anyhow::Result<ExitCode> {
    let status = args
        .status
        .iter()
        .map(|name| {
            Status::from_name(name).with_context(|| {
                format!("--status {name:?}: expected queued, running, succeeded or failed")
            })
        })
        .collect::<anyhow::Result<Vec<Status>>>()?;
    let query = Query {
        status,
        func: args.func.clone(),
        engine: args.engine.map(EngineId),
        limit: Some(args.limit),
        ..Query::default()
    };
    let records = tokio_runtime()?.block_on(async {
        let client = connect(&args.profile).await?;
        anyhow::Ok(client.db_query(query).await?)
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        for record in &records {
            writeln!(out, "{}", record_json(record))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<14} {:<10} {:<24} {:>6} {:>10}  error",
        "id", "status", "func", "engine", "run (ms)"
    )?;
    for r in &records {
        let run = match (r.started_us, r.completed_us) {
            (Some(s), Some(c)) if c >= s && s > 0 => format!("{:.1}", (c - s) as f64 / 1000.0),
            _ => "-".into(),
        };
        writeln!(
            out,
            "{:<14} {:<10} {:<24} {:>6} {:>10}  {}",
            r.id.to_string(),
            r.status.map_or("-", Status::name),
            r.func.as_deref().unwrap_or("-"),
            r.engine.map_or("-".into(), |e| e.to_string()),
            run,
            r.error
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        )?;
    }
    if records.is_empty() && !args.json {
        eprintln!("no tasks match");
    }
    Ok(ExitCode::SUCCESS)
}

fn record_json(r: &TaskRecord) -> Json {
    let mut object = json!({ "id": r.id.to_string() });
    let fields = [
        ("status", r.status.map(|s| json!(s.name()))),
        ("module", r.module.map(|m| json!(m.to_string()))),
        ("func", r.func.as_ref().map(|f| json!(f))),
        ("items", r.items.map(|n| json!(n))),
        ("engine", r.engine.map(|e| json!(e.0))),
        ("submitted_us", r.submitted_us.map(|t| json!(t))),
        ("started_us", r.started_us.map(|t| json!(t))),
        ("completed_us", r.completed_us.map(|t| json!(t))),
        ("error", r.error.as_ref().map(|e| json!(e))),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            object[key] = value;
        }
    }
    object
}
