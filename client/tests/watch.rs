//! `memlink serve --watch DIR`: the modules of a directory served, and kept in step with
//! it, to clients connected before and after each change.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{module_path, Daemon, Setup};
use memlink_client::{Client, RuntimeError};

/// Puts a copy of `from` at `to` the way a build does: written beside it, then renamed.
fn install(from: &Path, to: &Path) {
    let tmp = to.with_extension("partial");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

/// Asks `check` again until it says yes, for as long as a slow machine may need.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < until, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A daemon watching a new directory (`modules`, in a scratch directory) that holds
/// `basic`'s library: the scratch directory, the watched one, and the daemon.
fn watching_basic() -> (PathBuf, PathBuf, Daemon) {
    let dir = common::scratch_dir();
    let modules = dir.join("modules");
    std::fs::create_dir_all(&modules).unwrap();
    let lib = format!("libbasic.{}", std::env::consts::DLL_EXTENSION);
    install(&module_path("basic"), &modules.join(lib));
    std::fs::create_dir_all(dir.join("daemon")).unwrap();
    let daemon = Daemon::start_in(dir.join("daemon"), watching(&modules, &dir.join("daemon")));
    (dir, modules, daemon)
}

/// A daemon's setup watching `modules`, with a temporary directory of its own in
/// `daemon_dir` (where its workers' private copies of the watched files go).
fn watching(modules: &Path, daemon_dir: &Path) -> Setup {
    let tmp = daemon_dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    Setup {
        extra: vec!["--watch".into(), modules.to_string_lossy().into_owned()],
        env: vec![("TMPDIR".into(), tmp)],
        ..Setup::default()
    }
}

/// The private copies of modules (see `private_copy`) in `daemon`'s temporary
/// directory, of process `pid` alone when given: in it, or in the directory the daemon
/// makes there for its workers' (`memlink-serve-*`).
fn private_copies(daemon: &Daemon, pid: Option<i32>) -> Vec<String> {
    let prefix = match pid {
        Some(pid) => format!("memlink-image-{pid}-"),
        None => "memlink-image-".to_owned(),
    };
    let entries = |dir: &Path| -> Vec<(String, PathBuf)> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect()
    };
    let top = entries(&daemon.dir.join("tmp"));
    let serving: Vec<_> = top
        .iter()
        .filter(|(name, _)| name.starts_with("memlink-serve-"))
        .flat_map(|(_, dir)| entries(dir))
        .collect();
    top.into_iter()
        .chain(serving)
        .map(|(name, _)| name)
        .filter(|name| name.starts_with(&prefix))
        .collect()
}

