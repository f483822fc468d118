//! [`Array`]: a list of numbers (or bytes) held as one contiguous typed
//! vector, the data plane's form of a big value (issue 13).
//!
//! A `list<f64>` of a million items as [`Value::List`] is a million tagged
//! 32-byte nodes: each is encoded with its own tag, decoded, checked and
//! converted one by one. As an [`Array`] it is one `Vec<f64>`: 8 bytes an
//! item in memory, one length and the raw little-endian bytes on the wire
//! (no tag per item), and a check against its WIT type that looks at the
//! element type once, whatever the length.
//!
//! Every scalar list type but `list<bool>` and `list<char>` has a case
//! (`bool` and `char` have no fixed-width numeric form the guest and the
//! wire agree on byte for byte). `list<u8>` is [`Array::U8`]: bytes.
//!
//! An `Array` and a [`Value::List`] of the same scalars are the same WIT
//! value: they compare equal, print the same JSON, and pass the same type
//! check. The wire keeps whichever form was sent.
//!
//! A receiver that only passes an array on (an engine lowers it into a
//! guest's memory, or keeps it in a namespace and later lowers it) may
//! decode it as [`Array::Shared`]: its little-endian bytes where they
//! arrived, in the memory file or frame they came in, not copied into a
//! vector of its own ([`Packed::decode_sharing`](crate::msg::Packed::decode_sharing)).
//! A 100 MB push then costs each engine no copy at all.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::ser::{Serialize, Serializer};

use crate::value::Value;
use crate::wit::Type;

/// A list of scalars as one typed vector; see the module documentation.
#[derive(Clone, Debug)]
pub enum Array {
    /// `list<s8>`
    S8(Vec<i8>),
    /// `list<u8>`: bytes.
    U8(Vec<u8>),
    /// `list<s16>`
    S16(Vec<i16>),
    /// `list<u16>`
    U16(Vec<u16>),
    /// `list<s32>`
    S32(Vec<i32>),
    /// `list<u32>`
    U32(Vec<u32>),
    /// `list<s64>`
    S64(Vec<i64>),
    /// `list<u64>`
    U64(Vec<u64>),
    /// `list<f32>`
    F32(Vec<f32>),
    /// `list<f64>`
    F64(Vec<f64>),
    /// Any of the cases above, as its items' little-endian bytes in a
    /// buffer shared with what they came in; see the module documentation.
    Shared(SharedItems),
}

/// The items of an [`Array::Shared`]: an element type and the items'
/// little-endian bytes, a whole number of items (checked when made), at
/// whatever alignment they arrived.
#[derive(Clone)]
pub struct SharedItems {
    /// The case of the element type, an index into [`ELEMENTS`].
    case: usize,
    bytes: Bytes,
}

impl SharedItems {
    /// Items of case `case` ([`ELEMENTS`]) held as `bytes`; an error if
    /// there is no such case or the bytes are not a whole number of items.
    pub(crate) fn new(case: usize, bytes: Bytes) -> Result<Self, String> {
        let size = item_size(case).ok_or_else(|| format!("no array case {case}"))?;
        whole_items(bytes.len(), size)?;
        Ok(Self { case, bytes })
    }

    /// The items in a vector of their own (one copy).
    pub fn to_owned_array(&self) -> Array {
        Array::items_of(self.case, &self.bytes)
    }

    /// The items' little-endian bytes.
    pub fn as_le_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for SharedItems {
    /// As the owned array of the same items prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Shared")
            .field(&self.to_owned_array())
            .finish()
    }
}

/// The size of one item of case `case` ([`ELEMENTS`]), if there is one.
fn item_size(case: usize) -> Option<usize> {
    Some(match case {
        0 | 1 => 1,
        2 | 3 => 2,
        4 | 5 | 8 => 4,
        6 | 7 | 9 => 8,
        _ => return None,
    })
}

/// `Ok` if `len` bytes are a whole number of `size`-byte items.
fn whole_items(len: usize, size: usize) -> Result<(), String> {
    if len.is_multiple_of(size) {
        Ok(())
    } else {
        Err(format!(
            "{len} bytes are not a whole number of {size}-byte items"
        ))
    }
}

