//! The machine's own floors under the daemon's round trip, with no memlink in them:
//! two threads handing a word back and forth in memory, waiting the way the daemon's
//! client and worker wait (`memlink_ipc::slot::relax` while spinning, a shared futex
//! when asleep).
//!
//! - [`sleeping_round_trip`]: one thread asleep on a futex for a few milliseconds is
//!   woken by another, which spins for the answer: what waking a sleeping daemon costs
//!   on this machine before the daemon does anything.
//! - [`pairs_per_sec`]: pairs of threads bouncing a word as fast as they can; two pairs
//!   over one is what the machine allows two spinning clients, each with its own
//!   spinning server thread, before any memlink code runs.
//!
//! They sit beside `daemon_noargs_sleeping_ns` and `daemon_clients_scaling`, so a
//! reader can tell what is the machine's and what is ours.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memlink_ipc::futex;
use memlink_ipc::slot::relax;

/// A word two threads hand back and forth: odd while a request waits, even while its
/// answer does, and the number of round trips made so far in between.
/// A waiter says it sleeps in `sleeping` first, so a pass makes the wake system call
/// only when someone may be asleep, as the daemon's slots and doorbells do.
#[derive(Default)]
struct Word {
    turn: AtomicU32,
    sleeping: AtomicBool,
    stop: AtomicBool,
}

impl Word {
    /// Waits until `turn` is no longer `seen` (or the word is stopped), spinning `spin`
    /// with the daemon's relax policy, then sleeping on the futex.
    fn wait_past(&self, seen: u32, spin: Duration) -> u32 {
        let start = Instant::now();
        loop {
            let now = self.turn.load(Ordering::Acquire);
            if now != seen || self.stop.load(Ordering::Relaxed) {
                return now;
            }
            let spun = start.elapsed();
            if spun >= spin {
                self.sleeping.store(true, Ordering::SeqCst);
                if self.turn.load(Ordering::SeqCst) == seen {
                    futex::wait(&self.turn, seen, Some(Duration::from_millis(50)));
                }
            } else {
                relax(spun);
            }
        }
    }

    fn pass(&self, to: u32) {
        self.turn.store(to, Ordering::SeqCst);
        if self.sleeping.swap(false, Ordering::SeqCst) {
            futex::wake_all(&self.turn);
        }
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        futex::wake_all(&self.turn);
    }
}

/// A server thread answering every request on `word`, spinning `spin` before it sleeps.
fn serve(word: Arc<Word>, spin: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut seen = 0;
        loop {
            let now = word.wait_past(seen, spin);
            if word.stop.load(Ordering::Relaxed) {
                return;
            }
            if now % 2 == 1 {
                word.pass(now + 1);
                seen = now + 1;
            } else {
                seen = now;
            }
        }
    })
}

/// Round trips to a server thread that has slept `gap` on its futex each time (it
/// spins not at all), the caller spinning 20 µs for the answer, as the daemon's client
/// does; each round trip timed alone, `rounds` of them.
pub fn sleeping_round_trip(gap: Duration, rounds: usize) -> Vec<f64> {
    let word = Arc::new(Word::default());
    let server = serve(Arc::clone(&word), Duration::ZERO);
    let mut times = Vec::with_capacity(rounds);
    let mut turn = 0;
    for _ in 0..rounds {
        std::thread::sleep(gap);
        let t = Instant::now();
        word.pass(turn + 1);
        turn = word.wait_past(turn + 1, Duration::from_micros(20));
        times.push(t.elapsed().as_nanos() as f64);
    }
    word.stop();
    server.join().ok();
    times
}

/// Round trips per second, summed, of `pairs` client and server thread pairs bouncing
/// their own words for `run`, every thread spinning 20 µs with the daemon's relax
/// policy before it sleeps; the median of `tries` runs, since where the scheduler puts
/// the threads decides most of it.
pub fn pairs_per_sec(pairs: usize, run: Duration, tries: usize) -> f64 {
    let mut rates: Vec<f64> = (0..tries.max(1)).map(|_| pairs_once(pairs, run)).collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn pairs_once(pairs: usize, run: Duration) -> f64 {
    let spin = Duration::from_micros(20);
    let clients: Vec<_> = (0..pairs)
        .map(|_| {
            std::thread::spawn(move || {
                let word = Arc::new(Word::default());
                let server = serve(Arc::clone(&word), spin);
                let start = Instant::now();
                let mut turn = 0u32;
                let mut trips = 0u64;
                while start.elapsed() < run {
                    for _ in 0..64 {
                        word.pass(turn + 1);
                        turn = word.wait_past(turn + 1, spin);
                    }
                    trips += 64;
                }
                let rate = trips as f64 / start.elapsed().as_secs_f64();
                word.stop();
                server.join().ok();
                rate
            })
        })
        .collect();
    clients.into_iter().filter_map(|c| c.join().ok()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controls_make_round_trips() {
        let times = sleeping_round_trip(Duration::from_micros(100), 5);
        assert_eq!(times.len(), 5);
        assert!(times.iter().all(|&t| t > 0.0));
        assert!(pairs_per_sec(2, Duration::from_millis(20), 1) > 0.0);
    }
}
