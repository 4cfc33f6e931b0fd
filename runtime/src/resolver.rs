//! Where modules come from: a [`ModuleRef`] names one, a resolver finds its file.

use std::path::{Path, PathBuf};

use semver::{Version, VersionReq};

use crate::error::RuntimeError;
use crate::names::parse_requirement;
use crate::written::Contents;

/// A reference to a module: the path of its shared library, or a name with a version
/// requirement (`greeter@1.2`, `greeter@^2`, `greeter`) for a resolver that keeps
/// modules by name ([`DirectoryResolver`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModuleRef {
    path: PathBuf,
    named: Option<Named>,
    /// For a path to a file named `NAME@VERSION.so` that a watched directory holds: that
    /// its module must be `NAME` at `VERSION` (see [`ModuleRef::from_named_file`]).
    file_tells: bool,
    /// For a watched directory's file: what it was when the watch looked at it, so that
    /// a file written since is not loaded (see [`ModuleRef::from_named_file`]).
    looked: Option<Contents>,
}

/// A module asked for by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Named {
    name: String,
    /// `None`: any version (the highest).
    requirement: Option<VersionReq>,
}

/// Whether `name` can be a module's name in a reference or a file name: ASCII letters,
/// digits, `_` and `-` (a module named otherwise, `grüße`, is loaded by its path and
/// called by its name, but no reference or versioned file names it).
fn is_module_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl ModuleRef {
    /// Parses a reference:
    ///
    /// - `name@requirement`: a module by name and semver requirement (`greeter@1.2`
    ///   means `^1.2`, as in Cargo; `greeter@=1.4.2`, `greeter@>=2, <3`, `greeter@*`),
    ///   which a [`DirectoryResolver`] finds;
    /// - otherwise a path: relative (`./my_module.so`, `target/x.so`), absolute, or a bare
    ///   file name (`my_module.so`, looked up in the current directory).
    ///
    /// ```
    /// use memlink_runtime::ModuleRef;
    ///
    /// let by_version = ModuleRef::parse("greeter@1.2")?;
    /// assert_eq!(by_version.name(), Some("greeter"));
    /// assert!(by_version.matches(&"1.4.0".parse()?));
    /// assert!(!by_version.matches(&"2.0.0".parse()?));
    /// assert_eq!(ModuleRef::parse("./libgreeter.so")?.name(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse(reference: &str) -> Result<ModuleRef, RuntimeError> {
        let trimmed = reference.trim();
        if trimmed.is_empty() {
            return Err(RuntimeError::BadReference {
                reference: reference.to_owned(),
                reason: "it is empty",
            });
        }
        // A path may hold an `@` too (`greeter@1.4.2.so`, `builds@2/libx.so`): only text
        // with no separator that does not end like a library is a name.
        let path_like = trimmed.contains('/')
            || trimmed.contains(std::path::MAIN_SEPARATOR)
            || trimmed.ends_with(&format!(".{}", std::env::consts::DLL_EXTENSION));
        if let Some((name, requirement)) = trimmed.split_once('@').filter(|_| !path_like) {
            if is_module_name(name) {
                let requirement = parse_requirement(requirement).map_err(|_| {
                    RuntimeError::BadReference {
                        reference: reference.to_owned(),
                        reason: "what follows `@` is not a semver requirement (say `1.2`, `^2`, `=1.4.2`)",
                    }
                })?;
                return Ok(ModuleRef::named(name, Some(requirement)));
            }
            // `@1.2`, `my module@1`: meant as a name, or a file named so is `./` away.
            return Err(RuntimeError::BadReference {
                reference: reference.to_owned(),
                reason: "what comes before `@` is not a module name (ASCII letters, digits, `_` and `-`); a file of that name is `./` followed by it",
            });
        }
        if trimmed.ends_with('/') || trimmed.ends_with(std::path::MAIN_SEPARATOR) {
            return Err(RuntimeError::BadReference {
                reference: reference.to_owned(),
                reason: "it names a directory, not a library file",
            });
        }
        Ok(ModuleRef {
            path: PathBuf::from(trimmed),
            named: None,
            file_tells: false,
            looked: None,
        })
    }

    /// Refuses the module found at `path` for this reference (its own name, and another
    /// it is kept under if any; its `version`, and that as semver) if the reference
    /// asked for a module by name and it is not that module, or not of a version the
    /// requirement matches: the file's name said one thing and the module says another,
    /// and the name the reference gives would then lead to nothing loaded.
    pub(crate) fn answered_by(
        &self,
        path: &Path,
        (own, kept): (&str, Option<&str>),
        version: &str,
        semver: Option<&Version>,
    ) -> Result<(), RuntimeError> {
        let Some(name) = self.name() else {
            return self.file_answered_by(path, own, version, semver);
        };
        // A version that is no semver matches no requirement.
        let fits = (own == name || kept == Some(name))
            && semver.map_or(self.requirement().is_none(), |v| self.matches(v));
        if fits {
            return Ok(());
        }
        Err(RuntimeError::WrongFile {
            reference: self.path.display().to_string(),
            path: path.to_owned(),
            found: format!("`{own}` {version}"),
        })
    }

    /// For a reference [`from_named_file`](Self::from_named_file): refuses the module
    /// found at `path` (its `own` name, its `version`) unless a file name
    /// `NAME@VERSION.so` gives both.
    fn file_answered_by(
        &self,
        path: &Path,
        own: &str,
        version: &str,
        semver: Option<&Version>,
    ) -> Result<(), RuntimeError> {
        let Some((written, told)) = written_version(&self.path).filter(|_| self.file_tells) else {
            return Ok(());
        };
        // Build metadata aside, as the resolver compares versions.
        let same = semver.is_some_and(|v| v.cmp_precedence(&told).is_eq());
        if file_answers(written, own) && same {
            return Ok(());
        }
        Err(RuntimeError::WrongFile {
            reference: self.path.display().to_string(),
            path: path.to_owned(),
            found: format!("`{own}` {version}"),
        })
    }

    /// A reference to the library at `path`.
    pub fn from_path(path: impl Into<PathBuf>) -> ModuleRef {
        ModuleRef {
            path: path.into(),
            named: None,
            file_tells: false,
            looked: None,
        }
    }

    /// A reference to the library at `path` whose file name, when it is
    /// `NAME@VERSION.so` (or `libNAME@…`), must tell the truth: a file that holds another
    /// module or version is refused with [`RuntimeError::WrongFile`], as a
    /// [`DirectoryResolver`] refuses it. For the files of a watched directory, whose
    /// `NAME@VERSION` files are "one version of NAME".
    ///
    /// `looked`: what the file was when the watch looked at it
    /// ([`Contents::at`](crate::written::Contents::at)). A file changed since (a writer
    /// that began once the watch had seen its last event, and paused) is refused as one
    /// written while it was copied is, and the watch looks at it again.
    #[cfg(feature = "watch")]
    pub(crate) fn from_named_file(path: impl Into<PathBuf>, looked: Option<Contents>) -> ModuleRef {
        ModuleRef {
            path: path.into(),
            named: None,
            file_tells: true,
            looked,
        }
    }

    /// What the file was when a watched directory looked at it, for a reference
    /// [`from_named_file`](Self::from_named_file).
    pub(crate) fn looked(&self) -> Option<Contents> {
        self.looked
    }

    /// A reference to the module `name`, of a version matching `requirement` (any, when
    /// `None`: the highest release, or the highest prerelease when there is no
    /// release).
    pub fn named(name: &str, requirement: Option<VersionReq>) -> ModuleRef {
        let text = match &requirement {
            Some(r) => format!("{name}@{r}"),
            None => name.to_owned(),
        };
        ModuleRef {
            path: PathBuf::from(text),
            named: Some(Named {
                name: name.to_owned(),
                requirement,
            }),
            file_tells: false,
            looked: None,
        }
    }

    /// The path as given (for a reference by name, its text: `greeter@^1.2`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The module's name, for a reference by name.
    pub fn name(&self) -> Option<&str> {
        self.named.as_ref().map(|n| n.name.as_str())
    }

    /// The version requirement, for a reference by name that has one.
    pub fn requirement(&self) -> Option<&VersionReq> {
        self.named.as_ref()?.requirement.as_ref()
    }

    /// Whether `version` satisfies the reference's requirement (any version does when it
    /// has none).
    pub fn matches(&self, version: &Version) -> bool {
        self.requirement().is_none_or(|r| r.matches(version))
    }
}