/// The element types of [`Array`]'s cases, in declaration order: the case
/// index on the wire.
pub(crate) const ELEMENTS: &[&str] = &[
    "S8", "U8", "S16", "U16", "S32", "U32", "S64", "U64", "F32", "F64",
];

/// Runs `$body` with `$v` bound to the vector of `$array`, whatever its
/// case, or `$shared_body` with `$shared` bound to the items of an
/// [`Array::Shared`] (bytes: [`Array::owned`] makes them a vector).
macro_rules! each {
    ($array:expr, $v:ident => $body:expr, $shared:ident => $shared_body:expr) => {
        match $array {
            Array::Shared($shared) => $shared_body,
            Array::S8($v) => $body,
            Array::U8($v) => $body,
            Array::S16($v) => $body,
            Array::U16($v) => $body,
            Array::S32($v) => $body,
            Array::U32($v) => $body,
            Array::S64($v) => $body,
            Array::U64($v) => $body,
            Array::F32($v) => $body,
            Array::F64($v) => $body,
        }
    };
}

impl Array {
    /// How many items it holds.
    pub fn len(&self) -> usize {
        each!(self, v => v.len(), shared => shared.bytes.len() / self.item_bytes())
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The WIT type of its items.
    pub fn element_type(&self) -> Type {
        match self.case() {
            0 => Type::S8,
            1 => Type::U8,
            2 => Type::S16,
            3 => Type::U16,
            4 => Type::S32,
            5 => Type::U32,
            6 => Type::S64,
            7 => Type::U64,
            8 => Type::F32,
            _ => Type::F64,
        }
    }

    /// The size of one item, in bytes (in memory, on the wire and in a
    /// guest's memory alike).
    pub fn item_bytes(&self) -> usize {
        // Every case has a size (`item_size` covers `ELEMENTS`).
        item_size(self.case()).unwrap_or(1)
    }

    /// The items' bytes in memory (and on the wire).
    pub fn byte_len(&self) -> usize {
        self.len() * self.item_bytes()
    }

    /// The case index on the wire ([`ELEMENTS`]).
    fn case(&self) -> usize {
        match self {
            Array::Shared(shared) => shared.case,
            Array::S8(_) => 0,
            Array::U8(_) => 1,
            Array::S16(_) => 2,
            Array::U16(_) => 3,
            Array::S32(_) => 4,
            Array::U32(_) => 5,
            Array::S64(_) => 6,
            Array::U64(_) => 7,
            Array::F32(_) => 8,
            Array::F64(_) => 9,
        }
    }

    /// Item `i` as a scalar [`Value`].
    pub fn get(&self, i: usize) -> Option<Value> {
        Some(match self {
            Array::Shared(shared) => {
                let size = self.item_bytes();
                let start = i.checked_mul(size)?;
                let item = shared.bytes.get(start..start.checked_add(size)?)?;
                return Array::items_of(shared.case, item).get(0);
            }
            Array::S8(v) => Value::S8(*v.get(i)?),
            Array::U8(v) => Value::U8(*v.get(i)?),
            Array::S16(v) => Value::S16(*v.get(i)?),
            Array::U16(v) => Value::U16(*v.get(i)?),
            Array::S32(v) => Value::S32(*v.get(i)?),
            Array::U32(v) => Value::U32(*v.get(i)?),
            Array::S64(v) => Value::S64(*v.get(i)?),
            Array::U64(v) => Value::U64(*v.get(i)?),
            Array::F32(v) => Value::F32(*v.get(i)?),
            Array::F64(v) => Value::F64(*v.get(i)?),
        })
    }

    /// Every item as a scalar [`Value`] (the per-item form, for code that
    /// walks a [`Value::List`]).
    pub fn to_values(&self) -> Vec<Value> {
        let owned = self.owned();
        (0..owned.len()).filter_map(|i| owned.get(i)).collect()
    }

    /// The array with its items in a vector of its own: itself, unless it
    /// is [`Array::Shared`] (then a copy).
    pub fn owned(&self) -> Cow<'_, Array> {
        match self {
            Array::Shared(shared) => Cow::Owned(shared.to_owned_array()),
            owned => Cow::Borrowed(owned),
        }
    }

