//! Unloads: slots reused, handles to what was unloaded refused, and many cycles of load
//! and unload leaving nothing behind.

mod common;

use common::lifecycle::{greeter, version};
use memlink_runtime::{Runtime, RuntimeConfig, RuntimeError};

#[test]
fn unloaded_slots_are_reused_and_stale_handles_refused() {
    let rt = Runtime::new(
        RuntimeConfig::default().max_modules(2),
        memlink_runtime::resolver::LocalResolver,
    );
    let mut stale = Vec::new();
    for _ in 0..50 {
        let h = rt.load_as(greeter(1), "greeter").unwrap();
        assert_eq!(version(&rt, h), 1);
        assert!(!stale.contains(&h), "{h} was handed out before");
        rt.unload(h).unwrap();
        stale.push(h);
    }
    let live = rt.load_as(greeter(1), "greeter").unwrap();
    for h in &stale {
        assert!(matches!(
            rt.call(*h, "version", b""),
            Err(RuntimeError::UnknownHandle(_))
        ));
        assert!(matches!(rt.unload(*h), Err(RuntimeError::UnknownHandle(_))));
        assert!(rt.reload(*h, greeter(2)).is_err());
    }
    assert_eq!(version(&rt, live), 1, "stale handles reached nothing");
    rt.load_as(greeter(2), "other").unwrap();
    assert!(matches!(
        rt.load_as(greeter(1), "third"),
        Err(RuntimeError::TooManyModules { limit: 2 })
    ));
}

#[test]
fn ten_thousand_load_and_unload_cycles() {
    let rt = Runtime::new(
        RuntimeConfig::default().max_modules(4),
        memlink_runtime::resolver::LocalResolver,
    );
    for i in 0..10_000 {
        let h = rt
            .load_as(greeter(1), "greeter")
            .unwrap_or_else(|e| panic!("cycle {i}: {e}"));
        if i % 1000 == 0 {
            assert_eq!(version(&rt, h), 1);
        }
        rt.unload(h).unwrap_or_else(|e| panic!("cycle {i}: {e}"));
    }
    assert!(rt.metrics().is_empty(), "nothing is left loaded");
}
