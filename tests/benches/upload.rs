//! B1: a 1 GiB upload through the gateway until Published, against nginx storing the same
//! upload (WebDAV `PUT`) and against min(MD5 speed, buffered write + fsync), all measured in this
//! run on this machine. B2: the broker's peak memory growth during a 100 MiB and a 1 GiB upload,
//! and its peak RSS during four parallel 1 GiB uploads.
//!
//! Run: `cargo build --release -p brokerd && cargo bench -p broker-tests --bench upload`
//! (nginx: `apt-get install -y nginx-light`; `BENCH_UPLOAD_BYTES` changes the 1 GiB, and the
//! 100 MiB becomes a quarter of it when that is less).
//!
//! Recorded for `scripts/bench.sh` besides the table: the throughput of the nginx and broker
//! uploads over time, and the broker's RSS over time during the memory runs.
//!
//! Files, nginx and the broker's data directory all live under the system temp directory, so
//! every party writes to the same disk. Memory is sampled from `/proc/<pid>/status` (VmRSS)
//! every 10 ms; growth is the peak during the upload minus the RSS just before it, each size on
//! a fresh broker that has published one small transfer first (so start-up work is not counted).

use std::path::Path;
use std::time::Instant;

use broker_tests::bench::{
    Row, RssSampler, fsync_write_speed, gb_per_s, in_mib, md5_speed, peak_kib, print_table,
    proc_kib, record_series, send_file_traced, test_file, throughput,
};
use broker_tests::nginx::Nginx;
use broker_tests::{Database, Scenario};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const MIN_NGINX_RATIO: f64 = 0.8;
const MIN_FLOOR_RATIO: f64 = 0.7;
const MAX_GROWTH_RATIO: f64 = 1.1;
/// RSS sampling cannot tell apart growths closer than this; below it, memory is flat.
const GROWTH_RESOLUTION_KIB: u64 = 2 * 1024;
const MAX_PARALLEL_RSS_KIB: u64 = 256 * 1024;
const PARALLEL: usize = 4;

fn main() {
    broker_tests::bench::run("upload", run);
}

