//! Typed handles on a daemon's methods, resolved and checked once: [`RemoteTyped`] for
//! serde values, [`RemoteArchived`] for archives written and read in place.

use core::mem::MaybeUninit;
use std::fmt;
use std::marker::PhantomData;

use memlink_abi::archive::{self, Archivable, ArchiveType, Checkable, Limits};
use memlink_abi::{msgpack, Encoded, Format};
use memlink_ipc::control::MethodInfo;
use memlink_runtime::{CallOptions, ModuleError, RuntimeError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::{format, Client, RemoteModule};
use crate::output::{decode_private, RemoteOutput};
use crate::send::{Filled, Target};

// The handles' constructors live beside the handles, so `client` needs no `typed`.
impl Client {
    /// A typed handle on `method` (MessagePack or raw, in the spirit of
    /// `Runtime::typed`): its formats are checked now.
    pub fn typed<A, R>(
        &self,
        module: RemoteModule,
        method: &str,
    ) -> Result<RemoteTyped<'_, A, R>, RuntimeError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        RemoteTyped::new(self, module, self.method(module, method)?)
    }

    /// Calls a method with typed arguments and result in one go.
    pub fn call_typed<A, R>(
        &self,
        module: RemoteModule,
        method: &str,
        args: &A,
    ) -> Result<R, RuntimeError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        match self.typed::<A, R>(module, method)?.call(args) {
            // The handle was made from a description kept from before the method changed
            // (which the failure dropped): made once more from the daemon's, as the
            // caller, who holds no handle, would expect. The refused call never ran.
            Err(RuntimeError::MethodChanged { .. }) => {
                self.typed::<A, R>(module, method)?.call(args)
            }
            other => other,
        }
    }

    /// A zero-copy handle on an archive method (as `Runtime::archived`): `A`'s
    /// archive is written straight into the shared segment, and the result read there as
    /// `R`'s archive. Both fingerprints are checked now.
    pub fn archived<A, R>(
        &self,
        module: RemoteModule,
        method: &str,
    ) -> Result<RemoteArchived<'_, A, R>, RuntimeError>
    where
        A: memlink_abi::archive::Archivable,
        R: rkyv::Archive,
        R::Archived: memlink_abi::archive::Checkable,
    {
        RemoteArchived::new(self, module, self.method(module, method)?)
    }

    /// A handle on a method that takes MessagePack or raw arguments and returns an
    /// archive (`grid(n: u32) -> Rkyv<Vec<Point>>`), as `Runtime::typed` with an
    /// `Rkyv<T>` result: `A` is encoded straight into the shared segment and the result
    /// validated and read there as `R`'s archive. The arguments' format and the result's
    /// fingerprint are checked now.
    pub fn typed_archived<A, R>(
        &self,
        module: RemoteModule,
        method: &str,
    ) -> Result<RemoteTypedArchived<'_, A, R>, RuntimeError>
    where
        A: Serialize + ?Sized,
        R: rkyv::Archive,
        R::Archived: Checkable,
    {
        RemoteTypedArchived::new(self, module, self.method(module, method)?)
    }

    /// A handle on a method that takes an archive and returns MessagePack or raw bytes
    /// (`centroid(points: &Archived<Vec<Point>>) -> (f32, f32, f32)`), as
    /// `Runtime::archived` with a serde result: `A`'s archive is written straight into
    /// the shared segment and the result decoded as `R`. The arguments' fingerprint and
    /// the result's format are checked now.
    pub fn archived_decoded<A, R>(
        &self,
        module: RemoteModule,
        method: &str,
    ) -> Result<RemoteArchivedDecoded<'_, A, R>, RuntimeError>
    where
        A: Archivable,
        R: DeserializeOwned,
    {
        RemoteArchivedDecoded::new(self, module, self.method(module, method)?)
    }
}

/// A method called with typed arguments and result: the arguments encoded straight into
/// the shared segment for the method's format, the result decoded from where it lies.
pub struct RemoteTyped<'c, A: ?Sized, R> {
    args: TypedArgs<'c>,
    module: RemoteModule,
    result: Format,
    /// The export's signature, when the module records it: a result that cannot be read
    /// as `R` is told beside it.
    signature: Option<String>,
    _types: PhantomData<fn(&A) -> R>,
}

