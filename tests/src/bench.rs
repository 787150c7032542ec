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

/// Prints `rows` as a table with MEETS/MISSES per row.
pub fn print_table(rows: &[Row]) {
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
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 8 << 20];
    let mut left = size;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            // xorshift64: fast, and defeats any compression on the way.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n]).expect("writing the test file");
        left -= n as u64;
    }
    file.flush().expect("flushing the test file");
    path
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

/// The hashing anchor: MD5 over `size` bytes in memory on one core; bytes per second.
pub fn md5_speed(size: u64) -> f64 {
    use md5::Digest;
    let block = vec![0xA5u8; 1 << 20];
    let mut hasher = md5::Md5::new();
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
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path)
        .await
        .expect("opening the upload");
    let size = file.metadata().await.expect("its size").len();
    // 1 MiB reads: reqwest's own file body reads a few KiB at a time, which would make the
    // client, not the server, the bottleneck.
    let chunks = futures::stream::unfold(file, |mut file| async move {
        let mut chunk = vec![0u8; 1 << 20];
        match file.read(&mut chunk).await {
            Ok(0) => None,
            Ok(n) => {
                chunk.truncate(n);
                Some((Ok::<_, std::io::Error>(chunk), file))
            }
            Err(error) => Some((Err(error), file)),
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
    (status, response.text().await.unwrap_or_default())
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
