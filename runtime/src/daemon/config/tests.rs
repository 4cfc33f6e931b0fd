use super::*;

#[test]
fn a_toml_file_reads_with_defaults_and_unknown_keys_are_refused() {
    let c: DaemonConfig = toml::from_str(
        r#"
        socket = "/tmp/m.sock"
        trust = "nobody"
        [[modules]]
        path = "/x/libbasic.so"
        [runtime]
        max_concurrency = 3
        max_call_ms = 1500
        [limits]
        open_files = 64
        "#,
    )
    .unwrap();
    assert_eq!(c.socket_mode, 0o600);
    assert_eq!(c.trust, Trust::Nobody);
    assert_eq!(c.modules[0].name, None);
    assert_eq!(c.runtime_config().max_concurrency, 3);
    assert_eq!(
        c.runtime_config().max_call_time,
        Some(Duration::from_millis(1500))
    );
    assert_eq!(c.limits.open_files, Some(64));
    let err = toml::from_str::<DaemonConfig>("socket = \"/s\"\nsockett = 1").unwrap_err();
    assert!(err.to_string().contains("sockett"), "{err}");
}

#[test]
fn a_module_entry_carries_its_own_settings() {
    let c: DaemonConfig = toml::from_str(
        r#"
        socket = "/tmp/m.sock"
        [[modules]]
        name = "resize"
        path = "/x/libresize.so"
        max_concurrency = 8
        default_timeout_ms = 250
        max_call_ms = 2000
        persistent_size = 4096
        [[modules]]
        path = "/x/libbasic.so"
        "#,
    )
    .unwrap();
    let own = c.modules[0].settings();
    assert_eq!(own.name.as_deref(), Some("resize"));
    assert_eq!(own.max_concurrency, Some(8));
    assert_eq!(own.default_timeout, Some(Duration::from_millis(250)));
    assert_eq!(own.max_call_time, Some(Duration::from_secs(2)));
    assert_eq!(own.persistent_size, Some(4096));
    assert_eq!(c.modules[1].settings(), ModuleSettings::default());
    let err = toml::from_str::<DaemonConfig>(
        "socket = \"/s\"\n[[modules]]\npath = \"/x\"\nmax_concurency = 2",
    )
    .unwrap_err();
    assert!(err.to_string().contains("max_concurency"), "{err}");
}

#[test]
fn modules_with_limits_or_a_worker_get_a_process_apart_with_the_lowest_limits() {
    let c: DaemonConfig = toml::from_str(
        r#"
        socket = "/tmp/m.sock"
        watch = "/w"
        [limits]
        open_files = 512
        cpu_seconds = 30
        [[modules]]
        path = "/x/libbasic.so"
        [[modules]]
        path = "/x/libcrashy.so"
        limits = { memory_bytes = 100000000, open_files = 900 }
        [[modules]]
        name = "a"
        path = "/x/liba.so"
        worker = "pair"
        limits = { open_files = 64 }
        [[modules]]
        name = "b"
        path = "/x/libb.so"
        worker = "pair"
        limits = { open_files = 128, cpu_seconds = 5 }
        "#,
    )
    .unwrap();
    let plans = c.workers().unwrap();
    let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["main", "libcrashy", "pair"]);
    assert_eq!(plans[0].modules.len(), 1);
    assert_eq!(plans[0].limits, c.limits);
    let crashy = &plans[1].limits;
    assert_eq!(
        (crashy.memory_bytes, crashy.open_files, crashy.cpu_seconds),
        (Some(100_000_000), Some(512), Some(30)),
        "a module's limits only lower the daemon's"
    );
    let pair = &plans[2];
    assert_eq!(pair.modules.len(), 2);
    assert_eq!(
        (pair.limits.open_files, pair.limits.cpu_seconds),
        (Some(64), Some(5))
    );
    assert_eq!(
        c.for_worker(&plans[0]).watch.as_deref(),
        Some(Path::new("/w"))
    );
    assert_eq!(
        c.for_worker(&plans[2]).watch,
        None,
        "the main worker watches"
    );
    assert_eq!(c.for_worker(&plans[2]).modules, pair.modules);
    let bad: DaemonConfig =
        toml::from_str("socket = \"/s\"\n[[modules]]\npath = \"/x\"\nworker = \"\"").unwrap();
    let err = bad.workers().unwrap_err();
    assert!(err.contains("a worker's name is 1 to 64"), "{err}");
    let main: DaemonConfig = toml::from_str(
        "socket = \"/s\"\n[[modules]]\nname = \"main\"\npath = \"/x\"\nlimits = { open_files = 90 }",
    )
    .unwrap();
    let err = main.workers().unwrap_err();
    assert!(err.contains("needs `worker = \"NAME\"`"), "{err}");
    let zero: DaemonConfig = toml::from_str("socket = \"/s\"\nthreads_per_connection = 0").unwrap();
    assert!(zero
        .workers()
        .unwrap_err()
        .contains("`threads_per_connection` is 0: it is 1 to 64"));
    let mut many = DaemonConfig::new("/s");
    for n in 0..MAX_WORKERS {
        let mut entry = ModuleEntry::new(None, format!("/x/m{n}.so"));
        entry.worker = Some(format!("w{n}"));
        many.modules.push(entry);
    }
    let err = many.workers().unwrap_err();
    assert!(
        err.contains("33 worker processes asked for (")
            && err.contains("; at most 32: name a shared `worker`"),
        "{err}"
    );
}

