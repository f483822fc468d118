//! A client's big encoding written straight into a sealed memory file
//! ([`spill`]), into pages allocated ahead of it.
//!
//! Most of the cost of writing 8 MB into a new memory file is not the copy
//! but the kernel allocating and charging a page for every 4 KiB: about
//! 0.45 ms a megabyte on the 2-core virtual machines we measure on, against
//! 0.25 ms a megabyte for the same write into pages already allocated.
//! After each big spill (of [`SPARE_AT_LEAST`] or more), a background
//! thread allocates the next file ahead of time (`fallocate`), as big as
//! the last one, while the caller waits for its result; the next spill of
//! about that size (repeated pushes, a loop over calls with big arguments)
//! only copies. Ray's object store gets
//! the same effect from one big arena allocated up front; a file of its own
//! per value keeps ours sealed, so that no receiver sees bytes change.
//!
//! Tried and left: writing through a writable mapping of the ready pages
//! (mapping them costs about as much again here), and zeroing them ahead
//! (a full-page `write` does not zero them anyway).
//!
//! The spare is the only idle cost: one file, the size of the last big
//! spill and at most [`SPARE_AT_MOST`], given back after [`SPARE_IDLE`]
//! unused.

use std::io::{self, Seek, Write};
use std::os::fd::OwnedFd;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustix::fs::{MemfdFlags, SealFlags};

use super::{REQUIRED_SEALS, map_blob};

/// The smallest spill a spare file is made ahead for. A spare holds a
/// second copy's worth of memory while a call is in flight (the spill
/// file and the next one's spare): for an 8 MB argument it would save
/// about 2 ms of a 10 ms call and take the client's memory from 2x the
/// argument above idle to 3x (`bigvalues`); a 100 MB push it spares 20 ms
/// or more, at 2x.
pub const SPARE_AT_LEAST: usize = 32 << 20;

/// The largest spill a spare file is made ahead for.
pub const SPARE_AT_MOST: usize = 256 << 20;

/// How long a spare file is kept unused before it is given back.
pub const SPARE_IDLE: Duration = Duration::from_secs(30);

/// The spare file and the request for the next, shared with the thread
/// that makes them ([`SPARES`]).
struct Spares {
    state: Mutex<SpareState>,
    /// Wakes the thread when a spare is asked for.
    asked: Condvar,
}

struct SpareState {
    /// The spare file and when it was made, when one is ready.
    ready: Option<(std::fs::File, Instant)>,
    /// The length of the spare to make next, if one is asked for.
    wanted: Option<usize>,
}

/// This process's spares.
static SPARES: Spares = Spares {
    state: Mutex::new(SpareState {
        ready: None,
        wanted: None,
    }),
    asked: Condvar::new(),
};

impl Spares {
    /// Asks for a spare of `len` bytes, starting the thread that makes
    /// spares on first use (if it cannot start, spills go without).
    fn ask(&'static self, len: usize) {
        static STARTED: OnceLock<bool> = OnceLock::new();
        let started = *STARTED.get_or_init(|| {
            std::thread::Builder::new()
                .name("wasp-spare".into())
                .spawn(move || self.make())
                .is_ok()
        });
        if let (true, Some(mut state)) = (started, self.lock()) {
            state.wanted = Some(len);
            self.asked.notify_one();
        }
    }

    /// The spare file, if one is ready.
    fn take(&self) -> Option<std::fs::File> {
        self.lock()?.ready.take().map(|(file, _)| file)
    }

    fn lock(&self) -> Option<MutexGuard<'_, SpareState>> {
        self.state.lock().ok()
    }

    /// The thread's loop: makes each spare asked for, and gives one back
    /// once it has been unused for [`SPARE_IDLE`].
    fn make(&self) {
        let Some(mut state) = self.lock() else { return };
        loop {
            if let Some(len) = state.wanted.take() {
                // Allocated without the lock: a spill meanwhile goes on
                // without a spare.
                drop(state);
                let made = allocated_file(len);
                let Some(relocked) = self.lock() else { return };
                state = relocked;
                match made {
                    Ok(file) => state.ready = Some((file, Instant::now())),
                    Err(err) => tracing::debug!(cause = %err, "no spare memory file made"),
                }
                continue;
            }
            if state
                .ready
                .as_ref()
                .is_some_and(|(_, made)| made.elapsed() >= SPARE_IDLE)
            {
                state.ready = None;
            }
            let Ok((relocked, _)) = self.asked.wait_timeout(state, SPARE_IDLE) else {
                return;
            };
            state = relocked;
        }
    }
}

