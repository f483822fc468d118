//! Calls that move lists of numbers into and out of the guest as one copy
//! each, without a `Val` per item (issue 13): the bulk path.
//!
//! wasmtime's dynamic API (`Func::call` with `Val`s) lowers a list from a
//! `Val::List(Vec<Val>)` item by item and lifts one the same way. For a
//! million `f64`s that is a 24 MB vector of `Val`s built, walked, stored
//! one by one and dropped: 22 of the engine's 37 ms on
//! `norm(list<f64>, u32)`, where the data is 8 MB and a copy of it takes
//! 0.3 ms. wasmtime's typed API (`TypedFunc`) lowers a `&[f64]` with one
//! copy, but wants the parameter types at compile time; an export's types
//! are known only when its component is loaded.
//!
//! The ways considered, and why this one:
//! - `TypedFunc` over static tuples, one per shape (`(list<T>, S) -> R`
//!   for every element type `T`, scalar `S` and result `R`): thousands of
//!   instantiations for two parameters, and still nothing for three.
//! - Writing the guest's memory through its `cabi_realloc` and calling
//!   the core function: wasmtime's component API does not expose a
//!   component's core exports, by design.
//! - A bulk form of `Val::List` in wasmtime: not in wasmtime 48; an
//!   upstream change.
//! - Chosen: three types of our own implementing the traits `TypedFunc`
//!   is generic over (`ComponentType`, `Lower`, `Lift`,
//!   `ComponentNamedList`), whose type check accepts any parameter list
//!   of numbers and lists of numbers, and which read the component's
//!   actual types as they lower and lift. One instantiation covers every
//!   such signature. The traits' items are hidden and outside wasmtime's
//!   stability promise, and the traits are `unsafe`: an implementation
//!   must describe the flat form it writes truthfully. The `unsafe` is
//!   only in the `impl` lines below, each with the promise it keeps; the
//!   code inside is safe Rust (memory is reached through wasmtime's
//!   bounds-checked slices). wasmtime is pinned to one version
//!   (`Cargo.toml`), so a change to the hidden API fails the build, and
//!   the tests in `tests/typed_lists.rs` compare this path with the `Val`
//!   path for every element type.
//!
//! An export takes the bulk path when its parameters are numbers, `bool`s,
//! `char`s and lists of numbers (flat, at most 16 core values), its result
//! is nothing, one such scalar or one list of numbers, and at least one
//! list moves: a call of scalars only keeps the `Val` path, which is as
//! fast for it. Any other export, or arguments that are not of their
//! parameter's type, take the `Val` path, which names what was wrong.

// The `unsafe impl`s of wasmtime's component traits; see the module
// documentation and each impl's SAFETY comment.
#![allow(unsafe_code)]

use std::borrow::Cow;
use std::mem::MaybeUninit;

use wasmtime::ValRaw;
use wasmtime::component::__internal::wasmtime_environ::component::MAX_FLAT_PARAMS;
use wasmtime::component::__internal::{
    CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext, LowerContext,
};
use wasmtime::component::{ComponentNamedList, ComponentType, Func, Lift, Lower, TypedFunc};
use wasmtime::{AsContext, Store};
use wasmtime::{Result, bail, format_err};
use wasp_proto::value::NODE_BYTES;
use wasp_proto::{Array, FuncSig, Type, Value};

use crate::convert::memory_size;

/// The result of an export that takes the bulk path, known from its
/// signature at load time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkResult {
    /// The function returns nothing.
    Nothing,
    /// One number, `bool` or `char`.
    Scalar,
    /// One list of numbers.
    List,
}

/// Whether calls of `sig` take the bulk path, and if so the form of its
/// result.
pub fn shape(sig: &FuncSig) -> Option<BulkResult> {
    let mut flat = 0;
    let mut lists = 0;
    for param in &sig.params {
        if is_scalar(&param.ty) {
            flat += 1;
        } else if is_number_list(&param.ty) {
            flat += 2;
            lists += 1;
        } else {
            return None;
        }
    }
    if flat > MAX_FLAT_PARAMS {
        return None;
    }
    let result = match &sig.result {
        None => BulkResult::Nothing,
        Some(ty) if is_scalar(ty) => BulkResult::Scalar,
        Some(ty) if is_number_list(ty) => {
            lists += 1;
            BulkResult::List
        }
        Some(_) => return None,
    };
    (lists > 0).then_some(result)
}

