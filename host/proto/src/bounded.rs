//! Decoding values within bounds: [`Value`]'s `Deserialize`, which refuses
//! a value nested deeper than [`MAX_DEPTH`], and the decoders of a
//! [`Packed`](crate::msg::Packed) list's items within a memory budget.
//!
//! `Value` is recursive, so a derived decoder recurses once per level a
//! peer chooses to send: 30,000 levels of `Option(Some(..))` are 60 KiB of
//! bincode and overflow a 2 MiB stack (issue 10). Here every nested value
//! is decoded through a [`ValueSeed`] that knows its depth and refuses one
//! past the limit before reading it.
//!
//! The same seed charges each node's cost (the model of
//! [`NODE_BYTES`]) to a [`Meter`] as it decodes, so that a list of items can
//! be decoded with a budget per item and fail at the first node past it,
//! before the rest of the list is read. Why a seed and not a thread-local
//! context set by the codec: the budget then travels with the decode that
//! asked for it, explicitly, and cannot leak into another decode on the same
//! thread (a nested or interleaved one, or a panic that skipped the reset);
//! and only the decoders that need a budget pay for one. `Value`'s plain
//! `Deserialize`, used inside every message, is the same seed with an
//! unlimited meter.
//!
//! The form is exactly the derived `Serialize`'s (serde's externally tagged
//! enums), in any serde format: the round-trip tests prove it for bincode
//! and JSON.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::size_of;

use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, SeqAccess, VariantAccess, Visitor,
};

use crate::array::{Array, ELEMENTS};
use crate::msg::Arg;
use crate::value::{FIELD_BYTES, MAX_DEPTH, NAME_BYTES, NODE_BYTES, Value};

/// The error text for a value nested past [`MAX_DEPTH`]; the codec
/// recognizes it to report [`CodecError::TooDeep`](crate::codec::CodecError::TooDeep).
pub(crate) fn too_deep_message() -> String {
    format!("a value is nested deeper than the nesting limit (MAX_DEPTH = {MAX_DEPTH})")
}

/// The most bytes a list's buffer is preallocated with from the length a
/// peer claims, before its items arrive (serde's own cap, 1 MiB): a forged
/// length then costs at most this much, and a true one grows the rest.
const PREALLOC_BYTES: usize = 1 << 20;

/// How much memory a decode has committed, against a limit. Shared by
/// reference through the seeds of one decode (hence the cells).
pub(crate) struct Meter {
    limit: usize,
    used: Cell<usize>,
    /// Set when a charge passed the limit: the decode's error is then the
    /// budget's, whatever the format made of it.
    over: Cell<bool>,
    /// The index of the item being decoded, for a list decoded item by item.
    item: Cell<usize>,
}

impl Meter {
    /// A meter that never refuses (it still counts).
    pub(crate) fn unlimited() -> Self {
        Self::new(usize::MAX)
    }

    /// A meter that refuses a charge past `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            used: Cell::new(0),
            over: Cell::new(false),
            item: Cell::new(0),
        }
    }

    fn charge<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        let used = self.used.get().saturating_add(bytes);
        self.used.set(used);
        if used > self.limit {
            self.over.set(true);
            return Err(E::custom(format_args!(
                "over a memory budget of {} bytes",
                self.limit
            )));
        }
        Ok(())
    }

    /// How many `T` a buffer may be preallocated with for a list claiming
    /// `hint` items: no more than [`PREALLOC_BYTES`] or the budget left.
    fn prealloc<T>(&self, hint: Option<usize>) -> usize {
        let room = PREALLOC_BYTES.min(self.limit.saturating_sub(self.used.get()));
        hint.unwrap_or(0).min(room / size_of::<T>().max(1))
    }

    /// Whether the decode failed because an item passed the budget.
    pub(crate) fn over(&self) -> bool {
        self.over.get()
    }

    /// The item being decoded when the decode stopped.
    pub(crate) fn item(&self) -> usize {
        self.item.get()
    }

    /// Bytes charged so far (for the current item).
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.get()
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let meter = Meter::unlimited();
        ValueSeed::root(&meter).deserialize(deserializer)
    }
}

/// Decodes one [`Value`] at a known depth, charging a meter.
#[derive(Clone, Copy)]
pub(crate) struct ValueSeed<'m> {
    /// The depth of the value this seed decodes: 1 for a root.
    depth: usize,
    meter: &'m Meter,
}

