//! Type classification on `parse_quote!` inputs.

use super::*;
use syn::parse_quote;

#[test]
fn raw_arguments_are_the_four_bytes_like_types() {
    let cases: Vec<(Type, Option<RawArg>)> = vec![
        (parse_quote!(String), Some(RawArg::String)),
        (parse_quote!(std::string::String), Some(RawArg::String)),
        (parse_quote!(::alloc::string::String), Some(RawArg::String)),
        (parse_quote!(&str), Some(RawArg::Str)),
        (parse_quote!(&'a str), Some(RawArg::Str)),
        (
            parse_quote!(&'static core::primitive::str),
            Some(RawArg::Str),
        ),
        (parse_quote!(Vec<u8>), Some(RawArg::Bytes)),
        (parse_quote!(alloc::vec::Vec<u8>), Some(RawArg::Bytes)),
        (
            parse_quote!(std::vec::Vec<std::primitive::u8>),
            Some(RawArg::Bytes),
        ),
        (parse_quote!(&[u8]), Some(RawArg::ByteSlice)),
        (parse_quote!(&'a [u8]), Some(RawArg::ByteSlice)),
        (parse_quote!((String)), Some(RawArg::String)),
    ];
    for (ty, want) in cases {
        assert_eq!(raw_arg(&ty), want, "{}", quote::quote!(#ty));
    }
}

#[test]
fn other_types_are_not_raw() {
    let cases: Vec<Type> = vec![
        parse_quote!(u32),
        parse_quote!(Vec<u16>),
        parse_quote!(Vec<String>),
        parse_quote!(&mut [u8]),
        parse_quote!(&mut str),
        parse_quote!(&String),
        parse_quote!(&[u16]),
        parse_quote!([u8; 4]),
        parse_quote!(Box<str>),
        parse_quote!(mine::String),
        parse_quote!(std::other::String),
        parse_quote!(::String),
        parse_quote!(String<u8>),
        parse_quote!(Vec),
        parse_quote!(<T as X>::String),
    ];
    for ty in cases {
        assert_eq!(raw_arg(&ty), None, "{}", quote::quote!(#ty));
    }
}

#[test]
fn raw_results_are_bytes_owned_or_borrowed() {
    assert!(is_raw_result(&parse_quote!(String)));
    assert!(is_raw_result(&parse_quote!(std::string::String)));
    assert!(is_raw_result(&parse_quote!(Vec<u8>)));
    assert!(is_raw_result(&parse_quote!(alloc::vec::Vec<u8>)));
    assert!(
        is_raw_result(&parse_quote!(&str)),
        "a borrowed result leaves without a copy"
    );
    assert!(is_raw_result(&parse_quote!(&'a [u8])));
    assert!(
        is_raw_result(&parse_quote!(&'a mut [u8])) && is_raw_result(&parse_quote!(&mut str)),
        "bytes the arena lent as `&mut` leave as they are too"
    );
    assert!(!is_raw_result(&parse_quote!(&u32)));
    assert!(!is_raw_result(&parse_quote!(Vec<u32>)));
    assert!(!is_raw_result(&parse_quote!(())));
    assert!(!is_raw_result(&parse_quote!(Option<String>)));
}

#[test]
fn result_ok_type_takes_the_first_argument_of_any_result() {
    let cases: Vec<(Type, Option<Type>)> = vec![
        (parse_quote!(Result<u32>), Some(parse_quote!(u32))),
        (
            parse_quote!(Result<String, MyError>),
            Some(parse_quote!(String)),
        ),
        (
            parse_quote!(std::result::Result<(), E>),
            Some(parse_quote!(())),
        ),
        (
            parse_quote!(memlink_msdk::Result<Option<u64>>),
            Some(parse_quote!(Option<u64>)),
        ),
        (parse_quote!(Result), None),
        (parse_quote!(Result<'a>), None),
        (parse_quote!(Option<u32>), None),
        (parse_quote!(u32), None),
        (parse_quote!(()), None),
        (parse_quote!(impl Future<Output = Result<u32>>), None),
    ];
    for (ty, want) in cases {
        let got = result_ok_type(&ty).map(|t| quote::quote!(#t).to_string());
        let want = want.map(|t| quote::quote!(#t).to_string());
        assert_eq!(got, want, "{}", quote::quote!(#ty));
    }
}

#[test]
fn context_is_recognised_by_reference_or_by_value() {
    let cases: Vec<(Type, Option<ContextKind>)> = vec![
        (parse_quote!(&CallContext), Some(ContextKind::Ref)),
        (parse_quote!(&CallContext<'_>), Some(ContextKind::Ref)),
        (parse_quote!(&'a CallContext<'a>), Some(ContextKind::Ref)),
        (
            parse_quote!(&memlink_msdk::CallContext),
            Some(ContextKind::Ref),
        ),
        (parse_quote!(CallContext), Some(ContextKind::Value)),
        (parse_quote!(CallContext<'_>), Some(ContextKind::Value)),
        (
            parse_quote!(::memlink_msdk::context::CallContext<'a>),
            Some(ContextKind::Value),
        ),
        (parse_quote!(&mut CallContext), None),
        (parse_quote!(&&CallContext), None),
        (parse_quote!(Context), None),
        (parse_quote!(u32), None),
        (parse_quote!(&str), None),
    ];
    for (ty, want) in cases {
        assert_eq!(context_kind(&ty), want, "{}", quote::quote!(#ty));
    }
}

#[test]
fn hidden_context_lifetimes_are_written_out() {
    let cases: Vec<(Type, Option<&str>)> = vec![
        (parse_quote!(&CallContext), Some("& CallContext < '_ >")),
        (parse_quote!(CallContext), Some("CallContext < '_ >")),
        (
            parse_quote!(&m::CallContext),
            Some("& m :: CallContext < '_ >"),
        ),
        (parse_quote!(&CallContext<'_>), None),
        (parse_quote!(&'a CallContext<'a>), None),
        (parse_quote!(u32), None),
    ];
    for (mut ty, want) in cases {
        let changed = show_context_lifetime(&mut ty);
        assert_eq!(changed, want.is_some(), "{}", quote::quote!(#ty));
        if let Some(want) = want {
            assert_eq!(quote::quote!(#ty).to_string(), want);
        }
    }
}

#[test]
fn borrowed_parts_are_found_anywhere_in_a_type() {
    let owned: Vec<Type> = vec![
        parse_quote!(u32),
        parse_quote!(Vec<String>),
        parse_quote!((u8, [u16; 3], Option<Box<str>>)),
        parse_quote!(Cow<'static, str>),
    ];
    for ty in owned {
        assert!(find_borrowed(&ty).is_none(), "{}", quote::quote!(#ty));
    }
    let reference: Type = parse_quote!(&u32);
    assert!(matches!(
        find_borrowed(&reference),
        Some(Borrowed::Reference(_))
    ));
    let nested: Type = parse_quote!(Vec<(u8, &'static str)>);
    assert!(matches!(
        find_borrowed(&nested),
        Some(Borrowed::Reference(_))
    ));
    let lifetime: Type = parse_quote!(Cow<'a, str>);
    assert!(matches!(find_borrowed(&lifetime), Some(Borrowed::Lifetime(l)) if l.ident == "a"));
    let elided: Type = parse_quote!(Option<Thing<'_>>);
    assert!(matches!(
        find_borrowed(&elided),
        Some(Borrowed::Lifetime(_))
    ));
    let generic: Type = parse_quote!(impl Into<u32>);
    assert!(matches!(
        find_borrowed(&generic),
        Some(Borrowed::ImplTrait(_))
    ));
    // A `Cow` borrows with its lifetime left out too, however it is named.
    for ty in [
        parse_quote!(Cow<str>),
        parse_quote!(std::borrow::Cow<[u8]>),
        parse_quote!(Vec<Cow<str>>),
    ] {
        let ty: Type = ty;
        assert!(
            matches!(find_borrowed(&ty), Some(Borrowed::Elided(_))),
            "{}",
            quote::quote!(#ty)
        );
    }
}

#[test]
fn archived_views_and_results_are_recognised() {
    assert!(matches!(
        archived_arg(&parse_quote!(&Archived<Point>)),
        Some(ArchivedArg::Archived(_))
    ));
    assert!(matches!(
        archived_arg(&parse_quote!(&rkyv::Archived<Vec<u8>>)),
        Some(ArchivedArg::Archived(_))
    ));
    assert!(matches!(
        archived_arg(&parse_quote!(&str)),
        Some(ArchivedArg::Str)
    ));
    assert!(matches!(
        archived_arg(&parse_quote!(&[u8])),
        Some(ArchivedArg::Bytes)
    ));
    assert!(
        archived_arg(&parse_quote!(Archived<Point>)).is_none(),
        "only borrowed"
    );
    assert!(archived_arg(&parse_quote!(&mut Archived<Point>)).is_none());
    assert!(archived_arg(&parse_quote!(u32)).is_none());
    assert!(rkyv_result(&parse_quote!(Rkyv<Vec<Point>>)).is_some());
    assert!(rkyv_result(&parse_quote!(Vec<Point>)).is_none());
}

#[test]
fn archives_spelled_as_rkyv_names_them_are_told_apart() {
    let spelled = |ty: Type| archive_spelling(&ty);
    let pair = |a: &str, t: &str| Some((a.to_owned(), t.to_owned()));
    assert_eq!(
        spelled(parse_quote!(&ArchivedPoint)),
        pair("ArchivedPoint", "Point")
    );
    assert_eq!(
        spelled(parse_quote!(&'a types::ArchivedPoint)),
        pair("types::ArchivedPoint", "types::Point")
    );
    assert_eq!(
        spelled(parse_quote!(&ArchivedVec<ArchivedPoint>)),
        pair("ArchivedVec<ArchivedPoint>", "Vec<Point>")
    );
    assert_eq!(
        spelled(parse_quote!(&<Point as rkyv::Archive>::Archived)),
        pair("<Point as rkyv::Archive>::Archived", "Point")
    );
    // The spelling the SDK takes, and names that are no archive's.
    for ty in [
        parse_quote!(&Archived<Point>),
        parse_quote!(&Archivedness),
        parse_quote!(&mut ArchivedPoint),
        parse_quote!(ArchivedPoint),
        parse_quote!(&<Point as Other>::Archived),
    ] {
        assert_eq!(spelled(ty), None);
    }
}
