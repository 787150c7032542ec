//! What every benchmark shares: running only under `cargo bench`, warning when other work
//! shares the CPUs, printing durations in milliseconds, the machine's anchors (disk, MD5, RS256,
//! PostgreSQL inserts), and recording figures for `scripts/bench.sh`.
//!
//! Recording: when `BENCH_RESULTS_FILE` is set, [`print_table`] appends every row it prints, and
//! [`record_latencies`] and [`record_series`] their samples, as JSON lines to that file; the
//! report (`bench-report`) reads them. Unset (a bench run by hand), nothing is written.

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

/// A benchmark's numeric setting from the environment (`BENCH_UPLOAD_BYTES`, …), else `default`.
pub fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// A duration in milliseconds, for tables.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A percentile (`p` in 0..=1) of sorted durations; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

/// Bytes per second as GB/s (10^9), for tables.
pub fn gb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e9
}

/// A field of `/proc/<pid>/status` in KiB (`VmHWM`, `VmRSS`), or 0 when unreadable.
pub fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let value = line.strip_prefix(field)?.strip_prefix(':')?;
                value.split_whitespace().next()?.parse().ok()
            })
        })
        .unwrap_or(0)
}

/// One line of a budget table: our figure, the anchor's from the same run, and the verdict.
pub struct Row {
    /// The budget's name, e.g. `B1`.
    pub budget: &'static str,
    /// What was measured.
    pub what: String,
    /// Our figure, formatted.
    pub ours: String,
    /// The anchor's figure, formatted (or `-`).
    pub anchor: String,
    /// Ours over the anchor, when there is one.
    pub ratio: Option<f64>,
    /// The budget, as DESIGN.md §5 states it.
    pub limit: String,
    /// Whether the figure meets the budget (`None`: reported only).
    pub meets: Option<bool>,
}

/// Prints `rows` as a table with MEETS/MISSES per row, and records each (see [`record`]).
pub fn print_table(rows: &[Row]) {
    for row in rows {
        record(
            &row.what,
            serde_json::json!({
                "kind": "row",
                "budget": row.budget,
                "ours": row.ours,
                "anchor": row.anchor,
                "ratio": row.ratio,
                "limit": row.limit,
                "meets": row.meets,
            }),
        );
    }
    println!();
    println!(
        "{:<6} {:<44} {:>14} {:>14} {:>7} {:<22} verdict",
        "budget", "measured", "ours", "anchor", "ratio", "budget"
    );
    for row in rows {
        let ratio = row
            .ratio
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
        println!(
            "{:<6} {:<44} {:>14} {:>14} {:>7} {:<22} {}",
            row.budget,
            row.what,
            row.ours,
            row.anchor,
            ratio,
            row.limit,
            match row.meets {
                Some(true) => "MEETS",
                Some(false) => "MISSES",
                None => "-",
            }
        );
    }
}

/// Writes a file of `size` bytes of incompressible pseudo-random data under `dir` (once per
/// run: generating it is not measured) and returns its path.
pub fn test_file(dir: &std::path::Path, size: u64) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join(format!(
        "bench-{size}-{}.bin",
        uuid::Uuid::new_v4().simple()
    ));
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(&path).expect("creating the test file"));
    let mut state = PSEUDO_RANDOM_SEED;
    let mut block = vec![0u8; 8 << 20];
    let mut left = size;
    while left > 0 {
        fill_pseudo_random(&mut state, &mut block);
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n]).expect("writing the test file");
        left -= n as u64;
    }
    file.flush().expect("flushing the test file");
    path
}

/// Where the kit's pseudo-random data starts ([`fill_pseudo_random`]).
const PSEUDO_RANDOM_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// Fills `block` (whole 8-byte words; a shorter tail stays as it is) with xorshift64 output
/// from `state`, which moves on: fast, and it defeats any compression on the way.
pub fn fill_pseudo_random(state: &mut u64, block: &mut [u8]) {
    for word in block.chunks_exact_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        word.copy_from_slice(&state.to_le_bytes());
    }
}

