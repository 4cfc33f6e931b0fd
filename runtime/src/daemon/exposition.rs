//! The daemon's Prometheus text: every worker runtime's figures, merged into one
//! exposition, then the daemon's own (connections, workers, per-client figures).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use memlink_ipc::control::ToWorker;

use super::state::{lock, Shared, Worker};
use crate::prometheus::family;

/// How long a worker has to answer for its metrics.
const METRICS_TIMEOUT: Duration = Duration::from_secs(2);

/// The whole exposition.
pub(super) fn render(shared: &Shared) -> String {
    let texts = workers_metrics(shared);
    let mut out = merge(&texts);
    family(
        &mut out,
        "memlink_daemon_connections",
        "gauge",
        "Client connections open.",
    );
    let conns = lock(&shared.conns);
    let _ = writeln!(out, "memlink_daemon_connections {}", conns.len());
    per_worker(
        &mut out,
        shared,
        ("memlink_daemon_worker_restarts_total", "counter"),
        "Times a worker was started again after it died.",
        |w| w.restarts.load(Ordering::Relaxed),
    );
    per_worker(
        &mut out,
        shared,
        ("memlink_daemon_worker_up", "gauge"),
        "Whether a worker is serving.",
        |w| u64::from(w.is_up()),
    );
    let families = [
        (
            "calls",
            "Requests a client made: its calls, and the method lists and backpressure reads its library asks for.",
        ),
        ("errors", "Requests of a client that ended in an error."),
        ("bytes_in", "Bytes of arguments a client sent."),
        ("bytes_out", "Bytes of results a client received."),
    ];
    let mut ids: Vec<_> = conns.keys().copied().collect();
    ids.sort_unstable();
    for (name, help) in families {
        family(
            &mut out,
            &format!("memlink_daemon_client_{name}_total"),
            "counter",
            help,
        );
        for &id in &ids {
            let conn = &conns[&id];
            // A connection's calls are counted by the worker that served each.
            let value: u64 = shared
                .workers
                .iter()
                .filter_map(|w| w.figures.row(conn.row))
                .map(|row| {
                    match name {
                        "calls" => &row.calls,
                        "errors" => &row.errors,
                        "bytes_in" => &row.bytes_in,
                        _ => &row.bytes_out,
                    }
                    .load(Ordering::Relaxed)
                })
                .sum();
            let _ = writeln!(
                out,
                "memlink_daemon_client_{name}_total{{connection=\"{id}\",pid=\"{}\",uid=\"{}\"}} {value}",
                conn.pid, conn.uid,
            );
        }
    }
    out
}

/// A family with one sample per worker, labelled with its name.
fn per_worker(
    out: &mut String,
    shared: &Shared,
    (name, kind): (&str, &str),
    help: &str,
    value: impl Fn(&Worker) -> u64,
) {
    family(out, name, kind, help);
    for w in &shared.workers {
        let _ = writeln!(out, "{name}{{worker=\"{}\"}} {}", w.plan.name, value(w));
    }
}

/// Every worker runtime's metrics, leaving out a worker that is down or does not answer
/// within `METRICS_TIMEOUT`.
fn workers_metrics(shared: &Shared) -> Vec<String> {
    // One scrape at a time: each worker has one place for its answer.
    static SCRAPE: Mutex<()> = Mutex::new(());
    let _scrape = lock(&SCRAPE);
    // Every worker is asked first and all are awaited together, so a worker that does
    // not answer costs a scrape `METRICS_TIMEOUT` once, however many there are.
    static SCRAPES: AtomicU64 = AtomicU64::new(0);
    let scrape = SCRAPES.fetch_add(1, Ordering::Relaxed);
    let asked: Vec<_> = shared
        .workers
        .iter()
        .filter_map(|worker| ask(worker, scrape))
        .collect();
    let until = Instant::now() + METRICS_TIMEOUT;
    asked
        .into_iter()
        .filter_map(|rx| {
            rx.recv_timeout(until.saturating_duration_since(Instant::now()))
                .ok()
        })
        .collect()
}

/// Asks `worker` for its exposition for `scrape`; the answer comes on the receiver.
fn ask(worker: &Worker, scrape: u64) -> Option<mpsc::Receiver<String>> {
    let rx = worker.metrics.expect(scrape);
    let link = lock(&worker.link);
    let link = link.as_ref()?;
    memlink_ipc::control::send(&link.control, &ToWorker::Metrics { scrape }, None).ok()?;
    Some(rx)
}

/// Merges expositions into one: each family once, its `HELP` and `TYPE` lines from the
/// first text that has it, then its samples from every text in order. (Workers serve
/// different modules, so their samples carry different `module` labels.)
pub(super) fn merge(texts: &[String]) -> String {
    if let [one] = texts {
        return one.clone();
    }
    // Families in the order first seen: (name, header lines, sample lines).
    let mut families: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for text in texts {
        let mut current: Option<usize> = None;
        for line in text.lines() {
            let meta = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "));
            if let Some(rest) = meta {
                let name = rest.split_whitespace().next().unwrap_or_default();
                let at = families
                    .iter()
                    .position(|f| f.0 == name)
                    .unwrap_or_else(|| {
                        families.push((name.to_owned(), Vec::new(), Vec::new()));
                        families.len() - 1
                    });
                // "# HELP " or "# TYPE ": each kept once.
                let kind = &line[..7];
                if !families[at].1.iter().any(|h| h.starts_with(kind)) {
                    families[at].1.push(line.to_owned());
                }
                current = Some(at);
            } else if !line.is_empty() && !line.starts_with('#') {
                match current {
                    Some(at) => families[at].2.push(line.to_owned()),
                    None => families.push((String::new(), Vec::new(), vec![line.to_owned()])),
                }
            }
        }
    }
    let mut out = String::new();
    for (_, header, samples) in families {
        for line in header.iter().chain(&samples) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::merge;

    #[test]
    fn each_family_is_written_once_with_every_workers_samples() {
        let a = "# HELP m_calls_total Calls.\n# TYPE m_calls_total counter\n\
                 m_calls_total{module=\"a\"} 1\n\
                 # HELP m_up Up.\n# TYPE m_up gauge\nm_up{module=\"a\"} 1\n";
        let b = "# HELP m_calls_total Calls.\n# TYPE m_calls_total counter\n\
                 m_calls_total{module=\"b\"} 2\n\
                 # HELP m_own Own.\n# TYPE m_own gauge\nm_own{module=\"b\"} 7\n";
        let merged = merge(&[a.to_owned(), b.to_owned()]);
        assert_eq!(
            merged,
            "# HELP m_calls_total Calls.\n# TYPE m_calls_total counter\n\
             m_calls_total{module=\"a\"} 1\nm_calls_total{module=\"b\"} 2\n\
             # HELP m_up Up.\n# TYPE m_up gauge\nm_up{module=\"a\"} 1\n\
             # HELP m_own Own.\n# TYPE m_own gauge\nm_own{module=\"b\"} 7\n"
        );
        assert_eq!(
            merge(&[a.to_owned()]),
            a,
            "one worker's text is left as it is"
        );
        assert_eq!(merge(&[]), "");
    }
}
