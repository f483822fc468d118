//! End-to-end tests of the `wasp` binary: `inspect` and `run` on the real
//! task components, as a user types them.

use std::process::{Command, Output};

use wasp_task_artifacts as tasks;

mod common;

/// Runs `wasp` with `args` in a fresh compile cache, and prints the command
/// and its output if the test fails.
fn wasp(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasp"));
    command.env("WASP_CACHE_DIR", cache.path());
    common::output_shown(&mut command, args)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn run_area_prints_21() {
    let out = wasp(&["run", tasks::AREA, "area", "3", "7"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "21\n");
}

#[test]
fn run_takes_json_and_bare_text_and_prints_json() {
    let out = wasp(&["run", tasks::NORM, "norm", "[3, 4]", "2"]);
    assert_eq!(stdout(&out), "5.0\n");
    let out = wasp(&["run", tasks::WORDCOUNT, "count-words", "to be or not to be"]);
    assert_eq!(
        stdout(&out),
        "[{\"word\":\"be\",\"count\":2},{\"word\":\"not\",\"count\":1},\
         {\"word\":\"or\",\"count\":1},{\"word\":\"to\",\"count\":2}]\n"
    );
}

#[test]
fn run_shows_the_guest_output_on_stderr() {
    let out = wasp(&["run", tasks::GETPID, "whoami"]);
    assert_eq!(stdout(&out), "\"engine 0 tenant local task run\"\n");
    let err = stderr(&out);
    assert!(err.contains("engine 0 tenant local task run\n"), "{err}");
    assert!(err.contains("whoami on stderr"), "{err}");
    assert!(
        err.contains("[Info] engine 0 tenant local task run"),
        "{err}"
    );
}

#[test]
fn wrong_arity_and_types_show_the_expected_signature() {
    let out = wasp(&["run", tasks::AREA, "area", "3"]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        "wasp: error: expected 2 argument(s), got 1; the signature is `area: func(w: s64, h: s64) -> s64`\n"
    );
    let out = wasp(&["run", tasks::AREA, "area", "3", "seven"]);
    assert_eq!(
        stderr(&out),
        "wasp: error: argument h: expected s64, found \"seven\"; \
         the signature is `area: func(w: s64, h: s64) -> s64`\n"
    );
    let out = wasp(&["run", tasks::AREA, "volume"]);
    assert!(
        stderr(&out).contains("no function named \"volume\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_failing_task_says_which_limit() {
    let out = wasp(&["run", tasks::EVIL, "spin", "--timeout", "300ms"]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        "wasp: error: spin failed: task exceeded the wall-time limit (wall_time = 300ms)\n"
    );
}

#[test]
fn inspect_prints_every_export_with_its_signature() {
    let out = wasp(&["inspect", tasks::SLEEP]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("  sleep: func(t: f64)    (wasp:sleep/sleep#sleep)\n"),
        "{text}"
    );
    assert!(
        text.contains("  sleep-here: func(t: f64) -> u32    (wasp:sleep/sleep#sleep-here)\n"),
        "{text}"
    );

    let out = wasp(&["inspect", "--json", tasks::WORDCOUNT]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let export = &json["exports"][0];
    assert_eq!(export["name"], "count-words");
    assert_eq!(export["qualified"], "wasp:wordcount/wordcount#count-words");
    assert_eq!(export["params"][0]["type"], "string");
    assert_eq!(
        export["result"],
        "list<record { word: string, count: u32 }>"
    );
    assert_eq!(json["sha256"].as_str().map(str::len), Some(64));
}

#[test]
fn bad_files_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"hello, world").unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let truncated = dir.path().join("truncated.wasm");
    let area = std::fs::read(tasks::AREA).unwrap();
    std::fs::write(&truncated, &area[..area.len() - 100]).unwrap();

    let out = wasp(&["inspect", garbage.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("does not start with the \\0asm magic bytes"),
        "{}",
        stderr(&out)
    );
    let out = wasp(&["inspect", core.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("core WebAssembly module, not a component"),
        "{}",
        stderr(&out)
    );
    let out = wasp(&["inspect", truncated.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("invalid component: "),
        "{}",
        stderr(&out)
    );
    let out = wasp(&["inspect", "--max-module-size", "1KiB", tasks::AREA]);
    assert!(
        stderr(&out).contains("is over the module size limit (1 KiB)"),
        "{}",
        stderr(&out)
    );
}
