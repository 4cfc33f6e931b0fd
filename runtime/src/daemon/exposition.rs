//! The daemon's Prometheus text: every worker runtime's figures, merged into one
//! exposition, then the daemon's own (connections, workers, per-client figures).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use memlink_ipc::control::ToWorker;

use super::families::Names;
use super::state::{lock, Scrapes, Shared, Worker};
use crate::prometheus::family;

/// How long a worker has to answer for its metrics.
const METRICS_TIMEOUT: Duration = Duration::from_secs(2);

/// The whole exposition.
pub(super) fn render(shared: &Shared) -> String {
    let texts = workers_metrics(shared);
    let mut out = merge_with(&texts, &mut lock(&shared.scrapes.names));
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
/// within `METRICS_TIMEOUT`. Scrapes are asked one at a time (each worker has one place
/// for its answer); a scrape that comes while one is being asked waits for it and takes
/// its answers, so that however many come at once, a silent worker costs them
/// `METRICS_TIMEOUT` once, not once each in turn.
fn workers_metrics(shared: &Shared) -> Vec<String> {
    let scrapes = &shared.scrapes;
    let mut flight = lock(&scrapes.flight);
    if flight.asking {
        let awaited = flight.done + 1;
        while flight.done < awaited {
            flight = scrapes
                .answered
                .wait(flight)
                .unwrap_or_else(|p| p.into_inner());
        }
        return flight.answers.clone();
    }
    flight.asking = true;
    drop(flight);
    let mut asking = Asking(scrapes, Vec::new());
    asking.1 = ask_all(shared);
    asking.1.clone()
}

/// The scrape that asks the workers, holding their answers once it has them: when it
/// ends, the scrapes that waited take them (none, if it unwound).
struct Asking<'s>(&'s Scrapes, Vec<String>);

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        let mut flight = lock(&self.0.flight);
        flight.asking = false;
        flight.done += 1;
        flight.answers = std::mem::take(&mut self.1);
        self.0.answered.notify_all();
    }
}