impl<A: ?Sized, R> fmt::Debug for RemoteTyped<'_, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RemoteTyped({}::{})",
            self.args.target.name, self.args.target.method
        )
    }
}

impl<'c, A: Serialize + ?Sized, R: DeserializeOwned> RemoteTyped<'c, A, R> {
    pub(crate) fn new(
        client: &'c Client,
        module: RemoteModule,
        m: MethodInfo,
    ) -> Result<Self, RuntimeError> {
        let name = client.name(module)?.to_string();
        let args = TypedArgs::new(client, name, &m)?;
        let result = format(m.result)?;
        if result == Format::Archived {
            return Err(RuntimeError::WrongFormat {
                module: args.target.name,
                method: m.name,
                part: "result",
                format: result,
                instead:
                    "read it through `Client::typed_archived`, which validates the archive in place",
            });
        }
        Ok(RemoteTyped {
            args,
            module,
            signature: m.signature,
            result,
            _types: PhantomData,
        })
    }

    /// Calls the method with `args`.
    pub fn call(&self, args: &A) -> Result<R, RuntimeError> {
        self.call_with(args, &CallOptions::default())
    }

    /// [`call`](RemoteTyped::call) with per-call `options`. A call the daemon never took
    /// (it went away, and a new one is there) is sent once more on a new connection.
    pub fn call_with(&self, args: &A, options: &CallOptions) -> Result<R, RuntimeError> {
        let reply = self.args.send(args, options)?;
        decode_private(&reply, |bytes| msgpack::decode_as(self.result, bytes))
            .map_err(|e| self.unreadable(e))
    }

    /// The error of a result that cannot be read as `R`, as the runtime's typed handles
    /// say it.
    fn unreadable(&self, e: ModuleError) -> RuntimeError {
        let type_name = core::any::type_name::<R>();
        RuntimeError::Codec {
            module: self.args.target.name.clone(),
            method: self.args.target.method.clone(),
            reason: msgpack::unreadable_result(type_name, e, self.signature.as_deref()),
        }
    }

    /// The module the method belongs to.
    pub fn module(&self) -> RemoteModule {
        self.module
    }
}

/// The method a typed handle calls, and how it encodes the arguments.
struct TypedArgs<'c> {
    target: Target<'c>,
    args: Format,
}

impl<'c> TypedArgs<'c> {
    /// The arguments of `m` (of the module `name`), unless they are an archive.
    fn new(client: &'c Client, name: String, m: &MethodInfo) -> Result<Self, RuntimeError> {
        let args = format(m.args)?;
        if args == Format::Archived {
            return Err(RuntimeError::WrongFormat {
                module: name,
                method: m.name.clone(),
                part: "arguments",
                format: args,
                instead: if m.result_fingerprint.is_some() {
                    "call it through `Client::archived`, which writes the arguments' archive in place"
                } else {
                    "call it through `Client::archived_decoded`, which writes the arguments' archive in place"
                },
            });
        }
        Ok(TypedArgs {
            target: Target {
                client,
                name,
                method: m.name.clone(),
                digest: m.digest(),
            },
            args,
        })
    }

    /// Encodes `args` into the shared segment and calls the method (see
    /// `Target::send`).
    fn send<A: Serialize + ?Sized>(
        &self,
        args: &A,
        options: &CallOptions,
    ) -> Result<RemoteOutput, RuntimeError> {
        self.target.send(options, |data| {
            let start = data.as_ptr().addr();
            // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and the
            // encoder only ever stores initialized bytes through the view, so `data`
            // stays initialized.
            let uninit = unsafe { &mut *(core::ptr::from_mut(data) as *mut [MaybeUninit<u8>]) };
            match msgpack::encode_as_spilling(self.args, args, uninit) {
                // Written in the slot, where raw bytes may lie past its start.
                Ok(Encoded::Within(bytes)) => {
                    let range = bytes.as_ptr().addr() - start..;
                    let len = bytes.len();
                    data.copy_within(range.start..range.start + len, 0);
                    Ok(Filled::InSlot(len))
                }
                Ok(Encoded::Spilled(bytes)) => Ok(Filled::Apart(bytes)),
                Err(e) => Err(self.codec(e)),
            }
        })
    }

