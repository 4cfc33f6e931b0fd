//! Many host threads calling one module at once, every result checked.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{de, load, mp};
use memlink_runtime::{ModuleError, RuntimeError};

#[test]
fn eight_threads_ten_thousand_calls_each() {
    let (rt, h) = load("basic");
    let checked = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let (rt, checked) = (rt.clone(), Arc::clone(&checked));
            std::thread::spawn(move || {
                for i in 0..10_000u32 {
                    let sum: u32 = de(&rt.call(h, "add", &mp(&(i, t * 1_000_000))).unwrap());
                    assert_eq!(sum, i + t * 1_000_000);
                    let text = format!("t{t}-{i}");
                    assert_eq!(
                        rt.call(h, "echo", text.as_bytes()).unwrap(),
                        text.as_bytes()
                    );
                    checked.fetch_add(2, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no thread panicked");
    }
    assert_eq!(checked.load(Ordering::Relaxed), 160_000);
}

#[test]
fn panics_on_some_threads_do_not_disturb_others() {
    let (rt, h) = load("basic");
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                for i in 0..2_000u32 {
                    if (i + t) % 3 == 0 {
                        let err = rt
                            .call(h, "boom", format!("p{t}-{i}").as_bytes())
                            .unwrap_err();
                        let Some(ModuleError::Panic(m)) = err.module_error() else {
                            panic!("{err}")
                        };
                        assert!(m.starts_with(&format!("p{t}-{i} ")), "{m}");
                    } else {
                        let v: u32 = de(&rt.call(h, "may_fail", &mp(&(i % 50,))).unwrap());
                        assert_eq!(v, (i % 50) * 2);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no thread panicked");
    }
    assert!(matches!(
        rt.call(h, "nope", b""),
        Err(RuntimeError::UnknownMethod { .. })
    ));
}
