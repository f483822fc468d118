//! The same-host channel: between a controller and a client or engine on
//! one host, big values travel as sealed memory files the receiver maps,
//! not as bytes through QUIC.
//!
//! A QUIC connection carries every message, encrypted, through the
//! kernel's UDP stack: on this machine an 8 MB argument costs 16 ms a hop
//! however the windows are set, twice the time Ray takes for the whole
//! call through its shared-memory object store. Between processes on one
//! host the bytes need not move at all. The channel is a Unix socket (a
//! `SOCK_SEQPACKET` in the abstract namespace, which is private to the
//! network namespace, so a peer in another one, as a simulated remote
//! host, falls back to QUIC) bound to one QUIC connection:
//!
//! 1. The controller listens on an abstract name it writes into its
//!    connection files ([`ConnectionFile::same_host`]).
//! 2. A peer that can reach the name connects, and the controller hands
//!    it a random ticket ([`SameHostListener`]).
//! 3. The peer presents the ticket in its `Hello`, over the authenticated
//!    QUIC connection; the controller binds that socket to that
//!    connection, and says so in its `Welcome`. A ticket is good once,
//!    for a short while, and proves nothing but the possession of a
//!    socket: the token still decides who the peer is.
//!
//! Then each side's [`FramedSend`](crate::FramedSend) encodes blob frames
//! (`wasp_proto::codec::encode_blob_frame`): a byte string of
//! `BLOB_AT_LEAST` or more is written into a memory file (`memfd`), sealed
//! against any change ([`make_blob`]), and passed over the socket
//! (`SCM_RIGHTS`) just before the frame that names it. The receiver
//! checks the seals and the size and maps it read-only ([`map_blob`]): the
//! bytes are a slice of that mapping from then on. A controller forwards
//! a client's mapped argument to an engine as the same memory file
//! ([`Outgoing`] finds it by address), so an 8 MB argument is written once,
//! by the client, and read once, by the engine that runs the task.
//!
//! What a peer can send is bounded: a frame names at most [`MAX_BLOBS`]
//! blobs; each blob, and all of a frame's together, fit the receiver's
//! frame cap; a blob must be sealed against writing, shrinking and growing
//! (so it can neither change under the receiver nor vanish and fault its
//! reads); and a process keeps at most [`MAX_MAPPED`] memory files open at
//! once (past that, a blob is copied out and its file closed).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, IoSlice, IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use tokio::io::unix::AsyncFd;
use wasp_proto::codec::{BLOB_AT_LEAST, BlobPlace, BlobSink};

use crate::NetError;

mod spill;
pub use spill::{SPARE_AT_LEAST, SPARE_AT_MOST, SPARE_IDLE, spare_bytes, spill, spill_for};

/// Most blobs one frame may name: more big values in one message travel
/// inline.
pub const MAX_BLOBS: usize = 64;

/// Most memory files a process keeps open for the blobs it holds; past
/// it, a received blob is copied into the process's own memory and its
/// file closed (and it is forwarded, if it is, as a new file).
pub const MAX_MAPPED: usize = 256;

/// The bytes of a ticket.
pub const TICKET_LEN: usize = 32;

/// Most sockets waiting with a ticket for their peer's `Hello`; a new one
/// past it evicts the oldest.
const MAX_WAITING: usize = 64;

/// How long a ticket waits for its peer's `Hello`.
const TICKET_LIFETIME: Duration = Duration::from_secs(30);

/// The seals a blob must carry: no write, shrink or growth, ever.
const REQUIRED_SEALS: SealFlags = SealFlags::WRITE
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW);

/// One side's end of a same-host channel, bound to one QUIC connection.
#[derive(Debug)]
pub struct SameHost {
    socket: AsyncFd<OwnedFd>,
}

impl SameHost {
    fn new(socket: OwnedFd) -> io::Result<Self> {
        Ok(SameHost {
            socket: register(socket)?,
        })
    }

