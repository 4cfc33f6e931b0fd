//! Loading a module into the registry: the file resolved and opened (from a private
//! copy where the loader would hand back another file's image), checked to be what was
//! asked for, given its slot, name, persistent region and figures, and initialized, its
//! dependencies checked last.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use memlink_abi::{self as abi, HostApi, InitFrame, Status, StrRef};

use super::retiring::shutdown;
use super::Registry;
use crate::buffer::AlignedBuf;
use crate::config::{ModuleSettings, RuntimeConfig};
use crate::error::RuntimeError;
use crate::handle::ModuleHandle;
use crate::lifecycle;
use crate::locks::{self, Holding, Lock};
use crate::module::{CannotAllocate, Module, PersistentRegion};
use crate::names::Taken;
use crate::reload::PrivateCopy;
use crate::resolver::ModuleRef;
use crate::written::Contents;

impl Registry {
    /// Loads the module `reference` names, with its own `settings`.
    pub(crate) fn load(
        &self,
        reference: &ModuleRef,
        settings: &ModuleSettings,
    ) -> Result<ModuleHandle, RuntimeError> {
        self.this_process()?;
        let path = self.resolver.resolve(reference)?;
        let concurrency = settings
            .max_concurrency
            .unwrap_or(self.config.max_concurrency)
            // The field is public: a limit of 0 would refuse (or hold) every call.
            .max(1);
        self.install(settings, || {
            // One file is one image, whatever path (a symbolic link) leads to it: the file
            // a live module was loaded from, as it was then. Another file at that path (a
            // new build renamed over it) is not that one: it loads, from a private copy
            // (below). The path alone counts only where a file's identity cannot be read.
            // A private copy is an image of its own: loaded so, a file already loaded
            // loads again beside itself (under another name, or it is refused as the
            // name's).
            let file = crate::module::FileId::of(&path);
            let same_file = |m: &Module| match file {
                Some(_) => m.file == file,
                None => m.path == path,
            };
            let loaded = (!settings.private_copy)
                .then(|| self.live().find(|(_, m)| same_file(m)))
                .flatten();
            if let Some((handle, module)) = loaded {
                return Err(RuntimeError::AlreadyLoaded {
                    path: path.clone(),
                    name: module.name.clone(),
                    handle,
                });
            }
            // The loader would hand back the image of the file it mapped at this path
            // before (a new build renamed over it since): the file there now is loaded
            // from a private copy, as a fresh image of its own.
            let fresh = settings.private_copy || crate::module::loader_holds_another_file(&path);
            let module = if fresh {
                open_copy(&path, concurrency, reference.looked())?
            } else {
                Module::open(&path, concurrency)?
            };
            answers(reference, &path, &module, settings.name.as_deref())?;
            Ok(module)
        })
    }

    /// Installs the module `open` makes (called under the loading lock) with its own
    /// `settings` (name, persistent size, default timeout), and initializes it.
    pub(crate) fn install(
        &self,
        settings: &ModuleSettings,
        open: impl FnOnce() -> Result<Module, RuntimeError>,
    ) -> Result<ModuleHandle, RuntimeError> {
        self.this_process()?;
        let _calls = (self.hold_running_calls)();
        locks::refuse(Lock::Loads(self.id), "load")?;
        // Before the library is opened, which runs its initializers.
        let persistent = self.before_opening(settings)?;
        // A load into this runtime from inside another's (a sink of its module's) must
        // not wait in a loop of such loads.
        let waiting = locks::Waiting::enter(Lock::Loads(self.id), "load")?;
        let mut slots = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        drop(waiting);
        if !slots.has_room() {
            return Err(RuntimeError::TooManyModules {
                limit: self.slots.len(),
            });
        }
        let mut module = open()?;
        module.persistent = persistent;
        module.default_timeout = settings.default_timeout.or(self.config.default_timeout);
        module.max_call_time = settings.max_call_time.or(self.config.max_call_time);
        if let Some(name) = &settings.name {
            module.name = name.clone();
        }
        let longest = self.longest_name.load(Ordering::Relaxed);
        if module.name.len() > longest {
            return Err(RuntimeError::InvalidModule {
                path: module.path.clone(),
                reason: format!(
                    "its name `{}` is {} bytes, and this daemon serves names of at most {longest} (what a call names its module in): serve it under a shorter one (`name` in the settings, or `NAME=PATH`)",
                    crate::names::shown(&module.name, longest),
                    module.name.len()
                ),
            });
        }
        // Names change only under the loading lock, held here throughout: what this
        // check sees still holds when the module takes its name below.
        let taken = self.names.read().unwrap_or_else(|p| p.into_inner()).check(
            &module.name,
            &module.own_name,
            module.semver.as_ref(),
        );
        if let Err(Taken(name)) = taken {
            return Err(RuntimeError::NameTaken { name });
        }
        // The module's code runs under the lock of loads from here: what it calls back
        // into on this thread must not ask for that lock again.
        let running = Holding::enter(Lock::Loads(self.id), &module.name);
        init(&module, &self.config, self.host)?;
        if let Err(e) = self.check_dependencies(&module, None) {
            shutdown(&module);
            return Err(e);
        }
        module.warn_if_it_aborts();
        drop(running);
        let mut names = self.names.write().unwrap_or_else(|p| p.into_inner());
        let Some((index, generation)) = slots.take() else {
            unreachable!("`has_room` said there is a slot, under the same lock")
        };
        module.generation = generation;
        self.changing(|| {
            names.add(&module.name, &module.own_name, module.semver.clone(), index);
            let replaced = self.put(index, Some(Arc::new(module)));
            debug_assert!(replaced.is_none(), "a free slot holds no module");
        });
        Ok(self.handle(index, generation))
    }

