//! Passes 64 MiB to the `zero_copy` module: written once into the host's buffer and read
//! there in place, then as MessagePack. Both calls checksum the bytes, so the
//! difference is what moving the bytes costs; a third call, which only reports the
//! argument's address, shows the zero-copy call's own cost.
//!
//! ```sh
//! cargo build --release -p memlink-examples --example zero_copy
//! cargo run --release -p memlink-runtime --example zero_copy_host -- target/release/examples/libzero_copy.so
//! ```

use std::time::Instant;

use memlink_runtime::{CallOptions, ModuleRef, Runtime};

const LEN: usize = 64 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/release/examples/libzero_copy.so".into());
    let runtime = Runtime::with_local_resolver();
    let module = runtime.load(ModuleRef::parse(&path)?)?;
    let fill = |buf: &mut [u8]| {
        buf.iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i % 251) as u8)
    };

    // Zero-copy: the host writes the bytes where the module will read them. `checksum`
    // takes `&[u8]` alone, so its argument is the bytes as they are: the module reads the
    // host's buffer in place for the length of the call.
    let checksum = runtime.method(module, "checksum")?;
    let start = Instant::now();
    let mut buf = vec![0u8; LEN];
    fill(&mut buf);
    let written = start.elapsed();
    let start = Instant::now();
    let out = runtime.call_method(checksum, &buf, &CallOptions::default())?;
    let zero_copy = start.elapsed();
    let a: u64 = rmp_serde::from_slice(&out)?;

    // MessagePack: the same bytes encoded, copied into the call, decoded by the module.
    let mut data = vec![0u8; LEN];
    fill(&mut data);
    let start = Instant::now();
    let packed = rmp_serde::to_vec(&(&data, 0u64))?;
    let encoded = start.elapsed();
    let start = Instant::now();
    let out = runtime.call(module, "checksum_msgpack", &packed)?;
    let msgpack = start.elapsed();
    let b: u64 = rmp_serde::from_slice(&out)?;

    // The call alone: a method that only looks at where its 64 MiB argument is.
    let address_of = runtime.method(module, "address_of")?;
    let at = buf.as_ptr() as u64;
    let start = Instant::now();
    let out = runtime.call_method(address_of, &buf, &CallOptions::default())?;
    let bare = start.elapsed();
    let seen_at: u64 = rmp_serde::from_slice(&out)?;
    assert_eq!(seen_at, at, "read in place, not copied");

    assert_eq!(a, b, "both calls saw the same bytes");
    println!("64 MiB argument, checksummed by the module (checksum {a:#018x})");
    println!("  zero-copy : fill the buffer       {written:>10.2?}, call {zero_copy:>10.2?}");
    println!("  msgpack   : encode                {encoded:>10.2?}, call {msgpack:>10.2?}");
    println!("  zero-copy call that touches no byte: {bare:.2?} (the call's own cost, whatever the size)");
    println!(
        "  the MessagePack call took {:.0}x as long",
        msgpack.as_secs_f64() / zero_copy.as_secs_f64()
    );
    Ok(())
}