    fn codec(&self, e: ModuleError) -> RuntimeError {
        RuntimeError::Codec {
            module: self.target.name.clone(),
            method: self.target.method.clone(),
            reason: match e {
                ModuleError::Serialize(m) => m,
                other => other.to_string(),
            },
        }
    }
}

/// A method that takes MessagePack or raw arguments and returns an archive: the
/// arguments encoded straight into the shared segment, the result validated and read in
/// place as `R`'s archive.
pub struct RemoteTypedArchived<'c, A: ?Sized, R> {
    args: TypedArgs<'c>,
    /// The export's signature, when the module records it (see `RemoteTyped`).
    signature: Option<String>,
    _types: PhantomData<fn(&A) -> R>,
}

impl<A: ?Sized, R> fmt::Debug for RemoteTypedArchived<'_, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RemoteTypedArchived({}::{})",
            self.args.target.name, self.args.target.method
        )
    }
}

impl<'c, A, R> RemoteTypedArchived<'c, A, R>
where
    A: Serialize + ?Sized,
    R: rkyv::Archive,
    R::Archived: Checkable,
{
    pub(crate) fn new(
        client: &'c Client,
        module: RemoteModule,
        m: MethodInfo,
    ) -> Result<Self, RuntimeError> {
        let name = client.name(module)?.to_string();
        let args = TypedArgs::new(client, name, &m)?;
        check_result::<R>(
            &args.target.name,
            &m,
            "read it through `Client::typed`, which decodes it as the serde type it is",
        )?;
        Ok(RemoteTypedArchived {
            args,
            signature: m.signature,
            _types: PhantomData,
        })
    }

    /// Calls the method with `args`.
    pub fn call(&self, args: &A) -> Result<ArchivedReply<R>, RuntimeError> {
        self.call_with(args, &CallOptions::default())
    }

    /// [`call`](RemoteTypedArchived::call) with per-call `options`. A call the daemon
    /// never took (it went away, and a new one is there) is sent once more on a new
    /// connection.
    pub fn call_with(
        &self,
        args: &A,
        options: &CallOptions,
    ) -> Result<ArchivedReply<R>, RuntimeError> {
        let output = self.args.send(args, options)?;
        ArchivedReply::checked(
            output,
            &self.args.target.name,
            &self.args.target.method,
            self.signature.as_deref(),
        )
    }
}

/// Whether `m` (of the module `name`) returns an archive of `R`; `instead` says what to
/// use for a result that is no archive.
fn check_result<R: rkyv::Archive>(
    name: &str,
    m: &MethodInfo,
    instead: &'static str,
) -> Result<(), RuntimeError> {
    let described = Described {
        part: "result",
        fingerprint: m.result_fingerprint,
        type_name: &m.result_type,
        tag: m.result,
    };
    described.check(name, m, ArchiveType::of::<R>(), instead)
}

/// One part of a method, its arguments or its result, as the daemon describes it.
struct Described<'m> {
    part: &'static str,
    /// The fingerprint of its archived type, for an archive.
    fingerprint: Option<u64>,
    /// The name of its archived type, for an archive.
    type_name: &'m Option<String>,
    /// Its format tag.
    tag: u8,
}

impl Described<'_> {
    /// Whether the part (of `m`, of the module `name`) is an archive of the type `ours`
    /// describes; `instead` says what to use for a part that is no archive.
    fn check(
        &self,
        name: &str,
        m: &MethodInfo,
        ours: ArchiveType,
        instead: &'static str,
    ) -> Result<(), RuntimeError> {
        match self.fingerprint {
            Some(fp) if fp == ours.fingerprint => Ok(()),
            Some(_) => Err(RuntimeError::TypeMismatch {
                module: name.to_owned(),
                method: m.name.clone(),
                expected: self.type_name.clone().unwrap_or_default(),
                got: ours.name.to_owned(),
            }),
            None => Err(RuntimeError::WrongFormat {
                module: name.to_owned(),
                method: m.name.clone(),
                part: self.part,
                format: format(self.tag)?,
                instead,
            }),
        }
    }
}

