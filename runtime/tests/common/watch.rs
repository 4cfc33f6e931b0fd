//! Waiting for what a `DirectoryWatch` reports.

use std::time::Duration;

use memlink_runtime::watch::{DirectoryWatch, WatchEvent, WatchOptions};

/// The watch's next event, waiting as long as a slow machine may need.
pub fn next(watch: &DirectoryWatch) -> WatchEvent {
    watch
        .events()
        .recv_timeout(super::HANG)
        .expect("the watch reports what it did")
}

/// A watch that looks again soon after a change (the tests' files are written whole).
pub fn options() -> WatchOptions {
    WatchOptions::default().debounce(Duration::from_millis(50))
}

/// The events the watch reports within `quiet` of each other.
pub fn drain(watch: &DirectoryWatch, quiet: Duration) -> Vec<WatchEvent> {
    let mut events = Vec::new();
    while let Ok(event) = watch.events().recv_timeout(quiet) {
        events.push(event);
    }
    events
}

/// The next event, within `wait` (short where the event follows at once, so that a
/// watch that never tells fails the test instead of stalling it).
pub fn within(watch: &DirectoryWatch, wait: Duration) -> WatchEvent {
    watch
        .events()
        .recv_timeout(wait)
        .unwrap_or_else(|_| panic!("the watch told nothing in {wait:?}"))
}
