//! The `evil` task: guests that attack the sandbox, for the host's tests.
//!
//! Each export is one attack, and each is meant to end in a trap, an error
//! value or a cap that the host chose:
//!
//! - `spin` never returns: only an epoch deadline or fuel stops it.
//! - `grow-memory` grows memory until `memory.grow` fails, then panics
//!   (unless a memory limit traps first).
//! - `recurse` overflows the wasm call stack.
//! - `flood-stdout` writes as much as asked; the host's capture must cap it.
//! - `huge-result` returns as long a string as asked.
//! - `read-host-file`, `read-env` use std's WASI filesystem and environment,
//!   and report the error text.
//! - `resolve-name`, `open-socket` call `wasi:sockets` directly (through the
//!   `wasip2` crate, not std) so that the error names the WASI error code,
//!   e.g. `access-denied (error 1)`.
//! - `fail` panics with the given message.
//! - `bool-bomb` and `empty-strings` return a list of `n` items that costs
//!   the guest next to nothing (zeroed pages it never touches) and the host,
//!   if it lifted the list in full, a whole value per item. They are
//!   written by hand (below, `bombs`), not by wit-bindgen, whose lowering
//!   would build the list item by item in the guest first.
//! - `zeros`, `list-past-memory` and `misaligned-list` return lists of
//!   numbers, by hand too: `n` zeros as cheaply as `bool-bomb`, a list
//!   reaching past the end of memory, and a misaligned one. The host lifts
//!   lists of numbers as one copy (issue 13) and must check them as
//!   wasmtime checks the lists it lifts.
//! - `remember` reads what an earlier call left in linear memory (a static,
//!   and fresh heap pages) and leaves its own mark there: a fresh instance
//!   must see none of another's.
//!
//! A panic prints its message to stderr and then traps (`unreachable`):
//! the message is in the call's captured stderr, not in the trap.

wasp_guest::wit_bindgen::generate!({
    // The repository's wit/ first (it defines wasp:task), then our own.
    path: ["../../../wit", "wit"],
    world: "wasp:evil/task",
    runtime_path: "wasp_guest::wit_bindgen::rt",
    // Exported by hand, in `bombs`.
    skip: ["bool-bomb", "empty-strings", "zeros", "list-past-memory", "misaligned-list"],
    with: {
        "wasp:task/identity@0.1.0": wasp_guest::bindings::wasp::task::identity,
        "wasp:task/log@0.1.0": wasp_guest::bindings::wasp::task::log,
    },
});

mod bombs;
mod sockets;

use std::hint::black_box;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use exports::wasp::evil::evil::Guest;

struct Evil;

impl Guest for Evil {
    fn spin() -> u64 {
        let mut n: u64 = 0;
        loop {
            // black_box makes each step observable, so the loop stays.
            n = black_box(n).wrapping_add(1);
        }
    }

    fn grow_memory() -> u32 {
        const STEP: usize = 16;
        let mut pages: usize = 0;
        loop {
            if core::arch::wasm32::memory_grow(0, STEP) == usize::MAX {
                panic!("memory.grow refused after {pages} pages");
            }
            pages += STEP;
        }
    }

    fn recurse(depth: u64) -> u64 {
        recurse(depth)
    }

    fn flood_stdout(bytes: u64) -> u64 {
        const CHUNK: usize = 64 * 1024;
        let chunk = vec![b'x'; CHUNK];
        let mut stdout = std::io::stdout().lock();
        let mut written: u64 = 0;
        while written < bytes {
            // Fits: it is at most CHUNK.
            let n = (bytes - written).min(CHUNK as u64) as usize;
            if let Err(err) = stdout.write_all(&chunk[..n]) {
                panic!("stdout write failed after {written} bytes: {err}");
            }
            written += n as u64;
        }
        if let Err(err) = stdout.flush() {
            panic!("stdout flush failed after {written} bytes: {err}");
        }
        written
    }

    fn huge_result(bytes: u64) -> String {
        let Ok(len) = usize::try_from(bytes) else {
            panic!("huge-result: {bytes} bytes do not fit in a 32-bit address space");
        };
        "x".repeat(len)
    }

    fn read_host_file(path: String) -> Result<String, String> {
        std::fs::read_to_string(&path).map_err(|err| err.to_string())
    }

    fn read_env(name: String) -> Result<String, String> {
        std::env::var(&name).map_err(|err| err.to_string())
    }

    fn resolve_name(host: String) -> Result<Vec<String>, String> {
        sockets::resolve(&host)
            .map(|addrs| addrs.iter().map(ToString::to_string).collect())
            .map_err(|err| format!("resolve {host}: {err}"))
    }

    fn open_socket(addr: String) -> Result<String, String> {
        let remote = addr
            .parse()
            .map_err(|err| format!("bad address {addr:?}: {err}"))?;
        sockets::connect(remote)
    }

    fn fail(message: String) -> u32 {
        panic!("{message}");
    }

    fn remember(value: u64) -> (u64, u64) {
        const WORDS: usize = 256 * 1024;
        let previous = REMEMBERED.swap(value, Ordering::Relaxed);
        // New pages from `memory.grow` are zero by the wasm spec, so the
        // allocator hands them out for a zeroed allocation without writing
        // them: whatever is not zero here, the host left behind.
        let mut heap = vec![0u64; WORDS];
        let dirty = heap.iter().filter(|&&word| black_box(word) != 0).count() as u64;
        heap.fill(value);
        // Kept, so that the next allocation takes new pages again.
        std::mem::forget(black_box(heap));
        (previous, dirty)
    }
}

/// What the last `remember` call of this instance stored.
static REMEMBERED: AtomicU64 = AtomicU64::new(0);

export!(Evil);

/// Recurses until the stack runs out. The work after the call, on a value
/// the optimizer cannot see through, keeps it from becoming a loop.
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    black_box(recurse(depth + 1)).wrapping_add(1)
}