/// A [`wasp_proto::msg::Spill`]: the encoding written straight into a
/// sealed memory file (the spare one when it is ready), mapped read-only. A
/// frame to a same-host peer then passes that file as it is (`Outgoing`
/// finds it by address), so a client's 8 MB argument is copied once, from
/// the user's vector into the file, rather than into a buffer and then
/// into a file; sent through QUIC instead, the mapping is read as any
/// bytes are.
pub fn spill(write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>) -> io::Result<Bytes> {
    let (fd, len) = spill_into(SPARES.take(), write)?;
    // The next spare, as big as this spill, when that is big enough to
    // gain from one and small enough to keep idle.
    if (SPARE_AT_LEAST..=SPARE_AT_MOST).contains(&len) {
        SPARES.ask(len);
    }
    map_blob(fd, usize::MAX)
}

/// Where to encode values that hold `typed` bytes of typed lists
/// ([`Value::typed_bytes`](wasp_proto::Value::typed_bytes)): when they are
/// big ([`BLOB_AT_LEAST`](wasp_proto::codec::BLOB_AT_LEAST) and more),
/// straight into a sealed memory file ([`spill`]), which a peer on this
/// host receives as it is; otherwise into a buffer of their own. (A list
/// of a million `Value::F64` is a million small writes: into a buffer
/// first, then copied whole.)
pub fn spill_for(typed: usize) -> Option<wasp_proto::msg::Spill> {
    (typed >= wasp_proto::codec::BLOB_AT_LEAST).then_some(spill as wasp_proto::msg::Spill)
}

/// Bytes of the spare file this process holds now (0 if none): memory it
/// holds without mapping it, so its resident set leaves it out.
pub fn spare_bytes() -> usize {
    SPARES
        .lock()
        .and_then(|state| {
            let (file, _) = state.ready.as_ref()?;
            Some(rustix::fs::fstat(file).ok()?.st_blocks as usize * 512)
        })
        .unwrap_or(0)
}

