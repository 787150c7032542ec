//! `bench-report <results folder>`: turns what `scripts/bench.sh` collected into the report.
//!
//! The folder holds `raw/<bench>.<store>.<repeat>.jsonl` (lines recorded by the benchmarks
//! through `broker_tests::bench::record`), the matching `.log` (everything the run printed) and
//! `.status` (its exit code), and `meta.json` (the machine and the run's settings). Written:
//! `results.json` (every figure of every run, and per row the median, min and max), `table.md`,
//! and one SVG per plot and store (latency distributions, throughput and memory over time).
//! The table goes to stdout too.
//!
//! Verdicts stay the benchmarks' own: each run's table row says whether it met its budget, and
//! the report counts the runs that did. A run that recorded no rows (a benchmark that does not
//! go through `print_table` with the file set) is read from its log's printed table instead.

mod svg;
mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

use svg::{Chart, Line, XScale};

/// The order benchmarks appear in; others follow by name.
const BENCH_ORDER: [&str; 7] = [
    "anchors",
    "tokens",
    "authorize",
    "upload",
    "download",
    "load",
    "events",
];
/// The order stores appear in, with their headings.
const STORES: [(&str, &str); 3] = [
    ("machine", "This machine's anchors"),
    ("embedded", "Embedded: SQLite and the in-process bus"),
    ("postgres", "PostgreSQL and RabbitMQ"),
];

/// One benchmark run: what it recorded and printed.
struct Run {
    bench: String,
    store: String,
    repeat: u32,
    status: Option<i32>,
    records: Vec<Value>,
}

/// A figure as printed ("0.31 GB/s"): its number and unit.
#[derive(Clone)]
struct Figure {
    value: f64,
    unit: String,
}

impl Figure {
    /// The leading number of `text` and what follows it; `None` for "-" or text.
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let end = text
            .char_indices()
            .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && *c == '-')))
            .map_or(text.len(), |(i, _)| i);
        let value = text[..end].parse().ok()?;
        Some(Self {
            value,
            unit: text[end..].trim().to_owned(),
        })
    }
}

/// One table row's figures over the repeats.
struct Row {
    store: String,
    budget: String,
    what: String,
    limit: String,
    ours: Vec<Figure>,
    anchor: Vec<Figure>,
    ratio: Vec<f64>,
    meets: Vec<bool>,
    runs: usize,
}