fn is_scalar(ty: &Type) -> bool {
    matches!(ty, Type::Bool | Type::Char) || Array::holds(ty)
}

fn is_number_list(ty: &Type) -> bool {
    matches!(ty, Type::List(element) if Array::holds(element))
}

/// A call's arguments on the bulk path: scalars as they are, lists as
/// typed arrays (a list sent item by item is gathered into one first).
pub struct BulkArgs<'a> {
    args: Vec<BulkArg<'a>>,
}

enum BulkArg<'a> {
    Scalar(&'a Value),
    List(Cow<'a, Array>),
}

impl<'a> BulkArgs<'a> {
    /// `args` for `sig` (an export with a bulk [`shape`]) and their size as
    /// the argument limit counts it ([`memory_size`]); `None` if one is not
    /// of its parameter's type, for the `Val` path to name.
    pub fn of(sig: &FuncSig, args: &'a [Value]) -> Option<(BulkArgs<'a>, usize)> {
        if args.len() != sig.params.len() {
            return None;
        }
        let mut size = 0usize;
        let args = sig
            .params
            .iter()
            .zip(args)
            .map(|(param, arg)| {
                size = size.saturating_add(memory_size(arg));
                match (&param.ty, arg) {
                    (Type::List(element), Value::Array(array))
                        if array.is_empty() || array.element_type() == **element =>
                    {
                        Some(BulkArg::List(Cow::Borrowed(array)))
                    }
                    (Type::List(element), Value::List(items)) => {
                        Array::from_values(element, items).map(|a| BulkArg::List(Cow::Owned(a)))
                    }
                    (ty, arg) if is_scalar(ty) && arg.check(ty, "").is_ok() => {
                        Some(BulkArg::Scalar(arg))
                    }
                    _ => None,
                }
            })
            .collect::<Option<_>>()?;
        Some((BulkArgs { args }, size))
    }
}

/// An export's function, typed for the bulk path with its result's form.
pub enum BulkFunc<'a> {
    /// Returns nothing.
    Nothing(TypedFunc<BulkArgs<'a>, ()>),
    /// Returns one scalar.
    Scalar(TypedFunc<BulkArgs<'a>, BulkScalar>),
    /// Returns one list of numbers.
    List(TypedFunc<BulkArgs<'a>, BulkList>),
}

impl<'a> BulkFunc<'a> {
    /// `func` typed for the bulk path; an error if its component types do
    /// not fit it (which [`shape`] should have ruled out).
    pub fn new(func: Func, store: impl AsContext, result: BulkResult) -> Result<Self> {
        Ok(match result {
            BulkResult::Nothing => BulkFunc::Nothing(func.typed(store)?),
            BulkResult::Scalar => BulkFunc::Scalar(func.typed(store)?),
            BulkResult::List => BulkFunc::List(func.typed(store)?),
        })
    }

    /// Calls the function with `args`, returning its result.
    pub async fn call_async<T: Send>(
        &self,
        store: &mut Store<T>,
        args: BulkArgs<'a>,
    ) -> Result<Option<Value>> {
        Ok(match self {
            BulkFunc::Nothing(func) => {
                func.call_async(store, args).await?;
                None
            }
            BulkFunc::Scalar(func) => Some(func.call_async(store, args).await?.0),
            BulkFunc::List(func) => Some(Value::from(func.call_async(store, args).await?.0)),
        })
    }
}

// SAFETY: `Lower` is an array of `ValRaw`s, as the trait requires, as
// many as a component function takes flat at most (`MAX_FLAT_PARAMS`).
// `typecheck` accepts only parameter lists whose flat form fits in it
// (numbers, `bool`s and `char`s one value each, lists two), so wasmtime
// always passes them flat, and `linear_lower_to_flat` writes every one of
// the values (the ones past the parameters as zeros). `ABI` describes the
// parameters stored in memory, which happens only past `MAX_FLAT_PARAMS`
// values: it is never read.
unsafe impl ComponentType for BulkArgs<'_> {
    type Lower = [ValRaw; MAX_FLAT_PARAMS];

    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::ZERO;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        let InterfaceType::Tuple(params) = ty else {
            bail!("expected the parameters' tuple");
        };
        let mut flat = 0;
        for ty in types.types[*params].types.iter() {
            flat += match ty {
                InterfaceType::List(list)
                    if element_type(&types.types[*list].element).is_some() =>
                {
                    2
                }
                ty if scalar_type(ty) => 1,
                other => bail!("the bulk path takes numbers and lists of numbers, not {other:?}"),
            };
        }
        if flat > MAX_FLAT_PARAMS {
            bail!("{flat} flat parameters are over {MAX_FLAT_PARAMS}");
        }
        Ok(())
    }
}

// SAFETY: see `ComponentType for BulkArgs`; this is the same list.
unsafe impl ComponentNamedList for BulkArgs<'_> {}

// SAFETY: `linear_lower_to_flat` initializes every value of `Lower`, each
// parameter's in the canonical ABI's flat form for the type wasmtime
// passes (checked against the value as it is written), and copies lists
// into memory that the guest's `realloc` returned and wasmtime checked to
// be in bounds and aligned.
unsafe impl Lower for BulkArgs<'_> {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> Result<()> {
        let InterfaceType::Tuple(params) = ty else {
            bail!("expected the parameters' tuple");
        };
        let types = cx.types;
        let params = &types[params].types;
        if params.len() != self.args.len() {
            bail!(
                "{} arguments for {} parameters",
                self.args.len(),
                params.len()
            );
        }
        let mut flat = [ValRaw::u64(0); MAX_FLAT_PARAMS];
        let mut next = 0;
        let mut push = |raw: ValRaw| -> Result<()> {
            *flat
                .get_mut(next)
                .ok_or_else(|| format_err!("over {MAX_FLAT_PARAMS} flat parameters"))? = raw;
            next += 1;
            Ok(())
        };
        for (arg, ty) in self.args.iter().zip(params.iter()) {
            match (arg, ty) {
                (BulkArg::List(array), InterfaceType::List(list)) => {
                    let (ptr, len) = lower_array(cx, &types[*list].element, array)?;
                    // Pointers and lengths are passed as 64-bit values
                    // whatever the memory (wasmtime's "WRITEPTR64").
                    push(ValRaw::i64(i64::try_from(ptr)?))?;
                    push(ValRaw::i64(i64::try_from(len)?))?;
                }
                (BulkArg::Scalar(value), ty) => push(scalar_to_raw(value, ty)?)?,
                (BulkArg::List(_), other) => bail!("a list for a parameter of type {other:?}"),
            }
        }
        dst.write(flat);
        Ok(())
    }

    fn linear_lower_to_memory<T>(
        &self,
        _cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        _offset: usize,
    ) -> Result<()> {
        bail!("bulk arguments are passed flat, never stored in memory")
    }
}