    /// `items` as an array of `element`s, if `element` has an array case
    /// and every item is of that type; `None` otherwise (an item of another
    /// type is for the type check to name).
    pub fn from_values(element: &Type, items: &[Value]) -> Option<Array> {
        macro_rules! collect {
            ($case:ident) => {
                Array::$case(
                    items
                        .iter()
                        .map(|item| match item {
                            Value::$case(x) => Some(*x),
                            _ => None,
                        })
                        .collect::<Option<Vec<_>>>()?,
                )
            };
        }
        Some(match element {
            Type::S8 => collect!(S8),
            Type::U8 => collect!(U8),
            Type::S16 => collect!(S16),
            Type::U16 => collect!(U16),
            Type::S32 => collect!(S32),
            Type::U32 => collect!(U32),
            Type::S64 => collect!(S64),
            Type::U64 => collect!(U64),
            Type::F32 => collect!(F32),
            Type::F64 => collect!(F64),
            _ => return None,
        })
    }

    /// A one-item array of a numeric scalar; `None` for any other value.
    pub fn of_scalar(value: &Value) -> Option<Array> {
        Some(match *value {
            Value::S8(x) => Array::S8(vec![x]),
            Value::U8(x) => Array::U8(vec![x]),
            Value::S16(x) => Array::S16(vec![x]),
            Value::U16(x) => Array::U16(vec![x]),
            Value::S32(x) => Array::S32(vec![x]),
            Value::U32(x) => Array::U32(vec![x]),
            Value::S64(x) => Array::S64(vec![x]),
            Value::U64(x) => Array::U64(vec![x]),
            Value::F32(x) => Array::F32(vec![x]),
            Value::F64(x) => Array::F64(vec![x]),
            _ => return None,
        })
    }

    /// Whether `element` has an array case.
    pub fn holds(element: &Type) -> bool {
        Array::case_of(element).is_some()
    }

    /// Contiguous, balanced parts, one per `parts` (at least one), the
    /// first ones a longer by one where the length does not divide: as
    /// `dv.scatter` deals a sequence.
    pub fn split(&self, parts: usize) -> Vec<Array> {
        let parts = parts.max(1);
        let (base, extra) = (self.len() / parts, self.len() % parts);
        let mut start = 0;
        let bounds = (0..parts).map(|p| {
            let end = start + base + usize::from(p < extra);
            let part = start..end;
            start = end;
            part
        });
        each!(self,
            v => bounds.map(|part| Array::from(v[part].to_vec())).collect(),
            shared => {
                // Each part cut from the bytes, copied once.
                let size = self.item_bytes();
                bounds
                    .map(|part| {
                        let bytes = &shared.bytes[part.start * size..part.end * size];
                        Array::items_of(shared.case, bytes)
                    })
                    .collect()
            }
        )
    }

    /// The parts joined in order (`dv.gather`), if they share an element
    /// type (empty parts join any).
    pub fn concat(parts: &[Array]) -> Option<Array> {
        let mut nonempty = parts.iter().filter(|p| !p.is_empty());
        let Some(first) = nonempty.next() else {
            return parts.first().cloned();
        };
        let mut joined = first.owned().into_owned();
        for part in nonempty {
            match (&mut joined, &*part.owned()) {
                (Array::S8(a), Array::S8(b)) => a.extend_from_slice(b),
                (Array::U8(a), Array::U8(b)) => a.extend_from_slice(b),
                (Array::S16(a), Array::S16(b)) => a.extend_from_slice(b),
                (Array::U16(a), Array::U16(b)) => a.extend_from_slice(b),
                (Array::S32(a), Array::S32(b)) => a.extend_from_slice(b),
                (Array::U32(a), Array::U32(b)) => a.extend_from_slice(b),
                (Array::S64(a), Array::S64(b)) => a.extend_from_slice(b),
                (Array::U64(a), Array::U64(b)) => a.extend_from_slice(b),
                (Array::F32(a), Array::F32(b)) => a.extend_from_slice(b),
                (Array::F64(a), Array::F64(b)) => a.extend_from_slice(b),
                _ => return None,
            }
        }
        Some(joined)
    }

