//! A client used in ways it cannot serve: another client's handles and buffers, settings
//! no connection can have, durations too long to add to an instant. Each is refused
//! with an error that says so, or served as documented; none panics or reaches another
//! module.

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, Setup};
use memlink_client::{CallOptions, Client, ClientConfig, RuntimeError};

fn refused_as_foreign(result: Result<impl std::fmt::Debug, RuntimeError>) -> String {
    match result {
        Err(e @ RuntimeError::ForeignHandle { .. }) => e.to_string(),
        other => panic!("a foreign handle was not refused: {other:?}"),
    }
}

#[test]
fn a_handle_of_another_client_is_refused_by_every_method_that_takes_one() {
    let daemon = Daemon::start(Setup::modules(&["basic", "async_echo"]));
    let a = Client::connect(&daemon.socket).unwrap();
    let b = Client::connect(&daemon.socket).unwrap();
    // `a` resolves two modules, `b` one: `a`'s first handle is at the place of `b`'s
    // only module, and its second at a place `b` has none.
    let a_basic = a.module("basic").unwrap();
    let a_echo = a.module("async_echo").unwrap();
    let b_echo = b.module("async_echo").unwrap();
    assert_ne!(a_basic, b_echo);
    assert_ne!(a_echo, b_echo, "handles of two clients never compare equal");

    for foreign in [a_basic, a_echo] {
        let text = refused_as_foreign(b.call(foreign, "echo", b"hi"));
        assert!(text.contains("another client"), "{text}");
        assert!(text.contains(&foreign.to_string()), "{text}");
        refused_as_foreign(b.call_with(foreign, "echo", b"hi", &CallOptions::default()));
        refused_as_foreign(b.call_typed::<_, String>(foreign, "echo", &("hi",)));
        refused_as_foreign(b.typed::<(String,), String>(foreign, "echo"));
        refused_as_foreign(b.archived::<u32, u32>(foreign, "echo"));
        refused_as_foreign(b.methods(foreign));
        refused_as_foreign(b.backpressure(foreign));
        let buffer = b.arg_buffer(3).unwrap();
        refused_as_foreign(b.call_buffer(foreign, "echo", buffer, &CallOptions::default()));
        let mut buffer = b.arg_buffer(3).unwrap();
        refused_as_foreign(
            b.call_slot(foreign, "echo", &mut buffer, &CallOptions::default())
                .map(|r| r.to_vec()),
        );
        let mut batch = b.batch();
        refused_as_foreign(batch.push(foreign, "echo", b"hi"));
        assert!(batch.is_empty());
        // Through the trait the runtime shares, too.
        refused_as_foreign(memlink_client::Caller::call_with(
            &b,
            foreign,
            "echo",
            b"hi",
            &CallOptions::default(),
        ));
    }

    // Each client's own handles still serve, and reach their own modules.
    assert_eq!(&*a.call(a_basic, "echo", b"hi").unwrap(), b"hi");
    let sum: u32 = a.call_typed(a_basic, "add", &(2u32, 3u32)).unwrap();
    assert_eq!(sum, 5);
    assert!(b
        .methods(b_echo)
        .unwrap()
        .iter()
        .any(|m| m.name == "time_left"));
    let typed = a.typed::<(u32, u32), u32>(a_basic, "add").unwrap();
    assert_eq!(typed.module(), a_basic);
    assert_eq!(typed.call(&(1, 1)).unwrap(), 2);
}

#[test]
fn an_argument_buffer_of_another_client_is_refused() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let a = Client::connect(&daemon.socket).unwrap();
    let b = Client::connect(&daemon.socket).unwrap();
    let b_basic = b.module("basic").unwrap();
    let mut buffer = a.arg_buffer(3).unwrap();
    buffer.copy_from_slice(b"abc");
    let text = refused_as_foreign(
        b.call_slot(b_basic, "echo", &mut buffer, &CallOptions::default())
            .map(|r| r.to_vec()),
    );
    assert!(text.contains("argument buffer"), "{text}");
    refused_as_foreign(b.call_buffer(b_basic, "echo", buffer, &CallOptions::default()));
    // Its own client's buffer serves.
    let mut own = b.arg_buffer(3).unwrap();
    own.copy_from_slice(b"abc");
    let reply = b
        .call_slot(b_basic, "echo", &mut own, &CallOptions::default())
        .unwrap();
    assert_eq!(&*reply, b"abc");
}