/// The one scalar result of a bulk-path call.
pub struct BulkScalar(pub Value);

// SAFETY: `Lower` is one `ValRaw`: `typecheck` accepts only a result tuple
// of one number, `bool` or `char`, which the canonical ABI returns as one
// flat value. `ABI` describes it stored in memory, which never happens to
// a result of one flat value.
unsafe impl ComponentType for BulkScalar {
    type Lower = ValRaw;

    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::SCALAR8;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        match one_result(ty, types.types)? {
            ty if scalar_type(&ty) => Ok(()),
            other => bail!("expected a number, `bool` or `char` result, found {other:?}"),
        }
    }
}

// SAFETY: see `ComponentType for BulkScalar`.
unsafe impl ComponentNamedList for BulkScalar {}

// SAFETY: lifting reads only the one flat value, by the result's type.
unsafe impl Lift for BulkScalar {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> Result<Self> {
        let ty = one_result(&ty, cx.types)?;
        raw_to_scalar(src, &ty).map(BulkScalar)
    }

    fn linear_lift_from_memory(
        _cx: &mut LiftContext<'_>,
        _ty: InterfaceType,
        _bytes: &[u8],
    ) -> Result<Self> {
        bail!("a scalar result is returned flat, never in memory")
    }
}

/// The one list-of-numbers result of a bulk-path call.
pub struct BulkList(pub Array);

