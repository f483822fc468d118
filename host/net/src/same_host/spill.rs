//! A client's big encoding written straight into a sealed memory file
//! ([`spill`]).
//!
//! Most of the cost is not the copy but the kernel finding, zeroing and
//! mapping a page for every 4 KiB (about 0.5 ms a megabyte on the 2-core
//! virtual machines we measure on, against 0.05-0.15 ms a megabyte for the
//! copy into memory already mapped). Files made ahead of time by a background
//! thread (allocated and zeroed, then only copied into) were tried: a
//! 100 MB spill went from 46-49 ms to 35-44 ms, and an 8 MB one did not
//! change, because mapping the ready pages still costs about 0.2 ms a
//! megabyte here, while the thread took 60-75 ms of a core per 100 MB and
//! kept a file of the last spill's size idle. Huge pages would remove the
//! per-page cost, but shared memory gets them only where the host allows
//! them (`/sys/kernel/mm/transparent_hugepage/shmem_enabled`, `never` here).

use std::io::{self, Write};
use std::os::fd::OwnedFd;

use bytes::Bytes;
use rustix::fs::{MemfdFlags, SealFlags};

use super::{REQUIRED_SEALS, map_blob};

/// A [`wasp_proto::msg::Spill`]: the encoding written straight into a new
/// sealed memory file, mapped read-only. A frame to a same-host peer then
/// passes that file as it is (`Outgoing` finds it by address), so a
/// client's 8 MB argument is copied once, from the user's vector into the
/// file, rather than into a buffer and then into a file; sent through
/// QUIC instead, the mapping is read as any bytes are.
pub fn spill(write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>) -> io::Result<Bytes> {
    let fd =
        rustix::fs::memfd_create("wasp-blob", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    let mut file = std::fs::File::from(fd);
    {
        // Small pieces gathered; a big one (a typed list's bytes) goes
        // straight through.
        let mut buffered = io::BufWriter::with_capacity(64 * 1024, &mut file);
        write(&mut buffered)?;
        buffered.flush()?;
    }
    let fd = OwnedFd::from(file);
    rustix::fs::fcntl_add_seals(&fd, REQUIRED_SEALS | SealFlags::SEAL)?;
    map_blob(fd, usize::MAX)
}
