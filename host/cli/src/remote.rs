//! `wasp apply` and `wasp map`: calls on the cluster, JSON in and out.
//! Arguments are checked against the export's WIT signature before anything
//! is dispatched.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value as Json;
use wasp_client::{Arg, Client, DirectView, Module};
use wasp_net::Profile;
use wasp_proto::{EngineId, FuncSig, Value, json_to_value, value_to_json};

use crate::cli::{ApplyArgs, ConnectArgs, MapArgs, NameArgs, PushArgs, ScatterArgs};
use crate::serve::tokio_runtime;

/// Connects with `--file`, or else with the profile's client connection
/// file.
pub(crate) async fn connect(args: &ConnectArgs) -> anyhow::Result<Client> {
    if let Some(file) = &args.file {
        return Client::connect_file(file)
            .await
            .with_context(|| format!("connecting with {}", file.display()));
    }
    let profile = &args.profile;
    let file = Profile::new(profile)?.client_file();
    Client::connect_file(&file).await.with_context(|| {
        format!(
            "connecting to the cluster of profile {profile:?} (is it started? `wasp cluster start`)"
        )
    })
}

/// Parses one call's JSON arguments against the signature.
fn parse_args(sig: &FuncSig, args: &[Json], what: &str) -> anyhow::Result<Vec<Value>> {
    if args.len() != sig.params.len() {
        bail!(
            "{what}: expected {} argument(s), got {}; the signature is `{sig}`",
            sig.params.len(),
            args.len()
        );
    }
    sig.params
        .iter()
        .zip(args)
        .map(|(param, json)| {
            json_to_value(json, &param.ty, &param.name)
                .map_err(|err| anyhow::anyhow!("{what}: argument {err}; the signature is `{sig}`"))
        })
        .collect()
}

pub(crate) fn print_value(value: Option<&Value>) -> String {
    value.map_or(Json::Null, value_to_json).to_string()
}

/// Command-line arguments as task arguments: JSON typed by the signature,
/// bare text as a string, and `@name` (not valid JSON) as a Reference.
fn parse_cli_args(sig: &FuncSig, args: &[String]) -> anyhow::Result<Vec<Arg>> {
    if args.len() != sig.params.len() {
        bail!(
            "arguments: expected {} argument(s), got {}; the signature is `{sig}`",
            sig.params.len(),
            args.len()
        );
    }
    sig.params
        .iter()
        .zip(args)
        .map(|(param, arg)| {
            let json = match serde_json::from_str(arg) {
                Ok(json) => json,
                Err(_) => match arg.strip_prefix('@') {
                    Some(name) if !name.is_empty() => return Ok(Arg::Ref(name.to_owned())),
                    _ => Json::String(arg.clone()),
                },
            };
            json_to_value(&json, &param.ty, &param.name)
                .map(Arg::Value)
                .map_err(|err| {
                    anyhow::anyhow!("arguments: argument {err}; the signature is `{sig}`")
                })
        })
        .collect()
}