#[test]
fn a_reconnect_timeout_too_long_for_an_instant_is_no_limit() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let config = ClientConfig::default().reconnect_timeout(Duration::MAX);
    let client = Client::with_config(&daemon.socket, config.clone()).unwrap();
    let basic = client.module("basic").unwrap();
    let sum: u32 = client.call_typed(basic, "add", &(2u32, 3u32)).unwrap();
    assert_eq!(sum, 5);

    // With no daemon yet, connecting waits for as long as it takes one to start.
    let dir = common::scratch_dir();
    let socket = dir.join("memlink.sock");
    let waiting = std::thread::spawn(move || Client::with_config(&socket, config));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!waiting.is_finished(), "connecting gave up without a limit");
    let _late = Daemon::start_in(dir, Setup::modules(&["basic"]));
    let client = waiting.join().unwrap().unwrap();
    let basic = client.module("basic").unwrap();
    assert_eq!(&*client.call(basic, "echo", b"x").unwrap(), b"x");
}

#[test]
fn calls_with_timeouts_and_deadlines_too_far_to_reach_run_as_calls_without_one() {
    let daemon = Daemon::start(Setup::modules(&["async_echo"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let echo = client.module("async_echo").unwrap();
    let time_left = client.typed::<(), Option<u64>>(echo, "time_left").unwrap();

    let unbounded = CallOptions::default().timeout(Duration::MAX);
    assert_eq!(time_left.call_with(&(), &unbounded).unwrap(), None);
    let reply = client
        .call_with(echo, "echo_after", b"\x92\x00\xc4\x01z", &unbounded)
        .unwrap();
    assert_eq!(&*reply, b"z");

    // An instant centuries ahead: the call runs, and sees a long time left.
    let far = Instant::now()
        .checked_add(Duration::from_secs(u64::MAX >> 2))
        .expect("an instant far ahead");
    let options = CallOptions::default().deadline(far);
    let left = time_left.call_with(&(), &options).unwrap();
    assert!(
        left.is_none_or(|ms| ms > 1000 * 86_400 * 365),
        "{left:?} ms left"
    );
    let reply = client
        .call_with(echo, "echo_after", b"\x92\x00\xc4\x01z", &options)
        .unwrap();
    assert_eq!(&*reply, b"z");
    let mut batch = client.batch().options(options);
    batch
        .push(echo, "echo_after", b"\x92\x00\xc4\x01z")
        .unwrap();
    for result in batch.run() {
        assert_eq!(&*result.unwrap(), b"z");
    }
}

#[test]
fn a_spin_too_long_still_notices_a_daemon_that_died() {
    let daemon = Daemon::start(Setup::modules(&["async_echo"]));
    let config = ClientConfig::default()
        .spin(Duration::MAX)
        .reconnect_timeout(Duration::from_millis(100));
    let client = Client::with_config(&daemon.socket, config).unwrap();
    let echo = client.module("async_echo").unwrap();
    let calling = std::thread::spawn(move || {
        let started = Instant::now();
        // Sleeps a minute: only the daemon's death ends it sooner.
        let result = client.call(echo, "echo_after", b"\x92\xcd\xea\x60\xc4\x00");
        (result.map(|r| r.to_vec()), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    drop(daemon);
    let (result, took) = calling.join().unwrap();
    assert!(
        matches!(result, Err(RuntimeError::DaemonGone { .. })),
        "{result:?}"
    );
    assert!(took < Duration::from_secs(10), "noticed after {took:?}");
}

#[test]
fn settings_no_connection_can_have_are_refused_naming_the_setting() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let cases = [
        (
            ClientConfig::default().slots(0),
            "ClientConfig::slots",
            "0 slots",
        ),
        (
            ClientConfig::default().slots(65),
            "ClientConfig::slots",
            "65 slots",
        ),
        (
            ClientConfig::default().slot_size(0),
            "ClientConfig::slot_size",
            "0 bytes",
        ),
        (
            ClientConfig::default().slot_size(u64::MAX),
            "ClientConfig::slot_size",
            "18446744073709551615 bytes",
        ),
    ];
    for (config, setting, value) in cases {
        let e = Client::with_config(&daemon.socket, config).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, RuntimeError::BadSetting { .. }), "{text}");
        assert!(text.contains(setting), "{text}");
        assert!(text.contains(value), "{text}");
        assert!(!text.contains("daemon"), "no daemon saw it: {text}");
    }
    // The bounds themselves serve.
    for config in [
        ClientConfig::default().slots(1).slot_size(1),
        ClientConfig::default().slots(64),
    ] {
        let client = Client::with_config(&daemon.socket, config).unwrap();
        let basic = client.module("basic").unwrap();
        let sum: u32 = client.call_typed(basic, "add", &(2u32, 3u32)).unwrap();
        assert_eq!(sum, 5);
    }
}
