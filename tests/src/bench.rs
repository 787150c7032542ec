//! What every benchmark shares: running only under `cargo bench`, warning when other work
//! shares the CPUs, and printing durations in milliseconds.

use std::future::Future;
use std::time::Duration;

/// Runs `body` on a multi-threaded runtime when invoked by `cargo bench` (which passes
/// `--bench`); under `cargo test --benches` it prints how to run it and returns, so test runs
/// stay quick.
pub fn run<F: Future<Output = ()>>(name: &str, body: impl FnOnce() -> F) {
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("{name}: skipped (run with `cargo bench -p broker-tests --bench {name}`)");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(body());
}

/// Prints a warning when the load average says other work shares the `cores`: then rates are
/// understated and latencies inflated.
pub fn warn_if_busy(cores: usize) {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok());
    if let Some(load) = load
        && load > cores as f64 / 2.0
    {
        println!(
            "warning: load average {load:.2} on {cores} cores: other work shares the CPUs, so \
             rates are understated and latencies inflated"
        );
    }
}

/// A duration in milliseconds, for tables.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