    /// What `install` checks of `settings` before it opens a library: the module's name,
    /// and memory of the sizes a call and the module need, of which the module's
    /// persistent region is made here.
    pub(super) fn before_opening(
        &self,
        settings: &ModuleSettings,
    ) -> Result<Option<PersistentRegion>, RuntimeError> {
        if let Some(name) = &settings.name {
            if let Some(reason) = crate::names::unusable(name) {
                return Err(RuntimeError::BadSetting {
                    setting: format!("ModuleSettings::name = {name:?}"),
                    reason: reason.to_owned(),
                });
            }
        }
        // A deadline as the call comes in: every call made without one of its own would
        // time out before it starts, each failure a timeout that names no setting.
        let timeouts = [
            ("ModuleSettings::default_timeout", settings.default_timeout),
            (
                "RuntimeConfig::default_timeout",
                self.config.default_timeout,
            ),
        ];
        if let Some((setting, _)) = timeouts.iter().find(|(_, t)| *t == Some(Duration::ZERO)) {
            return Err(RuntimeError::BadSetting {
                setting: format!("{setting} = 0"),
                reason: "every call made without a deadline would time out before it starts; \
                         leave it `None` for no deadline"
                    .to_owned(),
            });
        }
        let limits = [
            ("ModuleSettings::max_call_time", settings.max_call_time),
            ("RuntimeConfig::max_call_time", self.config.max_call_time),
        ];
        if let Some((setting, _)) = limits.iter().find(|(_, t)| *t == Some(Duration::ZERO)) {
            return Err(RuntimeError::BadSetting {
                setting: format!("{setting} = 0"),
                reason: "every call would time out before it starts; leave it `None` for no \
                         limit"
                    .to_owned(),
            });
        }
        // Every call takes an arena of this size, allocated when no idle one is at hand:
        // one that can never be had would fail every call (`QuotaExceeded`), so it is
        // tried here, where it is an error the host sees, naming the setting.
        let arena = self.config.arena_size;
        if AlignedBuf::try_zeroed(arena).is_none() {
            return Err(CannotAllocate(arena).refused("RuntimeConfig::arena_size"));
        }
        Ok(match settings.persistent_size {
            Some(len) => PersistentRegion::asked(len, "ModuleSettings::persistent_size")?,
            None => {
                let len = self.config.persistent_size;
                PersistentRegion::asked(len, "RuntimeConfig::persistent_size")?
            }
        })
    }

