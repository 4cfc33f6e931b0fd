//! Module files in a watched directory that are symbolic links to files elsewhere, as a
//! directory of links into build outputs is (`modules/libgreeter.so` leading to
//! `greeter/target/release/libgreeter.so`).
//!
//! A build rewrites the file a link leads to, and the platform tells that file's own
//! directory, not the watched one. So each directory such a file is in is watched too,
//! and an event for a file a link leads to is taken as one for the link; events for
//! the other files there are dropped. A link to a file beside it needs no other watch:
//! its file's events come under the watched path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use notify::{RecursiveMode, Watcher};

/// The links a watched directory holds, by the file each leads to, and the directories
/// watched for those files.
#[derive(Default)]
pub(super) struct Links {
    /// The links leading to each file, by the path the file's events come under.
    by_target: BTreeMap<PathBuf, Vec<PathBuf>>,
    /// The directories watched for the files links lead to (not the watched one).
    dirs: BTreeSet<PathBuf>,
}

impl Links {
    /// Finds the links among `dir`'s module files (`is_module`) as they are now, and
    /// watches the directories they lead into with `watcher` (and no longer those no
    /// link leads into). A link that leads nowhere (the load says so) is followed into
    /// the directory of the file it names, when that directory is there, so that the
    /// file is seen when it comes back; with its directory gone too, it is looked at
    /// again when the watched directory changes.
    pub(super) fn update(
        &mut self,
        dir: &Path,
        watcher: &mut impl Watcher,
        is_module: impl Fn(&Path) -> bool,
    ) {
        let real_dir = std::fs::canonicalize(dir).ok();
        let mut by_target: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let link = entry.path();
            let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
            if !is_link || !is_module(&link) {
                continue;
            }
            // A link that leads nowhere now (its file removed, to be built again) is
            // followed where it would lead: the file's return is an event there.
            let Some(target) = std::fs::canonicalize(&link)
                .ok()
                .or_else(|| would_lead_to(&link))
            else {
                continue;
            };
            let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
                continue;
            };
            // A file beside the link is told under the watched path, which may itself
            // be a link to where the file is.
            let key = if Some(parent) == real_dir.as_deref() {
                dir.join(name)
            } else {
                target.clone()
            };
            by_target.entry(key).or_default().push(link);
        }
        let wanted: BTreeSet<PathBuf> = by_target
            .keys()
            .filter_map(|target| target.parent())
            .filter(|parent| *parent != dir)
            .map(Path::to_owned)
            .collect();
        for gone in self.dirs.difference(&wanted) {
            // A directory removed since is no longer watched by the platform either.
            let _ = watcher.unwatch(gone);
        }
        let mut dirs = BTreeSet::new();
        for want in wanted {
            if self.dirs.contains(&want) {
                dirs.insert(want);
                continue;
            }
            match watcher.watch(&want, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    dirs.insert(want);
                }
                // Tried again at the next update; the link's module stays as it is, and a
                // rebuild of its file is seen only when the watched directory changes.
                Err(e) => tracing::warn!(
                    target: "memlink::watch::links",
                    dir = %want.display(),
                    "cannot watch a directory a module file's link leads into: {}",
                    super::Limited(&e)
                ),
            }
        }
        self.dirs = dirs;
        self.by_target = by_target;
    }

    /// The paths an event about `path` concerns: itself when it is in the watched `dir`
    /// (or is `dir`, which stands for every file), and the links leading to it; nothing
    /// for another file of a directory watched for a link's file.
    pub(super) fn paths_for(&self, dir: &Path, path: PathBuf) -> Vec<PathBuf> {
        let links = self.by_target.get(&path).map_or(&[][..], |l| &l[..]);
        let mut paths = Vec::with_capacity(links.len() + 1);
        paths.extend(links.iter().cloned());
        if path == dir || path.parent() == Some(dir) {
            paths.push(path);
        }
        paths
    }
}

/// Where the link `link`, which leads to no file, would lead once its file is there:
/// the file it names, in its directory made canonical, if that directory is there.
/// (Only the link's own target is read: a link to a link leads no further.)
fn would_lead_to(link: &Path) -> Option<PathBuf> {
    let named = std::fs::read_link(link).ok()?;
    let named = link.parent()?.join(named);
    let dir = std::fs::canonicalize(named.parent()?).ok()?;
    Some(dir.join(named.file_name()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_for_a_linked_file_is_one_for_its_links_and_others_are_dropped() {
        let dir = Path::new("/w");
        let mut links = Links::default();
        links.by_target.insert(
            PathBuf::from("/build/libg.so"),
            vec![PathBuf::from("/w/libg.so"), PathBuf::from("/w/g@1.0.0.so")],
        );
        links.by_target.insert(
            PathBuf::from("/w/real.so"),
            vec![PathBuf::from("/w/alias.so")],
        );
        assert_eq!(
            links.paths_for(dir, PathBuf::from("/build/libg.so")),
            [Path::new("/w/libg.so"), Path::new("/w/g@1.0.0.so")]
        );
        assert!(links
            .paths_for(dir, PathBuf::from("/build/other.so"))
            .is_empty());
        assert_eq!(
            links.paths_for(dir, PathBuf::from("/w/real.so")),
            [Path::new("/w/alias.so"), Path::new("/w/real.so")]
        );
        assert_eq!(
            links.paths_for(dir, PathBuf::from("/w/x.so")),
            [Path::new("/w/x.so")]
        );
        assert_eq!(links.paths_for(dir, PathBuf::from("/w")), [Path::new("/w")]);
    }
}
