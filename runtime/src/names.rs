//! The names nested calls and `handle_of` address modules by: each loaded module's name,
//! and its version, so that two versions of one module can be loaded side by side and
//! a caller can ask for `greeter` (the highest release; the highest prerelease only
//! when no release is loaded) or `greeter@^1` (the highest that matches, by Cargo's
//! rules: a prerelease only when the requirement names one).

use std::collections::HashMap;

use semver::{Version, VersionReq};

/// The modules loaded under each name: their slots, versions (`None`: a version that is
/// not semver, which cannot share its name) and own names (what their crates call
/// them: only versions of one module share a name).
#[derive(Debug, Default)]
pub(crate) struct Names(HashMap<String, Vec<Entry>, Fnv>);

#[derive(Debug)]
struct Entry {
    version: Option<Version>,
    index: u32,
    own_name: String,
}

/// Why a module cannot take a name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Taken(pub(crate) String);

/// Why a module cannot be loaded under `name`, or `None`: an empty name (no nested call
/// can name it, and no log line or figure tells it apart), one with a control character
/// (a NUL or a line break, which would break the lines it is printed in), or one with an
/// `@`, which in a reference separates a name from a version requirement: a module
/// loaded as `greeter@^1` would answer the calls, and meet the dependencies, meant for
/// the versions of `greeter` that `^1` matches.
pub(crate) fn unusable(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("a module's name cannot be empty")
    } else if name.contains('@') {
        Some(
            "a module's name cannot hold `@`, which separates a name from a version \
             requirement (`greeter@^1` means a version of `greeter`)",
        )
    } else if name.chars().any(char::is_control) {
        Some("a module's name cannot hold a control character (a NUL, a line break, a tab)")
    } else {
        None
    }
}

/// `name` as an error shows a name too long for its place: its first `bytes` bytes (to
/// a character's end) and an ellipsis, not all of it (a module's own name may be
/// megabytes).
pub(crate) fn shown(name: &str, bytes: usize) -> String {
    let mut end = bytes.min(name.len());
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    if end == name.len() {
        name.to_owned()
    } else {
        format!("{}…", &name[..end])
    }
}

/// Why `reference` can name no module however the modules change, or `None`: a name no
/// module can be loaded under (`@^1`, with none before its `@`; an empty one; one with a
/// control character), or a version requirement after its `@` that is not semver
/// (`basic@>>1`), which a lookup reads as naming nothing. A dependency declared so would
/// otherwise be reported as missing, and waited for, when no load can answer it.
#[cold]
pub(crate) fn malformed(reference: &str) -> Option<&'static str> {
    let (name, requirement) = match reference.split_once('@') {
        Some((name, requirement)) => (name, Some(requirement)),
        None => (reference, None),
    };
    if let Some(why) = unusable(name) {
        return Some(why);
    }
    parse_requirement(requirement?).err()?;
    Some("what follows `@` is not a semver requirement (say `1.2`, `^2`, `=1.4.2`)")
}

/// What follows a reference's `@`, read the same way wherever a reference is given
/// (`ModuleRef::parse`, `handle_of`, a nested call, a declared dependency): whitespace
/// around it is no part of it (`greeter@\t^1`, a line read from a file with its line
/// break), where semver alone would take only spaces off.
pub(crate) fn parse_requirement(text: &str) -> Result<VersionReq, semver::Error> {
    VersionReq::parse(text.trim())
}

/// The name `reference` asks for and its requirement, if it has one; `None` when what
/// follows its `@` is not semver, so that it names nothing.
pub(crate) fn split(reference: &str) -> Option<(&str, Option<VersionReq>)> {
    match reference.split_once('@') {
        Some((name, requirement)) => Some((name, Some(parse_requirement(requirement).ok()?))),
        None => Some((reference, None)),
    }
}

/// Whether `requirement` (none: any version) admits a module of `version` (none: a
/// version that is not semver, which only no requirement admits).
pub(crate) fn admits(requirement: Option<&VersionReq>, version: Option<&Version>) -> bool {
    match (requirement, version) {
        (None, _) => true,
        (Some(r), Some(v)) => r.matches(v),
        (Some(_), None) => false,
    }
}