/// Turns a [`ModuleRef`] into the file to load.
pub trait Resolver: Send + Sync + std::fmt::Debug {
    /// The absolute path of the library `module` refers to.
    fn resolve(&self, module: &ModuleRef) -> Result<PathBuf, RuntimeError>;
}

/// Resolves references against the local file system, relative to the current
/// directory. It knows no module by name.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalResolver;

impl Resolver for LocalResolver {
    fn resolve(&self, module: &ModuleRef) -> Result<PathBuf, RuntimeError> {
        if module.named.is_some() {
            return Err(RuntimeError::BadReference {
                reference: module.path.display().to_string(),
                reason: "a reference by name needs a resolver that keeps modules by name (DirectoryResolver)",
            });
        }
        local_file(module.path())
    }
}

/// `path` as an absolute path to a file that exists.
fn local_file(path: &Path) -> Result<PathBuf, RuntimeError> {
    if let Err(e) = std::fs::metadata(path) {
        // A symbolic link is there, but leads to no file: say so, rather than that
        // nothing is there (which `ls` would contradict).
        if let Ok(target) = std::fs::read_link(path) {
            return Err(RuntimeError::NotALibrary {
                path: path.to_owned(),
                reason: format!(
                    "it is a symbolic link to {}, which leads to no file: {e}",
                    target.display()
                ),
            });
        }
        // Only a file that is not there is "not found": one in a directory this user may
        // not search (`EACCES`), or past a name too long, is there for all it knows, and
        // the system's reason says what to fix.
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(RuntimeError::NotALibrary {
                path: path.to_owned(),
                reason: format!("cannot read the file: {e}"),
            });
        }
        return Err(RuntimeError::FileNotFound {
            path: path.to_owned(),
        });
    }
    if path.is_dir() {
        return Err(RuntimeError::BadReference {
            reference: path.display().to_string(),
            reason: "it names a directory, not a library file",
        });
    }
    // A path with no separator is a bare file name; `dlopen` would search the system's
    // library path for it, so make it explicit. The directory is made canonical and the
    // file keeps its name: a symbolic link's name (`greeter@1.4.2.so`, a version) is the
    // module's, wherever the link leads.
    let not_found = || RuntimeError::FileNotFound {
        path: path.to_owned(),
    };
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            Ok(dir.canonicalize().map_err(|_| not_found())?.join(name))
        }
        _ => path.canonicalize().map_err(|_| not_found()),
    }
}