async fn run() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let size = broker_tests::bench::setting("BENCH_UPLOAD_BYTES", GIB);
    println!("B1/B2 upload benchmark ({cores} cores, {} MiB)", size / MIB);
    broker_tests::bench::warn_if_busy(cores);
    let scratch =
        std::env::temp_dir().join(format!("broker-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&scratch).expect("creating the scratch directory");
    let small_size = (100 * MIB).min(size / 4);
    let big = test_file(&scratch, size);
    let small = test_file(&scratch, small_size);
    let http = reqwest::Client::new();

    // --- anchors ---
    let md5 = md5_speed(size.min(512 * MIB));
    let disk = fsync_write_speed(&scratch, size);
    let floor = md5.min(disk);
    println!(
        "MD5 {:.2} GB/s, write+fsync {:.2} GB/s",
        md5 / 1e9,
        disk / 1e9
    );
    let nginx = Nginx::start(&scratch).await;
    let started = Instant::now();
    let (status, body, nginx_trace) = send_file_traced(
        http.put(format!("{}/upload/big.bin", nginx.base_url())),
        &big,
    )
    .await;
    let nginx_elapsed = started.elapsed();
    assert!(
        matches!(status, 201 | 204),
        "nginx refused the upload: {status} {body}"
    );
    let nginx_rate = gb_per_s(size, nginx_elapsed);
    println!(
        "nginx stored {} MiB in {:.2} s: {nginx_rate:.2} GB/s",
        size / MIB,
        nginx_elapsed.as_secs_f64()
    );
    drop(nginx);

    // --- B1: ours, until Published ---
    let scenario = warmed_up().await;
    let started = Instant::now();
    let ours_trace = upload_until_published(&scenario, &http, &big).await;
    let ours_elapsed = started.elapsed();
    let plot = format!("B1 {} MiB upload throughput", size / MIB);
    record_series(&plot, "nginx", "GB/s", &throughput(&nginx_trace, 0.1));
    record_series(
        &plot,
        "broker (the request body)",
        "GB/s",
        &throughput(&ours_trace, 0.1),
    );
    let ours = gb_per_s(size, ours_elapsed);
    println!(
        "broker published {} MiB in {:.2} s: {ours:.2} GB/s",
        size / MIB,
        ours_elapsed.as_secs_f64()
    );
    drop(scenario);

    // --- B2: memory growth, each size on a fresh broker ---
    let memory_plot = "B2 broker RSS during uploads";
    let growth_small = memory_growth(&http, &small, memory_plot).await;
    let growth_big = memory_growth(&http, &big, memory_plot).await;
    println!(
        "RSS growth: {} MiB upload {growth_small} KiB, {} MiB upload {growth_big} KiB",
        small_size / MIB,
        size / MIB
    );

    let scenario = warmed_up().await;
    let pid = scenario.pid().expect("the broker runs");
    let sampler = RssSampler::start(pid);
    let started = Instant::now();
    let uploads = (0..PARALLEL).map(|_| upload_until_published(&scenario, &http, &big));
    futures::future::join_all(uploads).await;
    let parallel_elapsed = started.elapsed();
    let samples = sampler.stop();
    record_series(
        memory_plot,
        &format!("{PARALLEL} parallel {} MiB uploads", size / MIB),
        "MiB",
        &in_mib(&samples),
    );
    let parallel_peak = peak_kib(&samples);
    println!(
        "{PARALLEL} parallel uploads of {} MiB in {:.2} s ({:.2} GB/s together), peak RSS {} MiB",
        size / MIB,
        parallel_elapsed.as_secs_f64(),
        gb_per_s(size * PARALLEL as u64, parallel_elapsed),
        parallel_peak / 1024
    );
    drop(scenario);
    let _ = std::fs::remove_dir_all(&scratch);

    let growth_ratio = growth_big.max(1) as f64 / growth_small.max(1) as f64;
    print_table(&[
        Row {
            budget: "B1",
            what: format!("{} MiB upload until Published vs nginx", size / MIB),
            ours: format!("{ours:.2} GB/s"),
            anchor: format!("{nginx_rate:.2} GB/s"),
            ratio: Some(ours / nginx_rate),
            limit: format!("≥ {MIN_NGINX_RATIO} × nginx"),
            meets: Some(ours / nginx_rate >= MIN_NGINX_RATIO),
        },
        Row {
            budget: "B1",
            what: "… vs min(MD5, write+fsync)".to_owned(),
            ours: format!("{ours:.2} GB/s"),
            anchor: format!("{:.2} GB/s", floor / 1e9),
            ratio: Some(ours * 1e9 / floor),
            limit: format!("≥ {MIN_FLOOR_RATIO} × min"),
            meets: Some(ours * 1e9 / floor >= MIN_FLOOR_RATIO),
        },
        Row {
            budget: "B2",
            what: format!(
                "RSS growth {} MiB vs {} MiB upload",
                size / MIB,
                small_size / MIB
            ),
            ours: format!("{:.1} MiB", growth_big as f64 / 1024.0),
            anchor: format!("{:.1} MiB", growth_small as f64 / 1024.0),
            ratio: Some(growth_ratio),
            limit: format!("≤ {MAX_GROWTH_RATIO} ×"),
            meets: Some(
                growth_ratio <= MAX_GROWTH_RATIO
                    || growth_big <= growth_small + GROWTH_RESOLUTION_KIB,
            ),
        },
        Row {
            budget: "B2",
            what: format!("peak RSS, {PARALLEL} parallel {} MiB uploads", size / MIB),
            ours: format!("{:.1} MiB", parallel_peak as f64 / 1024.0),
            anchor: "-".to_owned(),
            ratio: None,
            limit: "< 256 MiB".to_owned(),
            meets: Some(parallel_peak < MAX_PARALLEL_RSS_KIB),
        },
    ]);
    println!(
        "(B2 growth: within {} MiB counts as flat — the sampling's resolution)",
        GROWTH_RESOLUTION_KIB / 1024
    );
}

/// A fresh broker that has published one small transfer.
async fn warmed_up() -> Scenario {
    let scenario = Scenario::start(Database::Sqlite).await;
    scenario.published(b"warm-up").await;
    scenario
}

/// Initializes a transfer, uploads the file at `path` and waits until it is Published; the
/// upload's trace (see [`send_file_traced`]).
async fn upload_until_published(
    scenario: &Scenario,
    http: &reqwest::Client,
    path: &Path,
) -> Vec<(f64, u64)> {
    let id = scenario.initialized(scenario.initialize_body()).await;
    let url = scenario.url(&format!("/broker/api/v1/filetransfer/{id}/upload"));
    let (status, body, trace) =
        send_file_traced(http.post(url).bearer_auth(&scenario.sender.write), path).await;
    assert_eq!(status, 200, "upload of {}: {body}", path.display());
    scenario
        .wait_for_status(&scenario.sender.write, &id, "Published")
        .await;
    trace
}

/// Peak RSS growth (KiB) of a fresh broker while it takes the file at `path`; its RSS over
/// time goes to `plot`.
async fn memory_growth(http: &reqwest::Client, path: &Path, plot: &str) -> u64 {
    let scenario = warmed_up().await;
    let pid = scenario.pid().expect("the broker runs");
    let before = proc_kib(pid, "VmRSS");
    let sampler = RssSampler::start(pid);
    upload_until_published(&scenario, http, path).await;
    let samples = sampler.stop();
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    record_series(
        plot,
        &format!("one {} MiB upload", size / MIB),
        "MiB",
        &in_mib(&samples),
    );
    peak_kib(&samples).saturating_sub(before)
}