    /// Connects to a controller's channel by its abstract name and reads
    /// the ticket to present in the `Hello`. Fails at once when the name
    /// is not reachable (another host or network namespace).
    pub async fn connect(name: &str) -> Result<(SameHost, Vec<u8>), NetError> {
        let (socket, address) = socket_named(name)?;
        rustix::net::connect(&socket, &address)
            .map_err(io::Error::from)
            .map_err(same_host_error("connecting"))?;
        let channel = SameHost::new(socket).map_err(same_host_error("registering the socket"))?;
        let mut ticket = vec![0u8; TICKET_LEN];
        let mut no_files = Vec::new();
        let read = crate::with_deadline(Duration::from_secs(5), "the same-host ticket", async {
            channel
                .recv(&mut ticket, &mut no_files)
                .await
                .map_err(same_host_error("reading the ticket"))
        })
        .await?;
        if read != TICKET_LEN {
            return Err(NetError::SameHost {
                what: "reading the ticket",
                source: io::Error::other(format!("a ticket of {read} bytes, not {TICKET_LEN}")),
            });
        }
        Ok((channel, ticket))
    }

    /// Sends the memory files of blob frame number `seq`.
    pub(crate) async fn send_blobs(&self, seq: u64, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        let mut body = [0u8; 12];
        body[..8].copy_from_slice(&seq.to_le_bytes());
        body[8..].copy_from_slice(&(fds.len() as u32).to_le_bytes());
        self.send(&body, fds).await
    }