/// A limit of zero calls at once would serve nothing: the file is refused when read,
/// naming the key, and so is a configuration made in code when the daemon plans its
/// workers.
#[test]
fn a_zero_max_concurrency_is_refused_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("memlink-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("zero.toml");
    let read = |text: &str| {
        std::fs::write(&file, text).unwrap();
        DaemonConfig::from_file(&file)
    };
    let err = read("socket = \"/s\"\n[runtime]\nmax_concurrency = 0").unwrap_err();
    assert!(
        err.starts_with(&format!("{}: ", file.display()))
            && err.contains("`[runtime] max_concurrency` is 0")
            && err.contains("at least 1"),
        "{err}"
    );
    let err = read(
        "socket = \"/s\"\n[[modules]]\nname = \"resize\"\npath = \"/x/libresize.so\"\nmax_concurrency = 0",
    )
    .unwrap_err();
    assert!(
        err.contains("`max_concurrency` of module `resize` is 0"),
        "{err}"
    );
    let one = read("socket = \"/s\"\n[runtime]\nmax_concurrency = 1").unwrap();
    assert_eq!(one.runtime_config().max_concurrency, 1);
    let _ = std::fs::remove_dir_all(&dir);

    let mut made = DaemonConfig::new("/s");
    made.runtime.max_concurrency = Some(0);
    let err = made.workers().unwrap_err();
    assert!(err.contains("`[runtime] max_concurrency` is 0"), "{err}");
}

/// Settings under which no call could be served, each refused naming its key.
#[test]
fn settings_that_would_serve_nothing_are_refused_naming_the_key() {
    let read = |text: &str| -> Result<DaemonConfig, String> {
        let c: DaemonConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.workers().map(|_| c)
    };
    let module = "[[modules]]\nname = \"m\"\npath = \"/x/libm.so\"\n";
    for (text, says) in [
        ("max_connections = 0".to_owned(), "`max_connections` is 0"),
        (
            "max_connections = 4000000000".to_owned(),
            "`max_connections` is 4000000000: it is at most 65536",
        ),
        (
            "max_shm_per_client = 4096".to_owned(),
            "`max_shm_per_client` is 4096 bytes",
        ),
        (
            "threads_per_connection = 0".to_owned(),
            "`threads_per_connection` is 0: it is 1 to 64",
        ),
        (
            "threads_per_connection = 4294967295".to_owned(),
            "`threads_per_connection` is 4294967295",
        ),
        (
            "[runtime]\ndefault_timeout_ms = 0".to_owned(),
            "`[runtime] default_timeout_ms` is 0",
        ),
        (
            format!("{module}default_timeout_ms = 0"),
            "`default_timeout_ms` of module `m` is 0",
        ),
        (
            "[runtime]\nmax_call_ms = 0".to_owned(),
            "`[runtime] max_call_ms` is 0",
        ),
        (
            format!("{module}max_call_ms = 0"),
            "`max_call_ms` of module `m` is 0",
        ),
        (
            "[limits]\ncpu_seconds = 0".to_owned(),
            "`[limits]` `cpu_seconds` is 0",
        ),
        (
            "[limits]\nmemory_bytes = 0".to_owned(),
            "`[limits]` `memory_bytes` is 0: a worker needs at least 33554432",
        ),
        (
            format!("{module}limits = {{ memory_bytes = 1048576 }}"),
            "the `limits` of module `m` `memory_bytes` is 1048576",
        ),
        (
            "[limits]\nopen_files = 3".to_owned(),
            "`[limits]` `open_files` is 3: a worker needs at least 16",
        ),
        (
            format!("{module}limits = {{ open_files = 0 }}"),
            "the `limits` of module `m` `open_files` is 0",
        ),
    ] {
        let err = read(&format!("socket = \"/s\"\n{text}")).unwrap_err();
        assert!(err.contains(says), "{text}: {err}");
    }
    // The least of each is served.
    let least = read(&format!(
        "socket = \"/s\"\nmax_connections = 1\nthreads_per_connection = 64\n\
         max_shm_per_client = 8192\n[runtime]\ndefault_timeout_ms = 1\n\
         [limits]\ncpu_seconds = 1\nopen_files = 16\nmemory_bytes = 33554432\n\
         {module}default_timeout_ms = 1\n"
    ));
    assert!(least.is_ok(), "{least:?}");
}