impl<'m> ValueSeed<'m> {
    /// The seed of a value that is not part of another.
    pub(crate) fn root(meter: &'m Meter) -> Self {
        Self { depth: 1, meter }
    }

    fn child(self) -> Self {
        Self {
            depth: self.depth + 1,
            meter: self.meter,
        }
    }

    fn string<E: de::Error>(self, s: String) -> Result<String, E> {
        self.meter.charge(s.len())?;
        Ok(s)
    }
}

/// `Value`'s variant names, in declaration order (their index is the
/// variant index serde gives them).
const KINDS: &[&str] = &[
    "Bool", "S8", "U8", "S16", "U16", "S32", "U32", "S64", "U64", "F32", "F64", "Char", "String",
    "List", "Record", "Tuple", "Variant", "Enum", "Option", "Result", "Flags", "Array",
];

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        // Before reading anything of this value: a peer's nesting stops here.
        if self.depth > MAX_DEPTH {
            return Err(de::Error::custom(too_deep_message()));
        }
        self.meter.charge(NODE_BYTES)?;
        deserializer.deserialize_enum("Value", KINDS, self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a wasp value")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (kind, variant) = data.variant_seed(VariantIndex(KINDS))?;
        let child = self.child();
        Ok(match kind {
            0 => Value::Bool(variant.newtype_variant()?),
            1 => Value::S8(variant.newtype_variant()?),
            2 => Value::U8(variant.newtype_variant()?),
            3 => Value::S16(variant.newtype_variant()?),
            4 => Value::U16(variant.newtype_variant()?),
            5 => Value::S32(variant.newtype_variant()?),
            6 => Value::U32(variant.newtype_variant()?),
            7 => Value::S64(variant.newtype_variant()?),
            8 => Value::U64(variant.newtype_variant()?),
            9 => Value::F32(variant.newtype_variant()?),
            10 => Value::F64(variant.newtype_variant()?),
            11 => Value::Char(variant.newtype_variant()?),
            12 => Value::String(self.string(variant.newtype_variant()?)?),
            13 => Value::List(variant.newtype_variant_seed(Items(child))?),
            14 => Value::Record(variant.newtype_variant_seed(Fields(child))?),
            15 => Value::Tuple(variant.newtype_variant_seed(Items(child))?),
            16 => {
                let (case, payload) = variant.tuple_variant(2, Case(child))?;
                Value::Variant(case, payload)
            }
            17 => Value::Enum(self.string(variant.newtype_variant()?)?),
            18 => Value::Option(variant.newtype_variant_seed(Payload(child))?),
            19 => Value::Result(variant.newtype_variant_seed(Outcome(child))?),
            20 => Value::Flags(variant.newtype_variant_seed(Names(self.meter))?),
            _ => Value::from(variant.newtype_variant_seed(ArraySeed(self.meter))?),
        })
    }
}

/// An enum's variant, by index (bincode) or name (self-describing
/// formats), checked against the enum's variant names.
struct VariantIndex(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for VariantIndex {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for VariantIndex {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "one of the variants {:?}", self.0)
    }

    fn visit_u64<E: de::Error>(self, index: u64) -> Result<usize, E> {
        usize::try_from(index)
            .ok()
            .filter(|&i| i < self.0.len())
            .ok_or_else(|| {
                E::invalid_value(
                    de::Unexpected::Unsigned(index),
                    &format!("a variant index below {}", self.0.len()).as_str(),
                )
            })
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<usize, E> {
        self.0
            .iter()
            .position(|&n| n == name)
            .ok_or_else(|| E::unknown_variant(name, self.0))
    }

    fn visit_bytes<E: de::Error>(self, name: &[u8]) -> Result<usize, E> {
        match std::str::from_utf8(name) {
            Ok(name) => self.visit_str(name),
            Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(name), &self)),
        }
    }
}

/// A list's or tuple's items, each one level deeper.
struct Items<'m>(ValueSeed<'m>);

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Value>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Items<'_> {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
        let mut items = Vec::with_capacity(self.0.meter.prealloc::<Value>(seq.size_hint()));
        while let Some(item) = seq.next_element_seed(self.0)? {
            items.push(item);
        }
        Ok(items)
    }
}

/// A record's fields: `(name, value)` pairs, the values one level deeper.
struct Fields<'m>(ValueSeed<'m>);

