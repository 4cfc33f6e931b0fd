//! `include/memlink.h` is generated from this crate: this regenerates it and fails on any
//! difference, so the header a C module or host includes is always the ABI the Rust
//! sides compile. `MEMLINK_WRITE_HEADER=1` rewrites the file instead.

use std::path::Path;

#[test]
fn the_checked_in_header_is_what_the_crate_generates() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = crate_dir.join("../include/memlink.h");
    let bindings = cbindgen::generate(crate_dir).expect("cbindgen reads the crate");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");
    if std::env::var_os("MEMLINK_WRITE_HEADER").is_some_and(|v| v == "1") {
        std::fs::write(&header, &generated).expect("write include/memlink.h");
        return;
    }
    let checked_in = std::fs::read_to_string(&header).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/memlink.h is not what memlink-abi generates: run \
         `MEMLINK_WRITE_HEADER=1 cargo test -p memlink-abi --test header` and commit it"
    );
}

/// The header and this crate describe the same memory: every struct's size and
/// alignment, and every field's offset, as the system C compiler lays them out from
/// `memlink.h`, equal what `#[repr(C)]` gives in Rust.
#[test]
fn c_lays_the_structs_out_as_rust_does() {
    use memlink_abi::*;
    use std::mem::{align_of, offset_of, size_of};
    macro_rules! layout {
        ($($ty:ident { $($field:ident),* }),* $(,)?) => {{
            let mut c = String::new();
            let mut rust = String::new();
            $(
                let name = concat!("Memlink", stringify!($ty));
                c += &format!(
                    "    printf(\"{name} %zu %zu\\n\", sizeof({name}), _Alignof({name}));\n"
                );
                rust += &format!("{name} {} {}\n", size_of::<$ty>(), align_of::<$ty>());
                $(
                    let field = stringify!($field);
                    c += &format!(
                        "    printf(\"{name}.{field} %zu\\n\", offsetof({name}, {field}));\n"
                    );
                    rust += &format!("{name}.{field} {}\n", offset_of!($ty, $field));
                )*
            )*
            (c, rust)
        }};
    }
    let (body, expected) = layout!(
        StrRef { ptr, len },
        ModuleInfo {
            magic,
            abi_version,
            size,
            name,
            version,
            sdk_version,
            methods,
            method_count,
            rkyv_format,
            reserved,
            method_calls
        },
        MethodInfo {
            name,
            id,
            flags,
            args_format,
            result_format,
            arg_count,
            reserved,
            args_type,
            args_fingerprint,
            result_type,
            result_fingerprint,
            signature
        },
        InitFrame {
            size,
            abi_version,
            host,
            max_log_level,
            error
        },
        HostApi {
            size,
            reserved,
            alloc_output,
            call_module,
            log,
            backpressure,
            running_call
        },
        LogRecord {
            size,
            level,
            module,
            method,
            message,
            fields,
            field_count,
            trace_id,
            span_id
        },
        LogField { key, value },
        NestedCall {
            size,
            flags,
            module,
            method,
            args,
            args_len,
            sink,
            sink_ctx,
            result_format
        },
        CallFrame {
            size,
            method_index,
            method_id,
            depth,
            args,
            args_len,
            arena,
            arena_len,
            trace_id,
            span_id,
            timeout_ns,
            backpressure,
            flags,
            host,
            host_call,
            persistent,
            persistent_len,
            out,
            out_len,
            arena_used,
            small_out
        },
        PersistentHeader { generation, used },
        MetricRecord {
            name,
            kind,
            reserved,
            count,
            value,
            bounds,
            buckets,
            bucket_count
        },
    );
    let dir = std::env::temp_dir().join(format!("memlink-abi-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("layout.c");
    std::fs::write(
        &source,
        format!(
            "#include <stddef.h>\n#include <stdio.h>\n#include \"memlink.h\"\nint main(void) {{\n{body}    return 0;\n}}\n"
        ),
    )
    .unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../include");
    let program = dir.join("layout");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let built = std::process::Command::new(&compiler)
        .args(["-std=c11", "-Wall", "-Werror", "-I"])
        .arg(&include)
        .arg("-o")
        .arg(&program)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("run the C compiler `{compiler}`: {e}"));
    assert!(
        built.status.success(),
        "memlink.h does not compile:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let ran = std::process::Command::new(&program).output().unwrap();
    assert!(ran.status.success());
    let got = String::from_utf8(ran.stdout).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    for (c_line, rust_line) in got.lines().zip(expected.lines()) {
        assert_eq!(c_line, rust_line, "C (left) and Rust (right) disagree");
    }
    assert_eq!(got.lines().count(), expected.lines().count());
}

/// The histogram bounds docs/abi.md lists for a C module to copy (the header has no
/// copy of them) are `BUCKETS`, in order.
#[test]
fn the_bucket_bounds_docs_abi_md_lists_for_c_are_the_crates() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/abi.md"))
        .expect("read docs/abi.md");
    let start = doc
        .find("static const double MEMLINK_BUCKETS[30] = {")
        .expect("docs/abi.md lists the bounds for C");
    let list = &doc[start..];
    let list = &list[list.find('{').unwrap() + 1..list.find('}').unwrap()];
    let listed: Vec<f64> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("a number"))
        .collect();
    assert_eq!(listed, memlink_abi::BUCKETS);
}
