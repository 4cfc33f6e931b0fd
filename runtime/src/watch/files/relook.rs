//! Files the watch looks at again by itself, with no event for them: refused for having
//! changed since their look (`crate::written::Contents`), or found, when looked at, to
//! have changed too recently to have settled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::State;
use crate::error::RuntimeError;
use crate::reload::WRITTEN_WHILE_COPIED;
use crate::watch::event::WatchEvent;

/// The longest a file refused again and again for changing since its looks waits, beyond
/// the debounce time, before it is looked at again.
const RELOOK_AT_MOST: Duration = Duration::from_secs(30);

/// How much longer than `debounce` a file refused `times` in a row for changing since its
/// looks waits before the next: nothing after the first, then 1, 3, 7... debounces, at
/// most [`RELOOK_AT_MOST`].
fn relook_wait(times: u32, debounce: Duration) -> Duration {
    let debounces = 2u32.saturating_pow(times.saturating_sub(1).min(16)) - 1;
    debounce.saturating_mul(debounces).min(RELOOK_AT_MOST)
}

/// Whether `error` refuses a file for having changed since the watch looked at it, or
/// while it was copied (`crate::reload::WRITTEN_WHILE_COPIED`).
fn changed_since_looked(error: &RuntimeError) -> bool {
    matches!(error, RuntimeError::NotALibrary { reason, .. } if reason == WRITTEN_WHILE_COPIED)
}

impl State {
    /// Tells that the file `path` was refused for `error`. One refused for having changed
    /// since the look is looked at again ([`State::take_relook`]), and its module, if it
    /// has one, is no longer known to be of the file as it is: a rescan that finds the
    /// file's stamp unchanged (a change of its change time alone) reloads it too. Such
    /// refusals in a row are told once, the rest logged at debug level.
    pub(super) fn refused(&mut self, path: PathBuf, error: RuntimeError) {
        if changed_since_looked(&error) {
            self.relook.insert(path.clone());
            if let Some(loaded) = self.loaded.get_mut(&path) {
                loaded.1 = None;
            }
            let times = self.relooks.entry(path.clone()).or_insert(0);
            *times = times.saturating_add(1);
            if *times > 1 {
                tracing::debug!(
                    target: "memlink::watch",
                    path = %path.display(),
                    "{error} (again: {} times in a row)",
                    *times
                );
                return;
            }
        }
        self.tell(WatchEvent::Failed { path, error });
    }

    /// Takes out of `paths` the files changed within `settle` of now, by the change time
    /// their look just took, and has them looked at again once no event has touched them
    /// for the debounce time (`relook`, not counted as a refusal: nothing was tried).
    pub(super) fn defer_unsettled(&mut self, paths: &mut Vec<PathBuf>, settle: Duration) {
        let now = std::time::SystemTime::now();
        let looked = &self.looked;
        let (unsettled, settled): (Vec<PathBuf>, Vec<PathBuf>) = std::mem::take(paths)
            .into_iter()
            .partition(|p| looked.get(p).is_some_and(|c| c.changed_within(settle, now)));
        *paths = settled;
        for path in unsettled {
            tracing::debug!(
                target: "memlink::watch",
                path = %path.display(),
                "changed since it fell due, by a write whose event has not come yet: looked \
                 at again once it has settled"
            );
            self.relook.insert(path);
        }
    }

    /// From now on, a file looked at is loaded only if its change time is older than
    /// `debounce` (see `settle`).
    pub(in crate::watch) fn settle_for(&mut self, debounce: Duration) {
        self.settle = Some(debounce);
    }

    /// The files to look at again (refused for having changed since they were looked
    /// at), each with how much longer than the debounce time to wait before it: none
    /// after the first such refusal, then twice as long each time, up to
    /// [`RELOOK_AT_MOST`]. The watch's loop makes them pending as if an event had come for
    /// their contents. A file that changes at every look (one written, all the time,
    /// through a link of another directory) is so looked at a few times a minute, not
    /// every debounce.
    pub(in crate::watch) fn take_relook(&mut self, debounce: Duration) -> Vec<(PathBuf, Duration)> {
        let relook = std::mem::take(&mut self.relook);
        relook
            .into_iter()
            .map(|path| {
                let times = self.relooks.get(&path).copied().unwrap_or(1);
                (path, relook_wait(times, debounce))
            })
            .collect()
    }

    /// A file that loaded or reloaded: refusals for changes since its looks start over.
    pub(super) fn looked_fine(&mut self, path: &Path) {
        self.relooks.remove(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file refused again and again for changing since its looks waits longer each
    /// time, never past the most; a refusal for anything else is not one of those.
    #[test]
    fn refusals_for_a_change_since_the_look_back_off() {
        let debounce = Duration::from_millis(250);
        let waits: Vec<Duration> = (1..=5).map(|t| relook_wait(t, debounce)).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(waits, [ms(0), ms(250), ms(750), ms(1750), ms(3750)]);
        assert_eq!(relook_wait(40, debounce), RELOOK_AT_MOST);
        assert_eq!(relook_wait(3, Duration::MAX), RELOOK_AT_MOST);
        let changed = RuntimeError::NotALibrary {
            path: PathBuf::from("m.so"),
            reason: WRITTEN_WHILE_COPIED.to_owned(),
        };
        assert!(changed_since_looked(&changed));
        let other = RuntimeError::NotALibrary {
            path: PathBuf::from("m.so"),
            reason: "not an ELF file".to_owned(),
        };
        assert!(!changed_since_looked(&other));
    }
}
