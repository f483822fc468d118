//! The `pow10` task: `x^10`, the map example of ipyparallel's tutorial.

wasp_guest::wit_bindgen::generate!({
    // The repository's wit/ first (it defines wasp:task), then our own.
    path: ["../../../wit", "wit"],
    world: "wasp:pow10/task",
    runtime_path: "wasp_guest::wit_bindgen::rt",
    with: {
        "wasp:task/identity@0.1.0": wasp_guest::bindings::wasp::task::identity,
        "wasp:task/log@0.1.0": wasp_guest::bindings::wasp::task::log,
    },
});

use exports::wasp::pow10::pow10::Guest;

struct Pow10;

impl Guest for Pow10 {
    fn pow10(x: i64) -> i64 {
        // A panic traps the call, which the host reports as a failed task.
        x.checked_pow(10)
            .unwrap_or_else(|| panic!("pow10 overflow: {x}^10 does not fit in s64"))
    }
}

export!(Pow10);