pub fn apply(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let module = Module::from_file(&args.module)?;
    let sig = module.find(&args.func)?.sig.clone();
    let parsed = parse_cli_args(&sig, &args.args)?;
    let has_refs = parsed.iter().any(|a| matches!(a, Arg::Ref(_)));
    if has_refs && args.targets.is_none() {
        bail!("@name arguments refer to engine namespaces: name the engines with --targets");
    }
    tokio_runtime()?.block_on(async {
        let client = connect(&args.profile).await?;
        match &args.targets {
            None => {
                let values = parsed
                    .into_iter()
                    .filter_map(|a| match a {
                        Arg::Value(v) => Some(v),
                        Arg::Ref(_) => None,
                    })
                    .collect();
                let mut view = client.load_balanced_view();
                view.flags = args.limits.flags();
                let mut result = view.apply(&module, &args.func, values).await?;
                if args.no_wait {
                    return print_accepted(&mut result).await;
                }
                let value = result.get_one(None).await?;
                println!("{}", print_value(value.as_ref()));
                if let Some(Some(meta)) = result.metadata().first() {
                    print_output(meta);
                }
            }
            Some(targets) => {
                let targets = parse_targets(targets, &client).await?;
                let mut view = client.view(targets.clone());
                view.flags = args.limits.flags();
                let mut result = view.apply_args(&module, &args.func, parsed).await?;
                if args.no_wait {
                    return print_accepted(&mut result).await;
                }
                let values = result.get(None).await?;
                if targets.len() == 1 {
                    println!("{}", print_value(values.first().and_then(Option::as_ref)));
                } else {
                    let all: Vec<Json> = values
                        .iter()
                        .map(|v| v.as_ref().map_or(Json::Null, value_to_json))
                        .collect();
                    println!("{}", Json::from(all));
                }
            }
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `--no-wait`: waits until the controller has committed every task (so
/// that each reaches a final state whatever dies), then prints their ids,
/// one JSON string per line, for `wasp result`.
pub(crate) async fn print_accepted(result: &mut wasp_client::AsyncResult) -> anyhow::Result<()> {
    if !result.wait_accepted(None).await {
        bail!(
            "the connection closed before the controller committed every task ({} of {})",
            result.accepted(),
            result.msg_ids().len()
        );
    }
    let mut out = std::io::stdout().lock();
    for id in result.msg_ids() {
        writeln!(out, "{}", Json::String(id.to_string()))?;
    }
    Ok(())
}

fn print_output(meta: &wasp_proto::msg::TaskMeta) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(meta.stdout.as_bytes());
    let _ = err.write_all(meta.stderr.as_bytes());
}

/// `all`, `0`, or `0,2`.
async fn parse_targets(text: &str, client: &Client) -> anyhow::Result<Vec<EngineId>> {
    if text == "all" {
        return Ok(client.ids().await?);
    }
    text.split(',')
        .map(|t| {
            t.trim().parse().map(EngineId).map_err(|_| {
                anyhow::anyhow!("--targets {text:?}: expected all, an engine id, or ids like 0,2")
            })
        })
        .collect()
}

pub fn map(args: &MapArgs) -> anyhow::Result<ExitCode> {
    let module = Module::from_file(&args.module)?;
    let sig = module.find(&args.func)?.sig.clone();
    let input: Box<dyn BufRead> = match &args.input {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut items = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line.context("reading the argument lines")?;
        if line.trim().is_empty() {
            continue;
        }
        let what = format!("line {}", n + 1);
        let json: Json =
            serde_json::from_str(&line).with_context(|| format!("{what}: not JSON"))?;
        let list = match json {
            Json::Array(list) if sig.params.len() != 1 || list.len() == 1 => list,
            // A one-parameter function may take its argument bare.
            other if sig.params.len() == 1 => vec![other],
            other => bail!("{what}: expected a JSON array of arguments, found {other}"),
        };
        items.push(parse_args(&sig, &list, &what)?);
    }
    let params = sig.params.len();
    // The view zips sequences: one per parameter.
    let mut sequences = vec![Vec::with_capacity(items.len()); params];
    for item in items {
        for (seq, value) in sequences.iter_mut().zip(item) {
            seq.push(value);
        }
    }
    let total = sequences.first().map_or(0, Vec::len);
    tokio_runtime()?.block_on(async {
        let client = connect(&args.profile).await?;
        let mut view = client
            .load_balanced_view()
            .with_chunksize(args.chunksize)
            .with_ordered(!args.unordered);
        view.flags = args.limits.flags();
        let mut result = view.map_async(&module, &args.func, sequences).await?;
        if args.no_wait {
            return print_accepted(&mut result).await;
        }
        let bar = indicatif::ProgressBar::new(total as u64);
        let mut out = std::io::stdout().lock();
        while let Some(value) = result.next().await {
            let value = value?;
            bar.inc(1);
            writeln!(out, "{}", print_value(value.as_ref()))?;
        }
        bar.finish_and_clear();
        let (wall, serial) = (result.wall_time(), result.serial_time());
        let speedup = if wall > 0.0 { serial / wall } else { 0.0 };
        eprintln!(
            "{total} results from {} tasks: wall time {wall:.3} s, serial time {serial:.3} s, speedup {speedup:.2}x",
            result.msg_ids().len()
        );
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn direct_view(profile: &ConnectArgs, targets: &str) -> anyhow::Result<DirectView> {
    let client = connect(profile).await?;
    let targets = parse_targets(targets, &client).await?;
    Ok(client.view(targets))
}

fn print_per_engine(values: &[Value]) {
    let all: Vec<Json> = values.iter().map(value_to_json).collect();
    println!("{}", Json::from(all));
}

pub fn push(args: &PushArgs) -> anyhow::Result<ExitCode> {
    let module = Module::from_file(&args.module)?;
    tokio_runtime()?.block_on(async {
        let dv = direct_view(&args.profile, &args.targets.targets).await?;
        dv.load(&module).await?;
        eprintln!(
            "module {} loaded on engines {:?}",
            module.hash.short(),
            dv.targets().iter().map(|t| t.0).collect::<Vec<_>>()
        );
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn pull(args: &NameArgs) -> anyhow::Result<ExitCode> {
    read_name(args, false)
}

pub fn gather(args: &NameArgs) -> anyhow::Result<ExitCode> {
    read_name(args, true)
}

/// Prints the targets' values of `args.name` as one JSON array: one per
/// engine (`pull`), or their lists joined (`gather`).
fn read_name(args: &NameArgs, gather: bool) -> anyhow::Result<ExitCode> {
    tokio_runtime()?.block_on(async {
        let dv = direct_view(&args.profile, &args.targets.targets).await?;
        let values = if gather {
            dv.gather(&args.name).await?
        } else {
            dv.pull(&args.name).await?
        };
        print_per_engine(&values);
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn scatter(args: &ScatterArgs) -> anyhow::Result<ExitCode> {
    let text = match &args.input {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => std::io::read_to_string(std::io::stdin()).context("reading stdin")?,
    };
    let json: Json = serde_json::from_str(&text).context("the input is not JSON")?;
    let Json::Array(items) = json else {
        bail!("expected a JSON array to scatter, found {}", json);
    };
    let seq = items
        .iter()
        .map(wasp_proto::json::infer_value)
        .collect::<Result<Vec<_>, _>>()?;
    tokio_runtime()?.block_on(async {
        let dv = direct_view(&args.profile, &args.targets.targets).await?;
        dv.scatter(&args.name, seq, args.flatten).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
