//! The `getpid` task: which engine ran this call.
//!
//! ipyparallel's demo maps `os.getpid` over the engines; wasp has no
//! process id to give away, so `getpid` answers with the engine id.
//! `whoami` also exercises the capture of stdout, stderr and log lines.

wasp_guest::wit_bindgen::generate!({
    // The repository's wit/ first (it defines wasp:task), then our own.
    path: ["../../../wit", "wit"],
    world: "wasp:getpid/task",
    runtime_path: "wasp_guest::wit_bindgen::rt",
    with: {
        "wasp:task/identity@0.1.0": wasp_guest::bindings::wasp::task::identity,
        "wasp:task/log@0.1.0": wasp_guest::bindings::wasp::task::log,
    },
});

use exports::wasp::getpid::getpid::Guest;

struct Getpid;

impl Guest for Getpid {
    fn getpid() -> u32 {
        wasp_guest::engine_id()
    }

    fn whoami() -> String {
        let line = format!(
            "engine {} tenant {} task {}",
            wasp_guest::engine_id(),
            wasp_guest::tenant(),
            wasp_guest::task_id()
        );
        println!("{line}");
        eprintln!("whoami on stderr");
        wasp_guest::log::info(&line);
        line
    }
}

export!(Getpid);
