//! The names the daemon's merges of its workers' Prometheus text gave their families,
//! kept for the daemon's life. Shared by the merge (`exposition`), which reads and grows
//! them, and the supervisor's state (`state`), which holds them between scrapes.

use std::collections::{HashMap, HashSet};

/// The names the daemon's merges gave the workers' families, kept for the daemon's life
/// so that a family keeps its name and kind from one scrape to the next: one another
/// worker's text brings later under its name as another kind (a module of the main
/// worker recording a gauge `x` once another worker's histogram `x` was exposed) is the
/// one named apart, not the one exposed first (whose family would change its type
/// between two scrapes). It grows by each name and kind seen once.
#[derive(Default)]
pub(super) struct Names {
    /// The name each family, by its name (a module's own metric: its `HELP` text, which
    /// names the metric) and kind in its worker's text, was given.
    pub(super) given: HashMap<(String, String), String>,
    /// Every sample name those families write.
    pub(super) taken: HashSet<String>,
}
