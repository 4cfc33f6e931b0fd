//! One value made for whoever asks for it while it is made: the daemon's metrics
//! endpoint renders one exposition for the scrapes that come together.

use std::sync::{Arc, Mutex, OnceLock};

/// One value being made, which whoever asks for it while it is made shares: the first
/// to ask makes it, the others wait for it and get it too; whoever asks once it is made
/// starts the next.
pub(super) struct Flight<T> {
    current: Mutex<Option<Arc<OnceLock<T>>>>,
}

impl<T> Default for Flight<T> {
    fn default() -> Self {
        Flight {
            current: Mutex::new(None),
        }
    }
}

impl<T: Clone> Flight<T> {
    /// The value being made, else the one `make` makes. If `make` panics, the panic is
    /// the caller's, and one of those waiting makes the value instead (`OnceLock`).
    pub(super) fn join(&self, make: impl FnOnce() -> T) -> T {
        let flight = Arc::clone(
            self.current
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(Default::default),
        );
        let value = flight.get_or_init(make).clone();
        // Made: the next to ask makes it anew (whoever of those who shared it comes here
        // first ends the flight).
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &flight)) {
            *current = None;
        }
        value
    }

    /// How many are asking for the value being made (the tests' view).
    #[cfg(test)]
    fn asking(&self) -> usize {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current.as_ref().map_or(0, |c| Arc::strong_count(c) - 1)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Eight scrapes asking while one rendering is made share it: it is made once, and
    /// the next scrape makes a new one.
    #[test]
    fn scrapes_that_come_while_one_is_rendered_share_it() {
        let flight = Arc::new(Flight::<Arc<str>>::default());
        let made = Arc::new(AtomicUsize::new(0));
        let askers: Vec<_> = (0..8)
            .map(|_| {
                let (flight, made) = (Arc::clone(&flight), Arc::clone(&made));
                let waiting = Arc::clone(&flight);
                std::thread::spawn(move || {
                    flight.join(|| {
                        made.fetch_add(1, Ordering::SeqCst);
                        // Made only once all eight are asking for it.
                        while waiting.asking() < 8 {
                            std::thread::yield_now();
                        }
                        "text".into()
                    })
                })
            })
            .collect();
        for asker in askers {
            assert_eq!(&*asker.join().unwrap(), "text");
        }
        assert_eq!(made.load(Ordering::SeqCst), 1);
        assert_eq!(flight.asking(), 0);
        let again = flight.join(|| {
            made.fetch_add(1, Ordering::SeqCst);
            "next".into()
        });
        assert_eq!((&*again, made.load(Ordering::SeqCst)), ("next", 2));
    }

    /// A rendering that panics leaves the next asker to make it.
    #[test]
    fn a_rendering_that_panicked_is_made_by_the_next_asker() {
        let flight = Flight::<Arc<str>>::default();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            flight.join(|| panic!("a worker's figures broke the merge"))
        }));
        assert!(panicked.is_err());
        assert_eq!(&*flight.join(|| "made".into()), "made");
    }
}
