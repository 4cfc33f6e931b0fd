//! What a C author meets who writes a module from `include/memlink.h` and `docs/abi.md`
//! alone: each fixture is built by the system C compiler and loaded by the runtime.

mod common;

use common::compile_c;
use memlink_runtime::{ModuleError, ModuleRef, Runtime};

/// `CallFrame::out` may point "into" a buffer from `alloc_output`, as into the arena
/// (memlink.h, docs/abi.md): a result or an error's message that starts past the
/// buffer's start, behind a header the module keeps there, is read where it lies, by a
/// caller and by a nested call's sink. Before, only a result at the buffer's very start
/// was taken, and anything else was refused as lying "outside the output buffer".
#[test]
fn an_output_past_the_start_of_the_hosts_buffer_is_read_there() {
    let fixture = compile_c(
        &["runtime/tests/fixtures/buffer_offset.c"],
        "libbuffer_offset.so",
        true,
    );
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
    // Short and long results alike (the runtime copies results of up to 32 bytes).
    let long = [b'x'; 100];
    for text in [&b"short"[..], &long[..]] {
        assert_eq!(rt.call(h, "after_header", text).unwrap(), text);
    }
    let err = rt.call(h, "fail_after_header", b"the reason").unwrap_err();
    assert_eq!(
        err.module_error(),
        Some(&ModuleError::Failed("the reason".into()))
    );
    // Through a nested call: the sink gets the result, or the error's message.
    let ok = memlink_abi::Status::Ok as u8;
    let failed = memlink_abi::Status::Failed as u8;
    assert_eq!(
        &rt.call(h, "relay", b"after_header").unwrap()[..],
        &[&[ok][..], b"nested"].concat()[..]
    );
    assert_eq!(
        &rt.call(h, "relay", b"fail_after_header").unwrap()[..],
        &[&[failed][..], b"nested"].concat()[..]
    );
}