/// Finds modules by name and version in a directory where each is a file named
/// `NAME@VERSION.so` (or `libNAME@VERSION.so`; `.dylib` on macOS), `VERSION` a semver
/// version: `greeter@1.4.2.so` (a file whose `VERSION` is not, `greeter@v1.4.2.so`, is
/// passed by, and named by the error when no version answers a reference). A file
/// `libNAME@…` is looked at for both `NAME` and `libNAME` (a module may be named
/// `library`); the module it holds tells which. A
/// reference by name resolves to the highest version its requirement accepts (by
/// Cargo's rules, `^2` accepts no `2.1.0-rc.1`, `2.1.0-rc.1` does), one with no
/// requirement to the highest release (the highest prerelease only when there is no
/// release); two files giving that same version, `greeter@1.4.2.so` and
/// `libgreeter@1.4.2.so`, are refused as ambiguous. A path resolves as
/// [`LocalResolver`] does. The file's name must tell the truth: a load or reload by name
/// whose file holds another module, or a version the requirement does not match, is
/// refused with [`RuntimeError::WrongFile`].
///
/// ```no_run
/// use memlink_runtime::resolver::DirectoryResolver;
/// use memlink_runtime::{ModuleRef, Runtime, RuntimeConfig};
///
/// let runtime = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new("/opt/modules"));
/// // /opt/modules holds greeter@1.4.2.so and greeter@2.0.1.so: this loads 1.4.2.
/// let greeter = runtime.load(ModuleRef::parse("greeter@1")?)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct DirectoryResolver {
    dir: PathBuf,
}