/// Asks every worker for its metrics and awaits them all together, so a worker that
/// does not answer costs `METRICS_TIMEOUT` once, however many there are.
fn ask_all(shared: &Shared) -> Vec<String> {
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
/// different modules, so their samples carry different `module` labels.) A family of
/// another kind under a name a family already has (a module's gauge `x` on one worker, a
/// histogram `x` on another), or whose samples would repeat another family's (a
/// histogram `h` beside another worker's `h_count`), is renamed: a suffix, the hash of
/// its name and kind, before a counter's `_total`, as one runtime names its modules'
/// families apart. Each family is then written once, with one kind, as the format wants.
#[cfg(test)]
pub(super) fn merge(texts: &[String]) -> String {
    merge_with(texts, &mut Names::default())
}

/// [`merge`], naming the families as `names` has them, those it has not seen added to
/// it. One text goes through it too: a family named apart keeps its name while the
/// worker that had its name first is down.
pub(super) fn merge_with(texts: &[String], names: &mut Names) -> String {
    let mut merged = Merged {
        names,
        families: Vec::new(),
        by_key: HashMap::new(),
    };
    for text in texts {
        for block in blocks(text) {
            merged.place(block);
        }
    }
    let mut out = String::new();
    for family in merged.families {
        for line in family.header.iter().chain(&family.samples) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// One family of an exposition: its name and kind (from its `TYPE` line), its `HELP` and
/// `TYPE` lines, and its samples. Samples before any family's lines have an empty name.
struct Family {
    name: String,
    kind: String,
    /// For a module's own metric, its `HELP` text, which names the metric: each worker's
    /// runtime names its modules' families apart on its own (a histogram `x` beside a
    /// gauge `x` in one worker is `memlink_module_x_<hash>`, alone in another
    /// `memlink_module_x`), so the metric, not the family's name, tells which family of
    /// another worker's it is.
    metric: Option<String>,
    header: Vec<String>,
    samples: Vec<String>,
}

impl Family {
    /// The same family under `name`: its lines rewritten. A runtime's exposition writes
    /// each under a name that starts with the family's (after `# HELP ` or `# TYPE ` for
    /// the header); a line that does not (text a broken worker sent: two spaces before
    /// the name, a sample of another family's name or shorter than its own) is dropped,
    /// as it would belong to no family under the new name.
    fn renamed(self, name: String) -> Family {
        let old = self.name.as_str();
        let header = self
            .header
            .iter()
            .filter_map(|line| {
                // "# HELP " or "# TYPE ", seven ASCII bytes (how `blocks` found it).
                let (meta, rest) = line.split_at_checked(7)?;
                Some(format!("{meta}{name}{}", rest.strip_prefix(old)?))
            })
            .collect();
        let samples = self
            .samples
            .iter()
            .filter_map(|line| Some(format!("{name}{}", line.strip_prefix(old)?)))
            .collect();
        Family {
            name,
            kind: self.kind,
            metric: self.metric,
            header,
            samples,
        }
    }
}

/// The families of one exposition, in order.
fn blocks(text: &str) -> Vec<Family> {
    let mut blocks: Vec<Family> = Vec::new();
    for line in text.lines() {
        let meta = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "));
        if let Some(rest) = meta {
            let mut words = rest.split_whitespace();
            let name = words.next().unwrap_or_default();
            if blocks.last().is_none_or(|b| b.name != name) {
                blocks.push(Family {
                    name: name.to_owned(),
                    kind: String::new(),
                    metric: None,
                    header: Vec::new(),
                    samples: Vec::new(),
                });
            }
            let block = blocks.last_mut().expect("pushed above");
            if line.starts_with("# TYPE ") {
                block.kind = words.next().unwrap_or_default().to_owned();
            } else if let Some((_, help)) = rest.split_once(' ') {
                if help.starts_with(crate::prometheus::MODULE_METRIC) {
                    block.metric = Some(help.to_owned());
                }
            }
            // "# HELP " or "# TYPE ": each kept once.
            if !block.header.iter().any(|h| h.starts_with(&line[..7])) {
                block.header.push(line.to_owned());
            }
        } else if !line.is_empty() && !line.starts_with('#') {
            if blocks.is_empty() {
                blocks.push(Family {
                    name: String::new(),
                    kind: String::new(),
                    metric: None,
                    header: Vec::new(),
                    samples: Vec::new(),
                });
            }
            let block = blocks.last_mut().expect("pushed above");
            block.samples.push(line.to_owned());
        }
    }
    blocks
}

/// The families merged so far, found by name and kind, and the names families were
/// given: a scrape of workers with many families each stays linear.
struct Merged<'n> {
    names: &'n mut Names,
    families: Vec<Family>,
    by_key: HashMap<(String, String), usize>,
}

impl Merged<'_> {
    /// Adds `block`: its samples to the family of its name and kind (a module's own
    /// metric: of its metric and kind), else as a family of its own, renamed if its
    /// samples' names are another family's (a family's own name is one of them).
    fn place(&mut self, block: Family) {
        // A module's metric by its `HELP` text, which no family's name can be (it has a
        // space), every other family by its name.
        let identity = block.metric.clone().unwrap_or_else(|| block.name.clone());
        let key = (identity, block.kind.clone());
        if let Some(&at) = self.by_key.get(&key) {
            // The family may have been named apart when an earlier worker brought it:
            // these samples go under the name it has now, not the one they came with
            // (which would leave them outside any family, or in another's).
            let family = &mut self.families[at];
            let block = if block.name == family.name {
                block
            } else {
                block.renamed(family.name.clone())
            };
            family.samples.extend(block.samples);
            return;
        }
        let name = if block.name.is_empty() {
            block.name.clone()
        } else if let Some(given) = self.names.given.get(&key) {
            given.clone()
        } else {
            let (name, kind) = (&block.name, &block.kind);
            let taken = &self.names.taken;
            let given =
                crate::prometheus::named_apart(name, kind, &[name, kind], |n| taken.contains(n));
            self.names
                .taken
                .extend(crate::prometheus::sample_names(&given, kind));
            self.names.given.insert(key.clone(), given.clone());
            given
        };
        let block = if name == block.name {
            block
        } else {
            block.renamed(name)
        };
        self.by_key.insert(key, self.families.len());
        self.families.push(block);
    }
}

#[cfg(test)]
mod tests {
    use super::{merge, merge_with};

    /// Each family's `TYPE`, and which family every sample line belongs to: `None` if a
    /// family is typed twice or a sample belongs to no family or to two.
    fn typed(text: &str) -> Option<Vec<(String, String)>> {
        let mut families: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut words = rest.split_whitespace();
                let (name, kind) = (words.next()?.to_owned(), words.next()?.to_owned());
                if families.iter().any(|f| f.0 == name) {
                    return None;
                }
                families.push((name, kind));
            } else if !line.starts_with('#') && !line.is_empty() {
                let sample = line.split(['{', ' ']).next()?;
                let owners = families
                    .iter()
                    .filter(|(name, kind)| {
                        let ends: &[&str] = match kind.as_str() {
                            "histogram" => &["", "_bucket", "_sum", "_count"],
                            _ => &[""],
                        };
                        ends.iter().any(|end| format!("{name}{end}") == sample)
                    })
                    .count();
                if owners != 1 {
                    return None;
                }
            }
        }
        Some(families)
    }

    fn histogram(name: &str, module: &str) -> String {
        format!(
            "# HELP {name} H.\n# TYPE {name} histogram\n\
             {name}_bucket{{module=\"{module}\",le=\"+Inf\"}} 1\n\
             {name}_sum{{module=\"{module}\"}} 2\n{name}_count{{module=\"{module}\"}} 1\n"
        )
    }

    fn single(name: &str, kind: &str, module: &str) -> String {
        format!("# HELP {name} S.\n# TYPE {name} {kind}\n{name}{{module=\"{module}\"}} 3\n")
    }

    /// Modules of two workers that use one name as two kinds, or a histogram's sample
    /// name as another family, are merged into families each typed once: the later one
    /// renamed (a counter's suffix before its `_total`), its samples with it.
    #[test]
    fn families_of_two_workers_that_would_clash_are_named_apart() {
        for (a, b) in [
            (single("x", "gauge", "a"), histogram("x", "b")),
            (histogram("x", "a"), single("x", "gauge", "b")),
            (histogram("h", "a"), single("h_count", "gauge", "b")),
            (single("h_count", "gauge", "a"), histogram("h", "b")),
            (
                single("c_total", "gauge", "a"),
                single("c_total", "counter", "b"),
            ),
        ] {
            let merged = merge(&[a.clone(), b.clone()]);
            let families = typed(&merged).unwrap_or_else(|| panic!("{merged}"));
            assert_eq!(families.len(), 2, "{merged}");
            // Every sample of both is there.
            let lines = |t: &str| t.lines().filter(|l| !l.starts_with('#')).count();
            assert_eq!(lines(&merged), lines(&a) + lines(&b), "{merged}");
            // The first keeps its name; a renamed counter still ends in `_total`.
            assert!(merged.starts_with(a.lines().next().unwrap()), "{merged}");
            if let Some((name, _)) = families.iter().find(|f| f.1 == "counter") {
                assert!(name.starts_with("c_") && name.ends_with("_total"), "{name}");
            }
        }
        // A third worker's family of the kind named apart joins it under its new name.
        let merged = merge(&[
            single("x", "gauge", "a"),
            histogram("x", "b"),
            histogram("x", "c"),
        ]);
        assert_eq!(typed(&merged).map(|f| f.len()), Some(2), "{merged}");
        assert!(!merged.contains("x_count{module=\"c\"}"), "{merged}");
        // The same family of both workers is still one.
        let merged = merge(&[histogram("x", "a"), histogram("x", "b")]);
        assert_eq!(typed(&merged).unwrap().len(), 1, "{merged}");
        assert_eq!(merged.matches("_count{").count(), 2, "{merged}");
    }

    /// A worker's text whose lines do not begin with their family's name (a sample
    /// shorter than it, or whose name ends inside a character of it, two spaces before a
    /// `HELP`'s name) is merged without those lines when its family is renamed. Before,
    /// the renaming sliced each line at the name's length and panicked, ending the scrape.
    #[test]
    fn a_broken_workers_lines_are_dropped_when_their_family_is_renamed() {
        let broken = "# HELP  x H.\n# TYPE x histogram\nx_count{module=\"b\"} 1\n\
                      y 1\n\u{e9} 2\n";
        let merged = merge(&[single("x", "gauge", "a"), broken.to_owned()]);
        assert_eq!(typed(&merged).map(|f| f.len()), Some(2), "{merged}");
        assert!(
            !merged.contains("\u{e9}") && !merged.contains("\ny 1"),
            "{merged}"
        );
        assert_eq!(
            merged.matches("_count{module=\"b\"} 1").count(),
            1,
            "{merged}"
        );
        let long = "# HELP lengthy H.\n# TYPE lengthy histogram\nl 1\nlengthy_count 1\n";
        let merged = merge(&[single("lengthy", "gauge", "a"), long.to_owned()]);
        assert_eq!(typed(&merged).map(|f| f.len()), Some(2), "{merged}");
    }

    /// A module's metric is one family whatever each worker's runtime named it: a
    /// histogram `x` named apart in one worker (beside a gauge `x`) and not in another
    /// is merged by its metric, in either order of the workers.
    #[test]
    fn a_module_metric_named_apart_by_one_worker_only_is_one_family() {
        let metric = |family: &str, kind: &str, module: &str| {
            let sample = if kind == "histogram" { "_count" } else { "" };
            format!(
                "# HELP {family} Module metric `x`.\n# TYPE {family} {kind}\n\
                 {family}{sample}{{module=\"{module}\"}} 1\n"
            )
        };
        let a = metric("memlink_module_x", "gauge", "a")
            + &metric("memlink_module_x_0123abcd", "histogram", "b");
        let c = metric("memlink_module_x", "histogram", "c");
        for texts in [[a.clone(), c.clone()], [c, a]] {
            let merged = merge(&texts);
            let families = typed(&merged).unwrap_or_else(|| panic!("{merged}"));
            assert_eq!(families.len(), 2, "{merged}");
            let (histogram, _) = families.iter().find(|f| f.1 == "histogram").unwrap();
            for module in ["b", "c"] {
                let count = format!("{histogram}_count{{module=\"{module}\"}} 1\n");
                assert!(merged.contains(&count), "{merged}");
            }
        }
    }

    /// A family named apart keeps its name in the scrapes after, the worker that took
    /// its name first answering or not, and the one exposed first keeps its own.
    #[test]
    fn a_family_keeps_its_name_from_one_merge_to_the_next() {
        let mut names = super::Names::default();
        let first = merge_with(&[String::new(), histogram("x", "b")], &mut names);
        assert!(first.contains("# TYPE x histogram\n"), "{first}");
        let second = merge_with(
            &[single("x", "gauge", "a"), histogram("x", "b")],
            &mut names,
        );
        assert!(second.contains("# TYPE x histogram\n"), "{second}");
        assert!(second.contains("x_count{module=\"b\"} 1\n"), "{second}");
        let gauge = second
            .lines()
            .find_map(|l| l.strip_prefix("# TYPE x_")?.strip_suffix(" gauge"))
            .unwrap_or_else(|| panic!("{second}"));
        // The gauge's worker alone: its family keeps the name it was given.
        let alone = merge_with(&[single("x", "gauge", "a")], &mut names);
        assert!(
            alone.contains(&format!("x_{gauge}{{module=\"a\"}} 3\n")),
            "{alone}"
        );
    }

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
