//! `memlink call --daemon` and `memlink inspect --daemon`: a call through a running
//! daemon, and what it serves.

use std::path::Path;
use std::time::{Duration, Instant};

use memlink_ipc::client::{CallError, Connection, Waiting};
use memlink_ipc::control::MethodInfo;
use memlink_ipc::slot::Op;
use memlink_ipc::{Failure, Geometry};
use memlink_runtime::{Format, ModuleError};

use crate::args::Args;
use crate::shape::{encode_args, render, Shape};

/// Most bytes of arguments a call through a daemon carries: what one slot holds.
pub const MAX_ARGS: u64 = memlink_ipc::segment::MAX_SLOT_SIZE;

/// Why arguments of `len` bytes cannot be sent.
pub fn too_large(len: u64) -> String {
    format!("the arguments are {len} bytes: a call through a daemon (--daemon) carries at most {MAX_ARGS}")
}

/// Why arguments read from `name` (`--args-file`), more than `limit` bytes, cannot be
/// sent: a stream's whole length is not known, only that it goes past the limit.
pub fn too_long(name: &str, limit: u64) -> String {
    format!("the arguments in {name} (--args-file) are more than {limit} bytes: a call through a daemon (--daemon) carries at most {limit}")
}

/// A connection to a daemon, ready to call one method of one of its modules with
/// arguments encoded once.
pub struct Remote {
    /// The slot size the connection asked for (the daemon may cut it).
    asked: u64,
    conn: std::sync::Arc<Connection>,
    module: String,
    method: String,
    shape: Shape,
    encoded: Vec<u8>,
}

/// How long `call --daemon` without `--timeout` waits for the daemon's welcome and its
/// description of the module, and `inspect --daemon` for the daemon's answers.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

impl Remote {
    /// Connects to the daemon serving on `socket` with one slot, large enough for the
    /// arguments and for a result of `result_bytes` (at least 1 MiB), and finds `method`
    /// of its module `module`, waiting for the daemon's description at most `timeout`
    /// (`--timeout`, which each call has too).
    pub fn connect(
        socket: &Path,
        (module, method): (&str, &str),
        args: &Args,
        result_bytes: Option<u64>,
        timeout: Option<Duration>,
    ) -> Result<Remote, String> {
        // JSON made MessagePack grows at most threefold (a 3-character float becomes 9
        // bytes).
        let args_len = match args {
            Args::Encoded(bytes) if bytes.len() as u64 > MAX_ARGS => {
                return Err(too_large(bytes.len() as u64))
            }
            Args::Encoded(bytes) => bytes.len() as u64,
            Args::Text(text) => text.as_ref().map_or(0, |t| t.len() as u64 * 3),
        };
        if let Some(len) = result_bytes.filter(|&len| len > MAX_ARGS) {
            return Err(format!(
                "--result-bytes {len}: a call through a daemon has a slot of at most {MAX_ARGS} bytes"
            ));
        }
        let len = args_len.max(result_bytes.unwrap_or(0));
        let geometry = Geometry::new(1, len.clamp(1 << 20, MAX_ARGS)).map_err(|e| e.to_string())?;
        // A daemon that does not welcome the connection, or a worker that does not answer
        // (stopped, or gone with no replacement yet), would keep the command waiting: the
        // welcome and the listing end at the timeout the call has, and without one at
        // `inspect`'s (a call may run as long as it runs; its set-up answers at once).
        let setup = timeout.unwrap_or(SETUP_TIMEOUT);
        let deadline = Instant::now().checked_add(setup);
        let conn = connect(socket, geometry, deadline, Some(setup))?;
        let methods = methods_of(&conn, module, deadline, Some(setup))?;
        let Some(info) = methods.iter().find(|m| m.name == method) else {
            return Err(format!("module `{module}` has no method `{method}`"));
        };
        let shape = Shape {
            name: info.name.clone(),
            args_format: Format::from_u8(info.args).ok_or("the daemon named an unknown format")?,
            result_format: Format::from_u8(info.result)
                .ok_or("the daemon named an unknown format")?,
            arg_count: info.arg_count,
            args_type: info.args_type.clone(),
            result_type: info.result_type.clone(),
        };
        let encoded = encode_args(&shape, args)?.into_owned();
        Ok(Remote {
            asked: geometry.slot_size,
            conn,
            module: module.to_owned(),
            method: method.to_owned(),
            shape,
            encoded,
        })
    }