impl DirectoryResolver {
    /// A resolver over the modules in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> DirectoryResolver {
        DirectoryResolver { dir: dir.into() }
    }

    /// Every module file in the directory: its name, version and path, in no order (a
    /// file `libNAME@VERSION.so` listed as `NAME`).
    pub fn modules(&self) -> Result<Vec<(String, Version, PathBuf)>, RuntimeError> {
        Ok(self
            .paths()?
            .filter_map(|path| {
                let (name, version) = versioned_file_name(&path)?;
                Some((name, version, path))
            })
            .collect())
    }

    /// The files in the directory that may hold versions of the module `name`, with
    /// their versions, in no order.
    fn files_of(&self, name: &str) -> Result<Vec<(Version, PathBuf)>, RuntimeError> {
        Ok(self
            .paths()?
            .filter_map(|path| {
                let (written, version) = written_version(&path)?;
                file_answers(written, name).then_some((version, path))
            })
            .collect())
    }

    /// The files named for the module `name` (`NAME@…` or `libNAME@…`, with the library
    /// extension) whose version is no semver version, which [`files_of`](Self::files_of)
    /// passes by: an error that no version answers names them.
    fn misversioned(&self, name: &str) -> Vec<PathBuf> {
        let Ok(paths) = self.paths() else {
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = paths
            .filter(|path| {
                let stem = path
                    .file_name()
                    .and_then(|f| f.to_str())
                    .and_then(|f| f.strip_suffix(std::env::consts::DLL_EXTENSION))
                    .and_then(|f| f.strip_suffix('.'));
                let Some((written, version)) = stem.and_then(|s| s.split_once('@')) else {
                    return false;
                };
                file_answers(written, name) && Version::parse(version).is_err()
            })
            .collect();
        found.sort();
        found
    }

    /// The paths of what the directory holds.
    fn paths(&self) -> Result<impl Iterator<Item = PathBuf>, RuntimeError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| RuntimeError::BadSetting {
            setting: format!("DirectoryResolver::new({:?})", self.dir),
            reason: format!("its directory cannot be read: {e}"),
        })?;
        Ok(entries.filter_map(Result::ok).map(|e| e.path()))
    }
}

/// The module name and version a file name `[lib]NAME@VERSION.<library extension>`
/// gives, if it is one (a leading `lib` taken off the name: `libgreeter@1.4.2.so` is
/// `greeter`; such a file also answers a reference to a module whose own name starts
/// with `lib`, see [`DirectoryResolver`]).
pub fn versioned_file_name(path: &Path) -> Option<(String, Version)> {
    let (written, version) = written_version(path)?;
    let name = written.strip_prefix("lib").unwrap_or(written);
    is_module_name(name).then(|| (name.to_owned(), version))
}

/// The name as written before the `@`, and the version, of a file named
/// `NAME@VERSION.<library extension>`.
fn written_version(path: &Path) -> Option<(&str, Version)> {
    let file = path.file_name()?.to_str()?;
    let stem = file
        .strip_suffix(std::env::consts::DLL_EXTENSION)?
        .strip_suffix('.')?;
    let (written, version) = stem.split_once('@')?;
    let version = Version::parse(version).ok()?;
    is_module_name(written).then_some((written, version))
}

/// Whether a file whose name is written `written` before its `@` may hold the module
/// `name`: `NAME@…` or `libNAME@…`. Both readings are kept, since a module's own name
/// may start with `lib` (`library@1.0.0.so` is the module `library`, not `rary`); a
/// file read the wrong way is refused at load, as holding another module.
fn file_answers(written: &str, name: &str) -> bool {
    written == name || written.strip_prefix("lib") == Some(name)
}

impl Resolver for DirectoryResolver {
    fn resolve(&self, module: &ModuleRef) -> Result<PathBuf, RuntimeError> {
        let Some(name) = module.name() else {
            return local_file(module.path());
        };
        let mut all = self.files_of(name)?;
        // Highest version last; of one version, by path (so that what follows does not
        // depend on the order the directory lists its files in).
        all.sort();
        let matching = chosen_from(module, &all);
        match &matching[..] {
            // Of one precedence (build metadata aside, `1.4.2+a` is `1.4.2+b`).
            [.., (v, first), (w, second)] if v.cmp_precedence(w).is_eq() => {
                Err(RuntimeError::Ambiguous {
                    reference: module.path().display().to_string(),
                    files: vec![first.clone(), second.clone()],
                })
            }
            [.., (_, path)] => local_file(path),
            // Which versions there are (other ones, or none), rather than that no file is
            // at a path that was never looked at.
            [] => {
                let mut versions: Vec<String> = all.iter().map(|(v, _)| v.to_string()).collect();
                versions.dedup();
                Err(RuntimeError::NoSuchVersion {
                    reference: module.path().display().to_string(),
                    dir: self.dir.clone(),
                    versions,
                    passed_by: self.misversioned(name),
                })
            }
        }
    }
}