/// A request body of `len` bytes that needs no file: one pseudo-random 1 MiB block, made once
/// per process, repeated, read from `offset` of that endless stream on (so bodies sent at
/// consecutive offsets join into one). Each piece is a shared slice of the block, so the
/// client copies nothing and leaves the CPUs to the server.
pub fn generated_body(len: u64, offset: u64) -> reqwest::Body {
    static BLOCK: std::sync::OnceLock<axum::body::Bytes> = std::sync::OnceLock::new();
    let block = BLOCK
        .get_or_init(|| {
            let mut block = vec![0u8; 1 << 20];
            let mut state = PSEUDO_RANDOM_SEED;
            fill_pseudo_random(&mut state, &mut block);
            block.into()
        })
        .clone();
    let block_len = block.len() as u64;
    let pieces = futures::stream::unfold((offset, offset + len), move |(at, end)| {
        let block = block.clone();
        async move {
            if at >= end {
                return None;
            }
            let start = at % block_len;
            let n = (block_len - start).min(end - at);
            let piece = block.slice(start as usize..(start + n) as usize);
            Some((Ok::<_, std::io::Error>(piece), (at + n, end)))
        }
    });
    reqwest::Body::wrap_stream(pieces)
}

/// A size setting from the environment: bytes, or a number with `KiB`, `MiB` or `GiB`
/// (`BENCH_TUS_BYTES=2GiB`); `default` when unset. Panics on anything else, so a typo never
/// starts a run of the wrong size.
pub fn byte_setting(name: &str, default: u64) -> u64 {
    let Ok(text) = std::env::var(name) else {
        return default;
    };
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |at| text.split_at(at));
    let scale: u64 = match unit.trim() {
        "" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => 0,
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|bytes| *bytes > 0)
        .unwrap_or_else(|| {
            panic!("{name}={text} is not a size: bytes, or a whole number with KiB, MiB or GiB")
        })
}

/// Bytes free for an unprivileged user on the file system holding `dir`.
pub fn free_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
    // SAFETY: statvfs reads the NUL-terminated path and writes only the struct passed, which
    // is plain data that any bit pattern (zeroes here) is valid for.
    let stats = unsafe {
        let mut stats: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &raw mut stats) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        stats
    };
    Ok(stats.f_bavail * stats.f_frsize)
}

/// The disk anchor: buffered writes of `size` bytes to a new file under `dir`, then `fsync`;
/// bytes per second. The file is removed afterwards.
pub fn fsync_write_speed(dir: &std::path::Path, size: u64) -> f64 {
    use std::io::Write;
    let path = dir.join(format!("fsync-{}.bin", uuid::Uuid::new_v4().simple()));
    let block = vec![0x5Au8; 1 << 20];
    let started = std::time::Instant::now();
    let mut file = std::fs::File::create(&path).expect("creating the fsync file");
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n]).expect("writing");
        left -= n as u64;
    }
    file.sync_all().expect("fsync");
    let elapsed = started.elapsed();
    let _ = std::fs::remove_file(&path);
    size as f64 / elapsed.as_secs_f64()
}

/// The hashing anchor: MD5 over `size` bytes in memory on one core, with the implementation the
/// broker uses (AWS-LC's, as fast as OpenSSL's here); bytes per second.
pub fn md5_speed(size: u64) -> f64 {
    let block = vec![0xA5u8; 1 << 20];
    let mut hasher = broker_common::md5::Md5::new();
    let started = std::time::Instant::now();
    for _ in 0..size / block.len() as u64 {
        hasher.update(&block);
    }
    std::hint::black_box(hasher.finalize());
    size as f64 / started.elapsed().as_secs_f64()
}