/// A zero-copy method: `A`'s archive written straight into the shared segment, the
/// result validated and read in place as `R`'s archive.
pub struct RemoteArchived<'c, A, R> {
    args: ArchivedArgs<'c>,
    /// The export's signature, when the module records it (see `RemoteTyped`).
    signature: Option<String>,
    _types: PhantomData<fn(&A) -> R>,
}

impl<A, R> fmt::Debug for RemoteArchived<'_, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RemoteArchived({}::{})",
            self.args.target.name, self.args.target.method
        )
    }
}

impl<'c, A, R> RemoteArchived<'c, A, R>
where
    A: Archivable,
    R: rkyv::Archive,
    R::Archived: Checkable,
{
    pub(crate) fn new(
        client: &'c Client,
        module: RemoteModule,
        m: MethodInfo,
    ) -> Result<Self, RuntimeError> {
        let name = client.name(module)?.to_string();
        check_args::<A>(&name, &m)?;
        check_result::<R>(
            &name,
            &m,
            "read it through `Client::archived_decoded`, which decodes it as the serde type it is",
        )?;
        Ok(RemoteArchived {
            args: ArchivedArgs::new(client, name, &m),
            signature: m.signature,
            _types: PhantomData,
        })
    }

    /// Archives `args` into the shared segment and calls the method.
    pub fn call(&self, args: &A) -> Result<ArchivedReply<R>, RuntimeError> {
        self.call_with(args, &CallOptions::default())
    }

    /// [`call`](RemoteArchived::call) with per-call `options`. A call the daemon
    /// never took (it went away, and a new one is there) is sent once more on a new
    /// connection.
    pub fn call_with(
        &self,
        args: &A,
        options: &CallOptions,
    ) -> Result<ArchivedReply<R>, RuntimeError> {
        let output = self.args.send(args, options)?;
        ArchivedReply::checked(
            output,
            &self.args.target.name,
            &self.args.target.method,
            self.signature.as_deref(),
        )
    }
}

/// Whether `m` (of the module `name`) takes an archive of `A`.
fn check_args<A: Archivable>(name: &str, m: &MethodInfo) -> Result<(), RuntimeError> {
    let described = Described {
        part: "arguments",
        fingerprint: m.args_fingerprint,
        type_name: &m.args_type,
        tag: m.args,
    };
    let instead = if m.result_fingerprint.is_some() {
        "call it through `Client::typed_archived`, which encodes values as the method takes them"
    } else {
        "call it through `Client::typed`, which encodes values as the method takes them"
    };
    described.check(name, m, ArchiveType::of::<A>(), instead)
}

/// The method an archived handle calls, and how it writes the arguments' archive.
struct ArchivedArgs<'c> {
    target: Target<'c>,
}

impl<'c> ArchivedArgs<'c> {
    fn new(client: &'c Client, name: String, m: &MethodInfo) -> ArchivedArgs<'c> {
        ArchivedArgs {
            target: Target {
                client,
                name,
                method: m.name.clone(),
                digest: m.digest(),
            },
        }
    }

    /// Archives `args` into the shared segment and calls the method (see
    /// `Target::send`).
    fn send<A: Archivable>(
        &self,
        args: &A,
        options: &CallOptions,
    ) -> Result<RemoteOutput, RuntimeError> {
        self.target.send(options, |data| {
            // SAFETY: as in `TypedArgs::send`: the archiver only stores initialized
            // bytes through the view.
            let uninit = unsafe { &mut *(core::ptr::from_mut(data) as *mut [MaybeUninit<u8>]) };
            match memlink_abi::archive::to_bytes_spilling(args, uninit) {
                Ok(Encoded::Within(bytes)) => Ok(Filled::InSlot(bytes.len())),
                Ok(Encoded::Spilled(bytes)) => Ok(Filled::Apart(bytes)),
                Err(e) => Err(RuntimeError::Codec {
                    module: self.target.name.clone(),
                    method: self.target.method.clone(),
                    reason: format!("the arguments cannot be archived: {e}"),
                }),
            }
        })
    }
}

/// A method that takes an archive and returns MessagePack or raw bytes: `A`'s archive
/// written straight into the shared segment, the result decoded as `R` where it lies.
pub struct RemoteArchivedDecoded<'c, A, R> {
    args: ArchivedArgs<'c>,
    result: Format,
    /// The export's signature, when the module records it (see `RemoteTyped`).
    signature: Option<String>,
    _types: PhantomData<fn(&A) -> R>,
}