    /// Whether `items` are this array's items, one for one (a
    /// [`Value::List`] of the same scalars is the same WIT value).
    pub(crate) fn same_as_values(&self, items: &[Value]) -> bool {
        let owned = self.owned();
        items.len() == owned.len()
            && items
                .iter()
                .enumerate()
                .all(|(i, item)| owned.get(i).as_ref() == Some(item))
    }

    /// The items' little-endian bytes, as the wire carries them.
    pub fn to_le_bytes(&self) -> Cow<'_, [u8]> {
        #[cfg(target_endian = "little")]
        {
            each!(self,
                v => Cow::Borrowed(bytemuck::cast_slice(v)),
                shared => Cow::Borrowed(&shared.bytes))
        }
        #[cfg(not(target_endian = "little"))]
        {
            each!(self,
                v => {
                    let mut bytes = Vec::with_capacity(self.byte_len());
                    v.iter().for_each(|x| bytes.extend_from_slice(&x.to_le_bytes()));
                    Cow::Owned(bytes)
                },
                shared => Cow::Borrowed(&shared.bytes))
        }
    }

    /// The case index ([`ELEMENTS`]) of `element`'s arrays, if it has one.
    fn case_of(element: &Type) -> Option<usize> {
        Some(match element {
            Type::S8 => 0,
            Type::U8 => 1,
            Type::S16 => 2,
            Type::U16 => 3,
            Type::S32 => 4,
            Type::U32 => 5,
            Type::S64 => 6,
            Type::U64 => 7,
            Type::F32 => 8,
            Type::F64 => 9,
            _ => return None,
        })
    }

    /// The bytes of one item of a list of `element`s (which is also its
    /// alignment in a guest's memory), if `element` has an array case.
    pub fn item_bytes_of(element: &Type) -> Option<usize> {
        item_size(Array::case_of(element)?)
    }

    /// An array of `element`s from their little-endian bytes (as a guest's
    /// memory holds them); an error if `element` has no array case or the
    /// bytes are not a whole number of items.
    pub fn from_le_bytes_of(element: &Type, bytes: &[u8]) -> Result<Array, String> {
        let case = Array::case_of(element)
            .ok_or_else(|| format!("`list<{element}>` has no typed array form"))?;
        Array::from_le_bytes(case, bytes)
    }

    /// An array of case `case` ([`ELEMENTS`]) from its little-endian
    /// bytes; an error if there is no such case or the bytes are not a
    /// whole number of items.
    pub(crate) fn from_le_bytes(case: usize, bytes: &[u8]) -> Result<Array, String> {
        let size = item_size(case).ok_or_else(|| format!("no array case {case}"))?;
        whole_items(bytes.len(), size)?;
        Ok(Array::items_of(case, bytes))
    }

    /// An array of case `case` (one of [`ELEMENTS`]; the last for any
    /// other) from little-endian bytes, a whole number of items (checked by
    /// the caller; a partial item at the end would read as zero-padded).
    fn items_of(case: usize, bytes: &[u8]) -> Array {
        fn items<T: bytemuck::Pod, const N: usize>(
            bytes: &[u8],
            from_le: fn([u8; N]) -> T,
        ) -> Vec<T> {
            if cfg!(target_endian = "little") {
                // The bytes may sit at any alignment in a frame: copied
                // into an aligned vector, which is the one copy needed.
                bytemuck::pod_collect_to_vec(bytes)
            } else {
                bytes
                    .chunks_exact(N)
                    .map(|chunk| {
                        let mut item = [0u8; N];
                        item.copy_from_slice(chunk);
                        from_le(item)
                    })
                    .collect()
            }
        }
        match case {
            0 => Array::S8(items(bytes, i8::from_le_bytes)),
            1 => Array::U8(bytes.to_vec()),
            2 => Array::S16(items(bytes, i16::from_le_bytes)),
            3 => Array::U16(items(bytes, u16::from_le_bytes)),
            4 => Array::S32(items(bytes, i32::from_le_bytes)),
            5 => Array::U32(items(bytes, u32::from_le_bytes)),
            6 => Array::S64(items(bytes, i64::from_le_bytes)),
            7 => Array::U64(items(bytes, u64::from_le_bytes)),
            8 => Array::F32(items(bytes, f32::from_le_bytes)),
            _ => Array::F64(items(bytes, f64::from_le_bytes)),
        }
    }

    /// An array of case `case` held as `bytes` themselves
    /// ([`Array::Shared`]); an error as [`Array::from_le_bytes`] gives.
    pub(crate) fn from_shared_le_bytes(case: usize, bytes: Bytes) -> Result<Array, String> {
        SharedItems::new(case, bytes).map(Array::Shared)
    }
}