// SAFETY: `Lower` is two `ValRaw`s, more than a result can be returned
// flat in (`MAX_FLAT_RESULTS` is 1), so wasmtime reads the result from
// memory, at the pointer the function returns, `ABI.size32` bytes aligned
// to `ABI.align32`: the tuple `(list<T>,)` that `typecheck` accepts is
// stored as one pointer and length pair (`POINTER_PAIR`).
unsafe impl ComponentType for BulkList {
    type Lower = [ValRaw; 2];

    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        match one_result(ty, types.types)? {
            InterfaceType::List(list) if element_type(&types.types[list].element).is_some() => {
                Ok(())
            }
            other => bail!("expected a list of numbers result, found {other:?}"),
        }
    }
}

// SAFETY: see `ComponentType for BulkList`.
unsafe impl ComponentNamedList for BulkList {}

// SAFETY: lifting reads the pointer pair wasmtime hands over, and the
// list's items through bounds-checked slices of memory.
unsafe impl Lift for BulkList {
    fn linear_lift_from_flat(
        _cx: &mut LiftContext<'_>,
        _ty: InterfaceType,
        _src: &Self::Lower,
    ) -> Result<Self> {
        bail!("a list result is returned in memory, never flat")
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> Result<Self> {
        let InterfaceType::List(list) = one_result(&ty, cx.types)? else {
            bail!("expected a list result");
        };
        let element = element_type(&cx.types[list].element)
            .ok_or_else(|| format_err!("expected a list of numbers"))?;
        let word = |at: usize| -> Result<usize> {
            let word: [u8; 4] = bytes
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format_err!("a list result is a pointer and a length"))?;
            Ok(usize::try_from(u32::from_le_bytes(word))?)
        };
        let (ptr, len) = (word(0)?, word(4)?);
        let item = item_bytes(&element)?;
        let byte_len = len
            .checked_mul(item)
            .filter(|n| {
                ptr.checked_add(*n)
                    .is_some_and(|end| end <= cx.memory().len())
            })
            .ok_or_else(|| format_err!("list pointer/length out of bounds of memory"))?;
        if !ptr.is_multiple_of(item) {
            bail!("list pointer is not aligned");
        }
        // Charged before it is copied, as the value will count it
        // (`Value::own_cost_bytes`): the store's hostcall fuel is the
        // result limit, so a list over it fails as that limit.
        cx.consume_fuel(
            NODE_BYTES
                .saturating_add(size_of::<Array>())
                .saturating_add(byte_len),
        )?;
        let items = &cx.memory()[ptr..ptr + byte_len];
        Array::from_le_bytes_of(&element, items)
            .map(BulkList)
            .map_err(|e| format_err!("{e}"))
    }
}

/// The one type of a result tuple.
fn one_result(
    ty: &InterfaceType,
    types: &wasmtime::component::__internal::ComponentTypes,
) -> Result<InterfaceType> {
    let InterfaceType::Tuple(results) = ty else {
        bail!("expected the results' tuple");
    };
    match &*types[*results].types {
        [one] => Ok(*one),
        other => bail!("expected one result, found {}", other.len()),
    }
}

/// Whether `ty` is a number, `bool` or `char`: one flat value.
fn scalar_type(ty: &InterfaceType) -> bool {
    matches!(ty, InterfaceType::Bool | InterfaceType::Char) || element_type(ty).is_some()
}

/// The number type `ty` is, if it is one (a list of it is an [`Array`]).
fn element_type(ty: &InterfaceType) -> Option<Type> {
    Some(match ty {
        InterfaceType::S8 => Type::S8,
        InterfaceType::U8 => Type::U8,
        InterfaceType::S16 => Type::S16,
        InterfaceType::U16 => Type::U16,
        InterfaceType::S32 => Type::S32,
        InterfaceType::U32 => Type::U32,
        InterfaceType::S64 => Type::S64,
        InterfaceType::U64 => Type::U64,
        InterfaceType::Float32 => Type::F32,
        InterfaceType::Float64 => Type::F64,
        _ => return None,
    })
}

