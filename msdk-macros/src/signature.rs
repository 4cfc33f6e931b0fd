//! The export's signature as text, for the method table: `memlink inspect` shows it, so
//! a user learns how to call a method without reading its source.

use quote::ToTokens;
use syn::{FnArg, GenericArgument, PathArguments, ReturnType, Signature, Type};

/// `name(a: u32, b: u32) -> u32`: the parameters after the context, and the `T` of the
/// `Result<T>` the export returns; `async` first for an `async fn`.
pub(crate) fn text(name: &str, sig: &Signature) -> String {
    let params: Vec<String> = sig
        .inputs
        .iter()
        .skip(1)
        .filter_map(|input| match input {
            FnArg::Typed(p) => Some(format!("{}: {}", tidy(&p.pat), tidy(&p.ty))),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let result = match &sig.output {
        ReturnType::Default => "()".to_owned(),
        ReturnType::Type(_, ty) => tidy(ok_type(ty).unwrap_or(ty)),
    };
    let prefix = if sig.asyncness.is_some() {
        "async "
    } else {
        ""
    };
    format!("{prefix}{name}({}) -> {result}", params.join(", "))
}

/// The `T` of `Result<T>` or `Result<T, E>`, whatever path names `Result`.
fn ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

/// The tokens as a person writes them: `proc_macro2` puts a space between every two
/// tokens (`& Archived < Vec < u8 > >`), which is dropped next to punctuation that
/// does not take one.
pub(crate) fn tidy(tokens: &impl ToTokens) -> String {
    tidy_text(&tokens.to_token_stream().to_string())
}

/// [`tidy`] of the tokens' text. Inside a compiler, a long token stream's text is broken
/// into lines (rustc's printer wraps it), which a signature must not hold (the runtime
/// refuses a control character in one): every run of white space is one space first,
/// and a control character left (in a literal, `[u8; "\u{7}".len()]`) is written as its
/// escape (a module whose signature held one was built, then refused at every load).
fn tidy_text(printed: &str) -> String {
    let spaced: String = printed
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .flat_map(|c| {
            let escaped = c.is_control().then(|| c.escape_unicode());
            escaped
                .into_iter()
                .flatten()
                .chain((!c.is_control()).then_some(c))
        })
        .collect();
    let chars: Vec<char> = spaced.chars().collect();
    let tight = |c: char| matches!(c, '<' | '>' | ':' | '&' | '(' | ')' | '[' | ']' | ';' | ',');
    let mut out = String::with_capacity(spaced.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let before = i.checked_sub(1).map(|j| chars[j]);
            let after = chars.get(i + 1).copied();
            // A space stays after `,` and `;`, between two words (`dyn Trait`,
            // `&'a str`, `mut x`), and between a word and a slice (`&'a [u8]`,
            // `&mut [u8]`).
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            let keep = matches!(before, Some(',' | ';'))
                || (!before.is_some_and(tight) && !after.is_some_and(tight))
                || (word(before) && after == Some('['));
            if !keep {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(source: &str) -> String {
        let item: syn::ItemFn = syn::parse_str(source).unwrap();
        text(&item.sig.ident.to_string(), &item.sig)
    }

    #[test]
    fn a_signature_the_compiler_broke_into_lines_is_one_line() {
        // As rustc prints a long type inside a proc macro.
        let printed = "Vec < \n(String, HashMap < String, Vec < u32 > >, Option < (u64, u64) >, \
                       HashMap <\n char, Vec < String > >) >";
        assert_eq!(
            tidy_text(printed),
            "Vec<(String, HashMap<String, Vec<u32>>, Option<(u64, u64)>, HashMap<char, Vec<String>>)>"
        );
    }

    #[test]
    fn a_control_character_in_a_literal_is_escaped() {
        assert_eq!(
            tidy_text("[u8 ; \"\u{7}\" . len ()]"),
            "[u8; \"\\u{7}\" . len()]"
        );
    }

    #[test]
    fn signatures_read_as_written() {
        assert_eq!(
            sig("pub fn add(_ctx: &CallContext, a: u32, b: u32) -> Result<u32> {}"),
            "add(a: u32, b: u32) -> u32"
        );
        assert_eq!(
            sig("fn c(ctx: &CallContext, p: &Archived<Vec<Point>>, t: &[u8]) -> Result<(f32, f32)> {}"),
            "c(p: &Archived<Vec<Point>>, t: &[u8]) -> (f32, f32)"
        );
        assert_eq!(
            sig("async fn s<'a>(ctx: &CallContext<'a>, x: &'a str) -> memlink_msdk::Result<Rkyv<Vec<[u8; 4]>>, E> {}"),
            "async s(x: &'a str) -> Rkyv<Vec<[u8; 4]>>"
        );
        assert_eq!(
            sig(
                "fn n(_ctx: CallContext, mut r#type: Option<std::string::String>) -> Result<()> {}"
            ),
            "n(mut r#type: Option<std::string::String>) -> ()"
        );
        assert_eq!(
            sig("fn m<'a>(ctx: &CallContext<'a>, b: &mut [u8]) -> Result<&'a [u8]> {}"),
            "m(b: &mut [u8]) -> &'a [u8]"
        );
    }
}
