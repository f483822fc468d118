//! Blob frames: between two processes on one host, a frame's big byte
//! strings travel beside it as memory the receiver maps, not through it.
//!
//! The transport (`wasp_net`'s same-host channel) owns the memory: while a
//! blob frame is encoded, a [`BlobSink`] takes each big byte string (a
//! [`Packed`](crate::msg::Packed) list of [`BLOB_AT_LEAST`] or more) and
//! says where the receiver will find it: which of the frame's blobs, at
//! which offset. The frame then holds that place instead of the bytes.
//! The receiver decodes the frame with the blobs it was handed
//! ([`decode_blob_frame`]), and the bytes become slices of them.
//!
//! A blob frame's payload is a little-endian `u32`, the number of blobs
//! it names, and then the message, in which each byte string that may be
//! a blob is an enum: inline bytes (as outside blob frames) or a blob's
//! place. Its prefix has [`BLOB_FRAME`] set. Nothing else changes: bytes
//! encoded outside a frame (a task's argument lists inside a `Packed`,
//! the task records) never hold a place, so they decode anywhere.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{CodecError, PREFIX_LEN, prefix};

/// The smallest byte string a blob frame carries as a blob rather than
/// inline: below it, the copy through the transport costs less than
/// making and mapping the memory.
pub const BLOB_AT_LEAST: usize = 1 << 20;

/// The bit of a frame's prefix that marks a blob frame. No frame is that
/// long ([`MAX_FRAME`](super::MAX_FRAME) is below it), so an older reader
/// refuses the frame as too large rather than misreading it.
pub const BLOB_FRAME: u32 = 1 << 31;

/// The bytes a blob frame's payload begins with: its count of blobs.
pub const BLOB_COUNT_LEN: usize = 4;

/// Where a blob frame's big byte strings go, while it is encoded.
pub trait BlobSink {
    /// Takes `bytes` out of the frame: the place the receiver will find
    /// them, or `None` to keep them inline (too small to be worth a blob,
    /// [`BLOB_AT_LEAST`]; no room for more blobs; or the memory could not
    /// be made).
    fn put(&mut self, bytes: &[u8]) -> Option<BlobPlace>;

    /// How many blobs the frame names so far.
    fn count(&self) -> u32;
}

/// Where a byte string is among a blob frame's blobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobPlace {
    /// Which blob, in the order the sink made them.
    pub blob: u32,
    /// Where in it the bytes begin.
    pub offset: u64,
}

thread_local! {
    /// The sink of the blob frame being encoded on this thread.
    static SINK: RefCell<Option<Rc<RefCell<dyn BlobSink>>>> = const { RefCell::new(None) };
    /// The blobs of the blob frame being decoded on this thread.
    static BLOBS: RefCell<Option<Vec<Bytes>>> = const { RefCell::new(None) };
}

/// Encodes `msg` as a blob frame whose big byte strings go to `sink`; in
/// parts (as [`encode_frame_parts`](super::encode_frame_parts)) when
/// `in_parts`, for the byte strings kept inline. Gives the sink back, with
/// the blobs it made.
pub fn encode_blob_frame<T: Serialize, S: BlobSink + 'static>(
    msg: &T,
    sink: S,
    in_parts: bool,
) -> Result<(Vec<Bytes>, S), CodecError> {
    let shared = Rc::new(RefCell::new(sink));
    let previous = SINK.with(|slot| slot.replace(Some(shared.clone())));
    // The head: the prefix, marked, and the count of the blobs the
    // encoding made, written once it is done.
    let fill_head = |head: &mut [u8], len: usize| {
        let prefix = u32::from_le_bytes(prefix(len)?) | BLOB_FRAME;
        head[..PREFIX_LEN].copy_from_slice(&prefix.to_le_bytes());
        head[PREFIX_LEN..].copy_from_slice(&shared.borrow().count().to_le_bytes());
        Ok(())
    };
    let head = PREFIX_LEN + BLOB_COUNT_LEN;
    let encoded = if in_parts {
        super::encode_parts_after(msg, head, fill_head)
    } else {
        super::encode_after(msg, head).and_then(|mut frame| {
            let len = frame.len() - PREFIX_LEN;
            fill_head(&mut frame[..head], len)?;
            Ok(vec![Bytes::from(frame)])
        })
    };
    SINK.with(|slot| slot.replace(previous));
    let sink = Rc::try_unwrap(shared)
        .map_err(|_| CodecError::Encode {
            reason: "the blob sink is still in use".into(),
        })?
        .into_inner();
    Ok((encoded?, sink))
}