/// The bytes of one item of a list of `element`s (a number type), which
/// is also its alignment in the canonical ABI.
fn item_bytes(element: &Type) -> Result<usize> {
    Array::item_bytes_of(element).ok_or_else(|| format_err!("expected a list of numbers"))
}

/// Copies `array` into memory the guest allocates for it: a list of the
/// guest's element type `element` (an empty array may be of any).
fn lower_array<T>(
    cx: &mut LowerContext<'_, T>,
    element: &InterfaceType,
    array: &Array,
) -> Result<(usize, usize)> {
    let element = element_type(element).ok_or_else(|| format_err!("expected a list of numbers"))?;
    if !array.is_empty() && array.element_type() != element {
        bail!("a list<{}> for a list<{element}>", array.element_type());
    }
    let bytes = array.to_le_bytes();
    let align = u32::try_from(item_bytes(&element)?)?;
    let ptr = cx.realloc(0, 0, align, bytes.len())?;
    cx.as_slice_mut()
        .get_mut(ptr..)
        .and_then(|memory| memory.get_mut(..bytes.len()))
        .ok_or_else(|| format_err!("realloc return: beyond end of memory"))?
        .copy_from_slice(&bytes);
    Ok((ptr, array.len()))
}

/// A scalar argument in its flat form for type `ty`, as wasmtime's own
/// lowering of the Rust type writes it.
fn scalar_to_raw(value: &Value, ty: &InterfaceType) -> Result<ValRaw> {
    Ok(match (ty, value) {
        (InterfaceType::Bool, Value::Bool(b)) => ValRaw::i32(i32::from(*b)),
        (InterfaceType::S8, Value::S8(n)) => ValRaw::i32(i32::from(*n)),
        (InterfaceType::U8, Value::U8(n)) => ValRaw::u32(u32::from(*n)),
        (InterfaceType::S16, Value::S16(n)) => ValRaw::i32(i32::from(*n)),
        (InterfaceType::U16, Value::U16(n)) => ValRaw::u32(u32::from(*n)),
        (InterfaceType::S32, Value::S32(n)) => ValRaw::i32(*n),
        (InterfaceType::U32, Value::U32(n)) => ValRaw::u32(*n),
        (InterfaceType::S64, Value::S64(n)) => ValRaw::i64(*n),
        (InterfaceType::U64, Value::U64(n)) => ValRaw::u64(*n),
        (InterfaceType::Float32, Value::F32(x)) => ValRaw::f32(x.to_bits()),
        (InterfaceType::Float64, Value::F64(x)) => ValRaw::f64(x.to_bits()),
        (InterfaceType::Char, Value::Char(c)) => ValRaw::u32(u32::from(*c)),
        (ty, value) => bail!("a {} for a parameter of type {ty:?}", value.kind()),
    })
}

/// A scalar result from its flat form, as wasmtime's own lifting of the
/// Rust type reads it (narrow integers are the low bits of an `i32`).
#[allow(clippy::cast_possible_truncation)]
fn raw_to_scalar(src: &ValRaw, ty: &InterfaceType) -> Result<Value> {
    Ok(match ty {
        InterfaceType::Bool => Value::Bool(src.get_i32() != 0),
        InterfaceType::S8 => Value::S8(src.get_i32() as i8),
        InterfaceType::U8 => Value::U8(src.get_u32() as u8),
        InterfaceType::S16 => Value::S16(src.get_i32() as i16),
        InterfaceType::U16 => Value::U16(src.get_u32() as u16),
        InterfaceType::S32 => Value::S32(src.get_i32()),
        InterfaceType::U32 => Value::U32(src.get_u32()),
        InterfaceType::S64 => Value::S64(src.get_i64()),
        InterfaceType::U64 => Value::U64(src.get_u64()),
        InterfaceType::Float32 => Value::F32(f32::from_bits(src.get_f32())),
        InterfaceType::Float64 => Value::F64(f64::from_bits(src.get_f64())),
        InterfaceType::Char => Value::Char(
            char::from_u32(src.get_u32())
                .ok_or_else(|| format_err!("{:#x} is not a char", src.get_u32()))?,
        ),
        other => bail!("expected a scalar result, found {other:?}"),
    })
}

