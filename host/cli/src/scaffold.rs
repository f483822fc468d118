//! `wasp new`: a task project in Rust, C, Python or JavaScript, wired to
//! the `wasp:task` WIT package.
//!
//! Every project carries the WIT it needs, so it builds anywhere:
//! `wit/world.wit` (package `local:<name>`, one interface named after the
//! task, world `task`) and `wit/deps/task/task.wit` (this binary's copy of
//! the repository's `wit/task.wit`). A Rust project depends on the guest
//! SDK (`guest-sdk/`, crate `wasp-guest`) by path, in the wasp repository
//! (`--repo`, `$WASP_REPO`, or the checkout this binary was built from).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::{Lang, NewArgs};
use crate::toolchain;

/// The `wasp:task` package every task may import.
const TASK_WIT: &str = include_str!("../../../wit/task.wit");
const WORLD_WIT: &str = include_str!("../templates/world.wit.in");
const CARGO_TOML: &str = include_str!("../templates/Cargo.toml.in");
const LIB_RS: &str = include_str!("../templates/lib.rs.in");
const APP_C: &str = include_str!("../templates/app.c.in");
const APP_PY: &str = include_str!("../templates/app.py.in");
const APP_JS: &str = include_str!("../templates/app.js.in");

/// The file holding a project's code, which also tells `wasp build` its
/// language (Rust: `Cargo.toml`).
pub fn source_file(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "Cargo.toml",
        Lang::C => "app.c",
        Lang::Python => "app.py",
        Lang::Js => "app.js",
    }
}

/// `wasp new PATH --lang LANG`: writes the project, refusing a bad name or
/// a folder that exists and is not empty.
pub fn new(args: &NewArgs) -> anyhow::Result<ExitCode> {
    let dir = &args.path;
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: cannot take a task name from this path", dir.display()))?;
    check_name(name)?;
    if dir.exists() && dir.read_dir().map_or(true, |mut d| d.next().is_some()) {
        bail!("{} already exists", dir.display());
    }
    let names = Names::new(name);
    let mut files: Vec<(PathBuf, String)> = vec![
        ("wit/world.wit".into(), names.fill(WORLD_WIT)),
        ("wit/deps/task/task.wit".into(), TASK_WIT.to_owned()),
        (".gitignore".into(), "/target\n".to_owned()),
    ];
    match args.lang {
        Lang::Rust => {
            let sdk = guest_sdk(args.repo.as_deref())?;
            let cargo = names
                .fill(CARGO_TOML)
                .replace("{{sdk}}", &sdk.display().to_string());
            files.push(("Cargo.toml".into(), cargo));
            files.push(("src/lib.rs".into(), names.fill(LIB_RS)));
        }
        Lang::C => files.push(("app.c".into(), names.fill(APP_C))),
        Lang::Python => files.push(("app.py".into(), names.fill(APP_PY))),
        Lang::Js => files.push(("app.js".into(), names.fill(APP_JS))),
    }
    for (path, contents) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    let shown = dir.display();
    println!(
        "created {} task `{name}` in {shown}/ ({} and wit/world.wit); build and run it with:\n  \
         wasp build {shown}\n  wasp run {shown}/target/{name}.wasm greet world",
        args.lang.label(),
        source_file_shown(args.lang)
    );
    Ok(ExitCode::SUCCESS)
}

fn source_file_shown(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "src/lib.rs",
        other => source_file(other),
    }
}

/// A task name is a WIT identifier (it names the package and interface)
/// that every language's bindings can spell: lowercase words of letters
/// and digits, joined by `-`, each starting with a letter.
fn check_name(name: &str) -> anyhow::Result<()> {
    let word_ok = |word: &str| {
        word.starts_with(|c: char| c.is_ascii_lowercase())
            && word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    if !name.split('-').all(word_ok) {
        bail!(
            "{name:?} cannot name a task: use lowercase words of letters and digits \
             joined by `-`, each starting with a letter (e.g. `word-count`)"
        );
    }
    // WIT keywords (`list`, `record`, `use`, ...) cannot name an interface.
    let wit = Names::new(name).fill(WORLD_WIT);
    let mut resolve = wit_parser::Resolve::default();
    resolve
        .push_str("deps/task.wit", TASK_WIT)
        .context("the embedded wasp:task WIT")?;
    if let Err(err) = resolve.push_str("world.wit", &wit) {
        bail!("{name:?} cannot name a task: it is a WIT keyword ({err})");
    }
    Ok(())
}

/// `guest-sdk/` in the wasp repository, absolute.
fn guest_sdk(repo: Option<&Path>) -> anyhow::Result<PathBuf> {
    let repo = toolchain::repo(repo).context(
        "the wasp repository (for the guest SDK, guest-sdk/) was not found: \
         pass --repo DIR or set WASP_REPO",
    )?;
    let sdk = repo.join("guest-sdk");
    if !sdk.join("Cargo.toml").is_file() {
        bail!(
            "the guest SDK (crate wasp-guest) is not at {}: pass --repo with the wasp \
             repository, or set WASP_REPO",
            sdk.display()
        );
    }
    sdk.canonicalize()
        .with_context(|| format!("resolving {}", sdk.display()))
}

/// A task name in each language's spelling.
struct Names {
    /// `word-count`: WIT, Cargo, file names.
    kebab: String,
    /// `word_count`: Rust modules and C identifiers.
    snake: String,
    /// `WordCount`: the Python class.
    upper_camel: String,
    /// `wordCount`: the JavaScript export.
    lower_camel: String,
}

impl Names {
    fn new(kebab: &str) -> Self {
        let upper_camel: String = kebab
            .split('-')
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect();
        let mut lower_camel = upper_camel.clone();
        if let Some(first) = lower_camel.get_mut(..1) {
            first.make_ascii_lowercase();
        }
        Self {
            kebab: kebab.to_owned(),
            snake: kebab.replace('-', "_"),
            upper_camel,
            lower_camel,
        }
    }

    /// `template` with `{{name}}`, `{{snake}}`, `{{class}}` and `{{camel}}`
    /// filled in.
    fn fill(&self, template: &str) -> String {
        template
            .replace("{{name}}", &self.kebab)
            .replace("{{snake}}", &self.snake)
            .replace("{{class}}", &self.upper_camel)
            .replace("{{camel}}", &self.lower_camel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_spelled_per_language() {
        let names = Names::new("word-count2");
        assert_eq!(
            names.fill("{{name}} {{snake}} {{class}} {{camel}}"),
            "word-count2 word_count2 WordCount2 wordCount2"
        );
    }

    #[test]
    fn bad_names_are_refused_with_the_rule() {
        check_name("hello").expect("a plain word");
        check_name("word-count").expect("kebab case");
        for bad in ["Hello", "2fast", "a--b", "snake_case", "-x", ""] {
            let err = check_name(bad).expect_err(bad).to_string();
            assert!(err.contains("lowercase words"), "{bad}: {err}");
        }
        let err = check_name("list").expect_err("a WIT keyword").to_string();
        assert!(err.contains("WIT keyword"), "{err}");
    }
}