    /// Sends one message, `body`, carrying `fds` (none: a plain message).
    async fn send(&self, body: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_BLOBS))];
        loop {
            let mut guard = self.socket.writable().await?;
            let sent = guard.try_io(|socket| {
                let mut ancillary = SendAncillaryBuffer::new(&mut space);
                if !fds.is_empty() && !ancillary.push(SendAncillaryMessage::ScmRights(fds)) {
                    return Err(io::Error::other(format!(
                        "{} memory files are more than a message holds",
                        fds.len()
                    )));
                }
                rustix::net::sendmsg(
                    socket,
                    &[IoSlice::new(body)],
                    &mut ancillary,
                    SendFlags::NOSIGNAL,
                )
                .map_err(io::Error::from)
            });
            match sent {
                Ok(result) => return result.map(drop),
                Err(_would_block) => continue,
            }
        }
    }

    /// Receives the memory files of the next blob frame: its number and
    /// its files, at most [`MAX_BLOBS`].
    pub(crate) async fn recv_blobs(&self) -> io::Result<(u64, Vec<OwnedFd>)> {
        let mut body = [0u8; 12];
        let mut fds = Vec::new();
        let read = self.recv(&mut body, &mut fds).await?;
        if read != body.len() {
            return Err(io::Error::other(format!(
                "a message of {read} bytes where {} name a frame's memory files",
                body.len()
            )));
        }
        let seq = u64::from_le_bytes(body[..8].try_into().unwrap_or_default());
        let count = u32::from_le_bytes(body[8..].try_into().unwrap_or_default());
        if count as usize != fds.len() {
            return Err(io::Error::other(format!(
                "the message names {count} memory files and carries {}",
                fds.len()
            )));
        }
        Ok((seq, fds))
    }

    /// Receives one message into `body`, and the files it carries into
    /// `fds`; a message with more files than [`MAX_BLOBS`] is an error
    /// (the kernel closes those that did not fit).
    async fn recv(&self, body: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_BLOBS))];
        loop {
            let mut guard = self.socket.readable().await?;
            let received = guard.try_io(|socket| {
                let mut ancillary = RecvAncillaryBuffer::new(&mut space);
                let msg = rustix::net::recvmsg(
                    socket,
                    &mut [IoSliceMut::new(body)],
                    &mut ancillary,
                    RecvFlags::CMSG_CLOEXEC,
                )
                .map_err(io::Error::from)?;
                for message in ancillary.drain() {
                    if let RecvAncillaryMessage::ScmRights(received) = message {
                        fds.extend(received);
                    }
                }
                if msg.bytes == 0 && fds.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the same-host channel closed",
                    ));
                }
                if msg.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
                    return Err(io::Error::other(format!(
                        "a message carried more than {MAX_BLOBS} memory files"
                    )));
                }
                if msg.flags.contains(rustix::net::ReturnFlags::TRUNC) {
                    return Err(io::Error::other("a message longer than expected"));
                }
                Ok(msg.bytes)
            });
            match received {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

/// A new non-blocking `SOCK_SEQPACKET` Unix socket, and the abstract
/// address `name`, to connect or bind it to.
fn socket_named(name: &str) -> Result<(OwnedFd, SocketAddrUnix), NetError> {
    let socket = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .map_err(io::Error::from)
    .map_err(same_host_error("opening a socket"))?;
    let address = SocketAddrUnix::new_abstract_name(name.as_bytes())
        .map_err(io::Error::from)
        .map_err(same_host_error("naming the socket"))?;
    Ok((socket, address))
}

/// `socket` registered with tokio's reactor.
#[allow(unsafe_code)]
fn register(socket: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the `AsyncFd` owns the socket, so the descriptor stays open
    // and the same file for as long as it is registered.
    unsafe { AsyncFd::register(socket) }.map_err(io::Error::from)
}

fn same_host_error(what: &'static str) -> impl FnOnce(io::Error) -> NetError {
    move |source| NetError::SameHost { what, source }
}

/// The controller's side: accepts same-host sockets, gives each a ticket,
/// and keeps it until a `Hello` presents that ticket ([`take`](Self::take)).
#[derive(Debug)]
pub struct SameHostListener {
    name: String,
    socket: AsyncFd<OwnedFd>,
    waiting: Mutex<Waiting>,
}

#[derive(Debug, Default)]
struct Waiting {
    by_ticket: HashMap<Vec<u8>, (Arc<SameHost>, Instant)>,
    order: VecDeque<Vec<u8>>,
}

impl SameHostListener {
    /// Listens on the abstract name `name`: a controller's own, the same
    /// across its restarts (the connection files of an earlier run stay
    /// valid), and unique to it (see [`channel_name`]).
    pub fn bind(name: String) -> Result<Arc<SameHostListener>, NetError> {
        let (socket, address) = socket_named(&name)?;
        rustix::net::bind(&socket, &address)
            .map_err(io::Error::from)
            .map_err(same_host_error("binding the listening socket"))?;
        rustix::net::listen(&socket, 64)
            .map_err(io::Error::from)
            .map_err(same_host_error("listening"))?;
        Ok(Arc::new(SameHostListener {
            name,
            socket: register(socket).map_err(same_host_error("registering the socket"))?,
            waiting: Mutex::new(Waiting::default()),
        }))
    }

    /// The abstract name peers connect to, for the connection files.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Accepts sockets and hands each its ticket, until the task is
    /// dropped.
    pub async fn serve(self: Arc<Self>) {
        loop {
            let accepted = match self.socket.readable().await {
                Ok(mut guard) => guard.try_io(|socket| {
                    rustix::net::accept_with(socket, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)
                        .map_err(io::Error::from)
                }),
                Err(err) => {
                    tracing::warn!(cause = %err, "the same-host listener stopped");
                    return;
                }
            };
            let socket = match accepted {
                Ok(Ok(socket)) => socket,
                Ok(Err(err)) => {
                    // Out of files, most likely: wait rather than spin.
                    tracing::warn!(cause = %err, "could not accept a same-host socket");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(_would_block) => continue,
            };
            let listener = self.clone();
            tokio::spawn(async move {
                if let Err(err) = listener.admit(socket).await {
                    tracing::info!(cause = %err, "a same-host socket was not admitted");
                }
            });
        }
    }

    async fn admit(&self, socket: OwnedFd) -> Result<(), NetError> {
        let channel =
            Arc::new(SameHost::new(socket).map_err(same_host_error("registering a socket"))?);
        let ticket = random_bytes(TICKET_LEN)?;
        // Kept before the peer has the ticket, so that it is good the
        // moment the peer can present it.
        self.keep(ticket.clone(), channel.clone());
        channel
            .send(&ticket, &[])
            .await
            .map_err(same_host_error("sending a ticket"))
    }

    /// Keeps `channel` under `ticket`, dropping expired tickets and the
    /// oldest past [`MAX_WAITING`].
    fn keep(&self, ticket: Vec<u8>, channel: Arc<SameHost>) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        // Expired tickets, and the oldest past the bound, go.
        while let Some(oldest) = waiting.order.front().cloned() {
            let expired = waiting
                .by_ticket
                .get(&oldest)
                .is_none_or(|(_, at)| now.duration_since(*at) > TICKET_LIFETIME);
            if !expired && waiting.order.len() < MAX_WAITING {
                break;
            }
            waiting.order.pop_front();
            waiting.by_ticket.remove(&oldest);
        }
        waiting.order.push_back(ticket.clone());
        waiting.by_ticket.insert(ticket, (channel, now));
    }

    /// The socket that was given `ticket`, if it is still waiting: once.
    pub fn take(&self, ticket: &[u8]) -> Option<Arc<SameHost>> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let (channel, at) = waiting.by_ticket.remove(ticket)?;
        waiting.order.retain(|t| t != ticket);
        (at.elapsed() <= TICKET_LIFETIME).then_some(channel)
    }
}

