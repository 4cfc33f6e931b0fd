//! Typed handles: a method resolved once, with its formats checked against the types a
//! caller uses, then called with values instead of bytes.
//!
//! [`TypedMethod<A, R>`] encodes `A` as MessagePack (or as raw bytes, for a method whose
//! only argument is a string or bytes) and reads the result as `R`. What `R` can be is
//! [`TypedResult`]'s to say: any serde type, decoded from a MessagePack or raw result;
//! or [`Rkyv<T>`], an archived result validated and read in place as
//! [`ArchivedOutput<T>`]; or [`CallOutput`], the bytes as they are. Methods that take
//! an archive are called through
//! [`ArchivedMethod`](crate::ArchivedMethod) instead.

use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::sync::Arc;

use memlink_abi::archive::{self, ArchiveType, Checkable, Limits};
use memlink_abi::{msgpack, Format, ModuleError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::args::Args;
use crate::call;
use crate::describe::Method;
use crate::error::RuntimeError;
use crate::handle::MethodRef;
use crate::module::Module;
use crate::options::CallOptions;
use crate::output::CallOutput;
use crate::registry::Registry;

/// How a typed handle reads a method's result. Checked against the method's table when
/// the handle is made, so a call never reads a result as something it is not.
pub trait TypedResult: Sized {
    /// What a call returns.
    type Output;

    /// Whether `method` (of the module `module`) returns something this type can read.
    fn check(module: &str, method: &Method) -> Result<(), RuntimeError>;

    /// Reads the output of a call to a method `check` accepted.
    fn read(output: CallOutput, format: Format) -> Result<Self::Output, ModuleError>;
}

/// A serde type, decoded from a MessagePack result, or from a raw one (a string result
/// is offered as a string, other bytes as a list of bytes).
impl<T: DeserializeOwned> TypedResult for T {
    type Output = T;

    fn check(module: &str, method: &Method) -> Result<(), RuntimeError> {
        match method.result_format {
            Format::MessagePack | Format::Raw => Ok(()),
            format => Err(RuntimeError::WrongFormat {
                module: module.to_owned(),
                method: method.name.clone(),
                part: "result",
                format,
                instead: "read it as `Rkyv<T>`, the archive's type, to have it validated and read in place",
            }),
        }
    }

    fn read(output: CallOutput, format: Format) -> Result<T, ModuleError> {
        msgpack::decode_as(format, &output)
    }
}

/// The result as it is, in whatever format the method returns it: the output's bytes.
impl TypedResult for CallOutput {
    type Output = CallOutput;

    fn check(_: &str, _: &Method) -> Result<(), RuntimeError> {
        Ok(())
    }

    fn read(output: CallOutput, _: Format) -> Result<CallOutput, ModuleError> {
        Ok(output)
    }
}

/// The result of a method that returns `Rkyv<T>` (an archive of `T`), read in place as
/// an [`ArchivedOutput<T>`]. Only a type name: `Rkyv<T>` is never made.
pub struct Rkyv<T>(PhantomData<fn() -> T>);

impl<T> fmt::Debug for Rkyv<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rkyv<{}>", core::any::type_name::<T>())
    }
}

impl<T> TypedResult for Rkyv<T>
where
    T: rkyv::Archive,
    T::Archived: Checkable,
{
    type Output = ArchivedOutput<T>;

    fn check(module: &str, method: &Method) -> Result<(), RuntimeError> {
        let ours = ArchiveType::of::<T>();
        match &method.result_type {
            Some(theirs) if theirs.fingerprint == ours.fingerprint => Ok(()),
            Some(theirs) => Err(RuntimeError::TypeMismatch {
                module: module.to_owned(),
                method: method.name.clone(),
                expected: theirs.name.clone(),
                got: ours.name.to_owned(),
            }),
            None => Err(RuntimeError::WrongFormat {
                module: module.to_owned(),
                method: method.name.clone(),
                part: "result",
                format: method.result_format,
                instead: "read it as the serde type it decodes to, not `Rkyv<T>`",
            }),
        }
    }

    fn read(output: CallOutput, _: Format) -> Result<ArchivedOutput<T>, ModuleError> {
        archive::check::<T>(&output, Limits::default(), "archived result")?;
        Ok(ArchivedOutput {
            output,
            _type: PhantomData,
        })
    }
}

