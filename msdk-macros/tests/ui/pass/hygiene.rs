//! Parameter and function names that the generated wrapper also uses cannot clash with
//! it, and exports work from inside a `macro_rules!` and a nested module.
#![deny(warnings)]

use memlink_msdk::prelude::*;

#[memlink_export]
pub fn clash(__inv: &CallContext, __value: u32, __memlink_arg0: u32, arg0: u32) -> Result<u32> {
    let _ = __inv;
    Ok(__value + __memlink_arg0 + arg0)
}

// The names of the generated types are no function's: a function may take them.
#[memlink_export]
#[allow(non_snake_case)]
pub fn __MemlinkOwnEntry(_ctx: &CallContext, a: u32) -> Result<u32> {
    Ok(a + 1)
}

#[memlink_export]
#[allow(non_snake_case)]
pub fn __MemlinkArgs(_ctx: &CallContext, a: u32, b: u32) -> Result<u32> {
    Ok(a + b)
}

macro_rules! export_const {
    ($name:ident, $ty:ty, $value:expr) => {
        #[memlink_export]
        pub fn $name(_ctx: &CallContext, _unused: $ty) -> Result<$ty> {
            Ok($value)
        }
    };
}

export_const!(seven, u32, 7);
export_const!(text, String, String::from("t"));

mod nested {
    use memlink_msdk::prelude::*;

    #[memlink_export(name = "nested_add")]
    pub fn add(_ctx: &CallContext, a: u8, b: u8) -> Result<u8> {
        Ok(a + b)
    }
}

// A module with a type of its own named like a primitive: the generated items name the
// primitives they use by their paths, and do not pick it up. (A `u8` so named would
// break serde's own derive, which the arguments' struct uses.)
mod shadowed {
    use memlink_msdk::prelude::*;

    #[allow(non_camel_case_types)] // named like the primitive on purpose
    type u32 = String;

    #[memlink_export]
    pub fn shadowed(_ctx: &CallContext, s: String, t: String) -> Result<String> {
        let joined: u32 = s + &t;
        Ok(joined)
    }

    #[memlink_export]
    pub fn shadowed_bytes(_ctx: &CallContext, b: Vec<u8>) -> Result<Vec<u8>> {
        Ok(b)
    }
}

fn main() {
    let arena = Arena::empty();
    let ctx = CallContext::new(&arena, 0.0, 0, 0, None, None);
    assert_eq!(clash(&ctx, 1, 2, 3), Ok(6));
    assert_eq!(__MemlinkOwnEntry(&ctx, 1), Ok(2));
    assert_eq!(__MemlinkArgs(&ctx, 1, 2), Ok(3));
    assert_eq!(seven(&ctx, 0), Ok(7));
    assert_eq!(text(&ctx, String::new()), Ok("t".to_string()));
    assert_eq!(nested::add(&ctx, 1, 2), Ok(3));
    assert_eq!(shadowed::shadowed(&ctx, "a".into(), "b".into()), Ok("ab".to_string()));
    assert_eq!(shadowed::shadowed_bytes(&ctx, vec![1]), Ok(vec![1]));
}
