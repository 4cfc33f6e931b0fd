//! Many threads calling one module: every thread calls `basic::noop` by id through one
//! shared `Runtime`, the way a server's worker threads share a host.
//!
//! Two controls tell what a poor scaling ratio comes from: the same calls with one
//! runtime per thread (same module image, no runtime state shared), and a loop of plain
//! `extern "C"` calls (nothing shared at all: what this machine's cores give).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::fixture::Host;

/// Thread counts to measure: 1, 2 and as many as the machine has cores (each once).
pub fn counts() -> Vec<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts = vec![1, 2, cores];
    counts.sort_unstable();
    counts.dedup();
    counts
}

/// Calls made between two looks at the stop flag: the look costs nothing next to them.
const CHUNK: u64 = 256;

/// Operations per second of `threads` threads each running `op(thread index)` in a loop
/// for about `run`: each thread counts its operations and its own running time, and
/// the rates add up.
pub fn ops_per_sec(threads: usize, run: Duration, op: &(dyn Fn(usize) + Sync)) -> f64 {
    let go = Barrier::new(threads + 1);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                let (go, stop) = (&go, &stop);
                s.spawn(move || {
                    go.wait();
                    let start = Instant::now();
                    let mut done = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..CHUNK {
                            op(i);
                        }
                        done += CHUNK;
                    }
                    done as f64 / start.elapsed().as_secs_f64()
                })
            })
            .collect();
        go.wait();
        std::thread::sleep(run);
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .map(|w| w.join().expect("a calling thread panicked"))
            .sum()
    })
}

/// Wall time of `iters` calls of `basic::noop` by id split over `threads` threads (for
/// criterion's `iter_custom`: time per call of the whole group, so calls per second
/// is its inverse).
pub fn time_calls(host: &Host, threads: usize, iters: u64) -> Duration {
    let go = Barrier::new(threads + 1);
    let per = iters.div_ceil(threads as u64);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    go.wait();
                    for _ in 0..per {
                        drop(host.noop_by_id());
                    }
                })
            })
            .collect();
        go.wait();
        let start = Instant::now();
        for w in workers {
            w.join().expect("a calling thread panicked");
        }
        start.elapsed()
    })
}