/// Writes an encoding into `file` (or a new one) from its start, cuts it
/// to what was written, and seals it; the file and its length.
fn spill_into(
    file: Option<std::fs::File>,
    write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> io::Result<(OwnedFd, usize)> {
    let mut file = match file {
        Some(file) => file,
        None => new_file()?,
    };
    {
        // Small pieces gathered; a big one (a typed list's bytes) goes
        // straight through.
        let mut buffered = io::BufWriter::with_capacity(64 * 1024, &mut file);
        write(&mut buffered)?;
        buffered.flush()?;
    }
    let written = file.stream_position()?;
    // A spare longer than the encoding gives the rest back.
    file.set_len(written)?;
    let fd = OwnedFd::from(file);
    rustix::fs::fcntl_add_seals(&fd, REQUIRED_SEALS | SealFlags::SEAL)?;
    Ok((fd, written as usize))
}

/// A new memory file that can be sealed.
fn new_file() -> io::Result<std::fs::File> {
    let fd =
        rustix::fs::memfd_create("wasp-blob", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    Ok(std::fs::File::from(fd))
}

/// A memory file of `len` bytes, every page allocated.
fn allocated_file(len: usize) -> io::Result<std::fs::File> {
    let file = new_file()?;
    rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, len as u64)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use wasp_proto::codec::BLOB_AT_LEAST;

    use super::*;

    /// What a spill wrote, as a vector.
    fn contents(fd: &OwnedFd) -> Vec<u8> {
        use std::io::Read;
        let mut file = std::fs::File::from(fd.try_clone().expect("dup"));
        file.rewind().expect("rewinds");
        let mut back = Vec::new();
        file.read_to_end(&mut back).expect("reads");
        back
    }

    /// Spills of every size around a spare's length hold exactly what was
    /// written, sealed, in the spare file itself when there is one:
    /// shorter than it (the rest given back), as long, and longer (the
    /// rest written past it); and the same without a spare.
    #[test]
    fn a_spill_into_a_spare_file_holds_exactly_what_was_written() {
        let ready = 3 * BLOB_AT_LEAST + 4099;
        let bytes: Vec<u8> = (0..ready + 2 * BLOB_AT_LEAST)
            .map(|i| (i * 13) as u8)
            .collect();
        for len in [ready, ready - 4097, ready + BLOB_AT_LEAST + 1, 100, 0] {
            for with_spare in [true, false] {
                let spare = with_spare.then(|| allocated_file(ready).expect("a spare"));
                let spare_inode = spare
                    .as_ref()
                    .map(|file| rustix::fs::fstat(file).expect("stat").st_ino);
                let (fd, written) = spill_into(spare, &mut |writer| {
                    // In pieces, as an encoder writes: a small head, the bulk.
                    let head = len.min(7);
                    writer.write_all(&bytes[..head])?;
                    writer.write_all(&bytes[head..len])
                })
                .expect("spills");
                let what = format!("{len} bytes, spare {with_spare}");
                assert_eq!(written, len, "{what}");
                assert!(contents(&fd) == bytes[..len], "{what}");
                let seals = rustix::fs::fcntl_get_seals(&fd).expect("seals");
                assert!(seals.contains(REQUIRED_SEALS), "{what}: {seals:?}");
                if let Some(inode) = spare_inode {
                    let inode_now = rustix::fs::fstat(&fd).expect("stat").st_ino;
                    assert_eq!(inode_now, inode, "{what}: the spare file itself");
                }
            }
        }
    }

    /// After a big spill, a spare file of its size is made for the next,
    /// allocated (other tests' spills may take it first, and ask for
    /// another: one appears all the same).
    #[test]
    fn a_big_spill_has_a_spare_made_for_the_next() {
        let bytes = vec![5u8; SPARE_AT_LEAST];
        let spilled = spill(&mut |writer| writer.write_all(&bytes)).expect("spills");
        assert!(spilled[..] == bytes[..]);
        let mut blocks = None;
        for _ in 0..10_000 {
            if let Some((file, _)) = &SPARES.lock().expect("lock").ready {
                blocks = Some(rustix::fs::fstat(file).expect("stat").st_blocks);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let blocks = blocks.expect("a spare was made");
        assert!(blocks as usize * 512 >= SPARE_AT_LEAST, "{blocks} blocks");
    }

    /// Values with a big typed list are encoded straight into a memory
    /// file (what engines do with results and pulls, clients with
    /// arguments and pushes); smaller ones into a buffer.
    #[test]
    fn big_typed_values_spill_into_a_memory_file() {
        use wasp_proto::Value;
        use wasp_proto::msg::Values;
        let big = vec![Some(Value::from(vec![0.5f64; BLOB_AT_LEAST / 8]))];
        let small = vec![Some(Value::from(vec![0.5f64; BLOB_AT_LEAST / 8 - 1]))];
        for (values, spilled) in [(big, true), (small, false)] {
            let typed = values.iter().flatten().map(Value::typed_bytes).sum();
            let packed = Values::encode_spilling(&values, spill_for(typed)).expect("encodes");
            assert_eq!(
                super::super::find_mapped(packed.as_bytes()).is_some(),
                spilled,
                "{typed} bytes of typed lists"
            );
            assert_eq!(packed.decode().expect("decodes"), values);
        }
    }

    /// A spare file's pages are allocated when it is made, not when it is
    /// written: its blocks cover its length at once.
    #[test]
    fn a_spare_file_is_allocated_when_made() {
        let spare = allocated_file(2 * BLOB_AT_LEAST).expect("a spare");
        let stat = rustix::fs::fstat(&spare).expect("stat");
        assert_eq!(stat.st_size as usize, 2 * BLOB_AT_LEAST);
        assert!(
            stat.st_blocks as usize * 512 >= 2 * BLOB_AT_LEAST,
            "{} blocks",
            stat.st_blocks
        );
        let sized = new_file().expect("a file");
        sized.set_len(2 * BLOB_AT_LEAST as u64).expect("sized");
        let stat = rustix::fs::fstat(&sized).expect("stat");
        assert_eq!(stat.st_blocks, 0, "a file only sized holds no pages");
    }
}