/// An archived result, validated once and read in place.
pub struct ArchivedOutput<T> {
    output: CallOutput,
    _type: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for ArchivedOutput<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArchivedOutput")
            .field("type", &core::any::type_name::<T>())
            .field("bytes", &self.output.len())
            .finish()
    }
}

impl<T> ArchivedOutput<T>
where
    T: rkyv::Archive,
    T::Archived: rkyv::Portable,
{
    /// The archived value.
    pub fn get(&self) -> &T::Archived {
        // SAFETY: `read` validated these bytes as an archive of `T` (the method's result
        // type, fingerprint-checked when the handle was made); the output only lends them
        // out shared, so they are unchanged; and every place an output keeps bytes (inline
        // at their offset modulo 16 in its 16-aligned window, in the arena, in its own
        // buffer) keeps them 16-aligned, as `check` found them. Empty bytes may lie
        // anywhere: `access_checked` reads those where `check` did.
        unsafe { archive::access_checked::<T>(&self.output) }
    }

    /// The archive's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.output
    }

    /// The output the archive is in.
    pub fn into_output(self) -> CallOutput {
        self.output
    }
}

/// A method taking typed MessagePack (or raw) arguments `A` and returning `R`, resolved
/// and checked once ([`Runtime::typed`](crate::Runtime::typed)).
pub struct TypedMethod<A: ?Sized, R> {
    registry: Arc<Registry>,
    method: MethodRef,
    checked: Checked,
    _types: PhantomData<fn(&A) -> R>,
}

impl<A: ?Sized, R> fmt::Debug for TypedMethod<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedMethod")
            .field("method", &self.method)
            .field("args", &core::any::type_name::<A>())
            .field("result", &core::any::type_name::<R>())
            .finish()
    }
}

impl<A: ?Sized, R> Clone for TypedMethod<A, R> {
    fn clone(&self) -> Self {
        TypedMethod {
            registry: Arc::clone(&self.registry),
            method: self.method,
            checked: self.checked,
            _types: PhantomData,
        }
    }
}

impl<A, R> TypedMethod<A, R>
where
    A: Serialize + ?Sized,
    R: TypedResult,
{
    pub(crate) fn new(
        registry: Arc<Registry>,
        module: &Module,
        method: MethodRef,
        m: &Method,
    ) -> Result<TypedMethod<A, R>, RuntimeError> {
        let checked = check::<R>(module, m)?;
        Ok(TypedMethod {
            registry,
            method,
            checked,
            _types: PhantomData,
        })
    }

    /// The untyped method.
    pub fn method(&self) -> MethodRef {
        self.method
    }

    /// Calls the method with `args` and the default options.
    pub fn call(&self, args: &A) -> Result<R::Output, RuntimeError> {
        self.call_with(args, &CallOptions::default())
    }

    /// Calls the method with `args` and per-call `options`.
    pub fn call_with(&self, args: &A, options: &CallOptions) -> Result<R::Output, RuntimeError> {
        call_typed::<A, R>(&self.registry, self.method, self.checked, args, options)
    }
}

/// What a handle checked of its method when it was made: the formats it writes the
/// arguments in and reads the result in, and the archive types' fingerprints, in the
/// version of the module it checked them in.
///
/// A reload allowed to change exports (`ReloadPolicy::allow_changes`) may change them
/// under a handle made before it, keeping the method's name and id. Each call checks
/// that the method it reaches, in the version it runs, is still as checked
/// (`Checked::find`), and refuses a changed one: otherwise it would send arguments the
/// method no longer reads, or read a result as what it no longer is (a number's
/// MessagePack read as raw text, say, a silent wrong value). In the version checked
/// (every call until a reload) that is one comparison of the version's id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked {
    shape: Shape,
    /// The `Module::id` of the version checked: unique to it, a reload's next has another.
    version: u64,
}

/// The formats and archive fingerprints of a method's arguments and result, and its
/// signature as the module records it: MessagePack has no type of its own, so a method
/// whose `div(num: u32, den: u32)` became `div(den: u32, num: u32)`, or whose `u32`
/// became a `u64`, takes the same bytes and means something else by them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    args_format: Format,
    result_format: Format,
    args_type: Option<u64>,
    result_type: Option<u64>,
    /// FNV-1a of the signature; `None` for a method that records none.
    signature: Option<u64>,
}