impl PartialEq for Array {
    /// Item by item, as the WIT values they are: floats compare as `==`
    /// does (a NaN is unequal to itself), as [`Value::F64`]s do.
    fn eq(&self, other: &Self) -> bool {
        if matches!(self, Array::Shared(_)) || matches!(other, Array::Shared(_)) {
            return *self.owned() == *other.owned();
        }
        match (self, other) {
            (Array::S8(a), Array::S8(b)) => a == b,
            (Array::U8(a), Array::U8(b)) => a == b,
            (Array::S16(a), Array::S16(b)) => a == b,
            (Array::U16(a), Array::U16(b)) => a == b,
            (Array::S32(a), Array::S32(b)) => a == b,
            (Array::U32(a), Array::U32(b)) => a == b,
            (Array::S64(a), Array::S64(b)) => a == b,
            (Array::U64(a), Array::U64(b)) => a == b,
            (Array::F32(a), Array::F32(b)) => a == b,
            (Array::F64(a), Array::F64(b)) => a == b,
            // Two empty lists are the same value, whatever their case.
            _ => self.is_empty() && other.is_empty(),
        }
    }
}

impl Serialize for Array {
    /// One case tag and the items' little-endian bytes: `serialize_bytes`,
    /// which bincode writes as a length and a copy, not a tag per item.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_variant(
            "Array",
            self.case() as u32,
            ELEMENTS[self.case()],
            serde_bytes::Bytes::new(&self.to_le_bytes()),
        )
    }
}

impl fmt::Display for Array {
    /// The JSON form of the list ([`crate::json`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Value::from(self.clone()))
    }
}

impl From<Array> for Value {
    fn from(array: Array) -> Self {
        Value::Array(std::sync::Arc::new(array))
    }
}

macro_rules! from_vec {
    ($($t:ty => $case:ident),*) => {$(
        impl From<Vec<$t>> for Array {
            fn from(items: Vec<$t>) -> Self {
                Array::$case(items)
            }
        }

        impl From<Vec<$t>> for Value {
            /// A typed list ([`Array`]), moved, not copied.
            fn from(items: Vec<$t>) -> Self {
                Value::from(Array::$case(items))
            }
        }

        impl From<&[$t]> for Value {
            /// A typed list ([`Array`]): one copy of the slice.
            fn from(items: &[$t]) -> Self {
                Value::from(Array::$case(items.to_vec()))
            }
        }
    )*};
}

