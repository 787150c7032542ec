//! B2's tus line (a 20 GiB tus upload with the broker's peak RSS growth under 64 MiB) and
//! issue 16's floor (the same upload at least as fast as @tus/server with its FileStore), in
//! one run on this machine, with the one-shot upload of the same size beside them so the tus
//! overhead shows.
//!
//! Run: `cargo build --release -p brokerd && cargo bench -p broker-tests --bench tus` (node
//! ≥ 20.19 and npm: the peer, pinned in `tests/clients/tus-server`, is installed with `npm ci`
//! under `target/js-clients/` by [`broker_tests::node`] when it is not there yet).
//! `BENCH_TUS_BYTES` sets the size (bytes, or e.g. `2GiB`; default 20 GiB),
//! `BENCH_TUS_CHUNK_BYTES` the PATCH size (default 64 MiB).
//!
//! Each party gets the same requests from the same client: a creation POST with
//! `Upload-Length`, then PATCHes of the chunk size one after another, their bodies generated
//! (one pseudo-random 1 MiB block repeated, so no input file is needed). Broker's time runs
//! until the overview says Published, on a fresh embedded broker (SQLite, local disk) that has
//! published one small transfer each way first; @tus/server's until its last PATCH is answered
//! (it writes without fsync; the time with an fsync of its file after it is shown beside).
//! Memory: the broker's VmRSS sampled every 10 ms and its VmHWM, growth over the RSS just
//! before the upload. Everything is written under the system temp directory, so all parties
//! use the same disk, and removed at the end; the run refuses to start without room for two
//! copies of the upload.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use broker_tests::bench::{
    MemoryWatch, Row, byte_setting, free_bytes, gb_per_s, generated_body, in_mib, print_table,
    record_series,
};
use broker_tests::node::NodePackage;
use broker_tests::scenario::{MAX_SIZE, RESOURCE};
use broker_tests::tus::{OFFSET_OCTET_STREAM, TusClient, VERSION};
use broker_tests::{Database, Scenario};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const DEFAULT_SIZE: u64 = 20 * GIB;
const DEFAULT_CHUNK: u64 = 64 * MIB;
/// B2: the broker's peak RSS growth during the tus upload stays below this.
const MAX_GROWTH_KIB: u64 = 64 * 1024;
/// Issue 16: Broker's tus upload at least as fast as @tus/server's.
const MIN_PEER_RATIO: f64 = 1.0;
/// Free space kept beyond two copies of the upload (SQLite, logs, the peer's metadata).
const SPARE_BYTES: u64 = GIB;
const PEER_START_TIMEOUT: Duration = Duration::from_secs(30);
const MEMORY_PLOT: &str = "B2 broker RSS during a tus upload";

fn main() {
    broker_tests::bench::run("tus", run);
}

