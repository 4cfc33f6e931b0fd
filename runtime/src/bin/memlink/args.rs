//! A call's arguments as the command line gives them: `--timeout`'s value, and the bytes
//! of `--args-file`, read no further than a call can carry.

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// `--timeout`'s value: a number and its unit (`500ms`, `2s`, `1.5s`, `1m`). A unit is
/// required, since a bare `5` could be seconds or milliseconds; 0 is refused, since a
/// call given no time at all would fail before it starts.
pub(crate) fn parse_timeout(text: &str) -> Result<Duration, String> {
    if text.starts_with('-') {
        return Err(format!(
            "`{text}` is negative: a timeout is a time from now, as `500ms`, `1.5s` or `1m`"
        ));
    }
    let digits = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || number.ends_with('.') {
        return Err(format!(
            "`{text}` is not a duration: write a number and its unit, as `500ms`, `1.5s` or `1m`"
        ));
    }
    let unit_ns: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "" => {
            return Err(format!(
                "`{text}` has no unit: write `{text}s`, `{text}ms`, …"
            ))
        }
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit `{unit}`: use ns, us, ms, s, m or h"
            ))
        }
    };
    let too_long = || format!("`{text}` is longer than a duration can be");
    // Whole nanoseconds: the digits past what a nanosecond holds are dropped.
    let mut ns = whole
        .parse::<u128>()
        .ok()
        .and_then(|w| w.checked_mul(unit_ns))
        .ok_or_else(too_long)?;
    let mut scale = unit_ns;
    for digit in fraction.bytes().map(|b| u128::from(b - b'0')) {
        scale /= 10;
        ns = ns.checked_add(digit * scale).ok_or_else(too_long)?;
    }
    if ns == 0 {
        return Err(format!(
            "a timeout of `{text}` is no time at all: every call would fail before it starts"
        ));
    }
    let secs = u64::try_from(ns / 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(secs, (ns % 1_000_000_000) as u32))
}

/// A call's arguments as the command line gave them.
pub(crate) enum Args {
    /// Text: JSON for MessagePack methods, the bytes themselves for raw ones; `None`
    /// when omitted.
    Text(Option<OsString>),
    /// Encoded bytes read from a file, passed as they are.
    Encoded(Vec<u8>),
}

impl Args {
    /// The arguments: `text`, or the bytes of `file` (`-`: standard input), of at most
    /// `limit` bytes when one is given (more are refused in the words of its function),
    /// else of at most [`STREAM_MAX_ARGS`] from what is not a regular file. Only that
    /// much (and one byte more, to tell) is read: a stream
    /// or a device (`/dev/zero`) has no length to check first, and read to its end it
    /// would fill the memory before any check.
    pub(crate) fn read(
        text: Option<OsString>,
        file: Option<PathBuf>,
        limit: Option<(u64, TooLong)>,
    ) -> Result<Args, String> {
        let Some(path) = file else {
            return Ok(Args::Text(text));
        };
        let (reader, name): (Box<dyn std::io::Read>, String) = if path.as_os_str() == "-" {
            (
                Box::new(std::io::stdin().lock()),
                "standard input".to_owned(),
            )
        } else {
            let name = path.display().to_string();
            let file =
                std::fs::File::open(&path).map_err(|e| format!("cannot read {name}: {e}"))?;
            if file.metadata().is_ok_and(|m| m.is_file()) {
                let (limit, too_long) =
                    limit.map_or((None, stream_too_long as TooLong), |(l, t)| (Some(l), t));
                return read_at_most(file, limit, &name, too_long).map(Args::Encoded);
            }
            (Box::new(file), name)
        };
        match limit {
            Some((limit, too_long)) => read_at_most(reader, Some(limit), &name, too_long),
            None => read_at_most(reader, Some(STREAM_MAX_ARGS), &name, stream_too_long),
        }
        .map(Args::Encoded)
    }
}

/// Most bytes of arguments a local call reads from standard input, a pipe or a device:
/// as many as a call through a daemon carries.
const STREAM_MAX_ARGS: u64 = memlink_ipc::segment::MAX_SLOT_SIZE;

/// How arguments read from a file or stream (named by the first argument) more than a
/// limit (the second) are refused.
pub(crate) type TooLong = fn(&str, u64) -> String;

/// Why arguments read from `name`, a stream, more than `limit` bytes are refused.
fn stream_too_long(name: &str, limit: u64) -> String {
    format!(
        "the arguments in {name} (--args-file) are more than {limit} bytes: memlink call reads \
         at most that much from standard input, a pipe or a device (a regular file is read \
         whole)"
    )
}

/// All of `reader`, or the error `too_long` words once it gives more than `limit` bytes.
fn read_at_most(
    mut reader: impl Read,
    limit: Option<u64>,
    name: &str,
    too_long: TooLong,
) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let read = match limit {
        Some(limit) => reader
            .by_ref()
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes),
        None => reader.read_to_end(&mut bytes),
    };
    read.map_err(|e| format!("cannot read {name}: {e}"))?;
    match limit {
        Some(limit) if bytes.len() as u64 > limit => Err(too_long(name, limit)),
        _ => Ok(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::{read_at_most, stream_too_long};

    /// How a call through a daemon words it (`remote::too_long`'s form).
    fn daemon(name: &str, limit: u64) -> String {
        format!(
            "the arguments in {name} (--args-file) are more than {limit} bytes: a call \
             through a daemon (--daemon) carries no more"
        )
    }

    /// A stream is read to its limit and one byte past it, no further: here an endless
    /// one, which read whole would never end.
    #[test]
    fn a_stream_past_the_limit_is_refused_after_reading_one_byte_more() {
        let err = read_at_most(std::io::repeat(7), Some(16), "standard input", daemon).unwrap_err();
        assert!(
            err.contains("standard input") && err.contains("--args-file") && err.contains("16"),
            "{err}"
        );
        let err = read_at_most(&[1u8; 17][..], Some(16), "args.bin", daemon).unwrap_err();
        assert!(
            err.contains("args.bin") && err.contains("--daemon"),
            "{err}"
        );
        // A local call's stream says so, not that a daemon is involved.
        let err =
            read_at_most(std::io::repeat(7), Some(16), "/dev/zero", stream_too_long).unwrap_err();
        assert!(
            err.contains("/dev/zero") && err.contains("a regular file is read whole"),
            "{err}"
        );
        assert!(!err.contains("--daemon"), "{err}");
        assert_eq!(
            read_at_most(&[1u8; 16][..], Some(16), "args.bin", daemon).unwrap(),
            [1u8; 16]
        );
        assert_eq!(
            read_at_most(&[1u8; 17][..], None, "args.bin", daemon)
                .unwrap()
                .len(),
            17
        );
    }
}