impl Shape {
    fn of(m: &Method) -> Shape {
        Shape {
            args_format: m.args_format,
            result_format: m.result_format,
            args_type: m.args_type.as_ref().map(|t| t.fingerprint),
            result_type: m.result_type.as_ref().map(|t| t.fingerprint),
            signature: m.signature.as_deref().map(crate::names::fnv1a),
        }
    }
}

impl Checked {
    /// What `m`'s table entry in `module` says now.
    pub(crate) fn of(module: &Module, m: &Method) -> Checked {
        Checked {
            shape: Shape::of(m),
            version: module.id,
        }
    }

    /// The format the method returns its result in.
    pub(crate) fn result_format(self) -> Format {
        self.shape.result_format
    }

    /// The index of `method` in `module`'s table, when it is still the method this
    /// handle checked; a reload that removed it, or changed it, is an error.
    #[inline]
    pub(crate) fn find(self, module: &Module, method: MethodRef) -> Result<u32, RuntimeError> {
        let index = module.method_at(method)?;
        if module.id == self.version {
            return Ok(index);
        }
        self.find_reloaded(module, index)
    }

    /// [`find`](Self::find) in a version other than the one checked: its method may
    /// differ.
    #[cold]
    #[inline(never)]
    fn find_reloaded(self, module: &Module, index: u32) -> Result<u32, RuntimeError> {
        let m = &module.methods[index as usize];
        if Shape::of(m) == self.shape {
            Ok(index)
        } else {
            Err(changed(module, m))
        }
    }
}

/// The error of a call through a handle whose method `m` a reload changed.
#[cold]
pub(crate) fn changed(module: &Module, m: &Method) -> RuntimeError {
    RuntimeError::MethodChanged {
        module: module.name.clone(),
        method: m.name.clone(),
        version: module.version.clone(),
        signature: m.signature.clone(),
    }
}

/// Whether a typed call can take the method `m` (of the module `module`) with
/// MessagePack arguments and read its result as `R`; what it checked.
pub(crate) fn check<R: TypedResult>(module: &Module, m: &Method) -> Result<Checked, RuntimeError> {
    if m.args_format == Format::Archived {
        return Err(RuntimeError::WrongFormat {
            module: module.name.clone(),
            method: m.name.clone(),
            part: "arguments",
            format: m.args_format,
            instead: "call it through `Runtime::archived`, which writes the arguments' archive in place (or pass the archive's bytes to `Runtime::call`)",
        });
    }
    R::check(&module.name, m)?;
    Ok(Checked::of(module, m))
}

/// Arguments encoded into at most this many bytes are encoded on the stack; larger ones
/// in a vector of their own.
const STACK_ARGS: usize = 256;

/// A typed call of `method`, whose arguments and result are in the formats `checked`
/// holds (checked against `A` and `R` by the caller, and against the method the call
/// reaches by `Checked::find`): `args` encoded on the stack when they fit (the module
/// reads them there: nothing is allocated), the call, the result read as `R`. The
/// serializer buffers a map or sequence serialized without its length (as a struct with
/// a `#[serde(flatten)]` field is), which allocates: the stack holds what it writes, not
/// what it buffers.
pub(crate) fn call_typed<A, R>(
    registry: &Registry,
    method: MethodRef,
    checked: Checked,
    args: &A,
    options: &CallOptions,
) -> Result<R::Output, RuntimeError>
where
    A: Serialize + ?Sized,
    R: TypedResult,
{
    let codec = |e: ModuleError| codec_error(registry, method, e);
    // Not zeroed: the encoder writes every byte it hands back. Too large for the stack,
    // the arguments go on the heap, their `Serialize` run once all the same.
    let mut stack = [MaybeUninit::uninit(); STACK_ARGS];
    let encoded =
        msgpack::encode_as_spilling(checked.shape.args_format, args, &mut stack).map_err(codec)?;
    call_encoded::<R>(registry, method, checked, &encoded, options)
}