    /// How the registry calls a module's lifecycle exports: the call path, which the
    /// layer above (`crate::call`) gave it when it made the registry.
    pub(super) fn export_caller(
        &self,
    ) -> impl Fn(&Module, u32, &[u8]) -> Result<Vec<u8>, String> + '_ {
        move |module, index, args| (self.call_export)(self, module, index, args)
    }

    /// Refuses `module` if a module it declares it calls is not loaded; for a reload's
    /// next version, `replacing` is the slot it will take, whose version leaves.
    pub(super) fn check_dependencies(
        &self,
        module: &Module,
        replacing: Option<u32>,
    ) -> Result<(), RuntimeError> {
        // A module that calls itself is its own dependency: once loaded it answers its
        // name, and a requirement its version meets; no other load could stand in. The
        // version a reload replaces answers nothing once the reload is done.
        let is_loaded = |reference: &str| {
            let names = self.names.read().unwrap_or_else(|p| p.into_inner());
            names.lookup_except(reference, replacing).is_some() || answers_as(module, reference)
        };
        match lifecycle::missing_dependency(module, &self.export_caller(), is_loaded) {
            Ok(None) => Ok(()),
            Ok(Some(dependency)) => Err(RuntimeError::MissingDependency {
                module: module.name.clone(),
                dependency,
            }),
            // Its init went well: what is wrong is what it declares.
            Err(reason) => Err(RuntimeError::InvalidModule {
                path: module.path.clone(),
                reason,
            }),
        }
    }
}

/// Refuses `module`, opened from `path`, unless it is what `reference` asks for (see
/// [`ModuleRef::answered_by`]), by its own name or the name it is `kept` under.
pub(super) fn answers(
    reference: &ModuleRef,
    path: &Path,
    module: &Module,
    kept: Option<&str>,
) -> Result<(), RuntimeError> {
    reference.answered_by(
        path,
        (&module.own_name, kept),
        &module.version,
        module.semver.as_ref(),
    )
}

/// Opens a private copy of the library at `path` (a fresh image, however often the file
/// was loaded; see `crate::reload`), as the module of `path`: errors name `path`. With
/// `looked`, a file written since then is refused (`PrivateCopy::of`).
pub(super) fn open_copy(
    path: &Path,
    concurrency: usize,
    looked: Option<Contents>,
) -> Result<Module, RuntimeError> {
    // Before the copy is made: a refusal leaves no file behind.
    crate::module::room_for_image(path)?;
    let copy = PrivateCopy::of(path, looked)?;
    let mut module = Module::open_private(copy.path(), concurrency)
        .map_err(|e| e.for_path(copy.path(), path))?;
    path.clone_into(&mut module.path);
    // Known by its copy's identity, not the original's: nothing keeps the original's
    // inode alive (the copy is what is mapped), and a new file given it once the
    // original is removed would read as this module's (`AlreadyLoaded`).
    Ok(module)
}

/// Whether `module`, once loaded, is what `reference` (`name` or `name@requirement`)
/// finds.
fn answers_as(module: &Module, reference: &str) -> bool {
    crate::names::split(reference).is_some_and(|(name, requirement)| {
        name == module.name && crate::names::admits(requirement.as_ref(), module.semver.as_ref())
    })
}

pub(super) fn init(
    module: &Module,
    config: &RuntimeConfig,
    host: &'static HostApi,
) -> Result<(), RuntimeError> {
    let mut frame = InitFrame {
        size: size_of::<InitFrame>() as u32,
        abi_version: abi::ABI_VERSION,
        host,
        max_log_level: crate::log::max_level(config.log_level),
        error: StrRef {
            ptr: core::ptr::null(),
            len: 0,
        },
    };
    // SAFETY: `init` is the module's entry point with the ABI's signature; the frame is
    // valid for the call and `host` is a static.
    let status = unsafe { (module.entry.init)(&mut frame) };
    if status == Status::Ok as i32 {
        return Ok(());
    }
    // SAFETY: on failure the module points `error` at a message in its static memory.
    let message = unsafe { frame.error.as_str() }
        .filter(|m| !m.is_empty())
        .map_or_else(|| no_init_message(status, frame.error), str::to_owned);
    Err(RuntimeError::InitFailed {
        module: module.name.clone(),
        message,
    })
}

/// What a failed `memlink_init` is reported as when its `error` holds no message: the
/// status by its name too (a bare number sent a C author to the header), and why no
/// message was read.
fn no_init_message(status: i32, error: abi::StrRef) -> String {
    let name = Status::from_code(status).map_or_else(|| "unknown".to_owned(), |s| format!("{s:?}"));
    if error.len == 0 {
        return format!("status {status} ({name}), no message in InitFrame::error");
    }
    let why = crate::describe::unreadable(error);
    format!("status {status} ({name}), InitFrame::error {why}")
}