impl<'de> DeserializeSeed<'de> for Fields<'_> {
    type Value = Vec<(String, Value)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = Vec<(String, Value)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record's fields")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut fields =
            Vec::with_capacity(self.0.meter.prealloc::<(String, Value)>(seq.size_hint()));
        while let Some(field) = seq.next_element_seed(Field(self.0))? {
            fields.push(field);
        }
        Ok(fields)
    }
}

/// One record field, a `(String, Value)` tuple.
struct Field<'m>(ValueSeed<'m>);

impl<'de> DeserializeSeed<'de> for Field<'_> {
    type Value = (String, Value);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_tuple(2, self)
    }
}

impl<'de> Visitor<'de> for Field<'_> {
    type Value = (String, Value);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record field (name, value)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let name: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        self.0
            .meter
            .charge(FIELD_BYTES.saturating_add(name.len()))?;
        let value = seq
            .next_element_seed(self.0)?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        Ok((name, value))
    }
}

/// A variant's case name and payload (a two-field tuple variant).
struct Case<'m>(ValueSeed<'m>);

impl<'de> Visitor<'de> for Case<'_> {
    type Value = (String, Option<Box<Value>>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a variant case (name, payload)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let name: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        self.0.meter.charge(name.len())?;
        let payload = seq
            .next_element_seed(Payload(self.0))?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        Ok((name, payload))
    }
}

/// An optional boxed value, one level deeper (an option's, a variant's or a
/// result's payload).
struct Payload<'m>(ValueSeed<'m>);

impl<'de> DeserializeSeed<'de> for Payload<'_> {
    type Value = Option<Box<Value>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Payload<'_> {
    type Value = Option<Box<Value>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an optional value")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(deserializer).map(|v| Some(Box::new(v)))
    }
}

/// An [`Array`]: its case, then its items' little-endian bytes, charged
/// to the meter before the vector is built.
struct ArraySeed<'m>(&'m Meter);

impl<'de> DeserializeSeed<'de> for ArraySeed<'_> {
    type Value = Array;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Array, D::Error> {
        deserializer.deserialize_enum("Array", ELEMENTS, self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_> {
    type Value = Array;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a typed list")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Array, A::Error> {
        let (case, variant) = data.variant_seed(VariantIndex(ELEMENTS))?;
        variant.newtype_variant_seed(ArrayBytes {
            case,
            meter: self.0,
        })
    }
}

/// The bytes of an [`Array`] of case `case`.
struct ArrayBytes<'m> {
    case: usize,
    meter: &'m Meter,
}

impl<'de> DeserializeSeed<'de> for ArrayBytes<'_> {
    type Value = Array;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Array, D::Error> {
        // Borrowed from the frame where the format can (bincode): the
        // vector built from them is the only copy, and none is made when
        // the bytes are shared (`codec::arrays_slice`).
        deserializer.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for ArrayBytes<'_> {
    type Value = Array;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a typed list's bytes")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Array, E> {
        self.meter.charge(size_of::<Array>() + bytes.len())?;
        match crate::codec::arrays_slice(bytes) {
            // Decoded by a receiver that only passes them on: kept where
            // they are (`Packed::decode_sharing`).
            Some(shared) => Array::from_shared_le_bytes(self.case, shared),
            None => Array::from_le_bytes(self.case, bytes),
        }
        .map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Array, A::Error> {
        // Formats without a bytes type (JSON) send a sequence of numbers.
        self.meter.charge(size_of::<Array>())?;
        let mut bytes = Vec::with_capacity(self.meter.prealloc::<u8>(seq.size_hint()));
        while let Some(byte) = seq.next_element::<u8>()? {
            self.meter.charge(1)?;
            bytes.push(byte);
        }
        Array::from_le_bytes(self.case, &bytes).map_err(de::Error::custom)
    }
}

/// A result's side and payload: `Result<Option<Box<Value>>, ..>`, as serde
/// writes a `Result` (an enum `Result` with variants `Ok` and `Err`).
struct Outcome<'m>(ValueSeed<'m>);

const SIDES: &[&str] = &["Ok", "Err"];

impl<'de> DeserializeSeed<'de> for Outcome<'_> {
    type Value = Result<Option<Box<Value>>, Option<Box<Value>>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_enum("Result", SIDES, self)
    }
}

impl<'de> Visitor<'de> for Outcome<'_> {
    type Value = Result<Option<Box<Value>>, Option<Box<Value>>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a result (Ok or Err)")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        let (side, variant) = data.variant_seed(VariantIndex(SIDES))?;
        let payload = variant.newtype_variant_seed(Payload(self.0))?;
        Ok(if side == 0 { Ok(payload) } else { Err(payload) })
    }
}

