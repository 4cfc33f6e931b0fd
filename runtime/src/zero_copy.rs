//! Zero-copy calls: arguments written once, by the host, into the memory the module
//! reads them from.
//!
//! - [`Runtime::archived_method`] resolves a method whose parameters are archived views
//!   and checks, once, that the caller's argument type is the one the module's table
//!   names (the fingerprint covers the type, its archived layout and the rkyv format).
//! - [`ArchivedMethod::call`] serializes the arguments straight into the call's arena,
//!   aligned as rkyv needs; the module validates them in place and reads them there.
//! - [`Runtime::arg_buffer`] and [`Runtime::call_buffer`] let the host fill the
//!   argument memory itself: a 64 MiB input is written once and never copied.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use memlink_msdk::archive::{Archivable, ArchiveType};
use memlink_msdk::rkyv::rancor;
use memlink_msdk::rkyv::ser::writer::Buffer;
use memlink_msdk::rkyv::ser::Positional;

use crate::arena::{AlignedBuf, PooledArena};
use crate::call::{ArgsIn, CallOutput};
use crate::error::RuntimeError;
use crate::runtime::{CallOptions, MethodRef, ModuleHandle, Runtime};

/// A method taking archived arguments of type `A` (the tuple of its parameters'
/// unarchived types), checked against the module's table once.
#[derive(Debug)]
pub struct ArchivedMethod<A> {
    method: MethodRef,
    _args: PhantomData<fn(&A)>,
}

impl<A> Clone for ArchivedMethod<A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A> Copy for ArchivedMethod<A> {}

impl<A: Archivable> ArchivedMethod<A> {
    /// Archives `args` into the call's arena and calls the method: one write of the
    /// arguments, no other copy, no deserialization on either side.
    pub fn call(
        &self,
        runtime: &Runtime,
        args: &A,
        options: &CallOptions,
    ) -> Result<CallOutput, RuntimeError> {
        let mut arena = runtime.inner.pool.take();
        let written = memlink_msdk::rkyv::api::high::to_bytes_in::<_, rancor::Error>(
            args,
            Buffer::from(arena.buf_mut().as_mut_slice()),
        )
        .map(|w| w.pos());
        let args_in = match written {
            Ok(len) => ArgsIn::Arena(arena, len),
            Err(_) => {
                // Too large for an arena: archive into a buffer of its own, once.
                drop(arena);
                let bytes = memlink_msdk::rkyv::to_bytes::<rancor::Error>(args).map_err(|e| {
                    self.codec(runtime, format!("cannot archive the arguments: {e}"))
                })?;
                ArgsIn::Owned(Box::new(bytes))
            }
        };
        let module = runtime.inner.module(self.method.handle)?;
        runtime.invoke(
            self.method.handle,
            module,
            self.method.index,
            args_in,
            options,
        )
    }

    fn codec(&self, runtime: &Runtime, reason: String) -> RuntimeError {
        let (module, method) = runtime.names_of(self.method);
        RuntimeError::Codec {
            module,
            method,
            reason,
        }
    }
}

impl<A> ArchivedMethod<A> {
    /// The untyped method.
    pub fn method(&self) -> MethodRef {
        self.method
    }
}

impl Runtime {
    /// Resolves `method` of the module and checks that it takes archived arguments of
    /// type `A`, the tuple of its parameters' types (`&Archived<T>` is `T`, `&[u8]` is
    /// `Vec<u8>`, `&str` is `String`).
    ///
    /// A method with other types is refused here, naming both, before the module sees
    /// a byte.
    pub fn archived_method<A: Archivable>(
        &self,
        handle: ModuleHandle,
        method: &str,
    ) -> Result<ArchivedMethod<A>, RuntimeError> {
        let m = self.method(handle, method)?;
        let module = self.inner.module(handle)?;
        let info = &module.methods[m.index as usize];
        let ours = ArchiveType::of::<A>();
        match &info.args_type {
            Some((_, fingerprint)) if *fingerprint == ours.fingerprint => Ok(ArchivedMethod {
                method: m,
                _args: PhantomData,
            }),
            theirs => Err(RuntimeError::TypeMismatch {
                module: module.name.clone(),
                method: method.to_owned(),
                expected: theirs.as_ref().map_or_else(
                    || format!("no archive: its arguments are {}", info.args_format.name()),
                    |(name, _)| name.clone(),
                ),
                got: ours.name.to_owned(),
            }),
        }
    }