impl Names {
    /// The slot of the module `reference` names: `name` (its highest release, or
    /// highest prerelease when no release is loaded) or `name@requirement` (the highest
    /// version that matches).
    #[inline]
    pub(crate) fn lookup(&self, reference: &str) -> Option<u32> {
        if let Some([only]) = self.0.get(reference).map(Vec::as_slice) {
            return Some(only.index);
        }
        self.lookup_slow(reference)
    }

    #[cold]
    fn lookup_slow(&self, reference: &str) -> Option<u32> {
        self.lookup_except(reference, None)
    }

    /// [`lookup`](Self::lookup) among the modules other than the one in slot `except`
    /// (a reload's, whose version leaves).
    pub(crate) fn lookup_except(&self, reference: &str, except: Option<u32>) -> Option<u32> {
        let (name, requirement) = split(reference)?;
        self.0
            .get(name)?
            .iter()
            .filter(|e| Some(e.index) != except)
            .filter(|e| admits(requirement.as_ref(), e.version.as_ref()))
            // A bare name prefers a release, as `name@*` (which matches no prerelease)
            // does: a `2.0.0-rc.1` loaded to be tried beside `1.4.2` takes no caller
            // that did not ask for a prerelease. With only prereleases loaded, the
            // highest of them. A requirement has chosen already (Cargo's rules).
            .max_by_key(|e| (requirement.is_some() || is_release(e), &e.version))
            .map(|e| e.index)
    }

    /// Whether the module `own_name` of `version` can be added as `name`: the name is
    /// free, or every module under it is a version of the same module, with a semver
    /// version other than this one.
    pub(crate) fn check(
        &self,
        name: &str,
        own_name: &str,
        version: Option<&Version>,
    ) -> Result<(), Taken> {
        let others = self.0.get(name).map(Vec::as_slice).unwrap_or_default();
        clash(name, others.iter(), own_name, version)
    }

    /// Adds the module `own_name` of `version`, in slot `index`, as `name` (call
    /// [`check`](Names::check) first).
    pub(crate) fn add(&mut self, name: &str, own_name: &str, version: Option<Version>, index: u32) {
        self.0.entry(name.to_owned()).or_default().push(Entry {
            version,
            index,
            own_name: own_name.to_owned(),
        });
    }

    /// Removes the module in slot `index` from `name`.
    pub(crate) fn remove(&mut self, name: &str, index: u32) {
        if let Some(entries) = self.0.get_mut(name) {
            entries.retain(|e| e.index != index);
            if entries.is_empty() {
                self.0.remove(name);
            }
        }
    }

    /// The module in slot `index` is now `own_name` of `version` (a reload), if that
    /// does not clash with another module under `name`.
    pub(crate) fn replace(
        &mut self,
        name: &str,
        index: u32,
        own_name: &str,
        version: Option<Version>,
    ) -> Result<(), Taken> {
        let entries = self.0.entry(name.to_owned()).or_default();
        let others = entries.iter().filter(|e| e.index != index);
        clash(name, others, own_name, version.as_ref())?;
        for entry in entries.iter_mut().filter(|e| e.index == index) {
            entry.version = version.clone();
            own_name.clone_into(&mut entry.own_name);
        }
        Ok(())
    }
}

/// Whether `entry` is a release (not a prerelease; a version that is not semver counts
/// as one: it never shares its name).
fn is_release(entry: &Entry) -> bool {
    entry.version.as_ref().is_none_or(|v| v.pre.is_empty())
}

/// Whether the module `own_name` of `version` can share `name` with `others`: only
/// versions of one module share a name, each with a semver version of its own. Build
/// metadata does not make a version of its own (semver gives `1.0.0+a` and `1.0.0+b`
/// one precedence, and every requirement matches both or neither): two such builds
/// under one name would leave `name@=1.0.0` to pick between them by the text after `+`.
fn clash<'e>(
    name: &str,
    mut others: impl Iterator<Item = &'e Entry> + Clone,
    own_name: &str,
    version: Option<&Version>,
) -> Result<(), Taken> {
    if others.clone().next().is_none() {
        return Ok(());
    }
    if others.clone().any(|e| e.own_name != own_name) {
        return Err(Taken(name.to_owned()));
    }
    let Some(v) = version else {
        return Err(Taken(name.to_owned()));
    };
    // Named as the module already loaded is: `m@1.0.0+a`, when `1.0.0+b` is refused.
    match others.find(|e| {
        e.version
            .as_ref()
            .is_none_or(|o| o.cmp_precedence(v).is_eq())
    }) {
        None => Ok(()),
        Some(Entry {
            version: Some(o), ..
        }) => Err(Taken(format!("{name}@{o}"))),
        Some(_) => Err(Taken(name.to_owned())),
    }
}

