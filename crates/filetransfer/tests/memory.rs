//! Memory and throughput of a large transfer over gRPC: the bytes are streamed, so the
//! process's memory must not grow with the file. Its own test binary, so no other test's
//! allocations share the process while it measures.

mod support;

use std::time::Instant;

use support::*;

/// The file: a few hundred MiB, far more than the growth allowed.
const CHUNKS: usize = 512;
/// Most the peak resident memory may grow while the file goes up and comes down.
const MAX_GROWTH_KIB: u64 = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_transfer_streams_in_flat_memory() {
    let mut env = Env::start(None, None).await;
    let size = (CHUNKS * CHUNK) as u64;

    // Warm up: connections, pools and allocator arenas, so the measurement sees only growth.
    let warm = env.initialize(None).await;
    env.upload(&warm, None, repeated(16)).await.unwrap();
    env.wait_for_status(&warm, "Published").await;
    env.download(RECIPIENT, &warm, "").await.unwrap();
    let baseline = memory_kib("VmRSS");

    let id = env.initialize(None).await;
    let started = Instant::now();
    env.upload(&id, Some(size), repeated(CHUNKS)).await.unwrap();
    let upload = started.elapsed();
    env.wait_for_status(&id, "Published").await;
    let after_upload = memory_kib("VmHWM");

    let started = Instant::now();
    let downloaded = env.download_counting(RECIPIENT, &id).await;
    let download = started.elapsed();
    assert_eq!(downloaded, size);
    let peak = memory_kib("VmHWM");

    let mib = size as f64 / (1024.0 * 1024.0);
    println!(
        "{mib:.0} MiB: upload {:.0} MiB/s, download {:.0} MiB/s; RSS {baseline} KiB before, \
         peak {after_upload} KiB after upload, {peak} KiB after download",
        mib / upload.as_secs_f64(),
        mib / download.as_secs_f64(),
    );
    assert!(
        peak.saturating_sub(baseline) < MAX_GROWTH_KIB,
        "peak memory grew by {} KiB while streaming {mib:.0} MiB",
        peak.saturating_sub(baseline)
    );
}