/// The same-host channel's name for the controller whose certificate has
/// `fingerprint` (hex): stable across its restarts, as its certificate
/// is, and unique to it. The fingerprint is no secret (connection files
/// hold it); a ticket and the token are what a peer must have.
pub fn channel_name(fingerprint: &str) -> String {
    let short: String = fingerprint.chars().take(32).collect();
    format!("wasp-{short}")
}

/// `n` random bytes from the kernel.
fn random_bytes(n: usize) -> Result<Vec<u8>, NetError> {
    let mut bytes = vec![0u8; n];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).map_err(|_| {
        NetError::SameHost {
            what: "drawing random bytes",
            source: io::Error::other("the system's random source failed"),
        }
    })?;
    Ok(bytes)
}

/// A sealed memory file holding `bytes`: the receiver can neither see it
/// change nor lose it under its reads.
pub fn make_blob(bytes: &[u8]) -> io::Result<OwnedFd> {
    let fd =
        rustix::fs::memfd_create("wasp-blob", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    let fd = OwnedFd::from(file);
    rustix::fs::fcntl_add_seals(&fd, REQUIRED_SEALS | SealFlags::SEAL)?;
    Ok(fd)
}

/// Maps a received memory file read-only, after checking that it is
/// sealed as [`make_blob`] seals it and holds at most `cap` bytes.
pub fn map_blob(fd: OwnedFd, cap: usize) -> io::Result<Bytes> {
    let seals = rustix::fs::fcntl_get_seals(&fd)
        .map_err(|err| io::Error::other(format!("not a sealed memory file ({err})")))?;
    if !seals.contains(REQUIRED_SEALS) {
        return Err(io::Error::other(
            "a memory file not sealed against writing, shrinking and growing",
        ));
    }
    let len = usize::try_from(rustix::fs::fstat(&fd)?.st_size)
        .map_err(|_| io::Error::other("a memory file of negative size"))?;
    if len > cap {
        return Err(io::Error::other(format!(
            "a memory file of {len} bytes, over the frame cap of {cap} bytes"
        )));
    }
    if len == 0 {
        return Ok(Bytes::new());
    }
    let mapped = Mapped::new(fd, len)?;
    if MAPPED.fetch_add(1, Ordering::Relaxed) >= MAX_MAPPED {
        // Too many files open for blobs: keep a copy, close this one.
        let copy = Bytes::copy_from_slice(mapped.as_ref());
        drop(mapped);
        return Ok(copy);
    }
    let mapped = Arc::new(mapped);
    let start = mapped.ptr as usize;
    registry().insert(start, Arc::downgrade(&mapped));
    Ok(Bytes::from_owner(MappedView(mapped)))
}

/// How many memory files are mapped in this process (and counted against
/// [`MAX_MAPPED`]), including one being checked.
static MAPPED: AtomicUsize = AtomicUsize::new(0);

/// How many blobs this process has received and mapped since it started.
static RECEIVED: AtomicUsize = AtomicUsize::new(0);

/// How many blobs (memory files beside frames) this process has received
/// over same-host channels since it started: whether big values reached
/// it that way, for tests and status displays.
pub fn blobs_received() -> usize {
    RECEIVED.load(Ordering::Relaxed)
}

/// Counts blobs received (see [`blobs_received`]).
pub(crate) fn count_received(blobs: usize) {
    RECEIVED.fetch_add(blobs, Ordering::Relaxed);
}

/// A received memory file, mapped.
#[derive(Debug)]
struct Mapped {
    ptr: *const u8,
    len: usize,
    fd: OwnedFd,
}

impl Mapped {
    /// Maps the first `len` bytes of `fd`, a memory file sealed against
    /// shrinking, read-only.
    #[allow(unsafe_code)]
    fn new(fd: OwnedFd, len: usize) -> io::Result<Mapped> {
        // SAFETY: a fresh mapping the kernel places (null hint), read-only,
        // of a file sealed against shrinking and writing (checked by the
        // caller): every page stays backed, and unchanged, for as long as
        // it is mapped, so reads neither fault nor race.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ,
                rustix::mm::MapFlags::SHARED,
                &fd,
                0,
            )?
        };
        Ok(Mapped {
            ptr: ptr.cast(),
            len,
            fd,
        })
    }
}