/// FNV-1a, the hash the ABI names methods by, for the table of module names a nested
/// call looks its callee up in: a short name hashes in a few instructions, where the
/// default hasher (built to resist flooding by untrusted keys) costs a hundred. The
/// names are the host's own, given at load.
#[derive(Debug, Default, Clone, Copy)]
struct Fnv;

impl std::hash::BuildHasher for Fnv {
    type Hasher = FnvHasher;
    fn build_hasher(&self) -> FnvHasher {
        FnvHasher(0xcbf2_9ce4_8422_2325)
    }
}

struct FnvHasher(u64);

/// FNV-1a (64-bit) of `text`, as [`Fnv`] hashes it: a digest to tell two texts apart
/// cheaply where a copy of one would be kept otherwise.
pub(crate) fn fnv1a(text: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = Fnv.build_hasher();
    hasher.write(text.as_bytes());
    hasher.finish()
}

impl std::hash::Hasher for FnvHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Option<Version> {
        Some(Version::parse(s).unwrap())
    }

    #[test]
    fn a_name_is_refused_when_a_reference_would_read_it_as_something_else() {
        assert_eq!(unusable("greeter"), None);
        assert!(unusable("").is_some());
        assert!(unusable("a\nb").is_some());
        assert!(unusable("greeter@^1").unwrap().contains("`@`"));
        assert_eq!(malformed("greeter@ ^1"), None);
        assert_eq!(malformed("greeter"), None);
        for never in ["@^1", "", "greeter@>>1", "a\nb@1"] {
            assert!(malformed(never).is_some(), "{never:?}");
        }
    }

    #[test]
    fn a_name_finds_its_highest_version_and_a_requirement_its_match() {
        let mut names = Names::default();
        names.add("greeter", "g", v("1.4.2"), 3);
        assert_eq!(names.lookup("greeter"), Some(3));
        assert_eq!(names.check("greeter", "g", v("2.0.1").as_ref()), Ok(()));
        names.add("greeter", "g", v("2.0.1"), 5);
        assert_eq!(names.lookup("greeter"), Some(5));
        assert_eq!(names.lookup("greeter@1"), Some(3));
        assert_eq!(names.lookup("greeter@^2"), Some(5));
        assert_eq!(names.lookup("greeter@3"), None);
        assert_eq!(names.lookup("greeter@junk"), None);
        assert_eq!(names.lookup("other"), None);
        names.add("greeter", "g", v("3.0.0-rc.1"), 6);
        assert_eq!(
            names.lookup("greeter"),
            Some(5),
            "a release before a prerelease"
        );
        assert_eq!(names.lookup("greeter@3.0.0-rc.1"), Some(6));
        names.remove("greeter", 6);
        names.remove("greeter", 5);
        assert_eq!(names.lookup("greeter"), Some(3));
    }

    #[test]
    fn a_name_is_shared_only_by_distinct_semver_versions() {
        let mut names = Names::default();
        names.add("m", "m", v("1.0.0"), 0);
        assert_eq!(
            names.check("m", "m", v("1.0.0").as_ref()),
            Err(Taken("m@1.0.0".into()))
        );
        assert_eq!(names.check("m", "m", None), Err(Taken("m".into())));
        assert_eq!(
            names.check("m", "other", v("2.0.0").as_ref()),
            Err(Taken("m".into())),
            "another module never shares a name"
        );
        names.add("b", "b", v("1.0.0+a"), 3);
        assert_eq!(
            names.check("b", "b", v("1.0.0+b").as_ref()),
            Err(Taken("b@1.0.0+a".into())),
            "build metadata makes no version of its own"
        );
        names.add("n", "n", None, 1);
        assert!(names.check("n", "n", v("1.0.0").as_ref()).is_err());
        names.add("m", "m", v("2.0.0"), 2);
        assert!(
            names.replace("m", 2, "m", v("1.0.0")).is_err(),
            "a reload onto 1.0.0 clashes"
        );
        assert!(names.replace("m", 2, "m", v("3.0.0")).is_ok());
        assert_eq!(names.lookup("m@3"), Some(2));
        assert!(
            names.replace("n", 1, "anything", None).is_ok(),
            "alone under its name"
        );
    }
}