/// The versions of `all` that `module` may be answered by: those its requirement
/// matches (Cargo's rules: a prerelease only when the requirement names one). With no
/// requirement, the releases, as `name@*` would give; the prereleases only when there
/// is no release, so that a name still finds a module that has none.
fn chosen_from(module: &ModuleRef, all: &[(Version, PathBuf)]) -> Vec<(Version, PathBuf)> {
    let matching = all.iter().filter(|(v, _)| module.matches(v));
    let releases = matching.clone().filter(|(v, _)| v.pre.is_empty());
    if module.requirement().is_none() && releases.clone().next().is_some() {
        return releases.cloned().collect();
    }
    matching.cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_relative_absolute_and_bare_names() {
        for r in [
            "./my_module.so",
            "/opt/m/libx.so",
            "libx.so",
            "target/debug/libx.so",
        ] {
            assert_eq!(ModuleRef::parse(r).unwrap().path(), Path::new(r));
        }
    }

    /// A file that may be there but cannot be looked at (here under a path whose
    /// "directory" is a file; for a user, a directory it may not search) is reported with
    /// the system's reason, not as a file that is not there.
    #[test]
    fn a_file_that_cannot_be_looked_at_is_not_said_to_be_missing() {
        let dir = std::env::temp_dir().join(format!("memlink-resolve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("plain");
        std::fs::write(&file, b"x").unwrap();
        let err = local_file(&file.join("libm.so")).unwrap_err();
        assert!(
            matches!(&err, RuntimeError::NotALibrary { reason, .. } if reason.contains("Not a directory")),
            "{err}"
        );
        assert!(matches!(
            local_file(&dir.join("libnone.so")),
            Err(RuntimeError::FileNotFound { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parse_refuses_empty_and_directories() {
        assert!(matches!(
            ModuleRef::parse("  "),
            Err(RuntimeError::BadReference { .. })
        ));
        assert!(matches!(
            ModuleRef::parse("target/"),
            Err(RuntimeError::BadReference { .. })
        ));
    }

    #[test]
    fn names_with_requirements_parse_and_match() {
        let r = ModuleRef::parse("greeter@1.2").unwrap();
        assert_eq!(r.name(), Some("greeter"));
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(r.matches(&v("1.2.0")) && r.matches(&v("1.9.3")));
        assert!(!r.matches(&v("1.1.9")) && !r.matches(&v("2.0.0")));
        assert!(ModuleRef::parse("greeter@*").unwrap().matches(&v("7.0.0")));
        assert!(matches!(
            ModuleRef::parse("greeter@not-a-version"),
            Err(RuntimeError::BadReference { .. })
        ));
        // No name before the `@`: refused as `greeter@` is, not taken for a file.
        for r in ["@", "@1.2", "my module@1"] {
            let err = ModuleRef::parse(r).unwrap_err();
            assert!(err.to_string().contains("not a module name"), "{r}: {err}");
        }
        assert_eq!(ModuleRef::parse("./@").unwrap().path(), Path::new("./@"));
        // A path that happens to hold an `@` stays a path.
        for path in [
            "./builds/greeter@1.2.so",
            "greeter@1.4.2.so",
            "builds@2/libx.so",
        ] {
            let path = path.replace(".so", &format!(".{}", std::env::consts::DLL_EXTENSION));
            assert_eq!(ModuleRef::parse(&path).unwrap().name(), None, "{path}");
        }
    }

    #[test]
    fn versioned_file_names() {
        let ext = std::env::consts::DLL_EXTENSION;
        let parsed = |f: &str| versioned_file_name(Path::new(&format!("/m/{f}.{ext}")));
        assert_eq!(
            parsed("greeter@1.4.2"),
            Some(("greeter".to_owned(), Version::new(1, 4, 2)))
        );
        assert_eq!(
            parsed("libgreeter@2.0.0-rc.1").map(|(n, v)| (n, v.to_string())),
            Some(("greeter".to_owned(), "2.0.0-rc.1".to_owned()))
        );
        assert_eq!(parsed("greeter"), None);
        assert_eq!(parsed("greeter@1.4"), None, "a version, not a requirement");
    }

    #[test]
    fn local_resolver_reports_missing_files() {
        let err = LocalResolver.resolve(&ModuleRef::from_path("/nonexistent/libnope.so"));
        assert!(matches!(err, Err(RuntimeError::FileNotFound { .. })));
        let dir = LocalResolver.resolve(&ModuleRef::from_path("."));
        assert!(matches!(dir, Err(RuntimeError::BadReference { .. })));
    }

    #[test]
    fn a_name_with_no_file_says_where_its_files_were_looked_for() {
        let dir = std::env::temp_dir().join(format!("memlink-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = DirectoryResolver::new(&dir)
            .resolve(&ModuleRef::parse("nosuch@1").unwrap())
            .unwrap_err();
        assert!(
            matches!(&err, RuntimeError::NoSuchVersion { versions, .. } if versions.is_empty()),
            "{err}"
        );
        let said = err.to_string();
        assert!(
            said.contains("`nosuch@^1`") && said.contains(&*dir.to_string_lossy()),
            "{said}"
        );
        std::fs::remove_dir(&dir).unwrap();
    }
}
