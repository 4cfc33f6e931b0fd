//! HTTP access log records, string-heavy: rust_serialization_benchmark's `log` set.

use rkyv::{Archive, Serialize};

use super::{checksum, Num, Rng};

/// Records in the benchmark's set, as in rust_serialization_benchmark.
pub const LOG_RECORDS: usize = 10_000;

/// An IPv4 address.
#[derive(Archive, Serialize, serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Address {
    /// First octet.
    pub x0: u8,
    /// Second octet.
    pub x1: u8,
    /// Third octet.
    pub x2: u8,
    /// Fourth octet.
    pub x3: u8,
}

/// One line of a common log format access log.
#[derive(Archive, Serialize, serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Log {
    /// The client.
    pub address: Address,
    /// RFC 1413 identity, nearly always "-".
    pub identity: String,
    /// The authenticated user.
    pub userid: String,
    /// When, as the log writes it.
    pub date: String,
    /// The request line.
    pub request: String,
    /// The status code.
    pub code: u16,
    /// Bytes sent.
    pub size: u64,
}

checksum!(Address, ArchivedAddress, |a| a.x0.u()
    + a.x1.u()
    + a.x2.u()
    + a.x3.u());

checksum!(Log, ArchivedLog, |l| l
    .address
    .checksum()
    .wrapping_add(l.identity.len() as u64)
    .wrapping_add(l.userid.len() as u64)
    .wrapping_add(l.date.len() as u64)
    .wrapping_add(l.request.len() as u64)
    .wrapping_add(l.code.u())
    .wrapping_add(l.size.u()));

const USERS: &[&str] = &[
    "-", "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan",
];
const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD"];
const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/api/v1/users",
    "/static/app.js",
    "/static/style.css",
    "/images/logo.png",
    "/search",
    "/login",
    "/api/v1/orders",
    "/favicon.ico",
];
const MONTHS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const CODES: &[u16] = &[200, 200, 200, 200, 204, 301, 304, 400, 403, 404, 500];

/// `n` log records, the same for the same seed.
pub fn generate_logs(seed: u64, n: usize) -> Vec<Log> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| log(&mut rng)).collect()
}

fn log(rng: &mut Rng) -> Log {
    let mut octet = || rng.below(256) as u8;
    let address = Address {
        x0: octet(),
        x1: octet(),
        x2: octet(),
        x3: octet(),
    };
    let date = format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        1 + rng.below(28),
        rng.pick(MONTHS),
        1995 + rng.below(30),
        rng.below(24),
        rng.below(60),
        rng.below(60)
    );
    let request = format!(
        "{} {}?id={} HTTP/1.{}",
        rng.pick(METHODS),
        rng.pick(PATHS),
        rng.below(100_000),
        rng.below(2)
    );
    Log {
        address,
        identity: if rng.below(10) == 0 { "ident" } else { "-" }.to_owned(),
        userid: rng.pick(USERS).to_owned(),
        date,
        request,
        code: CODES[rng.below(CODES.len() as u64) as usize],
        size: rng.below(100_000),
    }
}
