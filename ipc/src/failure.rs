//! Why a call through the daemon failed, as the daemon writes it into the slot.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A failed call, as it crosses from the daemon to the client (MessagePack in the slot's
/// data area). The client turns it into the runtime's own error values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Failure {
    /// The module ran and returned an error: its status code and payload, as the ABI's
    /// error wire codec has them.
    Module {
        /// The module.
        module: String,
        /// The method.
        method: String,
        /// The `Status` code.
        code: i32,
        /// The error's payload.
        payload: Vec<u8>,
    },
    /// The daemon serves no module of that name.
    UnknownModule(String),
    /// The module has no such method.
    UnknownMethod {
        /// The module.
        module: String,
        /// The method.
        method: String,
    },
    /// The module refused the call: it is saturated.
    Saturated {
        /// The module.
        module: String,
        /// The method.
        method: String,
        /// Its concurrency limit.
        limit: u64,
    },
    /// The call came through a typed handle made for the method as it was (the digest it
    /// checked, `SlotFields::checked`), and the method is no longer that: a reload, or a
    /// new module under the name, changed its arguments' or result's format or archive
    /// type. It did not run.
    MethodChanged {
        /// The module.
        module: String,
        /// The method.
        method: String,
        /// The module's version now.
        version: String,
        /// The method's signature now, when the module records it.
        signature: Option<String>,
    },
    /// The request in the slot was malformed (what was wrong).
    BadRequest(String),
    /// The reply in the slot was malformed (what was wrong); the client's own finding.
    BadReply(String),
    /// The result did not fit in the slot's data area.
    TooLarge {
        /// The result's length.
        len: u64,
        /// The data area's size.
        capacity: u64,
    },
    /// The worker running the call died (how: the signal, or the watchdog's timeout).
    WorkerDied(String),
    /// The daemon is shutting down and took no new calls.
    ShuttingDown,
    /// Any other error the daemon's runtime reported, as text.
    Other(String),
}

impl Failure {
    /// The MessagePack bytes of the failure.
    pub fn encode(&self) -> Vec<u8> {
        // Encoding a plain enum of strings and integers into a `Vec` cannot fail.
        rmp_serde::to_vec(self).unwrap_or_default()
    }

    /// The failure encoded in at most `cap` bytes: a module's failure keeps its module,
    /// method and status, its message cut to fit and saying how much was cut (a module
    /// may fail with a message of any length, a slot holds one of its size); anything
    /// else that does not fit says only that.
    pub fn encode_within(&self, cap: usize) -> Vec<u8> {
        let bytes = self.encode();
        if bytes.len() <= cap {
            return bytes;
        }
        if let Failure::Module {
            module,
            method,
            code,
            payload,
        } = self
        {
            let mut cut = Failure::Module {
                module: module.clone(),
                method: method.clone(),
                code: *code,
                payload: Vec::new(),
            };
            // A payload byte takes at most 2 bytes in MessagePack (an array of `u8`),
            // its array's header at most 5: what is left over holds this many bytes.
            const NOTE: usize = 96;
            let room = cap
                .saturating_sub(cut.encode().len() + 5)
                .saturating_sub(2 * NOTE)
                / 2;
            if room > 0 {
                let mut keep = room.min(payload.len());
                // Not halfway into a UTF-8 character, so that the message stays text.
                if let Err(e) = std::str::from_utf8(&payload[..keep]) {
                    if e.error_len().is_none() {
                        keep = e.valid_up_to();
                    }
                }
                let note = format!(
                    " ... ({} bytes of the message did not fit the call's slot)",
                    payload.len() - keep
                );
                if let Failure::Module { payload: p, .. } = &mut cut {
                    p.extend_from_slice(&payload[..keep]);
                    p.extend_from_slice(&note.as_bytes()[..note.len().min(NOTE)]);
                }
                let bytes = cut.encode();
                if bytes.len() <= cap {
                    return bytes;
                }
            }
        }
        let mut bytes =
            Failure::Other("the failure's text does not fit in the slot".into()).encode();
        bytes.truncate(cap);
        bytes
    }

    /// Reads a failure; bytes that are not one become [`Failure::BadReply`].
    pub fn decode(bytes: &[u8]) -> Failure {
        rmp_serde::from_slice(bytes)
            .unwrap_or_else(|e| Failure::BadReply(format!("undecodable failure: {e}")))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Module {
                module,
                method,
                code,
                ..
            } => {
                write!(f, "{module}::{method} failed with status {code}")
            }
            Failure::UnknownModule(name) => write!(f, "the daemon serves no module `{name}`"),
            Failure::UnknownMethod { module, method } => {
                write!(f, "module `{module}` has no method `{method}`")
            }
            Failure::Saturated {
                module,
                method,
                limit,
            } => write!(
                f,
                "{module}::{method} refused: the module is saturated ({limit} calls in flight)"
            ),
            Failure::MethodChanged {
                module,
                method,
                version,
                ..
            } => write!(
                f,
                "{module}::{method} changed in version {version}: the handle was made for what it was"
            ),
            Failure::BadRequest(why) => write!(f, "malformed request: {why}"),
            Failure::BadReply(why) => write!(f, "malformed reply: {why}"),
            Failure::TooLarge { len, capacity } => write!(
                f,
                "the result of {len} bytes does not fit the connection's slots of {capacity} bytes"
            ),
            Failure::WorkerDied(how) => write!(f, "the worker running the call died: {how}"),
            Failure::ShuttingDown => write!(f, "the daemon is shutting down"),
            Failure::Other(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for Failure {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_round_trip_and_garbage_is_named() {
        let f = Failure::Module {
            module: "m".into(),
            method: "f".into(),
            code: 3,
            payload: b"why".to_vec(),
        };
        assert_eq!(Failure::decode(&f.encode()), f);
        assert!(matches!(
            Failure::decode(b"\xc1garbage"),
            Failure::BadReply(_)
        ));
    }

    #[test]
    fn a_module_failure_too_long_for_its_room_is_cut_and_says_so() {
        let f = Failure::Module {
            module: "m".into(),
            method: "f".into(),
            code: 10,
            payload: "é".repeat(1000).into_bytes(),
        };
        let bytes = f.encode_within(1000);
        assert!(bytes.len() <= 1000);
        let Failure::Module { code, payload, .. } = Failure::decode(&bytes) else {
            panic!("not a module's failure");
        };
        let text = String::from_utf8(payload).unwrap();
        assert_eq!(code, 10);
        assert!(
            text.starts_with("éé") && text.ends_with("did not fit the call's slot)"),
            "{text}"
        );
    }
}
