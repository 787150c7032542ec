//! The machine's own speeds, the anchors DESIGN.md §5 states its reference machine by: buffered
//! write + fsync, MD5 on one core, the RS256 signing ceiling over all cores, and PostgreSQL's
//! single-row insert rate (autocommit, so one WAL flush per row) from one connection and from
//! four. Nothing of ours runs; the figures say whether this machine is like the reference one.
//! The budgets' own anchors are measured again beside each budget (upload: MD5 and the disk;
//! tokens: the signing ceiling) so every ratio compares figures from the same minutes.
//!
//! Run: `cargo bench -p broker-tests --bench anchors` (PostgreSQL when `BROKER_TEST_DATABASE_URL`
//! names a server: a fresh database is created on it; `BENCH_UPLOAD_BYTES` sets the disk
//! write's size, default 1 GiB).

use std::time::Duration;

use broker_tests::bench::{
    Row, fsync_write_speed, md5_speed, postgres_durability, postgres_insert_rate, print_table,
    rs256_signing_ceiling,
};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const SIGNING_TIME: Duration = Duration::from_secs(3);
const INSERT_TIME: Duration = Duration::from_secs(5);
const INSERT_CONNECTIONS: [usize; 2] = [1, 4];

fn main() {
    broker_tests::bench::run("anchors", run);
}

async fn run() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let size = broker_tests::bench::setting("BENCH_UPLOAD_BYTES", GIB);
    println!("machine anchors ({cores} cores)");
    broker_tests::bench::warn_if_busy(cores);
    let scratch =
        std::env::temp_dir().join(format!("broker-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&scratch).expect("creating the scratch directory");
    let disk = fsync_write_speed(&scratch, size);
    let _ = std::fs::remove_dir_all(&scratch);
    println!(
        "buffered write + fsync of {} MiB: {:.2} GB/s",
        size / MIB,
        disk / 1e9
    );
    let md5 = md5_speed(size.min(512 * MIB));
    println!("MD5: {:.2} GB/s", md5 / 1e9);
    let keys = broker_tests::ClientKeys::generate();
    let signing = rs256_signing_ceiling(&keys, cores, SIGNING_TIME);
    println!("RS256 signing on {cores} threads: {signing:.0}/s");

    let anchor = |what: String, figure: String, reference: &str| Row {
        budget: "anchor",
        what,
        ours: "-".to_owned(),
        anchor: figure,
        ratio: None,
        limit: format!("ref. {reference}"),
        meets: None,
    };
    let mut rows = vec![
        anchor(
            format!("buffered write + fsync, {} MiB", size / MIB),
            format!("{:.2} GB/s", disk / 1e9),
            "0.40 GB/s",
        ),
        anchor(
            "MD5, one core".to_owned(),
            format!("{:.2} GB/s", md5 / 1e9),
            "0.6–0.77 GB/s",
        ),
        anchor(
            format!("RS256 signing ceiling, {cores} cores"),
            format!("{signing:.0}/s"),
            "4.1k/s per core",
        ),
    ];

    match broker_tests::database::postgres().await {
        Some(database) => {
            let settings = postgres_durability(database.url())
                .await
                .unwrap_or_else(|error| format!("settings unknown: {error:#}"));
            println!("PostgreSQL: {settings}");
            for connections in INSERT_CONNECTIONS {
                let rate = postgres_insert_rate(database.url(), connections, INSERT_TIME)
                    .await
                    .unwrap_or_else(|error| panic!("PostgreSQL inserts: {error:#}"));
                println!("PostgreSQL single-row inserts, {connections} connection(s): {rate:.0}/s");
                rows.push(anchor(
                    format!("PostgreSQL single-row inserts, {connections} conn."),
                    format!("{rate:.0}/s"),
                    "~17k/s",
                ));
            }
        }
        None => println!("PostgreSQL: not measured (BROKER_TEST_DATABASE_URL not set)"),
    }
    print_table(&rows);
}