async fn run() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let size = byte_setting("BENCH_TUS_BYTES", DEFAULT_SIZE);
    let chunk = byte_setting("BENCH_TUS_CHUNK_BYTES", DEFAULT_CHUNK);
    let sized = format!("{} MiB", size / MIB);
    println!(
        "B2 tus benchmark ({cores} cores, {sized} in PATCHes of {} MiB)",
        chunk / MIB
    );
    broker_tests::bench::warn_if_busy(cores);
    let scratch = std::env::temp_dir();
    ensure_room(&scratch, size);
    // Installed before anything is measured, so a machine without node fails at once.
    let peer = broker_tests::node::package("tus-server").await.expect(
        "the tus benchmark's peer needs node ≥ 20.19 and npm (`apt-get install -y nodejs npm`)",
    );
    let http = reqwest::Client::new();

    // --- Broker: tus ---
    let scenario = warmed_up(size).await;
    let pid = scenario.pid().expect("the broker runs");
    let watch = MemoryWatch::start(pid);
    let started = Instant::now();
    let id = scenario.initialized(scenario.initialize_body()).await;
    let created = TusClient::new(scenario.api(), &scenario.sender.write)
        .create(&id, size)
        .await
        .expect_status(201);
    let location = created
        .header("location")
        .unwrap_or_else(|| panic!("the creation answered no Location: {:?}", created.headers));
    let patches = patch_all(
        &http,
        &scenario.url(location),
        Some(&scenario.sender.write),
        size,
        chunk,
    )
    .await;
    let last_patch = started.elapsed();
    scenario
        .wait_for_status(&scenario.sender.write, &id, "Published")
        .await;
    let tus_elapsed = started.elapsed();
    let (tus_growth, samples) = watch.stop();
    record_series(
        MEMORY_PLOT,
        &format!("one {sized} tus upload"),
        "MiB",
        &in_mib(&samples),
    );
    let stored = stored_bytes(&scenario);
    let tus_rate = gb_per_s(size, tus_elapsed);
    println!(
        "broker (tus) published {sized} in {:.2} s: {tus_rate:.2} GB/s (last PATCH answered at \
         {:.2} s); RSS growth {:.1} MiB; {} under files/ afterwards",
        tus_elapsed.as_secs_f64(),
        last_patch.as_secs_f64(),
        tus_growth as f64 / 1024.0,
        stored
            .iter()
            .map(|bytes| format!("{} MiB", bytes / MIB))
            .collect::<Vec<_>>()
            .join(" + "),
    );
    print_patch_times(&patches);
    assert!(
        stored.contains(&size),
        "no stored file of {size} bytes after the tus upload: {stored:?}"
    );
    drop(scenario);

    // --- Broker: one-shot (B1's path) ---
    let scenario = warmed_up(size).await;
    let pid = scenario.pid().expect("the broker runs");
    let watch = MemoryWatch::start(pid);
    let started = Instant::now();
    let id = scenario.initialized(scenario.initialize_body()).await;
    let url = scenario.url(&format!("/broker/api/v1/filetransfer/{id}/upload"));
    let response = http
        .post(url)
        .bearer_auth(&scenario.sender.write)
        .header("content-type", "application/octet-stream")
        .header("content-length", size)
        .body(generated_body(size, 0))
        .send()
        .await
        .unwrap_or_else(|error| panic!("the one-shot upload failed: {error:#}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, 200, "the one-shot upload: {text}");
    scenario
        .wait_for_status(&scenario.sender.write, &id, "Published")
        .await;
    let one_shot_elapsed = started.elapsed();
    let (one_shot_growth, _) = watch.stop();
    let one_shot_rate = gb_per_s(size, one_shot_elapsed);
    println!(
        "broker (one-shot) published {sized} in {:.2} s: {one_shot_rate:.2} GB/s; RSS growth \
         {:.1} MiB",
        one_shot_elapsed.as_secs_f64(),
        one_shot_growth as f64 / 1024.0
    );
    drop(scenario);

    // --- @tus/server with its FileStore ---
    let peer = TusServer::start(&peer, &scratch).await;
    let started = Instant::now();
    let response = http
        .post(&peer.url)
        .header("tus-resumable", VERSION)
        .header("upload-length", size)
        .send()
        .await
        .unwrap_or_else(|error| panic!("@tus/server's creation failed: {error:#}"));
    assert_eq!(response.status(), 201, "@tus/server's creation");
    let location = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .expect("@tus/server answered a Location");
    let patches = patch_all(&http, &location, None, size, chunk).await;
    let peer_elapsed = started.elapsed();
    let peer_rate = gb_per_s(size, peer_elapsed);
    let file = peer
        .store
        .join(location.rsplit('/').next().unwrap_or_default());
    let synced = Instant::now();
    std::fs::File::open(&file)
        .and_then(|file| file.sync_all())
        .unwrap_or_else(|error| panic!("fsync of {}: {error}", file.display()));
    let peer_synced_rate = gb_per_s(size, peer_elapsed + synced.elapsed());
    println!(
        "@tus/server stored {sized} in {:.2} s: {peer_rate:.2} GB/s ({peer_synced_rate:.2} GB/s \
         with an fsync of its file after the last PATCH)",
        peer_elapsed.as_secs_f64()
    );
    print_patch_times(&patches);
    drop(peer);

    let tus_what = format!("{sized} tus upload ({} MiB PATCHes)", chunk / MIB);
    let peer_ratio = tus_rate / peer_rate;
    let memory_met = tus_growth < MAX_GROWTH_KIB;
    let peer_met = peer_ratio >= MIN_PEER_RATIO;
    print_table(&[
        Row {
            budget: "B2",
            what: format!("RSS growth, {tus_what}"),
            ours: format!("{:.1} MiB", tus_growth as f64 / 1024.0),
            anchor: "-".to_owned(),
            ratio: None,
            limit: format!("< {} MiB", MAX_GROWTH_KIB / 1024),
            meets: Some(memory_met),
        },
        Row {
            budget: "tus",
            what: format!("{tus_what} vs @tus/server"),
            ours: format!("{tus_rate:.2} GB/s"),
            anchor: format!("{peer_rate:.2} GB/s"),
            ratio: Some(peer_ratio),
            limit: format!("≥ {MIN_PEER_RATIO} × @tus/server"),
            meets: Some(peer_met),
        },
        Row {
            budget: "tus",
            what: "… vs @tus/server + fsync of its file".to_owned(),
            ours: format!("{tus_rate:.2} GB/s"),
            anchor: format!("{peer_synced_rate:.2} GB/s"),
            ratio: Some(tus_rate / peer_synced_rate),
            limit: "-".to_owned(),
            meets: None,
        },
        Row {
            budget: "tus",
            what: format!("… vs the one-shot upload of {sized}"),
            ours: format!("{tus_rate:.2} GB/s"),
            anchor: format!("{one_shot_rate:.2} GB/s"),
            ratio: Some(tus_rate / one_shot_rate),
            limit: "-".to_owned(),
            meets: None,
        },
        Row {
            budget: "B2",
            what: format!("RSS growth, {sized} one-shot upload"),
            ours: format!("{:.1} MiB", one_shot_growth as f64 / 1024.0),
            anchor: "-".to_owned(),
            ratio: None,
            limit: "-".to_owned(),
            meets: None,
        },
    ]);
    println!(
        "B2 tus memory (< {} MiB growth): {}",
        MAX_GROWTH_KIB / 1024,
        verdict(memory_met)
    );
    println!(
        "tus floor (≥ {MIN_PEER_RATIO} × @tus/server): {}",
        verdict(peer_met)
    );
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "not met" }
}