/// The names of set flags.
struct Names<'m>(&'m Meter);

impl<'de> DeserializeSeed<'de> for Names<'_> {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<String>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Names<'_> {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of flag names")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut names = Vec::with_capacity(self.0.prealloc::<String>(seq.size_hint()));
        while let Some(name) = seq.next_element::<String>()? {
            self.0.charge(NAME_BYTES.saturating_add(name.len()))?;
            names.push(name);
        }
        Ok(names)
    }
}

/// An item of a [`Packed`](crate::msg::Packed) list that can be decoded
/// against a meter: what [`Packed::decode_within`](crate::msg::Items::decode_within)
/// needs of its items.
pub(crate) trait Metered: Sized {
    /// Decodes one item, charging `meter` for its values.
    fn decode<'de, D: Deserializer<'de>>(deserializer: D, meter: &Meter) -> Result<Self, D::Error>;
}

/// A task's argument list: each value argument charged as its value, each
/// reference as a string of its name (what it holds until resolved).
impl Metered for Vec<Arg> {
    fn decode<'de, D: Deserializer<'de>>(deserializer: D, meter: &Meter) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(Args(meter))
    }
}

/// One result: `None` (a function without one) costs nothing, a value its
/// cost, as the engine's result limit counts it.
impl Metered for Option<Value> {
    fn decode<'de, D: Deserializer<'de>>(deserializer: D, meter: &Meter) -> Result<Self, D::Error> {
        Payload(ValueSeed::root(meter))
            .deserialize(deserializer)
            .map(|v| v.map(|v| *v))
    }
}

/// A task's argument list, [`Arg`] by [`Arg`].
struct Args<'m>(&'m Meter);

impl<'de> Visitor<'de> for Args<'_> {
    type Value = Vec<Arg>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an argument list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Arg>, A::Error> {
        let mut args = Vec::with_capacity(self.0.prealloc::<Arg>(seq.size_hint()));
        while let Some(arg) = seq.next_element_seed(ArgSeed(self.0))? {
            args.push(arg);
        }
        Ok(args)
    }
}

/// One [`Arg`], in the derived form of its `Serialize`.
struct ArgSeed<'m>(&'m Meter);

const ARGS: &[&str] = &["Value", "Ref"];

impl<'de> DeserializeSeed<'de> for ArgSeed<'_> {
    type Value = Arg;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Arg, D::Error> {
        deserializer.deserialize_enum("Arg", ARGS, self)
    }
}

impl<'de> Visitor<'de> for ArgSeed<'_> {
    type Value = Arg;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an argument (a value or a reference)")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Arg, A::Error> {
        let (side, variant) = data.variant_seed(VariantIndex(ARGS))?;
        if side == 0 {
            return variant
                .newtype_variant_seed(ValueSeed::root(self.0))
                .map(Arg::Value);
        }
        let name: String = variant.newtype_variant()?;
        self.0.charge(NODE_BYTES.saturating_add(name.len()))?;
        Ok(Arg::Ref(name))
    }
}

/// A whole packed list (`Vec<T>`), each item decoded within the meter's
/// limit: the meter restarts at each item and records which one it is on.
pub(crate) struct ListWithin<'m, T> {
    meter: &'m Meter,
    /// How many items the list says it holds: no more are preallocated.
    claimed: usize,
    item: PhantomData<fn() -> T>,
}

impl<'m, T> ListWithin<'m, T> {
    /// Decodes a list claiming `claimed` items, each within `meter`.
    pub(crate) fn new(meter: &'m Meter, claimed: usize) -> Self {
        Self {
            meter,
            claimed,
            item: PhantomData,
        }
    }
}

impl<'de, T: Metered> DeserializeSeed<'de> for ListWithin<'_, T> {
    type Value = Vec<T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<T>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: Metered> Visitor<'de> for ListWithin<'_, T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let hint = seq.size_hint().map(|n| n.min(self.claimed));
        let mut items = Vec::with_capacity(
            hint.unwrap_or(0)
                .min(PREALLOC_BYTES / size_of::<T>().max(1)),
        );
        loop {
            self.meter.used.set(0);
            self.meter.item.set(items.len());
            match seq.next_element_seed(Item::<T>(self.meter, PhantomData))? {
                Some(item) => items.push(item),
                None => return Ok(items),
            }
        }
    }
}

