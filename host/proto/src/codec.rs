//! The wire encoding: one message is one frame, a 4-byte little-endian length
//! followed by that many bytes of bincode (serde, `config::standard()`).
//!
//! This is the only module that knows the encoding, so that it can be
//! swapped in one place (DESIGN.md). bincode is flagged unmaintained
//! (RUSTSEC-2025-0141) and its decoder trusts the lengths it reads, so two
//! bounds apply before any memory is committed to a peer's say-so:
//!
//! - [`frame_len`] refuses a frame longer than a cap from its prefix alone,
//!   before the receiver allocates or reads the payload.
//! - [`decode`] runs bincode with a byte limit that scales with the payload
//!   (see [`decode`]), so a forged length *inside* a payload (a `String` or
//!   a byte buffer claiming 2^60 elements) fails instead of allocating.
//!
//! - Every [`Value`](crate::Value) in a message is refused past
//!   [`MAX_DEPTH`] levels of nesting, before the decoder recurses into it
//!   ([`CodecError::TooDeep`]; see the crate's `bounded` module).
//!
//! Not covered: serde's sequence visitors preallocate from the claimed
//! length, but serde caps that preallocation (at 1 MiB per sequence), and
//! every element is then counted against the limit as it is decoded.
//! What a decoded message costs in memory is bounded by its payload's size
//! times [`CLAIM_PER_BYTE`] at most; a tighter bound per item, in host
//! memory, is [`Packed`](crate::msg::Packed)'s `decode_within` with a
//! [`Budget`].

use std::marker::PhantomData;

use bytes::Bytes;
use serde::Serialize;
use serde::de::{DeserializeOwned, DeserializeSeed};

use crate::value::MAX_DEPTH;

mod blobs;

pub use blobs::{
    BLOB_AT_LEAST, BLOB_COUNT_LEN, BLOB_FRAME, BlobPlace, BlobSink, blob_count, decode_blob_frame,
    encode_blob_frame,
};
pub(crate) use blobs::{
    decoding_blob_frame, encoding_blob_frame, put as put_blob, take as take_blob,
};

/// The largest frame payload accepted by default: 300 MiB, room for a
/// 256 MiB module plus its message around it.
pub const MAX_FRAME: usize = 300 * 1024 * 1024;

/// Bytes in a frame's length prefix.
pub const PREFIX_LEN: usize = 4;

/// The most memory bincode claims per payload byte: a `u128` counts 16 bytes
/// against the limit but can be encoded as a one-byte varint. Strings and
/// byte buffers claim their length, which a real payload must contain.
const CLAIM_PER_BYTE: usize = 16;

/// What went wrong encoding or decoding a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A frame (received or about to be sent) is longer than the cap.
    #[error("frame of {len} bytes exceeds the cap of {cap} bytes")]
    FrameTooLarge {
        /// The frame's payload length.
        len: usize,
        /// The cap it was checked against.
        cap: usize,
    },
    /// The message could not be encoded.
    #[error("cannot encode message: {reason}")]
    Encode {
        /// The encoder's explanation.
        reason: String,
    },
    /// The payload is not a valid encoding of the expected message.
    #[error("cannot decode message of {len} bytes: {reason}")]
    Decode {
        /// The payload length.
        len: usize,
        /// The decoder's explanation.
        reason: String,
    },
    /// The payload claims more memory than its size allows, e.g. a forged
    /// length prefix inside it.
    #[error(
        "message of {len} bytes claims more than the decode limit of {limit} bytes \
         (a forged length inside the payload?)"
    )]
    LimitExceeded {
        /// The payload length.
        len: usize,
        /// The limit the decode ran with.
        limit: usize,
    },
    /// A value in the payload is nested deeper than [`MAX_DEPTH`].
    #[error(
        "cannot decode message of {len} bytes: a value is nested deeper than the \
         nesting limit (MAX_DEPTH = {limit})"
    )]
    TooDeep {
        /// The payload length.
        len: usize,
        /// The limit, [`MAX_DEPTH`].
        limit: usize,
    },
    /// An item of a list decoded within a [`Budget`] costs more host memory
    /// than the budget allows; decoding stopped at it.
    #[error(
        "item {item} costs more memory than its limit ({name} = {bytes}); \
         stopped decoding it at the first value past the limit",
        name = budget.name,
        bytes = human_bytes(budget.bytes)
    )]
    OverBudget {
        /// The item's index (0-based).
        item: usize,
        /// The budget it passed.
        budget: Budget,
    },
    /// A message was decoded but bytes were left over.
    #[error("{trailing} trailing bytes after a message of {used} bytes")]
    TrailingBytes {
        /// Bytes the message used.
        used: usize,
        /// Bytes left over after it.
        trailing: usize,
    },
}

