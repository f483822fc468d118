//! The `area` task: the area of a rectangle.

wasp_guest::wit_bindgen::generate!({
    // The repository's wit/ first (it defines wasp:task), then our own.
    path: ["../../../wit", "wit"],
    world: "wasp:area/task",
    runtime_path: "wasp_guest::wit_bindgen::rt",
    with: {
        "wasp:task/identity@0.1.0": wasp_guest::bindings::wasp::task::identity,
        "wasp:task/log@0.1.0": wasp_guest::bindings::wasp::task::log,
    },
});

use exports::wasp::area::area::Guest;

struct Area;

impl Guest for Area {
    fn area(w: i64, h: i64) -> i64 {
        wasp_guest::log::debug(&format!("area of {w} x {h}"));
        w.checked_mul(h)
            .unwrap_or_else(|| panic!("area overflow: {w} * {h} does not fit in s64"))
    }
}

export!(Area);