/// [`call_typed`] of arguments already `encoded` in the format `checked` holds.
#[inline]
fn call_encoded<R: TypedResult>(
    registry: &Registry,
    method: MethodRef,
    checked: Checked,
    encoded: &[u8],
    options: &CallOptions,
) -> Result<R::Output, RuntimeError> {
    // The method as the handle checked it, or an error: see `Checked`.
    let find = |module: &Module| checked.find(module, method);
    let output = call::handle_from_host(
        registry,
        method.handle,
        find,
        Args::Borrowed(encoded),
        options,
    )?;
    R::read(output, checked.result_format())
        .map_err(|e| result_error::<R::Output>(registry, method, e))
}

/// `Runtime::call_typed`: a typed call of the method `look_up` finds by its name, which
/// follows a reload as a call by name does. A reload that lands between the look-up and
/// the call (the method checked is not the one the call reaches) makes it look the
/// method up again, at most three times; the arguments, encoded once, are encoded again
/// only when the method now takes another format (their `Serialize` then runs twice).
pub(crate) fn call_by_name<A, R>(
    registry: &Registry,
    look_up: impl Fn() -> Result<(MethodRef, Checked), RuntimeError>,
    args: &A,
) -> Result<R::Output, RuntimeError>
where
    A: Serialize + ?Sized,
    R: TypedResult,
{
    let (mut method, mut checked) = look_up()?;
    let format = checked.shape.args_format;
    let codec = |method, e: ModuleError| codec_error(registry, method, e);
    let mut stack = [MaybeUninit::uninit(); STACK_ARGS];
    let encoded =
        msgpack::encode_as_spilling(format, args, &mut stack).map_err(|e| codec(method, e))?;
    let mut reencoded = None;
    let options = CallOptions::default();
    let mut again = 3;
    loop {
        let bytes = reencoded.as_deref().unwrap_or(&encoded[..]);
        match call_encoded::<R>(registry, method, checked, bytes, &options) {
            Err(RuntimeError::MethodChanged { .. } | RuntimeError::MethodRemoved { .. })
                if again > 0 =>
            {
                again -= 1;
                (method, checked) = look_up()?;
                if checked.shape.args_format != format {
                    let bytes = msgpack::encode_as(checked.shape.args_format, args)
                        .map_err(|e| codec(method, e))?;
                    reencoded = Some(bytes);
                }
            }
            result => return result,
        }
    }
}

/// The error of a call to `method` whose arguments could not be encoded: `e` says why.
/// It names the module and method when they are still loaded, else the handle and the
/// method's index.
#[cold]
pub(crate) fn codec_error(registry: &Registry, method: MethodRef, e: ModuleError) -> RuntimeError {
    let (module, method, _) = describe(registry, method);
    RuntimeError::Codec {
        module,
        method,
        reason: reason(e),
    }
}

/// The error of a call to `method` whose result could not be read as the caller's type
/// `T`: `e` says why. The decoder's words alone (`wrong msgpack marker FixMap(3)`) say
/// neither that it is the result nor what it was read as, so the error names `T` and,
/// when the module records it, the export's signature, as the module's own error for
/// bad arguments does.
#[cold]
pub(crate) fn result_error<T: ?Sized>(
    registry: &Registry,
    method: MethodRef,
    e: ModuleError,
) -> RuntimeError {
    let (module, method, signature) = describe(registry, method);
    let type_name = core::any::type_name::<T>();
    RuntimeError::Codec {
        module,
        method,
        reason: msgpack::unreadable_result(type_name, e, signature.as_deref()),
    }
}

/// `method`'s module and name, and its signature when the module records one; the
/// handle and the method's index once the module is unloaded.
fn describe(registry: &Registry, method: MethodRef) -> (String, String, Option<String>) {
    let found = registry.module(method.handle).and_then(|m| {
        let found = &m.methods[m.method_at(method)? as usize];
        Ok((m.name.clone(), found.name.clone(), found.signature.clone()))
    });
    found.unwrap_or_else(|_| {
        (
            method.handle.to_string(),
            format!("#{}", method.index),
            None,
        )
    })
}

/// What `e` says, without `ModuleError`'s own prefix for a codec error.
fn reason(e: ModuleError) -> String {
    match e {
        ModuleError::Serialize(m) => m,
        other => other.to_string(),
    }
}