/// Median, min and max.
#[derive(Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Option<Self> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        if n == 0 {
            return None;
        }
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }

    fn json(spread: Option<Self>, values: &[f64]) -> Value {
        match spread {
            Some(s) => json!({"median": s.median, "min": s.min, "max": s.max, "values": values}),
            None => Value::Null,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: bench-report <results folder>")?;
    let runs = read_runs(&dir)?;
    let meta: Value = std::fs::read_to_string(dir.join("meta.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    let rows = rows(&runs);
    let plots = plots(&dir, &runs)?;
    let failed: Vec<String> = runs
        .iter()
        .filter(|run| run.status != Some(0))
        .map(|run| {
            format!(
                "{}.{}.{} (exit {})",
                run.bench,
                run.store,
                run.repeat,
                run.status.map_or("unknown".to_owned(), |s| s.to_string())
            )
        })
        .collect();

    let markdown = table::markdown(&rows, &meta, &failed, &plots);
    std::fs::write(dir.join("table.md"), &markdown)?;
    let results = json!({
        "meta": meta,
        "runs": runs.iter().map(|run| json!({
            "bench": run.bench, "store": run.store, "repeat": run.repeat,
            "status": run.status, "records": run.records.len(),
        })).collect::<Vec<_>>(),
        "failed": failed,
        "rows": rows.iter().map(row_json).collect::<Vec<_>>(),
        "latencies": tagged(&runs, "latency"),
        "series": tagged(&runs, "series"),
        "plots": plots,
    });
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    print!("{markdown}");
    Ok(())
}

/// Every run in `dir/raw`, in bench order, then store, then repeat.
fn read_runs(dir: &Path) -> anyhow::Result<Vec<Run>> {
    let raw = dir.join("raw");
    let mut runs = Vec::new();
    let entries = std::fs::read_dir(&raw).with_context(|| format!("reading {}", raw.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("status") {
            continue;
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let mut parts = stem.split('.');
        let (Some(bench), Some(store), Some(repeat)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let status = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| text.trim().parse().ok());
        let mut records: Vec<Value> = std::fs::read_to_string(path.with_extension("jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        if !records.iter().any(|r| r["kind"] == "row") {
            let log = std::fs::read_to_string(path.with_extension("log")).unwrap_or_default();
            records.extend(rows_from_log(&log));
        }
        runs.push(Run {
            bench: bench.to_owned(),
            store: store.to_owned(),
            repeat: repeat.parse().unwrap_or(0),
            status,
            records,
        });
    }
    let bench_rank = |bench: &str| {
        BENCH_ORDER
            .iter()
            .position(|b| *b == bench)
            .unwrap_or(BENCH_ORDER.len())
    };
    let store_rank = |store: &str| {
        STORES
            .iter()
            .position(|s| s.0 == store)
            .unwrap_or(STORES.len())
    };
    runs.sort_by(|a, b| {
        (
            store_rank(&a.store),
            bench_rank(&a.bench),
            &a.bench,
            a.repeat,
        )
            .cmp(&(
                store_rank(&b.store),
                bench_rank(&b.bench),
                &b.bench,
                b.repeat,
            ))
    });
    Ok(runs)
}

/// The rows of tables `broker_tests::bench::print_table` printed: a header line starting with
/// `budget` and ending in `verdict`, then rows in its fixed columns (6, 44, 14, 14, 7, 22).
fn rows_from_log(log: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in log.lines() {
        if line.starts_with("budget ") && line.trim_end().ends_with("verdict") {
            in_table = true;
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        if !in_table || chars.len() < 110 || !line.starts_with('B') {
            in_table = false;
            continue;
        }
        let column = |from: usize, to: usize| -> String {
            chars[from.min(chars.len())..to.min(chars.len())]
                .iter()
                .collect::<String>()
                .trim()
                .to_owned()
        };
        let verdict = column(112, chars.len());
        rows.push(json!({
            "kind": "row",
            "budget": column(0, 6),
            "workload": column(7, 51),
            "ours": column(52, 66),
            "anchor": column(67, 81),
            "ratio": column(82, 89).parse::<f64>().ok(),
            "limit": column(90, 112),
            "meets": match verdict.as_str() {
                "MEETS" => Some(true),
                "MISSES" => Some(false),
                _ => None,
            },
            "from": "log",
        }));
    }
    rows
}

/// The rows of all runs, grouped by store, budget and workload in first-seen order.
fn rows(runs: &[Run]) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for run in runs {
        for record in run.records.iter().filter(|r| r["kind"] == "row") {
            let text = |key: &str| record[key].as_str().unwrap_or("").to_owned();
            let (budget, what) = (text("budget"), text("workload"));
            let index = match rows
                .iter()
                .position(|r| r.store == run.store && r.budget == budget && r.what == what)
            {
                Some(index) => index,
                None => {
                    rows.push(Row {
                        store: run.store.clone(),
                        budget,
                        what,
                        limit: text("limit"),
                        ours: Vec::new(),
                        anchor: Vec::new(),
                        ratio: Vec::new(),
                        meets: Vec::new(),
                        runs: 0,
                    });
                    rows.len() - 1
                }
            };
            let row = &mut rows[index];
            row.runs += 1;
            row.ours.extend(Figure::parse(&text("ours")));
            row.anchor.extend(Figure::parse(&text("anchor")));
            row.ratio.extend(record["ratio"].as_f64());
            row.meets.extend(record["meets"].as_bool());
        }
    }
    rows
}

fn row_json(row: &Row) -> Value {
    let values = |figures: &[Figure]| figures.iter().map(|f| f.value).collect::<Vec<_>>();
    let (ours, anchor) = (values(&row.ours), values(&row.anchor));
    json!({
        "store": row.store,
        "budget": row.budget,
        "workload": row.what,
        "limit": row.limit,
        "unit": row.ours.first().or(row.anchor.first()).map(|f| f.unit.clone()),
        "ours": Spread::json(Spread::of(&ours), &ours),
        "anchor": Spread::json(Spread::of(&anchor), &anchor),
        "anchor_unit": row.anchor.first().map(|f| f.unit.clone()),
        "ratio": Spread::json(Spread::of(&row.ratio), &row.ratio),
        "met": row.meets.iter().filter(|m| **m).count(),
        "judged": row.meets.len(),
        "runs": row.runs,
    })
}

/// Every record of `kind`, with the run it came from.
fn tagged(runs: &[Run], kind: &str) -> Vec<Value> {
    runs.iter()
        .flat_map(|run| {
            run.records
                .iter()
                .filter(move |r| r["kind"] == kind)
                .map(move |r| {
                    let mut r = r.clone();
                    r["bench"] = run.bench.clone().into();
                    r["store"] = run.store.clone().into();
                    r["repeat"] = run.repeat.into();
                    r
                })
        })
        .collect()
}

/// One plot's lines from all runs.
struct Plot {
    store: String,
    name: String,
    /// Latency percentiles (else a time series).
    latency: bool,
    unit: String,
    /// (label, repeat, points).
    lines: Vec<(String, u32, Points)>,
}

/// (x, y) pairs.
type Points = Vec<(f64, f64)>;

/// Writes one SVG per (store, plot) of the latency and series records; their file names.
fn plots(dir: &Path, runs: &[Run]) -> anyhow::Result<Vec<String>> {
    // In first-seen order.
    let mut groups: Vec<Plot> = Vec::new();
    for run in runs {
        for record in &run.records {
            let kind = record["kind"].as_str().unwrap_or("");
            let (points_key, unit) = match kind {
                "latency" => ("quantiles_ms", "ms".to_owned()),
                "series" => ("points", record["unit"].as_str().unwrap_or("").to_owned()),
                _ => continue,
            };
            let points: Vec<(f64, f64)> = record[points_key]
                .as_array()
                .map(|points| {
                    points
                        .iter()
                        .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?)))
                        .collect()
                })
                .unwrap_or_default();
            let name = record["workload"].as_str().unwrap_or("");
            let label = record["label"].as_str().unwrap_or("").to_owned();
            let line = (label, run.repeat, points);
            match groups
                .iter_mut()
                .find(|plot| plot.store == run.store && plot.name == name)
            {
                Some(plot) => plot.lines.push(line),
                None => groups.push(Plot {
                    store: run.store.clone(),
                    name: name.to_owned(),
                    latency: kind == "latency",
                    unit,
                    lines: vec![line],
                }),
            }
        }
    }
    let heading: BTreeMap<&str, &str> = STORES.into_iter().collect();
    let mut files = Vec::new();
    for Plot {
        store,
        name: plot,
        latency,
        unit,
        lines,
    } in groups
    {
        let mut labels: Vec<String> = Vec::new();
        let lines = lines
            .into_iter()
            .map(|(label, repeat, points)| {
                let seen = labels.iter().position(|l| *l == label);
                let color = seen.unwrap_or_else(|| {
                    labels.push(label.clone());
                    labels.len() - 1
                });
                Line {
                    label: format!("{label} (run {repeat})"),
                    color,
                    faded: seen.is_some(),
                    points,
                }
            })
            .collect();
        let chart = Chart {
            title: format!(
                "{plot} — {}",
                heading
                    .get(store.as_str())
                    .copied()
                    .unwrap_or(store.as_str())
            ),
            x_label: if latency {
                "percentile".to_owned()
            } else {
                "seconds".to_owned()
            },
            y_label: unit,
            x_scale: if latency {
                XScale::Tail
            } else {
                XScale::Linear
            },
            lines,
        };
        let name = format!("{store}-{}.svg", slug(&plot));
        std::fs::write(dir.join(&name), chart.render())?;
        files.push(name);
    }
    Ok(files)
}

/// `B7 publish → webhook` → `b7-publish-webhook`.
fn slug(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_parse_with_their_units() {
        let figure = Figure::parse("0.31 GB/s").expect("a figure");
        assert_eq!((figure.value, figure.unit.as_str()), (0.31, "GB/s"));
        assert_eq!(Figure::parse("661/s").map(|f| f.value), Some(661.0));
        assert!(Figure::parse("-").is_none());
    }

    #[test]
    fn spreads_take_the_middle() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).expect("values");
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(&[1.0, 2.0]).map(|s| s.median), Some(1.5));
    }

    #[test]
    fn printed_tables_are_read_back() {
        // The header and row formats of `broker_tests::bench::print_table`.
        let header = format!(
            "{:<6} {:<44} {:>14} {:>14} {:>7} {:<22} verdict",
            "budget", "measured", "ours", "anchor", "ratio", "budget"
        );
        let row = format!(
            "{:<6} {:<44} {:>14} {:>14} {:>7} {:<22} {}",
            "B7", "publish → webhook p99 at 200/s", "12.5 ms", "-", "-", "≤ 250 ms", "MEETS"
        );
        let rows = rows_from_log(&format!("noise\n\n{header}\n{row}\n\nafter\n"));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["workload"], "publish → webhook p99 at 200/s");
        assert_eq!(rows[0]["ours"], "12.5 ms");
        assert_eq!(rows[0]["limit"], "≤ 250 ms");
        assert_eq!(rows[0]["meets"], true);
    }

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(slug("B7 publish → webhook"), "b7-publish-webhook");
    }
}