/// A memory budget for each item of a list, in bytes of host memory as
/// [`Value::cost_bytes`](crate::Value::cost_bytes) counts them, named by
/// the setting it comes from so that an error can say which limit and its
/// value: `Budget { name: "arg_bytes", bytes: 64 << 20 }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The setting's name, e.g. `arg_bytes` or `result_bytes`.
    pub name: &'static str,
    /// The bytes one item may cost.
    pub bytes: usize,
}

/// A byte count in the largest whole binary unit (`64 MiB`, `1500 B`), as
/// the engine prints its limits.
fn human_bytes(n: usize) -> String {
    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= KIB && n.is_multiple_of(KIB) {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} B")
    }
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes `msg` as one frame: a 4-byte little-endian payload length, then
/// the payload. Refuses a payload longer than [`MAX_FRAME`], which no
/// receiver would accept.
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, CodecError> {
    let mut frame = encode_after(msg, PREFIX_LEN)?;
    let len = frame.len() - PREFIX_LEN;
    frame[..PREFIX_LEN].copy_from_slice(&prefix(len)?);
    Ok(frame)
}

/// `msg` encoded after `head` placeholder bytes, left for the caller to
/// write the frame's head into.
fn encode_after<T: Serialize>(msg: &T, head: usize) -> Result<Vec<u8>, CodecError> {
    // Encode straight after the placeholder rather than copying a
    // possibly 256 MiB payload into a second buffer.
    let mut frame = vec![0u8; head];
    bincode::serde::encode_into_std_write(msg, &mut frame, config()).map_err(|err| {
        CodecError::Encode {
            reason: err.to_string(),
        }
    })?;
    Ok(frame)
}

/// The prefix of a frame whose payload is `len` bytes; an error past
/// [`MAX_FRAME`], which no receiver would accept.
fn prefix(len: usize) -> Result<[u8; PREFIX_LEN], CodecError> {
    u32::try_from(len)
        .ok()
        .filter(|_| len <= MAX_FRAME)
        .map(u32::to_le_bytes)
        .ok_or(CodecError::FrameTooLarge {
            len,
            cap: MAX_FRAME,
        })
}

/// [`encode_frame`] in parts, to be sent one after the other: the bulk
/// bytes of each big [`Packed`](crate::msg::Packed) list (at least
/// [`SLICE_AT_LEAST`]) are a part of their own, shared rather than copied
/// into the frame, and the rest of the encoding is cut around them. The
/// parts put together are exactly [`encode_frame`]'s frame. The controller
/// forwards a task's 8 MB of arguments, or a result, as the very bytes it
/// received, however many engines or clients they go to.
pub fn encode_frame_parts<T: Serialize>(msg: &T) -> Result<Vec<Bytes>, CodecError> {
    encode_parts_after(msg, PREFIX_LEN, |head, len| {
        head.copy_from_slice(&prefix(len)?);
        Ok(())
    })
}

/// [`encode_frame_parts`]' parts after a head of `head` bytes, which
/// `fill_head` writes once the encoding is done, given the payload's
/// length (all the parts but the prefix).
fn encode_parts_after<T: Serialize>(
    msg: &T,
    head: usize,
    fill_head: impl FnOnce(&mut [u8], usize) -> Result<(), CodecError>,
) -> Result<Vec<Bytes>, CodecError> {
    let mut frame = vec![0u8; head];
    let previous = CUTS.with(|cuts| cuts.replace(Some(Vec::new())));
    WRITTEN.set(frame.len());
    let encoded =
        bincode::serde::encode_into_std_write(msg, &mut CountingWriter(&mut frame), config());
    let cuts = CUTS.with(|cuts| cuts.replace(previous)).unwrap_or_default();
    encoded.map_err(|err| CodecError::Encode {
        reason: err.to_string(),
    })?;
    let len = frame.len() - PREFIX_LEN + cuts.iter().map(|(_, bytes)| bytes.len()).sum::<usize>();
    fill_head(&mut frame[..head], len)?;
    let frame = Bytes::from(frame);
    let mut parts = Vec::with_capacity(2 * cuts.len() + 1);
    let mut at = 0;
    for (cut, bytes) in cuts {
        parts.push(frame.slice(at..cut));
        parts.push(bytes);
        at = cut;
    }
    parts.push(frame.slice(at..));
    // The head is never empty, so the first part stays the head's.
    parts.retain(|part| !part.is_empty());
    Ok(parts)
}