from_vec!(i8 => S8, u8 => U8, i16 => S16, u16 => U16, i32 => S32, u32 => U32,
    i64 => S64, u64 => U64, f32 => F32, f64 => F64);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::codec::{self, SLICE_AT_LEAST};
    use crate::msg::Entries;
    use crate::testing::{arb_array, same_value};
    use crate::{json_to_value, value_to_json};

    #[test]
    fn the_item_size_by_element_type_is_each_arrays_own() {
        for array in [
            Array::S8(vec![]),
            Array::U8(vec![]),
            Array::S16(vec![]),
            Array::U16(vec![]),
            Array::S32(vec![]),
            Array::U32(vec![]),
            Array::S64(vec![]),
            Array::U64(vec![]),
            Array::F32(vec![]),
            Array::F64(vec![]),
        ] {
            assert_eq!(
                Array::item_bytes_of(&array.element_type()),
                Some(array.item_bytes())
            );
        }
        assert_eq!(Array::item_bytes_of(&Type::Bool), None);
    }

    proptest! {
        /// On the wire: the same array back, and its bytes plus a few of
        /// framing (two tags and a length), not a tag per item.
        #[test]
        fn every_typed_list_round_trips_on_the_wire_as_its_bytes(array in arb_array(100)) {
            let value = Value::from(array.clone());
            let bytes = codec::encode(&value).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(bytes.len() <= array.byte_len() + 8, "{} bytes for {}", bytes.len(), array.byte_len());
            let back: Value = codec::decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(matches!(back, Value::Array(_)));
            prop_assert!(same_value(&back, &value));
        }

        /// Through JSON, read by its signature: a typed list again, equal
        /// (as a value) to the same items in a plain list.
        #[test]
        fn every_typed_list_round_trips_through_json(array in arb_array(100)) {
            let ty = Type::List(Box::new(array.element_type()));
            let value = Value::from(array.clone());
            let json = value_to_json(&value);
            let back = json_to_value(&json, &ty, "v").map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(same_value(&back, &value));
            if !array.is_empty() {
                prop_assert!(matches!(back, Value::Array(_)), "{back:?}");
            }
            prop_assert!(same_value(&Value::List(array.to_values()), &value));
            prop_assert_eq!(back.check(&ty, "v"), Ok(()));
        }
    }

    /// Items of case `case` from arbitrary bytes, cut to whole items.
    fn array_of_bytes(case: usize, mut bytes: Vec<u8>) -> Array {
        let size = item_size(case).expect("a case");
        bytes.truncate(bytes.len() / size * size);
        Array::from_le_bytes(case, &bytes).expect("whole items")
    }

    /// The typed list an entry of `entries` decoded to.
    fn entry_array(entries: &[(String, Value)], at: usize) -> &Array {
        match &entries[at].1 {
            Value::Array(array) => array,
            other => panic!("not a typed list: {other:?}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Decoded for passing on, a big typed list is its bytes where
        /// they arrived (no copy), and it is the same value as the list
        /// sent in every way a reader sees: items, JSON, equality, its
        /// encoding, scatter and gather.
        #[test]
        fn a_big_typed_list_decoded_for_passing_on_is_a_slice_of_what_came(
            case in 0usize..10,
            bytes in prop::collection::vec(any::<u8>(), SLICE_AT_LEAST..SLICE_AT_LEAST + 4096),
        ) {
            let sent = array_of_bytes(case, bytes);
            let value = Value::from(sent.clone());
            let packed = Entries::encode(&[("a".to_owned(), value.clone())]).expect("encodes");
            let decoded = packed.decode_sharing().expect("decodes");
            let shared = entry_array(&decoded, 0);
            let Array::Shared(items) = shared else {
                return Err(TestCaseError::fail(format!("copied: {shared:?}")));
            };
            let within = packed.as_bytes().as_ptr_range();
            prop_assert!(within.contains(&items.as_le_bytes().as_ptr()));
            prop_assert_eq!(shared.len(), sent.len());
            prop_assert_eq!(shared.element_type(), sent.element_type());
            prop_assert!(same_value(&decoded[0].1, &value));
            for i in [0, sent.len() / 2, sent.len() - 1, sent.len()] {
                let same = match (shared.get(i), sent.get(i)) {
                    (Some(a), Some(b)) => same_value(&a, &b),
                    (a, b) => a.is_none() && b.is_none(),
                };
                prop_assert!(same, "item {}", i);
            }
            prop_assert_eq!(value_to_json(&decoded[0].1), value_to_json(&value));
            prop_assert_eq!(codec::encode(&decoded[0].1).expect("encodes"), codec::encode(&value).expect("encodes"));
            let parts = shared.split(3);
            prop_assert!(parts.iter().all(|part| !matches!(part, Array::Shared(_))));
            let joined = Array::concat(&parts).expect("one element type");
            prop_assert!(same_value(&Value::from(joined), &value));
            // Read for keeps (a client), the same bytes are a vector.
            let kept = packed.decode().expect("decodes");
            prop_assert!(!matches!(entry_array(&kept, 0), Array::Shared(_)));
        }
    }

    #[test]
    fn small_lists_and_lists_that_are_a_small_part_of_what_came_are_copied() {
        let big = Value::from(vec![1.5f64; SLICE_AT_LEAST / 8]);
        let small = Value::from(vec![2.5f64; 16]);
        // Five big lists: each is a fifth of the bytes, so keeping one
        // would pin five times its size.
        let five: Vec<(String, Value)> = (0..5).map(|i| (format!("b{i}"), big.clone())).collect();
        let decoded = Entries::encode(&five)
            .expect("encodes")
            .decode_sharing()
            .expect("decodes");
        assert!(
            decoded
                .iter()
                .enumerate()
                .all(|(i, _)| !matches!(entry_array(&decoded, i), Array::Shared(_)))
        );
        assert!(decoded.iter().all(|(_, value)| *value == big));
        // A big list beside a small one: the big one shared, the small copied.
        let two = vec![
            ("b".to_owned(), big.clone()),
            ("s".to_owned(), small.clone()),
        ];
        let decoded = Entries::encode(&two)
            .expect("encodes")
            .decode_sharing()
            .expect("decodes");
        assert!(matches!(entry_array(&decoded, 0), Array::Shared(_)));
        assert!(matches!(entry_array(&decoded, 1), Array::F64(_)));
        assert_eq!(decoded[0].1, big);
        assert_eq!(decoded[1].1, small);
    }

    #[test]
    fn a_typed_list_is_the_same_value_as_its_items_in_a_list() {
        let typed = Value::from(vec![1.5f64, -2.0]);
        let items = Value::List(vec![Value::F64(1.5), Value::F64(-2.0)]);
        assert_eq!(typed, items);
        assert_eq!(items, typed);
        assert_ne!(typed, Value::List(vec![Value::F64(1.5)]));
        assert_ne!(Value::from(vec![1u32]), Value::List(vec![Value::U64(1)]));
        assert_eq!(typed.to_string(), items.to_string());
        // Empty lists are equal whatever their element type.
        assert_eq!(
            Value::from(Vec::<u8>::new()),
            Value::from(Vec::<f64>::new())
        );
    }

    #[test]
    fn a_typed_list_of_another_element_type_is_refused_at_once() {
        let ty = Type::List(Box::new(Type::F64));
        let err = Value::from(vec![1i64, 2, 3]).check(&ty, "v").unwrap_err();
        assert_eq!(
            err.to_string(),
            "v: expected list<f64>, found a list of 3 s64"
        );
        // JSON read by the signature names the item that is wrong.
        let json = serde_json::json!([1.0, 2.0, 3.0, "x"]);
        let err = json_to_value(&json, &ty, "v").unwrap_err();
        assert_eq!(err.to_string(), "v[3]: expected f64, found \"x\"");
    }

    #[test]
    fn bytes_that_are_not_whole_items_are_refused() {
        let value = Value::from(vec![1.0f64, 2.0]);
        let mut bytes = codec::encode(&value).expect("encodes");
        // The length (a varint, 16) becomes 15: 15 bytes of f64s.
        let at = bytes.iter().position(|&b| b == 16).expect("the length");
        bytes[at] = 15;
        bytes.pop();
        let err = codec::decode::<Value>(&bytes).unwrap_err().to_string();
        assert!(
            err.contains("15 bytes are not a whole number of 8-byte items"),
            "{err}"
        );
    }

    #[test]
    fn split_deals_contiguous_balanced_parts_and_concat_joins_them() {
        let array = Array::F64((0..10).map(f64::from).collect());
        let parts = array.split(3);
        let lens: Vec<usize> = parts.iter().map(Array::len).collect();
        assert_eq!(lens, vec![4, 3, 3]);
        assert_eq!(parts[1], Array::F64(vec![4.0, 5.0, 6.0]));
        assert_eq!(Array::concat(&parts), Some(array.clone()));
        assert_eq!(array.split(0).len(), 1);
        assert_eq!(
            Array::concat(&[Array::F64(vec![1.0]), Array::S64(vec![1])]),
            None
        );
        assert_eq!(
            Array::concat(&[Array::U8(vec![]), Array::F64(vec![1.0])]),
            Some(Array::F64(vec![1.0]))
        );
    }

    #[test]
    fn cost_is_the_box_and_the_items_bytes() {
        let value = Value::from(vec![0.0f64; 1000]);
        assert_eq!(
            value.cost_bytes(),
            crate::value::NODE_BYTES + std::mem::size_of::<Array>() + 8000
        );
    }
}
