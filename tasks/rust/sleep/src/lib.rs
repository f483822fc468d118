//! The `sleep` task: sleeps through WASI clocks, for scheduling, load
//! balancing and timeout tests.

wasp_guest::wit_bindgen::generate!({
    // The repository's wit/ first (it defines wasp:task), then our own.
    path: ["../../../wit", "wit"],
    world: "wasp:sleep/task",
    runtime_path: "wasp_guest::wit_bindgen::rt",
    with: {
        "wasp:task/identity@0.1.0": wasp_guest::bindings::wasp::task::identity,
        "wasp:task/log@0.1.0": wasp_guest::bindings::wasp::task::log,
    },
});

use std::time::Duration;

use exports::wasp::sleep::sleep::Guest;

struct Sleep;

impl Guest for Sleep {
    fn sleep(t: f64) {
        sleep(t);
    }

    fn sleep_here(t: f64) -> u32 {
        sleep(t);
        wasp_guest::engine_id()
    }
}

export!(Sleep);

/// Sleeps `t` seconds; negative or NaN is 0, and a `t` too large for a
/// `Duration` (infinity included) sleeps for as long as a `Duration` can say.
fn sleep(t: f64) {
    if t.is_nan() || t <= 0.0 {
        return;
    }
    std::thread::sleep(Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX));
}
