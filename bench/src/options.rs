//! The command line the `runtime` and `polyglot` benchmarks share:
//! `[--quick] [--out PATH] [FILTER NAME]...`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

/// A benchmark's options.
pub struct Options {
    /// Budgets cut tenfold: a smoke run.
    pub quick: bool,
    /// Where the JSON figures go.
    pub out: PathBuf,
    /// Only these names (all when empty).
    pub only: Vec<String>,
}

/// The filter flag of one benchmark, e.g. `--task NAME`.
pub struct Filter {
    /// The flag, e.g. `--task`.
    pub flag: &'static str,
    /// What its value is, for the error when it is missing.
    pub needs: &'static str,
    /// Its placeholder in the usage line, e.g. `NAME`.
    pub metavar: &'static str,
}

impl Options {
    /// Parses the arguments after the program name.
    pub fn parse(
        mut args: impl Iterator<Item = String>,
        default_out: &str,
        filter: &Filter,
    ) -> anyhow::Result<Self> {
        let mut options = Options {
            quick: false,
            out: PathBuf::from(default_out),
            only: Vec::new(),
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--out" => options.out = args.next().context("--out needs a path")?.into(),
                flag if flag == filter.flag => options.only.push(
                    args.next()
                        .with_context(|| format!("{} needs {}", filter.flag, filter.needs))?,
                ),
                other => bail!(
                    "unknown argument {other:?} (expected --quick, --out PATH or {} {})",
                    filter.flag,
                    filter.metavar
                ),
            }
        }
        Ok(options)
    }

    /// Whether `name` is to be measured.
    pub fn includes(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|n| n == name)
    }
}

/// Runs a benchmark's `run` on a multi-thread tokio runtime and returns
/// its exit ([`exit_code`]).
pub fn block_on_main(run: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    // A bench's client waits for replies: let it run when one arrives, as
    // the controller does (its runtime's threads inherit the slice).
    wasp_net::wakeups::prefer_prompt_wakeups();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => exit_code(runtime.block_on(run)),
        Err(err) => exit_code(Err(err.into())),
    }
}

/// A benchmark's exit: its error printed, whole, on failure.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