/// Streams the file at `path` as the body of `request` with its `Content-Length`; returns the
/// status and the answer's text.
pub async fn send_file(request: reqwest::RequestBuilder, path: &std::path::Path) -> (u16, String) {
    let (status, text, _) = send_file_traced(request, path).await;
    (status, text)
}

/// [`send_file`], also returning when each chunk was taken by the client: seconds since the
/// request started and the bytes taken so far (for [`throughput`]).
pub async fn send_file_traced(
    request: reqwest::RequestBuilder,
    path: &std::path::Path,
) -> (u16, String, Vec<(f64, u64)>) {
    use tokio::io::AsyncReadExt;
    let trace = std::sync::Arc::new(std::sync::Mutex::new(vec![(0.0, 0)]));
    let started = std::time::Instant::now();
    let file = tokio::fs::File::open(path)
        .await
        .expect("opening the upload");
    let size = file.metadata().await.expect("its size").len();
    // 1 MiB reads: reqwest's own file body reads a few KiB at a time, which would make the
    // client, not the server, the bottleneck.
    let taken = trace.clone();
    let chunks = futures::stream::unfold((file, 0u64), move |(mut file, sent)| {
        let taken = taken.clone();
        async move {
            // The body asks for the next chunk once the last one is on its way: the time of the
            // ask is when those bytes left.
            taken
                .lock()
                .expect("the trace")
                .push((started.elapsed().as_secs_f64(), sent));
            let mut chunk = vec![0u8; 1 << 20];
            match file.read(&mut chunk).await {
                Ok(0) => None,
                Ok(n) => {
                    chunk.truncate(n);
                    Some((Ok::<_, std::io::Error>(chunk), (file, sent + n as u64)))
                }
                Err(error) => Some((Err(error), (file, sent))),
            }
        }
    });
    let response = request
        .header("content-length", size)
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap_or_else(|error| panic!("upload of {} failed: {error:#}", path.display()));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    trace
        .lock()
        .expect("the trace")
        .push((started.elapsed().as_secs_f64(), size));
    let trace = std::mem::take(&mut *trace.lock().expect("the trace"));
    (status, text, trace)
}

/// Throughput in GB/s per `bin` seconds from a trace of (seconds, bytes so far): one point per
/// bin, at its end.
pub fn throughput(trace: &[(f64, u64)], bin: f64) -> Vec<(f64, f64)> {
    let Some(&(end, _)) = trace.last() else {
        return Vec::new();
    };
    let bytes_at = |t: f64| {
        // The last sample at or before `t`: bytes are counted when taken.
        trace
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .map_or(0, |(_, bytes)| *bytes)
    };
    let bins = (end / bin).ceil().max(1.0) as usize;
    (1..=bins)
        .map(|i| {
            let (from, to) = ((i - 1) as f64 * bin, (i as f64 * bin).min(end));
            let bytes = bytes_at(to).saturating_sub(bytes_at(from));
            (to, bytes as f64 / (to - from).max(1e-9) / 1e9)
        })
        .collect()
}

/// Sends `request` and reads the answer's body to the end without keeping it; returns the
/// status and the byte count.
pub async fn drain_download(request: reqwest::RequestBuilder) -> (u16, u64) {
    let mut response = request
        .send()
        .await
        .unwrap_or_else(|error| panic!("download failed: {error:#}"));
    let status = response.status().as_u16();
    let mut bytes = 0;
    while let Some(chunk) = response
        .chunk()
        .await
        .unwrap_or_else(|error| panic!("download broke off after {bytes} bytes: {error:#}"))
    {
        bytes += chunk.len() as u64;
    }
    (status, bytes)
}

/// The variable naming the JSON-lines file figures are recorded to.
pub const RESULTS_VAR: &str = "BENCH_RESULTS_FILE";