thread_local! {
    /// While [`encode_frame_parts`] encodes on this thread: the bytes left
    /// out of the encoding, each with where it goes in it.
    static CUTS: std::cell::RefCell<Option<Vec<(usize, Bytes)>>> =
        const { std::cell::RefCell::new(None) };
    /// How many bytes of the frame [`encode_frame_parts`] has written.
    static WRITTEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The frame's buffer, counting what is written into it for the cuts.
struct CountingWriter<'a>(&'a mut Vec<u8>);

impl std::io::Write for CountingWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        WRITTEN.set(self.0.len());
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether `bytes`, about to be serialized, are left out of the frame
/// [`encode_frame_parts`] is encoding on this thread, as a part of their
/// own (then [`cut`] records where they go).
pub(crate) fn cuts(bytes: &Bytes) -> bool {
    bytes.len() >= SLICE_AT_LEAST && in_parts()
}

/// Whether [`encode_frame_parts`] is encoding on this thread.
pub(crate) fn in_parts() -> bool {
    CUTS.with(|cuts| cuts.borrow().is_some())
}

/// Records `bytes` as a part of their own, at the point the encoding has
/// reached (for a list's bytes, just after their length).
pub(crate) fn cut(bytes: &Bytes) {
    CUTS.with(|cuts| {
        if let Some(cuts) = cuts.borrow_mut().as_mut() {
            cuts.push((WRITTEN.get(), bytes.clone()));
        }
    });
}

/// Runs `work`, an encoding of bytes on their own (a value's own bytes,
/// made inside a frame's encoding), outside that frame: nothing of it is
/// cut into a part of the frame, nor put in its blobs.
fn on_its_own<R>(work: impl FnOnce() -> R) -> R {
    let cuts = CUTS.with(|cuts| cuts.take());
    let result = blobs::outside_blob_frames(work);
    CUTS.with(|slot| slot.replace(cuts));
    result
}

/// Encodes `msg` alone, without a frame's prefix (for bytes carried inside
/// a message, as [`Items`](crate::msg::Items)).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, CodecError> {
    on_its_own(|| {
        bincode::serde::encode_to_vec(msg, config()).map_err(|err| CodecError::Encode {
            reason: err.to_string(),
        })
    })
}

/// Encodes `msg` alone into `writer`, as [`encode`] would into a buffer.
pub fn encode_to_writer<T: Serialize + ?Sized>(
    msg: &T,
    writer: &mut dyn std::io::Write,
) -> Result<(), CodecError> {
    on_its_own(|| {
        bincode::serde::encode_into_std_write(msg, &mut WriteRef(writer), config())
            .map(|_| ())
            .map_err(|err| CodecError::Encode {
                reason: err.to_string(),
            })
    })
}

/// A `dyn Write` as a sized writer, for bincode.
struct WriteRef<'a>(&'a mut dyn std::io::Write);