// SAFETY: the mapping is read-only and lives as long as the value; the
// pointer is only read through `as_ref`.
#[allow(unsafe_code)]
unsafe impl Send for Mapped {}
// SAFETY: as above: shared reads of immutable memory.
#[allow(unsafe_code)]
unsafe impl Sync for Mapped {}

impl AsRef<[u8]> for Mapped {
    #[allow(unsafe_code)]
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes until `drop`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for Mapped {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        if let Ok(mut live) = REGISTRY.lock() {
            live.remove(&(self.ptr as usize));
        }
        // SAFETY: unmapping the mapping made in `map_blob`, once; no
        // reference into it outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr as *mut _, self.len) };
        MAPPED.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A [`Mapped`] as the owner of [`Bytes`].
struct MappedView(Arc<Mapped>);

impl AsRef<[u8]> for MappedView {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref().as_ref()
    }
}

/// The mappings alive in this process, by start address: a byte string
/// about to be sent is looked up here, and if it lies in one, the same
/// memory file is passed on rather than a new one made.
static REGISTRY: Mutex<BTreeMap<usize, Weak<Mapped>>> = Mutex::new(BTreeMap::new());

fn registry() -> std::sync::MutexGuard<'static, BTreeMap<usize, Weak<Mapped>>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes `bytes` to `file`. Bytes that lie in a received memory file are
/// copied by the kernel from that file (`sendfile`), not read through
/// their mapping: a write(2) from pages not yet mapped in is slow (each
/// short copy zeroes the page-cache folio and retries), and the
/// controller's records write a task's 8 MB of arguments beside its
/// dispatch.
pub fn write_to(file: &mut std::fs::File, bytes: &[u8]) -> io::Result<()> {
    let Some((mapped, mut offset)) = find_mapped(bytes) else {
        return file.write_all(bytes);
    };
    let mut left = bytes.len();
    while left > 0 {
        match rustix::fs::sendfile(&*file, &mapped.fd, Some(&mut offset), left) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "a memory file ended before its bytes were written",
                ));
            }
            Ok(sent) => left -= sent,
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// The mapping `bytes` lie in, and their offset in it.
fn find_mapped(bytes: &[u8]) -> Option<(Arc<Mapped>, u64)> {
    let start = bytes.as_ptr() as usize;
    let live = registry();
    let (&base, weak) = live.range(..=start).next_back()?;
    let mapped = weak.upgrade()?;
    let end = start.checked_add(bytes.len())?;
    (end <= base + mapped.len).then(|| (mapped, (start - base) as u64))
}

/// The memory files of one blob frame being encoded: the [`BlobSink`]
/// [`FramedSend`](crate::FramedSend) encodes with.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    files: Vec<OutgoingFile>,
}

#[derive(Debug)]
enum OutgoingFile {
    /// Made for this frame.
    Made(OwnedFd),
    /// Received and mapped here, passed on as it is.
    Mapped(Arc<Mapped>),
}