/// Appends `{"workload": workload, ...fields}` as one line to `$BENCH_RESULTS_FILE` when it is
/// set (does nothing otherwise). `fields` is an object; `"kind"` says what it holds (`row`,
/// `latency`, `series` or one of the bench's own).
pub fn record(workload: &str, fields: serde_json::Value) {
    use std::io::Write;
    let Some(path) = std::env::var_os(RESULTS_VAR).filter(|path| !path.is_empty()) else {
        return;
    };
    let mut line = serde_json::Map::new();
    line.insert("workload".to_owned(), workload.into());
    match fields {
        serde_json::Value::Object(fields) => line.extend(fields),
        other => {
            line.insert("value".to_owned(), other);
        }
    }
    let mut text = serde_json::Value::Object(line).to_string();
    text.push('\n');
    // One write of a whole line in append mode: lines from several writers never interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(text.as_bytes()));
    if let Err(error) = written {
        eprintln!(
            "warning: cannot record to {}: {error}",
            std::path::Path::new(&path).display()
        );
    }
}

/// The percentiles [`record_latencies`] keeps: every whole percent, then the tail.
const QUANTILES: [f64; 5] = [99.5, 99.9, 99.95, 99.99, 100.0];

/// Records the distribution of `sorted` latencies as `label` in the plot `plot` (e.g.
/// `"B7 publish → webhook"`, `"at 200 events/s"`): the count and the latency in milliseconds
/// at every whole percentile and at 99.5, 99.9, 99.95 and 99.99.
pub fn record_latencies(plot: &str, label: &str, sorted: &[Duration]) {
    let quantiles: Vec<(f64, f64)> = (0..100)
        .map(f64::from)
        .chain(QUANTILES)
        .map(|p| {
            let at = if p == 0.0 {
                sorted.first().copied().unwrap_or_default()
            } else {
                percentile(sorted, p / 100.0)
            };
            (p, ms(at))
        })
        .collect();
    record(
        plot,
        serde_json::json!({"kind": "latency", "label": label, "count": sorted.len(), "quantiles_ms": quantiles}),
    );
}

/// Records `points` (seconds, value in `unit`) as `label` in the time plot `plot`.
pub fn record_series(plot: &str, label: &str, unit: &str, points: &[(f64, f64)]) {
    record(
        plot,
        serde_json::json!({"kind": "series", "label": label, "unit": unit, "points": points}),
    );
}

/// Samples a process's VmRSS every 10 ms on its own thread, keeping the peak and the series.
pub struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(f64, u64)>>,
}

