//! The record sets of the zero-copy comparison (`log`, `mesh`, `minecraft`, shaped like
//! rust_serialization_benchmark's): one value of each, held by the host as an rkyv
//! archive and as MessagePack, and the operations measured on them.
//!
//! Every operation is checked once when the set is built: both calls return the
//! checksum the host computed on its own copy of the data, and validation and decoding
//! give back what was encoded.

use std::hint::black_box;

use memlink_example_types::datasets::{self, Checksum};
use memlink_msdk::archive::{self, Archivable, Checkable};
use memlink_msdk::rkyv::rancor;
use memlink_msdk::rkyv::util::AlignedVec;
use memlink_runtime::{ArchivedMethod, CallOptions, CallOutput, MethodRef, ModuleHandle, Runtime};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::fixture::mp;

/// The seed every set is generated with.
pub const SEED: u64 = 0x6d65_6d6c_696e_6b00;

/// The arguments of a set's exports: the records, as one tuple field.
pub type Args<T> = (Vec<T>,);

/// One record set, ready to send either way.
#[derive(Debug)]
pub struct SetCase<T> {
    /// `log`, `mesh` or `minecraft`: the prefix of its report keys.
    pub name: &'static str,
    /// The records.
    pub args: Args<T>,
    /// `rkyv::to_bytes(&args)`: what the zero-copy export reads in place.
    pub archive: AlignedVec,
    /// `rmp_serde::to_vec(&args)`: MessagePack with structs as arrays, its compact form.
    pub packed: Vec<u8>,
    /// The export that takes the archive.
    pub zero_copy: ArchivedMethod<Args<T>, CallOutput>,
    /// The export that takes MessagePack.
    pub msgpack: MethodRef,
    /// The MessagePack encoding of the checksum both exports must return.
    pub expected: Vec<u8>,
}

