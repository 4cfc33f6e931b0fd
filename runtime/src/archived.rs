//! Zero-copy calls: arguments written once, by the host, into the memory the module
//! reads them from.
//!
//! - [`Runtime::archived`](crate::Runtime::archived) resolves a method whose parameters
//!   are archived views and checks, once, that the caller's argument type is the one the
//!   module's table names (the fingerprint covers the type, its archived layout and the
//!   rkyv format), and that the result type fits (see [`TypedResult`]).
//! - [`ArchivedMethod::call`] serializes the arguments straight into the call's arena,
//!   aligned as rkyv needs; the module validates them in place and reads them there.
//! - [`Runtime::arg_buffer`](crate::Runtime::arg_buffer) and
//!   [`ArchivedMethod::call_buffer`] let the host fill the argument memory itself: a
//!   64 MiB input is written once and never copied.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use memlink_abi::archive::{Archivable, ArchiveType};
use memlink_abi::{Encoded, ModuleError};
use rkyv::util::AlignedVec;

use crate::args::{Args, CallArgs};
use crate::call;
use crate::describe::Method;
use crate::error::RuntimeError;
use crate::handle::MethodRef;
use crate::lease::PooledArena;
use crate::module::Module;
use crate::options::CallOptions;
use crate::registry::Registry;
use crate::typed::{Checked, TypedResult};

/// A method taking archived arguments of type `A` (the tuple of its parameters'
/// unarchived types) and returning `R`, resolved and checked once.
pub struct ArchivedMethod<A, R> {
    registry: Arc<Registry>,
    method: MethodRef,
    /// The method as it was checked, compared on each call (a reload may change it).
    checked: Checked,
    _types: PhantomData<fn(&A) -> R>,
}

impl<A, R> fmt::Debug for ArchivedMethod<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArchivedMethod")
            .field("method", &self.method)
            .field("args", &core::any::type_name::<A>())
            .field("result", &core::any::type_name::<R>())
            .finish()
    }
}

impl<A, R> Clone for ArchivedMethod<A, R> {
    fn clone(&self) -> Self {
        ArchivedMethod {
            registry: Arc::clone(&self.registry),
            method: self.method,
            checked: self.checked,
            _types: PhantomData,
        }
    }
}

