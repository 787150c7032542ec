//! B3: a 1 GiB download through the gateway against nginx serving the same file (`sendfile`),
//! and Altinn's parallel range waves (3 × 50 MiB ranges at a time until the file is read)
//! against nginx answering the same ranges, in one run on this machine.
//!
//! Run: `cargo build --release -p brokerd && cargo bench -p broker-tests --bench download`
//! (nginx: `apt-get install -y nginx-light`; `BENCH_DOWNLOAD_BYTES` changes the 1 GiB).
//!
//! The broker gets the file by a real upload (not timed); nginx serves a hard link to the same
//! file. Each figure is the best of [`RUNS`] runs, so both sides read from a warm page cache.

use std::time::{Duration, Instant};

use broker_tests::bench::{Row, drain_download, gb_per_s, print_table, send_file, test_file};
use broker_tests::nginx::Nginx;
use broker_tests::{Database, Scenario};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const MIN_RATIO: f64 = 0.5;
const RUNS: usize = 2;
const WAVE_WIDTH: u64 = 3;
const RANGE: u64 = 50 * MIB;

fn main() {
    broker_tests::bench::run("download", run);
}

/// Where to download from and with what credential.
struct Source {
    url: String,
    token: Option<String>,
}

impl Source {
    fn get(&self, http: &reqwest::Client, range: Option<(u64, u64)>) -> reqwest::RequestBuilder {
        let mut request = http.get(&self.url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some((first, last)) = range {
            request = request.header("range", format!("bytes={first}-{last}"));
        }
        request
    }
}

async fn run() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let size = broker_tests::bench::setting("BENCH_DOWNLOAD_BYTES", GIB);
    println!("B3 download benchmark ({cores} cores, {} MiB)", size / MIB);
    broker_tests::bench::warn_if_busy(cores);
    let scratch =
        std::env::temp_dir().join(format!("broker-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&scratch).expect("creating the scratch directory");
    let file = test_file(&scratch, size);
    let http = reqwest::Client::new();

    let nginx = Nginx::start(&scratch).await;
    std::fs::hard_link(&file, nginx.root().join("big.bin")).expect("linking the file for nginx");
    let anchor = Source {
        url: format!("{}/big.bin", nginx.base_url()),
        token: None,
    };

    let scenario = Scenario::start(Database::Sqlite).await;
    let id = scenario.initialized(scenario.initialize_body()).await;
    let upload = scenario.url(&format!("/broker/api/v1/filetransfer/{id}/upload"));
    let (status, body) =
        send_file(http.post(upload).bearer_auth(&scenario.sender.write), &file).await;
    assert_eq!(status, 200, "uploading the file: {body}");
    scenario
        .wait_for_status(&scenario.sender.write, &id, "Published")
        .await;
    let ours = Source {
        url: scenario.url(&format!("/broker/api/v1/filetransfer/{id}/download")),
        token: Some(scenario.recipient.read.clone()),
    };

    let nginx_whole = best(RUNS, || whole(&http, &anchor, size)).await;
    let ours_whole = best(RUNS, || whole(&http, &ours, size)).await;
    let nginx_waves = best(RUNS, || waves(&http, &anchor, size)).await;
    let ours_waves = best(RUNS, || waves(&http, &ours, size)).await;
    drop(scenario);
    drop(nginx);
    let _ = std::fs::remove_dir_all(&scratch);

    let rate = |elapsed: Duration| gb_per_s(size, elapsed);
    let row = |what: String, ours: Duration, anchor: Duration| {
        let ratio = rate(ours) / rate(anchor);
        Row {
            budget: "B3",
            what,
            ours: format!("{:.2} GB/s", rate(ours)),
            anchor: format!("{:.2} GB/s", rate(anchor)),
            ratio: Some(ratio),
            limit: format!("≥ {MIN_RATIO} × nginx"),
            meets: Some(ratio >= MIN_RATIO),
        }
    };
    print_table(&[
        row(
            format!("{} MiB download, whole", size / MIB),
            ours_whole,
            nginx_whole,
        ),
        row(
            format!("{WAVE_WIDTH} × {} MiB parallel range waves", RANGE / MIB),
            ours_waves,
            nginx_waves,
        ),
    ]);
}

/// The shortest of `runs` timings.
async fn best<F: Future<Output = Duration>>(
    runs: usize,
    mut measure: impl FnMut() -> F,
) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        best = best.min(measure().await);
    }
    best
}

/// Downloads the whole file once.
async fn whole(http: &reqwest::Client, source: &Source, size: u64) -> Duration {
    let started = Instant::now();
    let (status, bytes) = drain_download(source.get(http, None)).await;
    assert_eq!(
        (status, bytes),
        (200, size),
        "a whole download from {}",
        source.url
    );
    started.elapsed()
}

/// Reads the file in waves of [`WAVE_WIDTH`] parallel ranges of [`RANGE`] bytes.
async fn waves(http: &reqwest::Client, source: &Source, size: u64) -> Duration {
    let started = Instant::now();
    let mut offset = 0;
    while offset < size {
        let ranges: Vec<(u64, u64)> = (0..WAVE_WIDTH)
            .map(|i| offset + i * RANGE)
            .filter(|&first| first < size)
            .map(|first| (first, (first + RANGE).min(size) - 1))
            .collect();
        let wave = ranges.iter().map(|&(first, last)| async move {
            let (status, bytes) = drain_download(source.get(http, Some((first, last)))).await;
            assert_eq!(
                (status, bytes),
                (206, last - first + 1),
                "range {first}-{last} from {}",
                source.url
            );
        });
        futures::future::join_all(wave).await;
        offset += WAVE_WIDTH * RANGE;
    }
    started.elapsed()
}
