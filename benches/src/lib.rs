//! Benchmarks of memlink's hot paths (see README.md in this directory).
