//! Where modules come from: a [`ModuleRef`] names one, a resolver finds its file.

use std::path::{Path, PathBuf};

use crate::error::RuntimeError;

/// A reference to a module: for now, the path of its shared library.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModuleRef {
    path: PathBuf,
}

impl ModuleRef {
    /// Parses a reference: a relative path (`./my_module.so`, `target/x.so`), an
    /// absolute path, or a bare file name (`my_module.so`, looked up in the current
    /// directory).
    pub fn parse(reference: &str) -> Result<ModuleRef, RuntimeError> {
        let trimmed = reference.trim();
        if trimmed.is_empty() {
            return Err(RuntimeError::BadReference {
                reference: reference.to_owned(),
                reason: "it is empty",
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
        })
    }

    /// A reference to the library at `path`.
    pub fn from_path(path: impl Into<PathBuf>) -> ModuleRef {
        ModuleRef { path: path.into() }
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Turns a [`ModuleRef`] into the file to load.
pub trait Resolver: Send + Sync + std::fmt::Debug {
    /// The absolute path of the library `module` refers to.
    fn resolve(&self, module: &ModuleRef) -> Result<PathBuf, RuntimeError>;
}

/// Resolves references against the local file system, relative to the current
/// directory.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalResolver;

impl Resolver for LocalResolver {
    fn resolve(&self, module: &ModuleRef) -> Result<PathBuf, RuntimeError> {
        let path = module.path();
        if !path.exists() {
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
        // A path with no separator is a bare file name; `dlopen` would search the
        // system's library path for it, so make it explicit.
        path.canonicalize().map_err(|_| RuntimeError::FileNotFound {
            path: path.to_owned(),
        })
    }
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
    fn local_resolver_reports_missing_files() {
        let err = LocalResolver.resolve(&ModuleRef::from_path("/nonexistent/libnope.so"));
        assert!(matches!(err, Err(RuntimeError::FileNotFound { .. })));
        let dir = LocalResolver.resolve(&ModuleRef::from_path("."));
        assert!(matches!(dir, Err(RuntimeError::BadReference { .. })));
    }
}