#[test]
fn a_watched_directory_is_served_as_its_files_come_change_and_go() {
    let (dir, modules, daemon) = watching_basic();
    let so = |stem: &str| modules.join(format!("{stem}.{}", std::env::consts::DLL_EXTENSION));
    let early = Client::connect(&daemon.socket).unwrap();
    assert_eq!(early.modules().unwrap(), ["basic"]);
    let basic = early.module("basic").unwrap();
    assert_eq!(&*early.call(basic, "echo", b"hi").unwrap(), b"hi");
    assert!(matches!(
        early.module("greeter"),
        Err(RuntimeError::UnknownModule { .. })
    ));

    // A new file: served, to the client connected before it came as to later ones.
    install(&module_path("greeter_v1"), &so("greeter"));
    eventually("greeter is served", || early.module("greeter").is_ok());
    let greeter = early.module("greeter").unwrap();
    let version =
        |c: &Client| -> Result<u32, RuntimeError> { c.call_typed(greeter, "version", &()) };
    assert_eq!(version(&early).unwrap(), 1);
    let late = Client::connect(&daemon.socket).unwrap();
    assert_eq!(late.modules().unwrap(), ["basic", "greeter"]);

    // A changed file: hot-reloaded, the same name answering with the new code.
    install(&module_path("greeter_v2"), &so("greeter"));
    eventually("greeter 2 answers", || version(&early).ok() == Some(2));
    let greeting: String = early.call_typed(greeter, "greet", &("daemon",)).unwrap();
    assert_eq!(greeting, "hello, daemon");

    // A removed file: no longer served.
    std::fs::remove_file(so("libbasic")).unwrap();
    eventually("basic is gone", || {
        matches!(
            early.call(basic, "echo", b"hi"),
            Err(RuntimeError::UnknownModule { .. })
        )
    });
    assert_eq!(version(&early).unwrap(), 2, "the others serve on");
    let log = daemon.log_text();
    assert!(log.contains("reloaded 1.4.2 -> 2.0.1"), "{log}");
    // The daemon's own lines, not a module's record with empty fields (it read
    // "... reloaded 1.4.2 -> 2.0.1 module=memlink::watch method= trace_id=0 fields=").
    let line = log
        .lines()
        .find(|l| l.contains("reloaded 1.4.2 -> 2.0.1"))
        .unwrap();
    assert!(
        line.ends_with("from=memlink::watch") && !line.contains("method="),
        "{line}"
    );
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A typed handle made for a method that changed under it since (here: the watched
/// file removed, then `greeter` 3 put there, whose `greet` returns the name's length
/// where version 2's returns the greeting's raw bytes; the watch refuses such a change
/// as a reload, not as a new module) is refused by the worker, naming the method as it
/// is now. Before, it sent its call as it was and read the number's MessagePack as text,
/// `Ok("\u{3}")`: a wrong value, no error. Plain calls, and handles on methods that
/// did not change, call on.
#[test]
fn a_typed_handle_refuses_a_method_that_changed_in_the_daemon() {
    let dir = common::scratch_dir();
    let modules = dir.join("modules");
    std::fs::create_dir_all(&modules).unwrap();
    let so = modules.join(format!("greeter.{}", std::env::consts::DLL_EXTENSION));
    install(&module_path("greeter_v2"), &so);
    let setup = Setup {
        extra: vec!["--watch".into(), modules.to_string_lossy().into_owned()],
        ..Setup::default()
    };
    std::fs::create_dir_all(dir.join("daemon")).unwrap();
    let daemon = Daemon::start_in(dir.join("daemon"), setup);
    let client = Client::connect(&daemon.socket).unwrap();
    let other = Client::connect(&daemon.socket).unwrap();
    let greeter = client.module("greeter").unwrap();
    let greet = client.typed::<str, String>(greeter, "greet").unwrap();
    let version = client.typed::<(), u32>(greeter, "version").unwrap();
    let add = client.typed::<(u32, u32), u32>(greeter, "add").unwrap();
    assert_eq!(greet.call("ada").unwrap(), "hello, ada");
    // Another client that described the module before the change, and holds no handle.
    let theirs = other.module("greeter").unwrap();
    assert_eq!(
        other.methods(theirs).unwrap().len(),
        client.methods(greeter).unwrap().len()
    );

    std::fs::remove_file(&so).unwrap();
    eventually("greeter 2 is gone", || version.call(&()).is_err());
    install(&module_path("greeter_v3"), &so);
    eventually("greeter 3 answers", || version.call(&()).ok() == Some(3));

    // The other client's description is asked for anew: `greet` returns a number now
    // (before, the list kept from greeter 2 said `String`).
    let described = other.methods(theirs).unwrap();
    let greet_now = described.iter().find(|m| m.name == "greet").unwrap();
    assert_eq!(
        greet_now.signature.as_deref(),
        Some("greet(name: String) -> u32")
    );

    let err = greet.call("ada").unwrap_err();
    let RuntimeError::MethodChanged {
        module,
        method,
        signature,
        ..
    } = &err
    else {
        panic!("expected the change to be refused, got {err:?}");
    };
    assert_eq!((module.as_str(), method.as_str()), ("greeter", "greet"));
    assert_eq!(signature.as_deref(), Some("greet(name: String) -> u32"));
    assert!(err.to_string().contains("make it again"), "{err}");
    // Made again, from the daemon's description now, a handle reads what it returns.
    let greet = client.typed::<str, u32>(greeter, "greet").unwrap();
    assert_eq!(greet.call("ada").unwrap(), 3);
    // A call by name with a description kept from before is made anew, not refused.
    let n: u32 = other.call_typed(theirs, "greet", "ada").unwrap();
    assert_eq!(n, 3);
    // `add` changed its types, not its formats (MessagePack in and out): the same
    // bytes mean what the new signature says, so its handle is refused too, as in the
    // runtime; a plain call checks nothing.
    let err = add.call(&(2, 3)).unwrap_err();
    assert!(
        matches!(&err, RuntimeError::MethodChanged { method, .. } if method == "add"),
        "{err:?}"
    );
    let raw = client.call(greeter, "version", &[0x90]).unwrap();
    assert_eq!(&*raw, &[3]);
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What the watch of a directory did is written to the daemon's log once. The worker
/// forwards each step to the daemon, which logs it, and its own log wrote each refusal
/// too: every file the watch refused was told twice.
#[test]
fn a_file_the_watch_refuses_is_logged_once() {
    let (_, modules, daemon) = watching_basic();
    let so = |stem: &str| modules.join(format!("{stem}.{}", std::env::consts::DLL_EXTENSION));
    std::fs::write(so("junk"), b"no library").unwrap();
    // A module loaded after it; the watch may look at both at once (a busy machine),
    // and then at `greeter.so` first, so the refusal is waited for too. The worker
    // wrote its own line of it, if at all, before it sent the step the daemon logs.
    install(&module_path("greeter_v1"), &so("greeter"));
    eventually("greeter is loaded and junk refused", || {
        let log = daemon.log_text();
        log.contains("greeter.so: loaded") && log.contains("junk.so")
    });
    let log = daemon.log_text();
    let refusals = log.lines().filter(|l| l.contains("junk.so")).count();
    assert_eq!(refusals, 1, "{log}");
}

/// A watched file rewritten with another module that the daemon already serves under
/// its name and version (here `basic`, a second copy of it written over `greeter.so`)
/// is refused once, and told once, and the module the file held serves on, as after
/// any refused change (the other module is loaded before the one the file held goes).
/// Before, the unload of the module the file held made the watch try again every file
/// refused for a name held, the one just refused among them: the same refusal was
/// logged twice for one change (and its library opened twice to be refused).
#[test]
fn a_file_rewritten_with_a_module_already_served_is_refused_once() {
    let (_, modules, daemon) = watching_basic();
    let so = |stem: &str| modules.join(format!("{stem}.{}", std::env::consts::DLL_EXTENSION));
    install(&module_path("greeter_v1"), &so("greeter"));
    eventually("greeter is loaded", || {
        daemon.log_text().contains("greeter.so: loaded")
    });
    install(&module_path("basic"), &so("greeter"));
    eventually("the other module is refused", || {
        daemon
            .log_text()
            .lines()
            .any(|l| l.contains("greeter.so") && l.contains("is already loaded"))
    });
    // A module loaded after it: once its step is logged, so is every step of the
    // change before it, which the watch made first.
    install(&module_path("greeter_v2"), &so("later"));
    eventually("later is loaded", || {
        daemon.log_text().contains("later.so: loaded")
    });
    let log = daemon.log_text();
    let refusals = log
        .lines()
        .filter(|l| l.contains("greeter.so") && l.contains("is already loaded"))
        .count();
    assert_eq!(refusals, 1, "{log}");
    assert!(!log.contains("greeter.so: unloaded"), "{log}");
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    assert_eq!(&*client.call(basic, "echo", b"hi").unwrap(), b"hi");
    // (Beside `later.so`'s version 2, which the bare name finds.)
    let greeter = client.module("greeter@^1").unwrap();
    let version: u32 = client.call_typed(greeter, "version", &()).unwrap();
    assert_eq!(version, 1, "the module the file held serves on");

    // Once the module that held its name goes, the refused file is tried again: its
    // module comes, and the one the file held goes.
    std::fs::remove_file(so("libbasic")).unwrap();
    eventually("greeter.so's module takes the name", || {
        daemon.log_text().contains("greeter.so: loaded")
            && daemon.log_text().matches("greeter.so: loaded").count() == 2
    });
    let late = Client::connect(&daemon.socket).unwrap();
    let basic = late.module("basic").unwrap();
    assert_eq!(&*late.call(basic, "echo", b"back").unwrap(), b"back");
    assert!(late.module("greeter@^1").is_err(), "{}", daemon.log_text());
}

/// A connection that called a module by name keeps calling what the name finds now: a
/// higher version loaded beside it (here from a watched directory) takes the name, for
/// that connection as for a new one. Before, the connection's thread kept the handle its
/// first lookup found for as long as that module stayed loaded, and sent `greeter` to
/// 1.4.2 with 2.0.1 served beside it, where a new client reached 2.0.1.
#[test]
fn a_connection_calling_a_name_follows_a_version_loaded_beside_it() {
    let (dir, modules, daemon) = watching_basic();
    let so = |stem: &str| modules.join(format!("{stem}.{}", std::env::consts::DLL_EXTENSION));
    install(&module_path("greeter_v1"), &so("greeter@1.4.2"));
    let early = Client::connect(&daemon.socket).unwrap();
    eventually("greeter 1 is served", || early.module("greeter").is_ok());
    let version = |c: &Client| -> Result<u32, RuntimeError> {
        let greeter = c.module("greeter")?;
        c.call_typed(greeter, "version", &())
    };
    assert_eq!(version(&early).unwrap(), 1);
    assert_eq!(
        early
            .call_typed::<_, u32>(early.module("greeter@^1").unwrap(), "version", &())
            .unwrap(),
        1
    );

    install(&module_path("greeter_v2"), &so("greeter@2.0.1"));
    eventually("a new client reaches greeter 2", || {
        Client::connect(&daemon.socket).is_ok_and(|late| version(&late).ok() == Some(2))
    });
    assert_eq!(
        version(&early).unwrap(),
        2,
        "the highest version takes the name"
    );
    assert_eq!(
        early
            .call_typed::<_, u32>(early.module("greeter@^1").unwrap(), "version", &())
            .unwrap(),
        1,
        "a requirement only 1.4.2 meets still finds it"
    );

    // The higher version gone, the name leads back to the one left.
    std::fs::remove_file(so("greeter@2.0.1")).unwrap();
    eventually("greeter 1 answers again", || {
        version(&early).ok() == Some(1)
    });
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A watched file whose constructor never returns holds the system loader's lock in the
/// worker for good; a connection that comes meanwhile gets a thread that cannot start.
/// The daemon still stops on SIGTERM: once no call runs, the workers are given a few
/// seconds to stop, then ended. Before, it waited for that thread,
/// and the daemon never stopped.
#[test]
fn a_watched_library_that_never_finishes_loading_does_not_keep_the_daemon_from_stopping() {
    let (dir, modules, mut daemon) = watching_basic();
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    assert_eq!(&*client.call(basic, "echo", b"hi").unwrap(), b"hi");
    let so = modules.join(format!("hang.{}", std::env::consts::DLL_EXTENSION));
    install(&module_path("hang_on_load"), &so);
    // The worker starts loading it (its log says so when the load begins), and a new
    // connection comes: its thread waits for the loader's lock.
    std::thread::sleep(Duration::from_millis(500));
    let socket = daemon.socket.clone();
    std::thread::spawn(move || {
        let _ = Client::connect(&socket).map(|c| c.modules());
    });
    std::thread::sleep(Duration::from_millis(500));
    common::signal(daemon.pid(), rustix::process::Signal::TERM);
    // The bounds are 10 s once no call runs, or 30 s once the worker's calls ended.
    let until = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < until,
            "the daemon did not stop: {}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}: {}", daemon.log_text());
    assert!(
        daemon.log_text().contains("it is ended"),
        "{}",
        daemon.log_text()
    );
    drop(client);
    let _ = std::fs::remove_dir_all(dir);
}

/// A library whose constructor crashes, put in the watched directory, takes the worker
/// that loads it down once: the supervisor knows which file it was opening, logs it,
/// and the next worker leaves that file alone while it is what it was, serving the rest.
/// Before, every new worker loaded the same file at its start and died the same way, and
/// `basic` was down for good. A daemon started with such a file there starts, and serves
/// the rest; the file, rewritten as a good module, is loaded.
#[test]
fn a_watched_library_that_crashes_as_it_loads_is_left_alone_and_the_rest_served() {
    let (dir, modules, mut daemon) = watching_basic();
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    assert_eq!(&*client.call(basic, "echo", b"hi").unwrap(), b"hi");
    let first = daemon.worker_pid_named("main");
    let so = modules.join(format!("crash.{}", std::env::consts::DLL_EXTENSION));
    install(&module_path("crash_on_load"), &so);
    daemon.wait_log("took the worker down as it was loaded");
    assert!(
        daemon.log_text().contains("SIGABRT"),
        "{}",
        daemon.log_text()
    );
    // The copy it was loading is gone with it (the supervisor removes it once the
    // worker has ended: a daemon whose workers kept dying so left a file each time).
    assert_eq!(private_copies(&daemon, Some(first)), Vec::<String>::new());
    eventually("basic is served again", || {
        client
            .call(basic, "echo", b"hi")
            .is_ok_and(|out| &*out == b"hi")
    });
    // One worker died, and the one started after it stays: no crash loop.
    let second = daemon.worker_pid_named("main");
    assert_ne!(first, second);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        daemon.worker_pid_named("main"),
        second,
        "{}",
        daemon.log_text()
    );
    assert_eq!(&*client.call(basic, "echo", b"hi").unwrap(), b"hi");
    assert!(matches!(
        client.module("never"),
        Err(RuntimeError::UnknownModule { .. })
    ));

    // A daemon started with the file there starts, leaving it alone.
    std::fs::create_dir_all(dir.join("again")).unwrap();
    let again = Daemon::start_in(dir.join("again"), watching(&modules, &dir.join("again")));
    let late = Client::connect(&again.socket).unwrap();
    let basic = late.module("basic").unwrap();
    assert_eq!(&*late.call(basic, "echo", b"hi").unwrap(), b"hi");
    assert!(
        again.log_text().contains(&so.display().to_string()),
        "{}",
        again.log_text()
    );
    // Neither the worker that died starting nor the one serving keeps a copy.
    eventually("no private copy is left", || {
        private_copies(&again, None).is_empty()
    });

    // The file rewritten as a good module is loaded.
    install(&module_path("greeter_v1"), &so);
    eventually("the rewritten file is served", || {
        late.module("greeter").is_ok()
    });
    let greeter = late.module("greeter").unwrap();
    let version: u32 = late.call_typed(greeter, "version", &()).unwrap();
    assert_eq!(version, 1);
    drop((client, late));
    // A daemon that stops leaves nothing in its temporary directory (its workers' copies
    // were in a directory of its own, removed).
    common::signal(daemon.pid(), rustix::process::Signal::TERM);
    assert!(
        daemon.child.wait().unwrap().success(),
        "{}",
        daemon.log_text()
    );
    let left: Vec<_> = std::fs::read_dir(daemon.dir.join("tmp")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A library whose constructor never returns, put in the watched directory, holds the
/// system loader's lock, and every connection handed to its worker after it waits for
/// that lock. Once it has been loading for a minute the supervisor ends the worker, and
/// the next one leaves the file alone: a connection made then is served. Before, such a
/// connection waited for good.
#[test]
fn a_watched_library_that_never_finishes_loading_is_ended_and_left_alone() {
    let (dir, modules, daemon) = watching_basic();
    let so = modules.join(format!("hang.{}", std::env::consts::DLL_EXTENSION));
    install(&module_path("hang_on_load"), &so);
    let until = Instant::now() + Duration::from_secs(150);
    while !daemon
        .log_text()
        .contains("took the worker down as it was loaded")
    {
        assert!(Instant::now() < until, "{}", daemon.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        daemon.log_text().contains("did not finish loading"),
        "{}",
        daemon.log_text()
    );
    eventually("a new connection is served", || {
        Client::connect(&daemon.socket).is_ok_and(|c| {
            c.module("basic")
                .and_then(|b| c.call(b, "echo", b"hi"))
                .is_ok_and(|out| &*out == b"hi")
        })
    });
    // The worker ended took its copy of the file with it (and the one serving keeps
    // none once it has loaded).
    eventually("no private copy is left", || {
        private_copies(&daemon, None).is_empty()
    });
    let _ = std::fs::remove_dir_all(dir);
}
