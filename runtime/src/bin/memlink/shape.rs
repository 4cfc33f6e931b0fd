//! What encoding a call's arguments and rendering its result need to know of a method
//! (its `Shape`, from the runtime's description or the daemon's), and both done: the
//! arguments encoded as the method takes them, the result printed as text or, raw, as
//! its bytes.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;

use memlink_runtime::{Format, Method};

use crate::args::Args;
use crate::json;

/// What encoding arguments and rendering a result need to know of a method, from the
/// runtime's description or the daemon's.
pub(crate) struct Shape {
    pub(crate) name: String,
    pub(crate) args_format: Format,
    pub(crate) result_format: Format,
    pub(crate) arg_count: u16,
    pub(crate) args_type: Option<String>,
    pub(crate) result_type: Option<String>,
}

impl From<&Method> for Shape {
    fn from(m: &Method) -> Shape {
        Shape {
            name: m.name.clone(),
            args_format: m.args_format,
            result_format: m.result_format,
            arg_count: m.arg_count,
            args_type: m.args_type.as_ref().map(|t| t.name.clone()),
            result_type: m.result_type.as_ref().map(|t| t.name.clone()),
        }
    }
}

pub(crate) fn encode_args<'a>(method: &Shape, args: &'a Args) -> Result<Cow<'a, [u8]>, String> {
    let args = match args {
        // Lent as they are: a copy of a large file's bytes doubled what a call held, and
        // each call of a --repeat run made one.
        Args::Encoded(bytes) => return Ok(Cow::Borrowed(bytes)),
        Args::Text(text) => text.as_deref(),
    };
    match method.args_format {
        Format::Raw => return Ok(Cow::Borrowed(args.map_or(&[][..], OsStr::as_bytes))),
        Format::Archived => {
            let wants = method
                .args_type
                .as_ref()
                .map_or("an archive".to_owned(), |t| {
                    format!("an rkyv archive of `{t}`")
                });
            return Err(format!(
                "`{}` takes {wants}, which cannot be made from JSON: pass the archive's bytes \
                 with --args-file PATH, or call it from a host with `Runtime::archived` (which \
                 writes the archive for you)",
                method.name
            ));
        }
        _ => {}
    }
    let Some(text) = args else {
        return Ok(Cow::Borrowed(&[]));
    };
    let text = text.to_str().ok_or_else(|| {
        format!(
            "the arguments are not UTF-8, so not JSON, which `{}` takes: `{}` (pass encoded \
             bytes with --args-file PATH)",
            method.name,
            text.to_string_lossy()
        )
    })?;
    // Empty text is no arguments, as it is for a raw method (a script's `"$ARGS"` with
    // nothing in it): not JSON that ends before its value.
    if text.trim().is_empty() {
        return Ok(Cow::Borrowed(&[]));
    }
    let value = json::arguments(text).map_err(|e| match e {
        json::ArgumentsError::Json(e) => format!("arguments are not valid JSON: {e}"),
        json::ArgumentsError::KeyTwice(e) => format!("the arguments give a key twice: {e}"),
    })?;
    if let Some(number) = json::too_wide_integer(text) {
        return Err(format!(
            "the integer {number} in the arguments fits in no 64-bit integer, which is as wide \
             as MessagePack carries (-9223372036854775808 to 18446744073709551615): write it as \
             a float (`1e20`) if a float is meant"
        ));
    }
    let value = match value {
        v @ (serde_json::Value::Array(_) | serde_json::Value::Object(_)) => v,
        // `null` for a method of no arguments is none, as nil is on the wire (docs/abi.md).
        serde_json::Value::Null if method.arg_count == 0 => serde_json::Value::Array(vec![]),
        single if method.arg_count == 1 => serde_json::Value::Array(vec![single]),
        _ => {
            return Err(format!(
                "`{}` takes {} arguments: pass a JSON array or an object keyed by parameter name",
                method.name, method.arg_count
            ))
        }
    };
    rmp_serde::to_vec(&value)
        .map(Cow::Owned)
        .map_err(|e| format!("cannot encode the arguments: {e}"))
}

/// The result as it is printed: a raw one's bytes as they are (they need not be UTF-8,
/// and nothing is added to them, so that they can be written to a file or piped whole;
/// on a terminal a newline follows a result that does not end in one, where the prompt
/// would take the rest of its line), else a line of text.
pub(crate) fn render(method: &Shape, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = render_text(method, bytes)?;
    let raw = method.result_format == Format::Raw;
    if !raw || (std::io::stdout().is_terminal() && !out.ends_with(b"\n")) {
        out.push(b'\n');
    }
    Ok(out)
}

/// [`render`] without its newline.
fn render_text(method: &Shape, bytes: &[u8]) -> Result<Vec<u8>, String> {
    match method.result_format {
        Format::Raw => return Ok(bytes.to_vec()),
        Format::Archived => {
            let holds = method
                .result_type
                .as_ref()
                .map_or("a value".to_owned(), |t| format!("`{t}`"));
            // The handle that reads it is the one for the method's arguments.
            let (host, client) = match method.args_format {
                Format::Archived => ("`Runtime::archived`", "`Client::archived`"),
                _ => (
                    "`Runtime::typed` with an `Rkyv<T>` result",
                    "`Client::typed_archived`",
                ),
            };
            return Ok(format!(
                "<an rkyv archive of {holds}, {} bytes: read it from a host with {host} (a \
                 daemon's client: {client})>",
                bytes.len()
            )
            .into_bytes());
        }
        _ => {}
    }
    let json::Json(value) = memlink_abi::msgpack::from_msgpack(bytes)
        .map_err(|e| format!("the result cannot be read as MessagePack: {e}"))?;
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}