    /// Calls the method, given `timeout` if any, and renders its result.
    pub fn call(&self, timeout: Option<Duration>) -> Result<Vec<u8>, String> {
        let (module, method) = (&self.module, &self.method);
        // The deadline goes with the call: the daemon runs it under it, and the wait here
        // ends there too, should the daemon not answer in time.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let capacity = self.conn.slot_capacity();
        if self.encoded.len() > capacity {
            // The slot asked for held them: the daemon gave less.
            return Err(format!(
                "{module}::{method}: arguments of {} bytes do not fit the connection's slot, \
                 which the daemon cut from the {} bytes asked for to {capacity}: its \
                 `max_shm_per_client` setting bounds a connection's memory, and must be \
                 raised for these arguments",
                self.encoded.len(),
                self.asked
            ));
        }
        let reply = self
            .conn
            .call(Op::Call, module, method, &self.encoded, deadline, (0, 0))
            .map_err(|e| match (e, timeout) {
                // The wait here ended first (a method that runs on past its deadline):
                // said as the runtime says a call past its deadline, as the daemon's own
                // answer is.
                (CallError::TimedOut, Some(t)) => {
                    format!("{module}::{method} failed: {}", ModuleError::Timeout(t))
                }
                // The method ran, and its result did not fit: calling again runs it
                // again, so the remedy is the caller's to take, when there is one.
                (e @ CallError::Failed(Failure::TooLarge { len, capacity }), _) => {
                    let remedy = if len > MAX_ARGS {
                        format!(
                            "a call through a daemon returns at most {MAX_ARGS} bytes: call \
                             the module in-process (without --daemon) for this result"
                        )
                    } else if self.asked > capacity {
                        // The slot asked for would have held it: the daemon cut it.
                        format!(
                            "the daemon cut the slot asked for ({} bytes) to {capacity}: \
                             its `max_shm_per_client` setting bounds a connection's \
                             memory, and must be raised for this result",
                            self.asked
                        )
                    } else {
                        format!("--result-bytes {len} gives the call a slot that holds it")
                    };
                    format!("{e}: {module}::{method} ran and its result was dropped; {remedy}")
                }
                (e, _) => text(&e),
            })?;
        render(&self.shape, &reply)
    }
}

/// A connection to the daemon serving on `socket`, whose welcome is waited for until
/// `deadline` (`timeout` from now, which the error names).
fn connect(
    socket: &Path,
    geometry: Geometry,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
) -> Result<std::sync::Arc<Connection>, String> {
    Connection::connect_by(socket, geometry, Waiting::default(), deadline).map_err(|e| {
        match (e, timeout) {
            (CallError::TimedOut, Some(t)) => format!(
                "the daemon at {} did not welcome the connection within {t:?}",
                socket.display()
            ),
            (e, _) => text(&e),
        }
    })
}

/// The methods of `module` as the daemon on `conn` describes them, waited for until
/// `deadline` (`timeout` from now, which the error names).
fn methods_of(
    conn: &std::sync::Arc<Connection>,
    module: &str,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
) -> Result<Vec<MethodInfo>, String> {
    listed(conn, module, deadline, timeout)?.ok_or_else(|| {
        text(&CallError::Failed(Failure::UnknownModule(
            module.to_owned(),
        )))
    })
}

/// [`methods_of`], with a module the daemon does not serve (any more) told apart:
/// `None`.
fn listed(
    conn: &std::sync::Arc<Connection>,
    module: &str,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
) -> Result<Option<Vec<MethodInfo>>, String> {
    let listing = match conn.call(Op::Methods, module, "", &[], deadline, (0, 0)) {
        Ok(listing) => listing,
        Err(CallError::Failed(Failure::UnknownModule(_))) => return Ok(None),
        Err(e) => {
            return Err(match (e, timeout) {
                (CallError::TimedOut, Some(t)) => {
                    format!("the daemon did not describe module `{module}` within {t:?}")
                }
                (e, _) => text(&e),
            })
        }
    };
    rmp_serde::from_slice(&listing)
        .map(Some)
        .map_err(|e| format!("the daemon's method list is unreadable: {e}"))
}

