//! The peers: the calls the `exports` group makes through memlink, made into a
//! WebAssembly guest with wasmtime instead, so that one run can set memlink's figures
//! next to what a wasm plugin host pays. Defined once here for the report ([`figures`])
//! and criterion (`benches/peers.rs`).
//!
//! The guest is WAT text compiled by Cranelift when the fixture is made; each call goes
//! through a `TypedFunc`, wasmtime's fastest way in from Rust. Bytes travel the way a
//! wasm host passes them: the host writes them into the guest's linear memory, the
//! guest returns where its output is, and the host copies it out.

use std::hint::black_box;

use wasmtime::{Engine, Instance, Memory, Module, Store, TypedFunc};

use crate::figures::Report;
use crate::measure::{self, Config};

/// The guest: `nop`, `add` and `echo`, and one page (64 KiB) of linear memory.
///
/// `echo` copies `len` bytes from `ptr` to [`OUTPUT`] with `memory.copy` (what a Rust
/// guest's `copy_from_slice` compiles to on wasm32, where bulk memory is on by default)
/// and returns [`OUTPUT`]; its output is as long as its input.
const GUEST: &str = r#"
(module
  (memory (export "memory") 1)
  (func (export "nop"))
  (func (export "add") (param $a i32) (param $b i32) (result i32)
    (i32.add (local.get $a) (local.get $b)))
  (func (export "echo") (param $ptr i32) (param $len i32) (result i32)
    (memory.copy (i32.const 4096) (local.get $ptr) (local.get $len))
    (i32.const 4096))
)
"#;

/// Where the host writes `echo`'s input in the guest's memory.
pub const INPUT: usize = 1024;

/// Where the guest's `echo` writes its output.
pub const OUTPUT: usize = 4096;

/// What the echo passes: the same 5 bytes as memlink's `echo_small_raw_ns`.
pub const ECHO_INPUT: &[u8] = b"hello";

/// A wasmtime store with the guest instantiated and its exports looked up once, as typed
/// functions.
pub struct Wasmtime {
    store: Store<()>,
    memory: Memory,
    nop: TypedFunc<(), ()>,
    add: TypedFunc<(i32, i32), i32>,
    echo: TypedFunc<(i32, i32), i32>,
}

impl std::fmt::Debug for Wasmtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wasmtime").finish_non_exhaustive()
    }
}

impl Wasmtime {
    /// Compiles the guest with a default `Engine`, instantiates it in a `Store<()>`,
    /// looks its exports up and checks every call (`add` gives 5, `echo` gives back
    /// its bytes).
    pub fn new() -> Result<Wasmtime, String> {
        let engine = Engine::default();
        let module = Module::new(&engine, GUEST).map_err(|e| format!("compile the guest: {e}"))?;
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[])
            .map_err(|e| format!("instantiate the guest: {e}"))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or("the guest exports no memory")?;
        let nop = instance
            .get_typed_func::<(), ()>(&mut store, "nop")
            .map_err(|e| format!("nop: {e}"))?;
        let add = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, "add")
            .map_err(|e| format!("add: {e}"))?;
        let echo = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, "echo")
            .map_err(|e| format!("echo: {e}"))?;
        let mut wasm = Wasmtime {
            store,
            memory,
            nop,
            add,
            echo,
        };
        wasm.check()?;
        Ok(wasm)
    }

    fn check(&mut self) -> Result<(), String> {
        self.nop();
        if self.add() != 5 {
            return Err("wasmtime add(2, 3) is not 5".into());
        }
        let echoed = self.echo();
        if echoed != ECHO_INPUT {
            return Err(format!(
                "wasmtime echo returned {echoed:?}, expected {ECHO_INPUT:?}"
            ));
        }
        Ok(())
    }

    /// The guest's empty `nop`: the floor of a call into wasm (the trampoline, entering
    /// and leaving the store).
    #[inline]
    pub fn nop(&mut self) {
        self.nop.call(&mut self.store, ()).expect("wasmtime nop");
    }

    /// The guest's `add(2, 3)`, arguments `black_box`ed.
    #[inline]
    pub fn add(&mut self) -> i32 {
        self.add
            .call(&mut self.store, (black_box(2), black_box(3)))
            .expect("wasmtime add")
    }

    /// `b"hello"` through the guest's `echo`: the host writes the bytes at [`INPUT`] in
    /// linear memory, calls `echo(INPUT, 5)` and copies the 5 bytes at the pointer it
    /// returns into a new `Vec`, as a host returning owned bytes does.
    #[inline]
    pub fn echo(&mut self) -> Vec<u8> {
        let input = black_box(ECHO_INPUT);
        self.memory
            .write(&mut self.store, INPUT, input)
            .expect("write echo's input");
        let out = self
            .echo
            .call(&mut self.store, (INPUT as i32, input.len() as i32))
            .expect("wasmtime echo");
        let start = out as u32 as usize;
        self.memory
            .data(&self.store)
            .get(start..start + input.len())
            .expect("echo's output lies in linear memory")
            .to_vec()
    }
}

/// The report's `peers` group: the three calls into wasm, each measured as the
/// `exports` group measures memlink's.
pub fn figures(report: &mut Report, cfg: &Config) {
    let mut wasm = match Wasmtime::new() {
        Ok(wasm) => wasm,
        Err(e) => {
            eprintln!("  wasmtime_*: skipped, {e}");
            return;
        }
    };
    report.ns(
        "wasmtime_nop_ns",
        measure::run(cfg, || wasm.nop()),
        "wasmtime: empty wasm export through TypedFunc<(), ()>::call",
    );
    report.ns(
        "wasmtime_add_ns",
        measure::run(cfg, || wasm.add()),
        "wasmtime: wasm add(2, 3) -> i32 through TypedFunc::call",
    );
    report.ns(
        "wasmtime_echo_ns",
        measure::run(cfg, || wasm.echo()),
        "wasmtime: b\"hello\" written into linear memory, echo(ptr, 5) copies it (memory.copy), read back into a new Vec, dropped",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_answers_every_call_the_report_measures() {
        let mut wasm = Wasmtime::new().expect("the guest compiles, instantiates and checks");
        wasm.nop();
        assert_eq!(wasm.add(), 5);
        // Each call rewrites the input, so a second echo sees the same bytes, not the
        // first call's output left in memory.
        assert_eq!(wasm.echo(), ECHO_INPUT);
        assert_eq!(wasm.echo(), ECHO_INPUT);
        let data = wasm.memory.data(&wasm.store);
        assert_eq!(&data[OUTPUT..OUTPUT + ECHO_INPUT.len()], ECHO_INPUT);
    }
}