impl<T> SetCase<T>
where
    Args<T>: Archivable + Serialize + DeserializeOwned + PartialEq,
    <Args<T> as memlink_msdk::rkyv::Archive>::Archived: Checkable,
{
    /// Archives and encodes `records`, resolves the exports `NAME_checksum` and
    /// `NAME_checksum_msgpack` of `module`, and checks every operation.
    pub fn new(
        runtime: &Runtime,
        module: ModuleHandle,
        name: &'static str,
        records: Vec<T>,
        expected: Vec<u8>,
    ) -> Result<SetCase<T>, String> {
        let args = (records,);
        let archive = memlink_msdk::rkyv::to_bytes::<rancor::Error>(&args)
            .map_err(|e| format!("{name}: cannot archive: {e}"))?;
        let packed = rmp_serde::to_vec(&args).map_err(|e| format!("{name}: {e}"))?;
        let method = format!("{name}_checksum");
        let case = SetCase {
            name,
            zero_copy: runtime
                .archived::<Args<T>, CallOutput>(module, &method)
                .map_err(|e| e.to_string())?,
            msgpack: runtime
                .method(module, &format!("{method}_msgpack"))
                .map_err(|e| e.to_string())?,
            args,
            archive,
            packed,
            expected,
        };
        case.check(runtime)?;
        Ok(case)
    }

    fn check(&self, runtime: &Runtime) -> Result<(), String> {
        let name = self.name;
        let expect = |what: &str, got: &[u8]| {
            if got == self.expected.as_slice() {
                Ok(())
            } else {
                Err(format!(
                    "{name}: {what} returned {got:?}, expected {:?}",
                    self.expected
                ))
            }
        };
        expect("the zero-copy call", &self.zero_copy_call(runtime))?;
        expect("the MessagePack call", &self.msgpack_call(runtime))?;
        expect(
            "the zero-copy call archiving its arguments",
            &self.zero_copy_with_archiving(),
        )?;
        expect(
            "the MessagePack call encoding its arguments",
            &self.msgpack_with_encoding(runtime),
        )?;
        if self.validate().is_none() {
            return Err(format!("{name}: the archive does not validate"));
        }
        if self.msgpack_decode() != self.args || self.msgpack_decode_msdk() != self.args {
            return Err(format!(
                "{name}: MessagePack does not decode to the records"
            ));
        }
        Ok(())
    }

    /// `memlink_msdk::archive::access` of the archive: the check an archived export
    /// runs before it reads its arguments (size, alignment, bytecheck with the depth
    /// limit), here in the host. The address of the root, or `None` if invalid.
    #[inline]
    pub fn validate(&self) -> Option<usize> {
        archive::access::<Args<T>>(black_box(&self.archive))
            .ok()
            .map(|root| std::ptr::from_ref(root).addr())
    }

    /// `rmp_serde::from_slice` of the compact MessagePack into owned records (dropped by
    /// the caller, which is part of what a decoding export pays).
    #[inline]
    pub fn msgpack_decode(&self) -> Args<T> {
        rmp_serde::from_slice(black_box(&self.packed)).expect("decode MessagePack")
    }

    /// `memlink_msdk::serialize::from_msgpack`: the decoder a MessagePack export runs
    /// (rmp-serde under depth limits and a trailing-bytes check).
    #[inline]
    pub fn msgpack_decode_msdk(&self) -> Args<T> {
        memlink_msdk::serialize::from_msgpack(black_box(&self.packed)).expect("decode")
    }

    /// The zero-copy export by id with the pre-built archive, which the module
    /// validates and reads where the host keeps it.
    #[inline]
    pub fn zero_copy_call(&self, runtime: &Runtime) -> CallOutput {
        runtime
            .call_method(
                self.zero_copy.method(),
                &self.archive[..],
                &CallOptions::default(),
            )
            .expect("zero-copy call")
    }

    /// The MessagePack export by id with the pre-encoded arguments, which the module
    /// decodes into owned records.
    #[inline]
    pub fn msgpack_call(&self, runtime: &Runtime) -> CallOutput {
        runtime
            .call_method(self.msgpack, &self.packed, &CallOptions::default())
            .expect("MessagePack call")
    }

    /// `ArchivedMethod::call`: archives the records on the host (into the call's arena,
    /// or a buffer of their own when larger), then the call.
    #[inline]
    pub fn zero_copy_with_archiving(&self) -> CallOutput {
        self.zero_copy.call(&self.args).expect("archived call")
    }

    /// `memlink_msdk::serialize::to_msgpack` of the records (structs as maps, as
    /// `call_typed` encodes them), then the call by id.
    #[inline]
    pub fn msgpack_with_encoding(&self, runtime: &Runtime) -> CallOutput {
        let packed = memlink_msdk::serialize::to_msgpack(&self.args).expect("encode");
        runtime
            .call_method(self.msgpack, &packed, &CallOptions::default())
            .expect("MessagePack call")
    }
}

/// The three sets, with the runtime and module they are sent to.
#[derive(Debug)]
pub struct Sets {
    /// `log`: 10,000 HTTP log records, mostly strings.
    pub log: SetCase<datasets::Log>,
    /// `mesh`: 125,000 triangles of `f32`s.
    pub mesh: SetCase<datasets::Triangle>,
    /// `minecraft`: 500 players, nested, with enums and options.
    pub minecraft: SetCase<datasets::Player>,
}

impl Sets {
    /// Generates the sets (fixed seed) and checks every operation on `module`.
    pub fn new(runtime: &Runtime, module: ModuleHandle) -> Result<Sets, String> {
        let logs = datasets::generate_logs(SEED, datasets::LOG_RECORDS);
        let expected = mp(&logs.checksum());
        let log = SetCase::new(runtime, module, "log", logs, expected)?;
        let mesh = datasets::generate_mesh(SEED, datasets::MESH_TRIANGLES);
        let expected = mp(&datasets::mesh_sum(&mesh));
        let mesh = SetCase::new(runtime, module, "mesh", mesh, expected)?;
        let players = datasets::generate_players(SEED, datasets::MINECRAFT_PLAYERS);
        let expected = mp(&players.checksum());
        let minecraft = SetCase::new(runtime, module, "minecraft", players, expected)?;
        Ok(Sets {
            log,
            mesh,
            minecraft,
        })
    }
}