impl<A: Archivable, R: TypedResult> ArchivedMethod<A, R> {
    pub(crate) fn new(
        registry: Arc<Registry>,
        module: &Module,
        method: MethodRef,
        m: &Method,
    ) -> Result<ArchivedMethod<A, R>, RuntimeError> {
        let checked = Checked::of(module, m);
        let module = &module.name;
        let ours = ArchiveType::of::<A>();
        match &m.args_type {
            Some(theirs) if theirs.fingerprint == ours.fingerprint => {}
            Some(theirs) => {
                return Err(RuntimeError::TypeMismatch {
                    module: module.to_owned(),
                    method: m.name.clone(),
                    expected: theirs.name.clone(),
                    got: ours.name.to_owned(),
                })
            }
            None => {
                return Err(RuntimeError::WrongFormat {
                    module: module.to_owned(),
                    method: m.name.clone(),
                    part: "arguments",
                    format: m.args_format,
                    instead: "call it through `Runtime::typed`, which encodes the arguments as the method takes them",
                })
            }
        }
        R::check(module, m)?;
        Ok(ArchivedMethod {
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

    /// Archives `args` into the call's arena and calls the method: one write of the
    /// arguments, no other copy, no deserialization on either side. The archive takes
    /// the arena's first bytes, and the module's scratch is the rest (see
    /// [`RuntimeConfig::arena_size`](crate::RuntimeConfig::arena_size)); an archive
    /// larger than the arena is written into a buffer of its own, and the module gets a
    /// whole arena. A method that needs its whole arena takes its archive lent:
    /// [`call_buffer`](ArchivedMethod::call_buffer) with `&ArgBuffer`.
    pub fn call(&self, args: &A) -> Result<R::Output, RuntimeError> {
        self.call_with(args, &CallOptions::default())
    }

    /// [`call`](ArchivedMethod::call) with per-call `options`.
    pub fn call_with(&self, args: &A, options: &CallOptions) -> Result<R::Output, RuntimeError> {
        // No arena to be had (the memory is exhausted): the archive goes on the heap, and
        // the call fails as any call that cannot have an arena does.
        let mut arena = PooledArena::take(&self.registry.pool);
        let room: &mut [core::mem::MaybeUninit<u8>] = match arena.as_mut() {
            // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and the
            // archiver only ever stores initialized bytes through the view, so the arena's
            // bytes stay initialized.
            Some(arena) => unsafe {
                &mut *(core::ptr::from_mut(arena.buf_mut().as_mut_slice())
                    as *mut [core::mem::MaybeUninit<u8>])
            },
            None => &mut [],
        };
        // Archived once: what does not fit the arena goes on the heap as it is written.
        let written = memlink_abi::archive::to_bytes_spilling(args, room).map_err(|e| {
            self.codec(ModuleError::Serialize(format!(
                "cannot archive the arguments: {e}"
            )))
        })?;
        let args = match written {
            Encoded::Within(bytes) => match arena {
                Some(arena) => Args::InArena(arena, bytes.len()),
                // An archive of no bytes (of `()`) fits no room at all.
                None => Args::Borrowed(&[]),
            },
            Encoded::Spilled(bytes) => {
                // Too large for an arena: a buffer of its own, aligned for the archive.
                drop(arena);
                let mut aligned =
                    AlignedVec::<{ memlink_abi::archive::ARCHIVE_ALIGN }>::with_capacity(
                        bytes.len(),
                    );
                aligned.extend_from_slice(&bytes);
                Args::Owned(Box::new(aligned))
            }
        };
        self.run(args, options)
    }

    /// Calls the method with an archive of `A` the caller wrote in `buffer` (from
    /// [`Runtime::arg_buffer`](crate::Runtime::arg_buffer)), read by the module where it
    /// lies. The buffer is given (`ArgBuffer`, kept until the output is dropped) or lent
    /// (`&ArgBuffer`, to write the next call's archive into the same memory).
    ///
    /// rkyv writes the archive into the buffer itself, with no copy; the bytes it wrote
    /// are the length the call passes:
    ///
    /// ```no_run
    /// use memlink_example_types::zero_copy_types::Point;
    /// use memlink_runtime::{CallOptions, ModuleRef, Runtime};
    /// use rkyv::rancor;
    /// use rkyv::ser::{writer::Buffer, Positional};
    ///
    /// let runtime = Runtime::with_local_resolver();
    /// let handle = runtime.load(ModuleRef::parse("./libzero_copy.so")?)?;
    /// let centroid = runtime.archived::<(Vec<Point>,), (f32, f32, f32, u64)>(handle, "centroid")?;
    /// let mut buffer = runtime.arg_buffer(1 << 20); // made once, lent to every call
    /// for n in [1000, 3] {
    ///     let points = vec![Point { x: 1.0, y: 2.0, z: 3.0 }; n];
    ///     buffer.set_len(buffer.capacity()); // room for the whole archive
    ///     let len = rkyv::api::high::to_bytes_in::<_, rancor::Error>(
    ///         &(points,),
    ///         Buffer::from(&mut *buffer),
    ///     )?
    ///     .pos();
    ///     buffer.set_len(len);
    ///     let (x, y, z, _) = centroid.call_buffer(&buffer, &CallOptions::default())?;
    ///     assert_eq!((x, y, z), (1.0, 2.0, 3.0));
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call_buffer<'b>(
        &self,
        buffer: impl CallArgs<'b>,
        options: &CallOptions,
    ) -> Result<R::Output, RuntimeError> {
        self.run(buffer.into_args().0, options)
    }

    fn run(&self, args: Args<'_>, options: &CallOptions) -> Result<R::Output, RuntimeError> {
        // The method as the handle checked it, or an error: see `Checked`.
        let (checked, method) = (self.checked, self.method);
        let find = |module: &Module| checked.find(module, method);
        let output = call::handle_from_host(&self.registry, method.handle, find, args, options)?;
        R::read(output, checked.result_format())
            .map_err(|e| crate::typed::result_error::<R::Output>(&self.registry, method, e))
    }

    fn codec(&self, e: ModuleError) -> RuntimeError {
        crate::typed::codec_error(&self.registry, self.method, e)
    }
}