impl Outgoing {
    /// The files, to pass over the socket.
    pub(crate) fn fds(&self) -> Vec<BorrowedFd<'_>> {
        self.files
            .iter()
            .map(|file| match file {
                OutgoingFile::Made(fd) => fd.as_fd(),
                OutgoingFile::Mapped(mapped) => mapped.fd.as_fd(),
            })
            .collect()
    }
}

impl BlobSink for Outgoing {
    fn put(&mut self, bytes: &[u8]) -> Option<BlobPlace> {
        if bytes.len() < BLOB_AT_LEAST {
            return None;
        }
        if let Some((mapped, offset)) = find_mapped(bytes) {
            let same = |file: &OutgoingFile| matches!(file, OutgoingFile::Mapped(m) if Arc::ptr_eq(m, &mapped));
            let blob = match self.files.iter().position(same) {
                Some(at) => at,
                None if self.files.len() < MAX_BLOBS => {
                    self.files.push(OutgoingFile::Mapped(mapped));
                    self.files.len() - 1
                }
                None => return None,
            };
            return Some(BlobPlace {
                blob: blob as u32,
                offset,
            });
        }
        if self.files.len() >= MAX_BLOBS {
            return None;
        }
        match make_blob(bytes) {
            Ok(fd) => {
                self.files.push(OutgoingFile::Made(fd));
                Some(BlobPlace {
                    blob: (self.files.len() - 1) as u32,
                    offset: 0,
                })
            }
            Err(err) => {
                tracing::warn!(cause = %err, bytes = bytes.len(), "could not make a memory file; the bytes go inline");
                None
            }
        }
    }

    fn count(&self) -> u32 {
        self.files.len() as u32
    }
}