/// The number of blobs a blob frame's `payload` names, and the message's
/// encoding after it.
pub fn blob_count(payload: &Bytes) -> Result<(u32, Bytes), CodecError> {
    let count = payload
        .get(..BLOB_COUNT_LEN)
        .and_then(|count| count.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(CodecError::Decode {
            len: payload.len(),
            reason: "a blob frame shorter than its count of blobs".into(),
        })?;
    Ok((count, payload.slice(BLOB_COUNT_LEN..)))
}

/// Decodes the message of a blob frame (its payload after the count, from
/// [`blob_count`]) whose blobs are `blobs`, as mapped by the receiver: a
/// byte string placed in one is a slice of it, checked to lie inside it.
pub fn decode_blob_frame<T: serde::de::DeserializeOwned>(
    message: Bytes,
    blobs: Vec<Bytes>,
) -> Result<T, CodecError> {
    let previous = BLOBS.with(|slot| slot.replace(Some(blobs)));
    let decoded = super::decode_frame(message);
    BLOBS.with(|slot| slot.replace(previous));
    decoded
}

/// Runs `work` with no blob frame being encoded or decoded on this thread:
/// for bytes encoded or decoded on their own inside one (a value's own
/// encoding), which are never in blob form.
pub(crate) fn outside_blob_frames<R>(work: impl FnOnce() -> R) -> R {
    let sink = SINK.with(|slot| slot.take());
    let blobs = BLOBS.with(|slot| slot.take());
    let result = work();
    SINK.with(|slot| slot.replace(sink));
    BLOBS.with(|slot| slot.replace(blobs));
    result
}

/// Whether a blob frame is being encoded on this thread: its byte strings
/// are then written in their blob-frame form.
pub(crate) fn encoding_blob_frame() -> bool {
    SINK.with(|slot| slot.borrow().is_some())
}

/// Whether a blob frame is being decoded on this thread.
pub(crate) fn decoding_blob_frame() -> bool {
    BLOBS.with(|slot| slot.borrow().is_some())
}

/// `bytes` put in a blob of the frame being encoded, if the sink takes
/// them.
pub(crate) fn put(bytes: &[u8]) -> Option<BlobPlace> {
    let sink = SINK.with(|slot| slot.borrow().clone())?;
    sink.borrow_mut().put(bytes)
}

/// The `len` bytes at `place` in the blobs of the frame being decoded.
pub(crate) fn take(place: BlobPlace, len: u64) -> Result<Bytes, String> {
    BLOBS.with(|slot| {
        let blobs = slot.borrow();
        let blobs = blobs
            .as_ref()
            .ok_or("a blob's place outside a blob frame")?;
        let blob = blobs.get(place.blob as usize).ok_or_else(|| {
            format!(
                "blob {} is named, but the frame has {} blobs",
                place.blob,
                blobs.len()
            )
        })?;
        let end = place.offset.checked_add(len);
        match end {
            Some(end) if end <= blob.len() as u64 => {
                Ok(blob.slice(place.offset as usize..end as usize))
            }
            _ => Err(format!(
                "{len} bytes at {} lie beyond blob {} of {} bytes",
                place.offset,
                place.blob,
                blob.len()
            )),
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::codec;
    use crate::msg::{Encoded, NamespaceOp, Values};
    use crate::value::Value;

    /// A sink that keeps each blob's bytes, as the receiver would map them.
    #[derive(Default)]
    struct Kept(Vec<Bytes>);

    impl BlobSink for Kept {
        fn put(&mut self, bytes: &[u8]) -> Option<BlobPlace> {
            if bytes.len() < BLOB_AT_LEAST {
                return None;
            }
            self.0.push(Bytes::copy_from_slice(bytes));
            Some(BlobPlace {
                blob: self.0.len() as u32 - 1,
                offset: 0,
            })
        }

        fn count(&self) -> u32 {
            self.0.len() as u32
        }
    }

    fn joined(parts: &[Bytes]) -> Bytes {
        Bytes::from(
            parts
                .iter()
                .flat_map(|p| p.iter().copied())
                .collect::<Vec<u8>>(),
        )
    }

    /// The payload of a joined blob frame, checking its head.
    fn payload(frame: &Bytes) -> Bytes {
        let prefix = frame[..PREFIX_LEN].try_into().expect("4 bytes");
        let (len, blob_frame) = codec::frame_head(prefix, codec::MAX_FRAME).expect("a head");
        assert!(blob_frame, "the prefix marks a blob frame");
        assert_eq!(len, frame.len() - PREFIX_LEN);
        frame.slice(PREFIX_LEN..)
    }

    #[test]
    fn big_lists_travel_as_blobs_and_come_back_as_slices_of_them() {
        let big = Values::encode(&[Some(Value::from(vec![2.5f64; BLOB_AT_LEAST / 8 + 1]))])
            .expect("encodes");
        let small = Values::encode(&[Some(Value::from(vec![1u8; 100]))]).expect("encodes");
        let msg = vec![small.clone(), big.clone(), small.clone(), big.clone()];
        for in_parts in [false, true] {
            let (parts, kept) = encode_blob_frame(&msg, Kept::default(), in_parts).expect("frames");
            assert_eq!(kept.count(), 2, "one blob per big list");
            let frame = joined(&parts);
            assert!(frame.len() < 1024, "the bytes are not in the frame");
            let (count, message) = blob_count(&payload(&frame)).expect("a count");
            assert_eq!(count, 2);
            let blobs = kept.0.clone();
            let decoded: Vec<Values> =
                decode_blob_frame(message.clone(), blobs.clone()).expect("decodes");
            assert_eq!(decoded, msg);
            let inside = |bytes: &[u8], blob: &Bytes| bytes.as_ptr() == blob.as_ptr();
            assert!(inside(decoded[1].as_bytes(), &blobs[0]));
            assert!(inside(decoded[3].as_bytes(), &blobs[1]));
            // Without its blobs, or with too few, or too short ones, the
            // frame is refused, not misread.
            assert!(decode_blob_frame::<Vec<Values>>(message.clone(), vec![]).is_err());
            let short = vec![blobs[0].clone(), blobs[1].slice(..10)];
            let err = decode_blob_frame::<Vec<Values>>(message.clone(), short)
                .expect_err("a blob too short");
            assert!(err.to_string().contains("lie beyond blob 1"), "{err}");
            // Nor is it a plain frame.
            assert!(codec::decode::<Vec<Values>>(&message).is_err());
        }
    }

    #[test]
    fn a_sink_that_declines_keeps_the_bytes_inline() {
        struct Declines;
        impl BlobSink for Declines {
            fn put(&mut self, _: &[u8]) -> Option<BlobPlace> {
                None
            }
            fn count(&self) -> u32 {
                0
            }
        }
        let big = Values::encode(&[Some(Value::from(vec![3u8; BLOB_AT_LEAST]))]).expect("encodes");
        let (parts, _) = encode_blob_frame(&vec![big.clone()], Declines, true).expect("frames");
        let frame = joined(&parts);
        let (count, message) = blob_count(&payload(&frame)).expect("a count");
        assert_eq!(count, 0);
        let decoded: Vec<Values> = decode_blob_frame(message, vec![]).expect("decodes");
        assert_eq!(decoded, vec![big]);
    }

    /// A value encoded once for many engines is, in a blob frame, the
    /// value itself, its big lists blobs; and bytes encoded on their own
    /// inside a blob frame (a `Packed` list's) are never in blob form.
    #[test]
    fn what_is_encoded_on_its_own_inside_a_blob_frame_is_plain() {
        let items =
            Values::encode(&[Some(Value::from(vec![4u8; BLOB_AT_LEAST]))]).expect("encodes");
        let op = Arc::new(Encoded::new(NamespaceOp::Pull(vec!["x".into()])));
        let msg = (items.clone(), op.clone());
        let (parts, kept) = encode_blob_frame(&msg, Kept::default(), true).expect("frames");
        let (_, message) = blob_count(&payload(&joined(&parts))).expect("a count");
        let (back_items, back_op): (Values, Arc<Encoded<NamespaceOp>>) =
            decode_blob_frame(message, kept.0).expect("decodes");
        assert_eq!(back_items, items);
        assert_eq!(**back_op, **op);
        // The list's own bytes decode anywhere, as they were encoded.
        assert_eq!(
            back_items.decode().expect("plain bytes"),
            items.decode().expect("plain bytes")
        );
    }
}