impl RssSampler {
    /// Starts sampling `pid`.
    pub fn start(pid: u32) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                let mut samples = Vec::new();
                loop {
                    samples.push((started.elapsed().as_secs_f64(), proc_kib(pid, "VmRSS")));
                    if stop.load(Ordering::Relaxed) {
                        return samples;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        Self { stop, thread }
    }

    /// Stops sampling; the samples as (seconds since the start, KiB).
    pub fn stop(self) -> Vec<(f64, u64)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// A process's peak memory growth during some work: its VmRSS just before, sampled every
/// 10 ms by an [`RssSampler`], and its VmHWM (the kernel's exact peak), which settles the
/// peak whenever it rose during the work (a spike between two samples included).
pub struct MemoryWatch {
    pid: u32,
    rss_before: u64,
    hwm_before: u64,
    sampler: RssSampler,
}

impl MemoryWatch {
    /// Starts watching `pid`.
    pub fn start(pid: u32) -> Self {
        Self {
            pid,
            rss_before: proc_kib(pid, "VmRSS"),
            hwm_before: proc_kib(pid, "VmHWM"),
            sampler: RssSampler::start(pid),
        }
    }

    /// Stops watching; the peak growth over the RSS before, in KiB, and the RSS samples.
    pub fn stop(self) -> (u64, Vec<(f64, u64)>) {
        let hwm_after = proc_kib(self.pid, "VmHWM");
        let samples = self.sampler.stop();
        // An unmoved high-water mark was set before the work (start-up), so it says nothing.
        let peak = if hwm_after > self.hwm_before {
            hwm_after.max(peak_kib(&samples))
        } else {
            peak_kib(&samples)
        };
        (peak.saturating_sub(self.rss_before), samples)
    }
}

/// The peak of RSS samples, in KiB.
pub fn peak_kib(samples: &[(f64, u64)]) -> u64 {
    samples.iter().map(|(_, kib)| *kib).max().unwrap_or(0)
}

/// RSS samples as (seconds, MiB), for [`record_series`].
pub fn in_mib(samples: &[(f64, u64)]) -> Vec<(f64, f64)> {
    samples
        .iter()
        .map(|&(at, kib)| (at, kib as f64 / 1024.0))
        .collect()
}

/// The signing anchor: RS256 signatures per second over `threads` threads for `time`, of claims
/// the size of an access token, with jsonwebtoken (the library the token service signs with).
pub fn rs256_signing_ceiling(keys: &crate::ClientKeys, threads: usize, time: Duration) -> f64 {
    let now = crate::now();
    let claims = serde_json::json!({
        "iss": "http://127.0.0.1:8080/",
        "client_id": "0f6bd3b3-52a4-4cd2-9a3a-27e2ad0fa5ab",
        "client_amr": "private_key_jwt",
        "consumer": {"authority": "iso6523-actorid-upis", "ID": format!("0192:{}", crate::DIGDIR)},
        "scope": crate::WRITE,
        "token_type": "Bearer",
        "iat": now,
        "exp": now + 120,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let started = std::time::Instant::now();
    let total: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut signed = 0;
                    while started.elapsed() < time {
                        std::hint::black_box(keys.sign(&claims));
                        signed += 1;
                    }
                    signed
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("signer")).sum()
    });
    total as f64 / started.elapsed().as_secs_f64()
}

/// The database anchor: single-row `INSERT`s per second into a fresh table of the database at
/// `url`, each its own transaction (autocommit, so each waits for its WAL flush when the server
/// runs with `fsync` and `synchronous_commit` on), from `connections` connections for `time`.
/// The table is dropped afterwards.
pub async fn postgres_insert_rate(
    url: &str,
    connections: usize,
    time: Duration,
) -> anyhow::Result<f64> {
    use sqlx::Connection;
    let table = format!("bench_inserts_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(url).await?;
    // The name is ours (a UUID), never input.
    let create = format!(
        "CREATE TABLE {table} (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), payload text NOT NULL)"
    );
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&mut admin)
        .await?;
    let insert = format!("INSERT INTO {table} (payload) VALUES ($1)");
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(sqlx::PgConnection::connect(url).await?);
    }
    let started = std::time::Instant::now();
    let workers: Vec<_> = clients
        .into_iter()
        .map(|mut connection| {
            let insert = insert.clone();
            tokio::spawn(async move {
                let mut inserted = 0u64;
                while started.elapsed() < time {
                    sqlx::query(sqlx::AssertSqlSafe(insert.as_str()))
                        .bind("a row about the size of an outbox entry's payload")
                        .execute(&mut connection)
                        .await?;
                    inserted += 1;
                }
                anyhow::Ok(inserted)
            })
        })
        .collect();
    let mut inserted = 0;
    for worker in workers {
        inserted += worker.await??;
    }
    let rate = inserted as f64 / started.elapsed().as_secs_f64();
    let drop = format!("DROP TABLE {table}");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(&mut admin)
        .await?;
    Ok(rate)
}

/// The server's `fsync` and `synchronous_commit` settings, e.g. `fsync=on synchronous_commit=on`.
pub async fn postgres_durability(url: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(url).await?;
    let mut settings = Vec::new();
    for name in ["fsync", "synchronous_commit"] {
        let value: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SHOW {name}")))
            .fetch_one(&mut connection)
            .await?;
        settings.push(format!("{name}={value}"));
    }
    Ok(settings.join(" "))
}