#[test]
fn a_socket_mode_that_is_not_permission_bits_is_refused() {
    let read = |text: &str| -> Result<DaemonConfig, String> {
        let c: DaemonConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.workers().map(|_| c)
    };
    // `660` in decimal is `0o1224`: sticky, and not what was meant.
    let err = read("socket = \"/s\"\nsocket_mode = 660").unwrap_err();
    assert!(
        err.contains("`socket_mode` 660 is 0o1224") && err.contains("`0o660`"),
        "{err}"
    );
    let octal = read("socket = \"/s\"\nsocket_mode = 0o660").unwrap();
    assert_eq!(octal.socket_mode, 0o660);
    // A mode its owner cannot connect through serves no one but root.
    for mode in ["0o000", "0o066", "0o400", "0o500"] {
        let err = read(&format!("socket = \"/s\"\nsocket_mode = {mode}")).unwrap_err();
        assert!(
            err.contains("does not let the daemon's owner write to the socket")
                && err.contains("0o200"),
            "{mode}: {err}"
        );
    }
    // Writing is all connecting takes.
    assert!(read("socket = \"/s\"\nsocket_mode = 0o220").is_ok());
}

#[test]
fn a_module_name_no_call_could_carry_is_refused() {
    let with_name = |name: &str| {
        let mut config = DaemonConfig::new("/s");
        config
            .modules
            .push(ModuleEntry::new(Some(name.to_owned()), "/x/libm.so"));
        config
    };
    for name in [String::new(), "n".repeat(65)] {
        let err = with_name(&name).workers().unwrap_err();
        assert!(
            err.contains("a served module's name is 1 to 64 bytes"),
            "{err}"
        );
    }
    assert!(with_name(&"n".repeat(64)).workers().is_ok());
}

/// The settings reach each worker as MessagePack: paths that are not UTF-8 (a Linux
/// path need not be) travel as their bytes and come back the same; others as text,
/// as a TOML file gives them.
#[test]
fn paths_that_are_not_utf8_survive_the_trip_to_the_worker() {
    use std::os::unix::ffi::OsStrExt;
    let odd = |bytes: &[u8]| PathBuf::from(std::ffi::OsStr::from_bytes(bytes));
    let mut c = DaemonConfig::new(odd(b"/tmp/\xffm.sock"));
    c.modules
        .push(ModuleEntry::new(None, odd(b"/x/lib\xfe.so")));
    c.modules.push(ModuleEntry::new(None, "/x/libbasic.so"));
    c.watch = Some(odd(b"/w/\x80"));
    let back: DaemonConfig = rmp_serde::from_slice(&rmp_serde::to_vec(&c).unwrap()).unwrap();
    assert_eq!(back.socket, c.socket);
    assert_eq!(back.modules, c.modules);
    assert_eq!(back.watch, c.watch);
    c.watch = None;
    let back: DaemonConfig = rmp_serde::from_slice(&rmp_serde::to_vec(&c).unwrap()).unwrap();
    assert_eq!(back.watch, None);
    let text: DaemonConfig =
        toml::from_str("socket = \"/s\"\nwatch = \"/w\"\n[[modules]]\npath = \"/x\"").unwrap();
    assert_eq!(
        (text.socket, text.watch, &text.modules[0].path),
        (
            PathBuf::from("/s"),
            Some(PathBuf::from("/w")),
            &PathBuf::from("/x")
        )
    );
    let err = toml::from_str::<DaemonConfig>("socket = 7").unwrap_err();
    assert!(err.to_string().contains("a path"), "{err}");
}

/// A watchdog grace under 50 ms is refused: a call refused at its deadline (read on a
/// coarse clock, on a thread the scheduler may set aside) could be taken by the watchdog
/// for one that overran it, and the worker ended. With 0, a client sending calls already
/// late had the worker ended about twenty times a second.
#[test]
fn a_watchdog_grace_too_short_to_refuse_a_late_call_in_is_refused() {
    let read = |grace: u64| -> Result<(), String> {
        let c: DaemonConfig =
            toml::from_str(&format!("socket = \"/s\"\nwatchdog_grace_ms = {grace}"))
                .map_err(|e| e.to_string())?;
        c.workers().map(drop)
    };
    for grace in [0, 3, 49] {
        let err = read(grace).unwrap_err();
        assert!(
            err.contains(&format!(
                "`watchdog_grace_ms` is {grace}: it is at least 50"
            )),
            "{err}"
        );
    }
    assert_eq!(read(50), Ok(()));
}