    /// Checks that `method` returns an archive of `R` (a `Rkyv<R>` result).
    pub fn expect_result<R: Archivable>(&self, method: MethodRef) -> Result<(), RuntimeError> {
        let module = self.inner.module(method.handle)?;
        let info = &module.methods[method.index as usize];
        let ours = ArchiveType::of::<R>();
        match &info.result_type {
            Some((_, fingerprint)) if *fingerprint == ours.fingerprint => Ok(()),
            theirs => Err(RuntimeError::TypeMismatch {
                module: module.name.clone(),
                method: info.name.clone(),
                expected: theirs.as_ref().map_or_else(
                    || format!("no archive: its result is {}", info.result_format.name()),
                    |(name, _)| name.clone(),
                ),
                got: ours.name.to_owned(),
            }),
        }
    }

    /// Memory for `len` bytes of arguments that the caller writes itself, aligned for
    /// rkyv and zeroed: an arena from the pool when they fit in one, else a buffer of
    /// its own.
    pub fn arg_buffer(&self, len: usize) -> ArgBuffer {
        if len <= self.inner.config.arena_size {
            let mut arena = self.inner.pool.take();
            // A pooled arena holds whatever its last call left there: another caller's
            // bytes, and bytes a module never initialized. Only zeroes are handed out.
            arena.buf_mut().as_mut_slice()[..len].fill(0);
            ArgBuffer {
                repr: BufRepr::Arena(arena),
                len,
            }
        } else {
            ArgBuffer {
                repr: BufRepr::Owned(AlignedBuf::zeroed(len)),
                len,
            }
        }
    }

    /// Calls `method` with the arguments in `buffer`, read by the module where they lie.
    pub fn call_buffer(
        &self,
        method: MethodRef,
        buffer: ArgBuffer,
        options: &CallOptions,
    ) -> Result<CallOutput, RuntimeError> {
        let module = self.inner.module(method.handle)?;
        let args = match buffer.repr {
            BufRepr::Arena(arena) => ArgsIn::Arena(arena, buffer.len),
            BufRepr::Owned(buf) => ArgsIn::Owned(Box::new(buf)),
        };
        self.invoke(method.handle, module, method.index, args, options)
    }

    fn names_of(&self, method: MethodRef) -> (String, String) {
        match self.inner.module(method.handle) {
            Ok(m) => (
                m.name.clone(),
                m.methods[method.index as usize].name.clone(),
            ),
            Err(_) => (method.handle.to_string(), format!("#{}", method.index)),
        }
    }
}

/// Argument memory the caller fills in place (see [`Runtime::arg_buffer`]); derefs to
/// its bytes, zeroed at first, 64-byte aligned.
#[derive(Debug)]
pub struct ArgBuffer {
    repr: BufRepr,
    len: usize,
}

#[derive(Debug)]
enum BufRepr {
    Arena(PooledArena),
    Owned(AlignedBuf),
}

impl Deref for ArgBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.repr {
            BufRepr::Arena(a) => &a.buf().as_slice()[..self.len],
            BufRepr::Owned(b) => b.as_slice(),
        }
    }
}

impl DerefMut for ArgBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        match &mut self.repr {
            BufRepr::Arena(a) => &mut a.buf_mut().as_mut_slice()[..len],
            BufRepr::Owned(b) => b.as_mut_slice(),
        }
    }
}
