//! `bool-bomb`, `empty-strings` and the bad lists of numbers (`zeros`,
//! `list-past-memory`, `misaligned-list`), exported by hand.
//!
//! Both return a `list<T>` whose canonical-ABI form is all zero bytes: a
//! `false` is the byte 0, an empty string the pair (pointer 0, length 0).
//! So the list is a fresh zeroed allocation, which the allocator takes from
//! new `memory.grow` pages without writing them: the guest pays `n` (or
//! `8 n`) bytes of address space and no resident memory, while a host that
//! lifted the list in full would pay a whole value per item. wit-bindgen's
//! lowering would instead build a `Vec<bool>` or `Vec<String>` first and
//! copy it item by item, so the guest would hit its own memory limit long
//! before the host's result limit is tested.
//!
//! The core signature of `func(n: u32) -> list<T>` is `(i32) -> i32`: the
//! result is a pointer to a return area holding the list's pointer and
//! length.

use std::sync::atomic::{AtomicU32, Ordering};

/// The return area: (list pointer, list length), as wasm32 `u32`s. Atomics
/// only to have a `static` the guest may write without `unsafe`; the layout
/// is that of `[u32; 2]`.
static RETURN_AREA: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];

/// Leaks a zeroed allocation of `bytes` bytes aligned to 8 and returns the
/// return area describing it as a list of `n` items.
fn zeroed_list(n: u32, item_bytes: usize) -> i32 {
    let Some(words) = (n as usize).checked_mul(item_bytes).map(|b| b.div_ceil(8)) else {
        panic!("a list of {n} items of {item_bytes} bytes does not fit in 32 bits");
    };
    let list: &'static mut [u64] = vec![0u64; words].leak();
    // wasm32: pointers are 32 bits, so this cast is exact.
    list_at(list.as_ptr() as usize as u32, n)
}

/// Returns the return area describing the list of `n` items at `ptr`,
/// whatever is there.
fn list_at(ptr: u32, n: u32) -> i32 {
    RETURN_AREA[0].store(ptr, Ordering::Relaxed);
    RETURN_AREA[1].store(n, Ordering::Relaxed);
    RETURN_AREA.as_ptr() as usize as i32
}

// SAFETY: the export names are the core exports wit-component expects for
// `wasp:evil/evil` functions that wit-bindgen was told to skip; nothing
// else defines them.
#[unsafe(export_name = "wasp:evil/evil#bool-bomb")]
extern "C" fn bool_bomb(n: i32) -> i32 {
    zeroed_list(n as u32, 1)
}

// SAFETY: as above.
#[unsafe(export_name = "wasp:evil/evil#empty-strings")]
extern "C" fn empty_strings(n: i32) -> i32 {
    zeroed_list(n as u32, 8)
}

// SAFETY: as above.
#[unsafe(export_name = "wasp:evil/evil#zeros")]
extern "C" fn zeros(n: i32) -> i32 {
    zeroed_list(n as u32, 8)
}

// SAFETY: as above.
#[unsafe(export_name = "wasp:evil/evil#list-past-memory")]
extern "C" fn list_past_memory(n: i32) -> i32 {
    // The last 8-aligned address below the end of memory (64 KiB pages).
    let end = (core::arch::wasm32::memory_size(0) as u64 * 65536).min(u64::from(u32::MAX)) as u32;
    list_at(end - 8, n as u32)
}

// SAFETY: as above.
#[unsafe(export_name = "wasp:evil/evil#misaligned-list")]
extern "C" fn misaligned_list() -> i32 {
    let list: &'static mut [u64] = vec![0u64; 2].leak();
    list_at(list.as_ptr() as usize as u32 + 4, 1)
}