#[cfg(test)]
mod tests {
    use wasp_proto::Param;

    use super::*;

    fn sig(params: Vec<Type>, result: Option<Type>) -> FuncSig {
        FuncSig {
            name: "f".into(),
            params: params
                .into_iter()
                .enumerate()
                .map(|(i, ty)| Param {
                    name: format!("p{i}"),
                    ty,
                })
                .collect(),
            result,
        }
    }

    fn list(element: Type) -> Type {
        Type::List(Box::new(element))
    }

    #[test]
    fn calls_that_move_a_list_of_numbers_take_the_bulk_path() {
        let f64s = list(Type::F64);
        for (params, result, expected) in [
            // norm(v, p) -> f64
            (
                vec![f64s.clone(), Type::F64],
                Some(Type::F64),
                Some(BulkResult::Scalar),
            ),
            (
                vec![list(Type::U8)],
                Some(list(Type::U8)),
                Some(BulkResult::List),
            ),
            (
                vec![list(Type::S16), Type::Bool, Type::Char],
                None,
                Some(BulkResult::Nothing),
            ),
            // A list only in the result.
            (
                vec![Type::U32],
                Some(list(Type::F32)),
                Some(BulkResult::List),
            ),
            // Scalars only: the `Val` path is as fast.
            (vec![Type::S64, Type::S64], Some(Type::S64), None),
            // Anything but numbers and lists of numbers.
            (vec![f64s.clone(), Type::String], Some(Type::F64), None),
            (vec![list(Type::Bool)], Some(Type::U32), None),
            (
                vec![f64s.clone()],
                Some(Type::Tuple(vec![f64s.clone(), Type::F64])),
                None,
            ),
            (vec![f64s.clone()], Some(list(list(Type::F64))), None),
            // 8 lists are 16 flat values, the most passed flat; 9 are not.
            (vec![f64s.clone(); 8], None, Some(BulkResult::Nothing)),
            (vec![f64s.clone(); 9], None, None),
        ] {
            let sig = sig(params, result);
            assert_eq!(shape(&sig), expected, "{sig}");
        }
    }

    #[test]
    fn arguments_that_do_not_fit_their_types_are_left_to_the_val_path() {
        let norm = sig(vec![list(Type::F64), Type::F64], Some(Type::F64));
        let v = Value::from(vec![1.0f64, 2.0]);
        let given = [v.clone(), Value::F64(2.0)];
        let (args, size) = BulkArgs::of(&norm, &given).expect("fits");
        assert_eq!(args.args.len(), 2);
        assert_eq!(size, memory_size(&v) + memory_size(&Value::F64(2.0)));
        // Item by item, gathered into one array.
        let items = Value::List(vec![Value::F64(1.0), Value::F64(2.0)]);
        let given = [items, Value::F64(2.0)];
        let (args, _) = BulkArgs::of(&norm, &given).expect("fits");
        assert!(
            matches!(&args.args[0], BulkArg::List(Cow::Owned(Array::F64(v))) if v == &[1.0, 2.0])
        );
        // Wrong element type, wrong scalar, wrong arity.
        let s64s = Value::from(vec![1i64]);
        assert!(BulkArgs::of(&norm, &[s64s, Value::F64(2.0)]).is_none());
        let mixed = Value::List(vec![Value::F64(1.0), Value::S64(2)]);
        assert!(BulkArgs::of(&norm, &[mixed, Value::F64(2.0)]).is_none());
        assert!(BulkArgs::of(&norm, &[v.clone(), Value::U32(2)]).is_none());
        assert!(BulkArgs::of(&norm, &[v]).is_none());
        // An empty list is a list of any element type.
        let empty = Value::from(Vec::<u8>::new());
        assert!(BulkArgs::of(&norm, &[empty, Value::F64(2.0)]).is_some());
    }
}