/// One item of a [`ListWithin`].
struct Item<'m, T>(&'m Meter, PhantomData<fn() -> T>);

impl<'de, T: Metered> DeserializeSeed<'de> for Item<'_, T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::decode(deserializer, self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::codec::{self, Budget, CodecError};
    use crate::msg::{Items, Values};
    use crate::testing::{arb_type, arb_value_of, same_value};
    use crate::wit::{Field, Type};

    /// One value of every case, nested a little.
    fn every_case() -> Vec<Value> {
        vec![
            Value::Bool(true),
            Value::S8(-8),
            Value::U8(8),
            Value::S16(-16),
            Value::U16(16),
            Value::S32(-32),
            Value::U32(32),
            Value::S64(i64::MIN),
            Value::U64(u64::MAX),
            Value::F32(1.5),
            Value::F64(-0.25),
            Value::Char('é'),
            Value::String("wasp".into()),
            Value::String(String::new()),
            Value::List(vec![Value::U8(1), Value::U8(2)]),
            Value::List(vec![]),
            Value::Record(vec![
                ("a".into(), Value::S64(1)),
                ("b".into(), Value::List(vec![Value::String("x".into())])),
            ]),
            Value::Tuple(vec![Value::Char('x'), Value::F64(2.0)]),
            Value::Variant("none".into(), None),
            Value::Variant("some".into(), Some(Box::new(Value::U32(3)))),
            Value::Enum("red".into()),
            Value::Option(None),
            Value::Option(Some(Box::new(Value::Option(Some(Box::new(Value::Bool(
                false,
            ))))))),
            Value::Result(Ok(None)),
            Value::Result(Ok(Some(Box::new(Value::S8(1))))),
            Value::Result(Err(None)),
            Value::Result(Err(Some(Box::new(Value::String("bad".into()))))),
            Value::Flags(vec![]),
            Value::Flags(vec!["x".into(), "y".into()]),
        ]
    }

    /// The derived `Serialize`'s form, read back by the hand-written
    /// decoder: in bincode, in JSON (variant names), and inside a message.
    #[test]
    fn every_case_round_trips_in_the_derived_form() {
        let cases = every_case();
        for value in &cases {
            let bytes = codec::encode(value).unwrap();
            let back: Value = codec::decode(&bytes).unwrap();
            assert_eq!(&back, value);
            // Byte for byte: decoding consumed exactly what was written.
            assert_eq!(codec::encode(&back).unwrap(), bytes);
            let json = serde_json::to_string(value).unwrap();
            let back: Value = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, value, "{json}");
        }
        let all = Value::List(cases.clone());
        let back: Value = codec::decode(&codec::encode(&all).unwrap()).unwrap();
        assert_eq!(back, all);
        let args = Items::encode(&[cases.iter().cloned().map(Arg::Value).collect()]).unwrap();
        let within = args
            .decode_within(Budget {
                name: "arg_bytes",
                bytes: usize::MAX,
            })
            .unwrap();
        assert_eq!(within, args.decode().unwrap());
    }

    /// A value `depth` levels deep: options around a record around a list.
    fn nested(depth: usize) -> (Value, Type) {
        let mut value = Value::Bool(true);
        let mut ty = Type::Bool;
        for level in 1..depth {
            (value, ty) = match level % 3 {
                0 => (Value::List(vec![value]), Type::List(Box::new(ty))),
                1 => (
                    Value::Record(vec![("f".into(), value)]),
                    Type::Record(vec![Field {
                        name: "f".into(),
                        ty,
                    }]),
                ),
                _ => (
                    Value::Option(Some(Box::new(value))),
                    Type::Option(Box::new(ty)),
                ),
            };
        }
        (value, ty)
    }

    /// At exactly MAX_DEPTH everything a process does with a value works on
    /// a 2 MiB stack; one level more does not decode, from bincode or JSON.
    #[test]
    fn a_value_at_the_depth_limit_is_safe_to_walk() {
        let outcome = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let (value, ty) = nested(MAX_DEPTH);
                let bytes = codec::encode(&value).unwrap();
                let back: Value = codec::decode(&bytes).unwrap();
                let copy = back.clone();
                assert_eq!(copy, value);
                copy.check(&ty, "v").unwrap();
                let text = copy.to_string();
                let json: serde_json::Value = serde_json::from_str(&text).unwrap();
                let parsed = crate::json::json_to_value(&json, &ty, "v").unwrap();
                assert_eq!(parsed, value);
                drop((back, copy, parsed));

                let (deeper, deeper_ty) = nested(MAX_DEPTH + 1);
                let err = codec::decode::<Value>(&codec::encode(&deeper).unwrap()).unwrap_err();
                assert!(
                    matches!(
                        err,
                        CodecError::TooDeep {
                            limit: MAX_DEPTH,
                            ..
                        }
                    ),
                    "{err:?}"
                );
                assert!(
                    err.to_string()
                        .contains(&format!("MAX_DEPTH = {MAX_DEPTH}")),
                    "{err}"
                );
                let json = crate::json::value_to_json(&deeper);
                let err = crate::json::json_to_value(&json, &deeper_ty, "v").unwrap_err();
                assert!(
                    err.message.contains(&format!("MAX_DEPTH = {MAX_DEPTH}")),
                    "{err}"
                );
            })
            .unwrap()
            .join();
        assert!(outcome.is_ok());
    }

    #[test]
    fn inferred_json_is_bounded_too() {
        let mut json = serde_json::json!(1);
        for _ in 0..MAX_DEPTH {
            json = serde_json::json!([json]);
        }
        let err = crate::json::infer_value(&json).unwrap_err();
        assert!(err.message.contains("nesting limit"), "{err}");
        assert!(crate::json::infer_value(&json[0]).is_ok());
    }

    fn args(strings: usize, len: usize) -> Vec<Arg> {
        vec![
            Arg::Value(Value::List(vec![Value::String("s".repeat(len)); strings])),
            Arg::Ref("x".into()),
        ]
    }

    /// An item's cost as the budget counts it.
    fn cost(args: &[Arg]) -> usize {
        args.iter()
            .map(|arg| match arg {
                Arg::Value(v) => v.cost_bytes(),
                Arg::Ref(name) => NODE_BYTES + name.len(),
            })
            .sum()
    }

    #[test]
    fn arguments_over_their_budget_fail_while_decoded() {
        let small = args(2, 3);
        let big = args(1000, 0);
        let budget = Budget {
            name: "arg_bytes",
            bytes: 4096,
        };
        assert!(cost(&small) <= budget.bytes && cost(&big) > budget.bytes);
        let items = Items::encode(&[small.clone(), small.clone(), big, small.clone()]).unwrap();
        let err = items.decode_within(budget).unwrap_err();
        assert!(
            matches!(err, CodecError::OverBudget { item: 2, budget: b } if b == budget),
            "{err:?}"
        );
        assert!(err.to_string().contains("item 2"), "{err}");
        assert!(err.to_string().contains("(arg_bytes = 4 KiB)"), "{err}");

        let items = Items::encode(&[small.clone(), small.clone()]).unwrap();
        assert_eq!(
            items.decode_within(budget).unwrap(),
            vec![small.clone(), small]
        );
    }

    #[test]
    fn results_over_their_budget_fail_while_decoded() {
        // A million empty strings: a few bytes of bincode each, a node each
        // in memory.
        let bomb = Value::List(vec![Value::String(String::new()); 1 << 20]);
        let values = Values::encode(&[None, Some(bomb)]).unwrap();
        let budget = Budget {
            name: "result_bytes",
            bytes: 1 << 20,
        };
        let err = values.decode_within(budget).unwrap_err();
        assert!(
            matches!(err, CodecError::OverBudget { item: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("(result_bytes = 1 MiB)"), "{err}");
    }

    proptest! {
        /// The decoder reads back every value of every type, and charges
        /// exactly `cost_bytes`: a budget of that passes, one byte less
        /// fails.
        #[test]
        fn decoding_charges_exactly_the_cost(value in arb_type().prop_flat_map(|ty| arb_value_of(&ty))) {
            let bytes = codec::encode(&value).unwrap();
            let meter = Meter::unlimited();
            let back = codec::decode_seed(ValueSeed::root(&meter), &bytes).unwrap();
            prop_assert!(same_value(&back, &value));
            prop_assert_eq!(meter.used(), value.cost_bytes());
            let cost = value.cost_bytes();
            let values = Values::encode(&[Some(value)]).unwrap();
            let exact = Budget { name: "result_bytes", bytes: cost };
            prop_assert!(values.decode_within(exact).is_ok());
            let less = Budget { name: "result_bytes", bytes: cost - 1 };
            let over = matches!(values.decode_within(less), Err(CodecError::OverBudget { item: 0, .. }));
            prop_assert!(over);
        }
    }
}