impl std::io::Write for WriteRef<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_all(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Encodes `msg` alone into `buf` (cleared first): for a writer that
/// encodes many small values and reuses one buffer, sparing an
/// allocation and `encode`'s sizing pass for each.
pub fn encode_into<T: Serialize>(msg: &T, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    buf.clear();
    on_its_own(|| {
        bincode::serde::encode_into_std_write(msg, buf, config())
            .map(|_| ())
            .map_err(|err| CodecError::Encode {
                reason: err.to_string(),
            })
    })
}

/// Reads a frame's length from its prefix, refusing one over `cap`. Call it
/// before allocating or reading the payload.
pub fn frame_len(prefix: [u8; PREFIX_LEN], cap: usize) -> Result<usize, CodecError> {
    let len = u32::from_le_bytes(prefix);
    match usize::try_from(len) {
        Ok(len) if len <= cap => Ok(len),
        // A u32 that does not fit usize is over any cap this platform has.
        _ => Err(CodecError::FrameTooLarge {
            len: len as usize,
            cap,
        }),
    }
}

/// Reads a frame's length from its prefix, refusing one over `cap`, and
/// whether it is a blob frame (its prefix has [`BLOB_FRAME`] set; see
/// [`encode_blob_frame`]).
pub fn frame_head(prefix: [u8; PREFIX_LEN], cap: usize) -> Result<(usize, bool), CodecError> {
    let raw = u32::from_le_bytes(prefix);
    let blob_frame = raw & BLOB_FRAME != 0;
    let len = frame_len((raw & !BLOB_FRAME).to_le_bytes(), cap)?;
    Ok((len, blob_frame))
}

/// Decodes one message from a frame's payload (without its prefix),
/// refusing trailing bytes.
///
/// bincode's limit is a type parameter, so it comes in three sizes, each at
/// least 16 times the payload (`CLAIM_PER_BYTE`): a forged length in a small
/// message is refused after claiming at most 1 MiB, and none may claim more
/// than 16 × [`MAX_FRAME`]. (Three sizes rather than one per power of two
/// keep the number of copies of each message's decoder small.)
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, CodecError> {
    decode_seed(PhantomData::<T>, payload)
}

/// [`decode`] of a frame's payload held as [`Bytes`]: bytes inside it that
/// are the bulk of it (a big [`Packed`](crate::msg::Packed) list, at least
/// half the payload and [`SLICE_AT_LEAST`]) become a slice of the payload
/// rather than a copy. The controller forwards a task's 8 MB of arguments
/// without copying them out of the frame they came in; an engine and a
/// client read theirs in place until they decode them. Only the bulk is
/// sliced: a small list slicing a big frame would keep all of it alive.
pub fn decode_frame<T: DeserializeOwned>(payload: Bytes) -> Result<T, CodecError> {
    while_set(&FRAME, payload.clone(), || {
        decode_in_frame(PhantomData::<T>, &payload)
    })
}

/// A thread's buffer being decoded, if any: the frame ([`FRAME`]) or the
/// bytes big typed lists may share ([`SHARING`]).
type DecodingBuffer = std::thread::LocalKey<std::cell::RefCell<Option<Bytes>>>;

/// Runs `decode` with `buffer` set to `bytes` on this thread.
fn while_set<T>(buffer: &'static DecodingBuffer, bytes: Bytes, decode: impl FnOnce() -> T) -> T {
    let previous = buffer.with(|b| b.replace(Some(bytes)));
    let decoded = decode();
    buffer.with(|b| b.replace(previous));
    decoded
}

/// `bytes` as a slice of what `buffer` holds on this thread, if they are
/// at least [`SLICE_AT_LEAST`] and lie inside it, at least `1 / share` of
/// it (so that a slice kept pins at most `share` times its own size).
fn slice_of(buffer: &'static DecodingBuffer, bytes: &[u8], share: usize) -> Option<Bytes> {
    if bytes.len() < SLICE_AT_LEAST {
        return None;
    }
    buffer.with(|b| {
        let b = b.borrow();
        let buffer = b.as_ref()?;
        // Where the bytes are, compared as addresses: inside the buffer,
        // or (a copy made by the decoder) not.
        let start = (bytes.as_ptr() as usize).checked_sub(buffer.as_ptr() as usize)?;
        let end = start.checked_add(bytes.len())?;
        (end <= buffer.len() && bytes.len().saturating_mul(share) >= buffer.len())
            .then(|| buffer.slice(start..end))
    })
}

/// The smallest bytes [`decode_frame`] slices rather than copies.
pub const SLICE_AT_LEAST: usize = 64 * 1024;

thread_local! {
    /// The payload [`decode_frame`] is decoding on this thread, if any.
    static FRAME: std::cell::RefCell<Option<Bytes>> = const { std::cell::RefCell::new(None) };
}

/// `bytes` as a slice of the frame being decoded on this thread, if they
/// lie inside it and are the bulk of it (see [`decode_frame`]).
pub(crate) fn frame_slice(bytes: &[u8]) -> Option<Bytes> {
    slice_of(&FRAME, bytes, 2)
}

/// [`decode_seed`] of `bytes` in which a big typed list
/// ([`Array::Shared`](crate::Array::Shared)) is a slice of `bytes`, not a
/// copy: see [`arrays_slice`].
pub(crate) fn decode_seed_sharing<'de, S: DeserializeSeed<'de>>(
    seed: S,
    bytes: &'de Bytes,
) -> Result<S::Value, CodecError> {
    while_set(&SHARING, bytes.clone(), || decode_seed(seed, bytes))
}

thread_local! {
    /// The bytes [`decode_seed_sharing`] is decoding on this thread, if any.
    static SHARING: std::cell::RefCell<Option<Bytes>> = const { std::cell::RefCell::new(None) };
}

/// A typed list's `bytes` as a slice of what [`decode_seed_sharing`] is
/// decoding on this thread, if they lie inside it, are at least
/// [`SLICE_AT_LEAST`] and at least a quarter of it (a list kept in a
/// namespace then pins at most four times its own size of the push it
/// came in).
pub(crate) fn arrays_slice(bytes: &[u8]) -> Option<Bytes> {
    slice_of(&SHARING, bytes, 4)
}

/// [`decode`] through a seed, which carries state into the decode (the
/// memory budget of the crate's `bounded` module). Bytes decoded on their
/// own, as a `Packed` list's, are never a blob frame's.
pub(crate) fn decode_seed<'de, S: DeserializeSeed<'de>>(
    seed: S,
    payload: &'de [u8],
) -> Result<S::Value, CodecError> {
    blobs::outside_blob_frames(|| decode_in_frame(seed, payload))
}

/// [`decode_seed`] of a frame's payload, in whatever blob frame this
/// thread is decoding.
fn decode_in_frame<'de, S: DeserializeSeed<'de>>(
    seed: S,
    payload: &'de [u8],
) -> Result<S::Value, CodecError> {
    const SMALL: usize = 64 * 1024;
    const MEDIUM: usize = 4 * 1024 * 1024;
    if payload.len() <= SMALL {
        decode_limited::<S, { SMALL * CLAIM_PER_BYTE }>(seed, payload)
    } else if payload.len() <= MEDIUM {
        decode_limited::<S, { MEDIUM * CLAIM_PER_BYTE }>(seed, payload)
    } else {
        // Larger payloads than MAX_FRAME never arrive through frame_len; a
        // caller decoding one directly gets the largest limit, no more.
        decode_limited::<S, { MAX_FRAME * CLAIM_PER_BYTE }>(seed, payload)
    }
}

fn decode_limited<'de, S: DeserializeSeed<'de>, const LIMIT: usize>(
    seed: S,
    payload: &'de [u8],
) -> Result<S::Value, CodecError> {
    use bincode::error::DecodeError;
    let len = payload.len();
    let (msg, used) =
        bincode::serde::seed_decode_from_slice(seed, payload, config().with_limit::<LIMIT>())
            .map_err(|err| match err {
                DecodeError::LimitExceeded => CodecError::LimitExceeded { len, limit: LIMIT },
                DecodeError::OtherString(reason)
                    if reason == crate::bounded::too_deep_message() =>
                {
                    CodecError::TooDeep {
                        len,
                        limit: MAX_DEPTH,
                    }
                }
                err => CodecError::Decode {
                    len,
                    reason: err.to_string(),
                },
            })?;
    if used != len {
        return Err(CodecError::TrailingBytes {
            used,
            trailing: len - used,
        });
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Msg {
        Hello { name: String, id: u64 },
        Bytes(Vec<u8>),
        Many(Vec<(u32, Option<String>)>),
        Bye,
    }

    fn payload(frame: &[u8]) -> &[u8] {
        let len = frame_len(frame[..PREFIX_LEN].try_into().expect("4 bytes"), MAX_FRAME)
            .expect("under the cap");
        assert_eq!(len, frame.len() - PREFIX_LEN);
        &frame[PREFIX_LEN..]
    }

    /// A bincode (standard config) varint for a u64: 253 then 8 LE bytes.
    fn varint_u64(n: u64) -> Vec<u8> {
        let mut out = vec![253];
        out.extend_from_slice(&n.to_le_bytes());
        out
    }

    #[test]
    fn round_trip() {
        let msgs = [
            Msg::Hello {
                name: "engine-1".into(),
                id: u64::MAX,
            },
            Msg::Bytes((0..=255).collect()),
            Msg::Many(vec![(1, None), (2, Some("two".into()))]),
            Msg::Bye,
        ];
        for msg in msgs {
            let frame = encode_frame(&msg).expect("encodes");
            let back: Msg = decode(payload(&frame)).expect("decodes");
            assert_eq!(back, msg);
        }
    }

    #[test]
    fn round_trip_large_payload_uses_a_larger_limit() {
        // 5 MiB of u8 in a serde sequence claims 1 byte each: past the small
        // and medium buckets' payload sizes, within the large one.
        let msg = Msg::Bytes(vec![7; 5 * 1024 * 1024]);
        let frame = encode_frame(&msg).expect("encodes");
        let back: Msg = decode(payload(&frame)).expect("decodes");
        assert_eq!(back, msg);
    }

    #[test]
    fn oversize_length_refused() {
        let prefix = u32::try_from(MAX_FRAME + 1).expect("fits").to_le_bytes();
        let err = frame_len(prefix, MAX_FRAME).expect_err("over the cap");
        assert!(
            matches!(err, CodecError::FrameTooLarge { len, cap } if len == MAX_FRAME + 1 && cap == MAX_FRAME)
        );
        let msg = err.to_string();
        assert!(msg.contains(&MAX_FRAME.to_string()), "{msg}");

        assert_eq!(frame_len(100u32.to_le_bytes(), 100).expect("at cap"), 100);
        assert!(frame_len(101u32.to_le_bytes(), 100).is_err());
        assert!(frame_len([0xff; 4], MAX_FRAME).is_err());
    }

    #[test]
    fn forged_inner_length_refused_without_allocating() {
        // Msg::Bytes is variant 1; its Vec<u8> claims 2^40 elements, then the
        // payload ends. Decoding must fail on the claim, not try to allocate
        // a terabyte or loop 2^40 times.
        let mut forged = vec![1u8];
        forged.extend(varint_u64(1 << 40));
        let err = decode::<Msg>(&forged).expect_err("forged");
        // Either refusal is fine: the element claims or the end of input
        // (serde preallocates at most 1 MiB from the claim, then each
        // element is read, and the input ends).
        assert!(
            matches!(
                err,
                CodecError::LimitExceeded { .. } | CodecError::Decode { .. }
            ),
            "{err:?}"
        );

        // A String allocates its claimed length up front in bincode, so this
        // is the case the limit exists for: 2^60 bytes, and 64 MiB, which is
        // under a fixed 300 MiB limit but far over this payload's.
        for claimed in [1u64 << 60, 64 << 20] {
            let mut forged = vec![0u8]; // Msg::Hello
            forged.extend(varint_u64(claimed));
            forged.extend_from_slice(b"short");
            let err = decode::<Msg>(&forged).expect_err("forged");
            assert!(
                matches!(err, CodecError::LimitExceeded { len, .. } if len == forged.len()),
                "{claimed}: {err:?}"
            );
            assert!(err.to_string().contains("decode limit"), "{err}");
        }

        // The same forgery as a plain Vec<u8> via bincode's own path.
        let mut forged = varint_u64(1 << 60);
        forged.push(0);
        assert!(matches!(
            decode::<String>(&forged),
            Err(CodecError::LimitExceeded { .. })
        ));
    }

    #[test]
    fn trailing_garbage_refused() {
        let frame = encode_frame(&Msg::Bye).expect("encodes");
        let mut bytes = payload(&frame).to_vec();
        bytes.extend_from_slice(&[0xde, 0xad]);
        let err = decode::<Msg>(&bytes).expect_err("trailing");
        assert!(
            matches!(
                err,
                CodecError::TrailingBytes {
                    used: 1,
                    trailing: 2
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn truncated_payload_refused() {
        let frame = encode_frame(&Msg::Hello {
            name: "x".repeat(10),
            id: 1,
        })
        .expect("encodes");
        let bytes = payload(&frame);
        let err = decode::<Msg>(&bytes[..bytes.len() - 3]).expect_err("truncated");
        assert!(matches!(err, CodecError::Decode { .. }), "{err:?}");
    }
}