impl<A, R> fmt::Debug for RemoteArchivedDecoded<'_, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RemoteArchivedDecoded({}::{})",
            self.args.target.name, self.args.target.method
        )
    }
}

impl<'c, A: Archivable, R: DeserializeOwned> RemoteArchivedDecoded<'c, A, R> {
    pub(crate) fn new(
        client: &'c Client,
        module: RemoteModule,
        m: MethodInfo,
    ) -> Result<Self, RuntimeError> {
        let name = client.name(module)?.to_string();
        check_args::<A>(&name, &m)?;
        let result = format(m.result)?;
        if result == Format::Archived {
            return Err(RuntimeError::WrongFormat {
                module: name,
                method: m.name,
                part: "result",
                format: result,
                instead: "read it through `Client::archived`, which validates the archive in place",
            });
        }
        Ok(RemoteArchivedDecoded {
            args: ArchivedArgs::new(client, name, &m),
            result,
            signature: m.signature,
            _types: PhantomData,
        })
    }

    /// Archives `args` into the shared segment, calls the method and decodes its result.
    pub fn call(&self, args: &A) -> Result<R, RuntimeError> {
        self.call_with(args, &CallOptions::default())
    }

    /// [`call`](RemoteArchivedDecoded::call) with per-call `options`. A call the daemon
    /// never took (it went away, and a new one is there) is sent once more on a new
    /// connection.
    pub fn call_with(&self, args: &A, options: &CallOptions) -> Result<R, RuntimeError> {
        let output = self.args.send(args, options)?;
        decode_private(&output, |bytes| msgpack::decode_as(self.result, bytes)).map_err(|e| {
            RuntimeError::Codec {
                module: self.args.target.name.clone(),
                method: self.args.target.method.clone(),
                reason: msgpack::unreadable_result(
                    core::any::type_name::<R>(),
                    e,
                    self.signature.as_deref(),
                ),
            }
        })
    }
}

/// An archived result, copied out of the shared segment and validated there.
///
/// Copied because every process of the daemon maps the segment, its workers included,
/// where modules' native code runs: an archive checked where they can write it could be
/// changed after the check, and its relative pointers then followed out of bounds. The
/// copy is one `memcpy` of the result, into memory aligned for any archive; the slot is
/// free for the next call as soon as the reply is made.
pub struct ArchivedReply<R> {
    bytes: rkyv::util::AlignedVec<16>,
    _type: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for ArchivedReply<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ArchivedReply<{}>({} bytes)",
            std::any::type_name::<R>(),
            self.bytes.len()
        )
    }
}

impl<R> ArchivedReply<R>
where
    R: rkyv::Archive,
    R::Archived: Checkable,
{
    /// `output` of a call to `module::method` (whose signature is `signature`, when the
    /// module records it), copied and validated as an archive of `R`. A refusal is told
    /// as the runtime's typed handles tell it: what it was read as, then why.
    fn checked(
        output: RemoteOutput,
        module: &str,
        method: &str,
        signature: Option<&str>,
    ) -> Result<Self, RuntimeError> {
        let mut bytes = rkyv::util::AlignedVec::<16>::with_capacity(output.len());
        bytes.extend_from_slice(&output);
        drop(output);
        archive::check::<R>(&bytes, Limits::default(), "archived result").map_err(|e| {
            RuntimeError::Codec {
                module: module.to_owned(),
                method: method.to_owned(),
                reason: msgpack::unreadable_result(core::any::type_name::<Self>(), e, signature),
            }
        })?;
        Ok(ArchivedReply {
            bytes,
            _type: PhantomData,
        })
    }

    /// The archived value.
    pub fn get(&self) -> &R::Archived {
        // SAFETY: the bytes were validated as an archive of `R` when this reply was made
        // (`archive::check` in `checked`), where they lie now (a vector that never moves
        // its bytes, aligned to 16, or empty), and they are this reply's own copy, which
        // nothing writes while the reply lives (it is never lent mutably).
        unsafe { archive::access_checked::<R>(&self.bytes) }
    }

    /// The archive's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}