/// Panics, before anything is written, unless the file system under `dir` has room for two
/// copies of a `size`-byte upload (one party's file, and a copy the broker may stage) and
/// [`SPARE_BYTES`].
fn ensure_room(dir: &Path, size: u64) {
    let free =
        free_bytes(dir).unwrap_or_else(|error| panic!("free space of {}: {error}", dir.display()));
    let needed = 2 * size + SPARE_BYTES;
    assert!(
        free >= needed,
        "refusing to run: {} has {:.1} GiB free and this run needs {:.1} GiB (two copies of \
         the {:.1} GiB upload and {} GiB to spare); free some space or set BENCH_TUS_BYTES lower",
        dir.display(),
        free as f64 / GIB as f64,
        needed as f64 / GIB as f64,
        size as f64 / GIB as f64,
        SPARE_BYTES / GIB
    );
}

/// A fresh broker whose resource takes `size`-byte files and that has published one small
/// transfer by a one-shot upload and one by tus (so start-up work is not counted).
async fn warmed_up(size: u64) -> Scenario {
    let scenario = Scenario::start(Database::Sqlite).await;
    scenario
        .put_settings(
            RESOURCE,
            serde_json::json!({"maxFileTransferSize": size.max(MAX_SIZE)}),
        )
        .await
        .expect_status(204);
    scenario.published(b"warm-up").await;
    let id = scenario.initialized(scenario.initialize_body()).await;
    TusClient::new(scenario.api(), &scenario.sender.write)
        .upload(&id, b"warm-up", 4)
        .await;
    scenario
        .wait_for_status(&scenario.sender.write, &id, "Published")
        .await;
    scenario
}

