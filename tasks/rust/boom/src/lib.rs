//! The `boom` task: fails on request (the polyglot failure tests).

wasp_guest::wit_bindgen::generate!({
    path: ["../../../wit", "wit"],
    world: "wasp:boom/task",
    runtime_path: "wasp_guest::wit_bindgen::rt",
    with: {
        "wasp:task/identity@0.1.0": wasp_guest::bindings::wasp::task::identity,
        "wasp:task/log@0.1.0": wasp_guest::bindings::wasp::task::log,
    },
});

use exports::wasp::boom::boom::Guest;

struct Boom;

impl Guest for Boom {
    fn boom(message: String) -> String {
        panic!("boom: {message}")
    }

    fn echo(message: String) -> String {
        message
    }
}

export!(Boom);