/// The inode of the memory file `bytes` lie in, if they lie in one
/// mapped here: tells a forwarded blob from a copy.
#[cfg(test)]
pub(crate) fn inode_of(bytes: &[u8]) -> Option<u64> {
    let (mapped, _) = find_mapped(bytes)?;
    rustix::fs::fstat(&mapped.fd).ok().map(|stat| stat.st_ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memfd(bytes: &[u8]) -> OwnedFd {
        let fd = rustix::fs::memfd_create("test", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .expect("memfd");
        let mut file = std::fs::File::from(fd);
        file.write_all(bytes).expect("writes");
        OwnedFd::from(file)
    }

    #[test]
    fn a_blob_maps_as_it_was_made_and_is_found_by_address() {
        let bytes: Vec<u8> = (0..BLOB_AT_LEAST + 3 * 4096 + 17)
            .map(|i| i as u8)
            .collect();
        let mapped = map_blob(make_blob(&bytes).expect("made"), 4 << 20).expect("maps");
        assert_eq!(&mapped[..], &bytes[..]);
        let (_, offset) = find_mapped(&mapped[100..200]).expect("inside a mapping");
        assert_eq!(offset, 100);
        assert!(find_mapped(&bytes[..]).is_none(), "not a mapping");
        // Passed on, it is the same file, not a new one.
        let mut outgoing = Outgoing::default();
        let place = outgoing.put(&mapped[10..]).expect("taken");
        assert_eq!((place.blob, place.offset), (0, 10));
        assert!(matches!(outgoing.files[0], OutgoingFile::Mapped(_)));
        let again = outgoing
            .put(&mapped[20..20 + BLOB_AT_LEAST])
            .expect("taken");
        assert_eq!((again.blob, again.offset, outgoing.count()), (0, 20, 1));
        assert!(
            outgoing.put(&mapped[20..30]).is_none(),
            "small bytes stay inline"
        );
        outgoing.put(&bytes).expect("taken");
        assert!(matches!(outgoing.files[1], OutgoingFile::Made(_)));
    }

    /// Bytes in a mapped memory file are written from the file, any part
    /// of it, and bytes elsewhere as they are: the same contents either way.
    #[test]
    fn bytes_written_from_a_memory_file_or_memory_are_the_same_bytes() {
        use std::io::{Read, Seek};
        let bytes: Vec<u8> = (0..3 * 1024 * 1024 + 5).map(|i| (i * 7) as u8).collect();
        let mapped = map_blob(make_blob(&bytes).expect("made"), usize::MAX).expect("maps");
        for (from, what) in [
            (&mapped[..], "a whole memory file"),
            (&mapped[4099..2 * 1024 * 1024 + 1], "part of one"),
            (&bytes[1..], "memory"),
        ] {
            let mut file = tempfile::tempfile().expect("a file");
            write_to(&mut file, from).expect("writes");
            let mut back = Vec::new();
            file.rewind().expect("rewinds");
            file.read_to_end(&mut back).expect("reads");
            assert!(
                back == from,
                "{what}: {} bytes back of {}",
                back.len(),
                from.len()
            );
        }
    }

    /// A memory file the sender could still change, shrink (which would
    /// fault the receiver's reads) or grow is refused; so is anything
    /// that is not a memory file, and a file over the frame cap.
    #[test]
    fn what_is_not_sealed_fully_or_not_a_memory_file_or_too_big_is_refused() {
        let bytes = vec![7u8; 8192];
        let refused = |fd: OwnedFd, cap: usize| map_blob(fd, cap).expect_err("refused").to_string();
        assert!(refused(memfd(&bytes), 1 << 20).contains("not sealed"));
        for missing in [SealFlags::WRITE, SealFlags::SHRINK, SealFlags::GROW] {
            let fd = memfd(&bytes);
            rustix::fs::fcntl_add_seals(&fd, REQUIRED_SEALS.difference(missing)).expect("seals");
            assert!(refused(fd, 1 << 20).contains("not sealed"), "{missing:?}");
        }
        let (pipe, _writer) = std::io::pipe().expect("pipe");
        assert!(refused(OwnedFd::from(pipe), 1 << 20).contains("not a sealed memory file"));
        let file = tempfile::tempfile().expect("a file");
        assert!(refused(OwnedFd::from(file), 1 << 20).contains("not a sealed memory file"));
        let err = refused(make_blob(&bytes).expect("made"), 4096);
        assert!(
            err.contains("8192 bytes, over the frame cap of 4096 bytes"),
            "{err}"
        );
    }

    /// A big argument list spilled by a client is the very encoding
    /// `encode` makes, in a sealed file mapped here, which a frame passes
    /// on as it is.
    #[test]
    fn a_spilled_encoding_is_a_sealed_file_passed_on_as_it_is() {
        use wasp_proto::Value;
        use wasp_proto::msg::{Arg, Items};
        let items = vec![vec![
            Arg::Value(Value::from(vec![1.5f64; 300_000])),
            Arg::Ref("x".into()),
        ]];
        let spilled = Items::encode_spilling(&items, Some(spill)).expect("encodes");
        assert_eq!(spilled, Items::encode(&items).expect("encodes"));
        let (mapped, offset) = find_mapped(spilled.as_bytes()).expect("a mapping");
        assert_eq!(offset, 0);
        let seals = rustix::fs::fcntl_get_seals(&mapped.fd).expect("seals");
        assert!(seals.contains(REQUIRED_SEALS), "{seals:?}");
        let mut outgoing = Outgoing::default();
        outgoing.put(spilled.as_bytes()).expect("taken");
        assert!(matches!(outgoing.files[0], OutgoingFile::Mapped(_)));
    }

    #[tokio::test]
    async fn a_ticket_binds_a_socket_once() {
        assert_eq!(
            channel_name(&"ab".repeat(32)),
            format!("wasp-{}", "ab".repeat(16))
        );
        let listener = SameHostListener::bind(format!("wasp-test-ticket-{}", std::process::id()))
            .expect("binds");
        let serving = tokio::spawn(listener.clone().serve());
        let (_client, ticket) = SameHost::connect(listener.name()).await.expect("connects");
        assert_eq!(ticket.len(), TICKET_LEN);
        assert!(
            listener.take(&[0; TICKET_LEN]).is_none(),
            "a ticket never given"
        );
        assert!(listener.take(&ticket).is_some());
        assert!(listener.take(&ticket).is_none(), "a ticket is good once");
        let err = SameHost::connect("wasp-no-such-channel")
            .await
            .expect_err("unreachable");
        assert!(err.to_string().contains("connecting"), "{err}");
        serving.abort();
    }
}