/// Writes `size` generated bytes to the tus upload at `url` in PATCHes of `chunk` bytes, one
/// after another (with `token` as bearer when given), each answered 204 with `Upload-Offset`
/// moved on; how long each took.
async fn patch_all(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    size: u64,
    chunk: u64,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(size.div_ceil(chunk) as usize);
    let mut offset = 0;
    while offset < size {
        let len = chunk.min(size - offset);
        let mut request = http
            .patch(url)
            .header("tus-resumable", VERSION)
            .header("upload-offset", offset)
            .header("content-type", OFFSET_OCTET_STREAM)
            .header("content-length", len)
            .body(generated_body(len, offset));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let started = Instant::now();
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("PATCH {url} at {offset}: {error:#}"));
        let status = response.status();
        let answered = response
            .headers()
            .get("upload-offset")
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        let text = response.text().await.unwrap_or_default();
        times.push(started.elapsed());
        assert!(
            status == 204 && answered == Some(offset + len),
            "PATCH {url} at {offset} ({len} bytes): {status}, Upload-Offset {answered:?}: {text}"
        );
        offset += len;
    }
    times
}

/// Prints how long the PATCHes took: a time that grows with the offset shows as a last tenth
/// slower than the first.
fn print_patch_times(times: &[Duration]) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let tenth = (times.len() / 10).max(1);
    let mean_ms = |part: &[Duration]| {
        part.iter().map(|time| time.as_secs_f64()).sum::<f64>() * 1000.0 / part.len() as f64
    };
    println!(
        "  {} PATCHes: median {:.0} ms, fastest {:.0} ms, slowest {:.0} ms; mean of the first \
         tenth {:.0} ms, of the last tenth {:.0} ms",
        times.len(),
        broker_tests::bench::ms(broker_tests::bench::percentile(&sorted, 0.5)),
        broker_tests::bench::ms(sorted[0]),
        broker_tests::bench::ms(sorted[sorted.len() - 1]),
        mean_ms(&times[..tenth]),
        mean_ms(&times[times.len() - tenth..]),
    );
}

/// The sizes of the files under the broker's `files/`, largest first.
fn stored_bytes(scenario: &Scenario) -> Vec<u64> {
    let mut sizes: Vec<u64> = scenario
        .stored_files()
        .iter()
        .filter_map(|path| std::fs::metadata(path).ok().map(|meta| meta.len()))
        .collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes
}

/// @tus/server with its FileStore as a node process, storing in a directory of its own that
/// is removed (and the process killed) on drop.
struct TusServer {
    child: Child,
    store: PathBuf,
    /// The creation URL (`http://127.0.0.1:<port>/files`).
    url: String,
}

impl TusServer {
    /// Starts `server.mjs` of the installed `package`, storing under `parent`; panics when it
    /// does not announce itself in time.
    async fn start(package: &NodePackage, parent: &Path) -> Self {
        let store = parent.join(format!("tus-server-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&store).expect("creating the peer's store");
        let mut child = package
            .script("server.mjs")
            .arg("0")
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start node server.mjs: {error}"));
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        // Built first, so a failed start still kills the process and removes the store.
        let mut server = Self {
            child,
            store,
            url: String::new(),
        };
        let announced = tokio::time::timeout(PEER_START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("listening: ") {
                    return Some(url.to_owned());
                }
            }
            None
        })
        .await;
        match announced {
            Ok(Some(url)) => {
                // Keep reading, so the server never blocks on a full pipe.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                server.url = url;
                server
            }
            Ok(None) => panic!("@tus/server ended before listening (its stderr is above)"),
            Err(_) => panic!("@tus/server did not listen within {PEER_START_TIMEOUT:?}"),
        }
    }
}

impl Drop for TusServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