/// `memlink inspect --daemon SOCKET [MODULE]`: the modules the daemon serving on `socket`
/// serves now (`module` alone when given), each with its methods, as text or, with
/// `json`, as one JSON object. The welcome and each module's listing are waited for
/// until `timeout` has passed, so a daemon that does not answer ends the command with
/// an error that says so, never a hang.
pub fn inspect(
    socket: &Path,
    module: Option<&str>,
    json: bool,
    timeout: Duration,
) -> Result<String, String> {
    let deadline = Instant::now().checked_add(timeout);
    // A listing is a few hundred bytes a method: a slot of 1 MiB holds any module's.
    let geometry = Geometry::new(1, 1 << 20).map_err(|e| e.to_string())?;
    let conn = connect(socket, geometry, deadline, Some(timeout))?;
    let names = match module {
        Some(name) => vec![name.to_owned()],
        None => conn.welcome().modules.clone(),
    };
    let mut served = Vec::with_capacity(names.len());
    for name in names {
        if module.is_some() {
            let methods = methods_of(&conn, &name, deadline, Some(timeout))?;
            served.push((name, methods));
        // A module unloaded between the welcome and its listing (a file removed from a
        // watched directory) is no longer served: left out, as it would be a moment later.
        } else if let Some(methods) = listed(&conn, &name, deadline, Some(timeout))? {
            served.push((name, methods));
        }
    }
    Ok(if json {
        listing_json(socket, &served)
    } else {
        listing_text(socket, module.is_none(), &served)
    })
}

/// A format tag's name, or the tag itself for one this command does not know (a newer
/// daemon's).
fn format_name(tag: u8) -> String {
    Format::from_u8(tag).map_or_else(|| format!("format {tag}"), |f| f.name().to_owned())
}

/// What `inspect` prints of a daemon's modules: a header naming the daemon when it lists
/// them all, then each module as the in-process `memlink inspect` lists one (the daemon
/// does not tell a method's id, nor a module's version or file).
fn listing_text(socket: &Path, all: bool, served: &[(String, Vec<MethodInfo>)]) -> String {
    let mut out = String::new();
    if all {
        let count = served.len();
        let plural = if count == 1 { "" } else { "s" };
        // Escaped, as `inspect` writes a module's path.
        out += &format!(
            "daemon {} serves {count} module{plural}\n",
            memlink_runtime::log::OneLine(&socket.to_string_lossy())
        );
    }
    for (i, (name, methods)) in served.iter().enumerate() {
        if all || i > 0 {
            out.push('\n');
        }
        out += &format!("module {name}\n{} methods:\n", methods.len());
        out += &format!(
            "  {:<24} {:<8} {:<8} {:>4}  signature\n",
            "name", "args", "result", "argc"
        );
        for m in methods {
            out += &format!(
                "  {:<24} {:<8} {:<8} {:>4}  {}\n",
                m.name,
                format_name(m.args),
                format_name(m.result),
                m.arg_count,
                m.signature.as_deref().unwrap_or("(not recorded)")
            );
        }
    }
    out
}

/// What `inspect --json` prints of a daemon's modules: one JSON object (and a newline),
/// each module's methods described as the in-process `inspect --json` describes them,
/// less what the daemon does not tell (ids, async).
fn listing_json(socket: &Path, served: &[(String, Vec<MethodInfo>)]) -> String {
    // As the in-process listing: a type and its fingerprint, for an archive method (a
    // daemon that gave the type without its fingerprint gives the type alone).
    let archive = |name: &Option<String>, fingerprint: Option<u64>| {
        name.as_ref().map(|t| {
            let mut archive = serde_json::json!({ "type": t });
            if let Some(f) = fingerprint {
                archive["fingerprint"] = format!("{f:#018x}").into();
            }
            archive
        })
    };
    let modules: Vec<serde_json::Value> = served
        .iter()
        .map(|(name, methods)| {
            let methods: Vec<serde_json::Value> = methods
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "name": m.name,
                        "signature": m.signature,
                        "args": format_name(m.args),
                        "result": format_name(m.result),
                        "arg_count": m.arg_count,
                        "args_type": archive(&m.args_type, m.args_fingerprint),
                        "result_type": archive(&m.result_type, m.result_fingerprint),
                    })
                })
                .collect();
            serde_json::json!({ "module": name, "methods": methods })
        })
        .collect();
    let value = serde_json::json!({
        // As the in-process listing's path: a socket's path need not be UTF-8.
        "daemon": socket.to_string_lossy(),
        "modules": modules,
    });
    format!("{value:#}\n")
}

/// The error as the in-process `memlink call` words it.
fn text(e: &CallError) -> String {
    match e {
        CallError::Failed(Failure::Module {
            module,
            method,
            code,
            payload,
        }) => {
            format!(
                "{module}::{method} failed: {}",
                ModuleError::from_status(*code, payload)
            )
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    /// A daemon call's arguments past the limit are refused naming where they came from,
    /// the option, the limit and that a daemon is why.
    #[test]
    fn arguments_past_a_daemon_calls_limit_are_refused_saying_so() {
        let err = super::too_long("standard input", 16);
        for part in ["standard input", "--args-file", "16", "--daemon"] {
            assert!(err.contains(part), "{part}: {err}");
        }
    }
}
