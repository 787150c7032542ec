//! The report as Markdown: a heading with the run's settings, one table per store (workload,
//! our median with min–max, the anchor's median, the ratio, the budget, how many runs met it),
//! then failed runs and the plots.

use std::fmt::Write;

use serde_json::Value;

use super::{Figure, Row, STORES, Spread};

/// A number with as many decimals as its size deserves.
fn number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 || (value.fract() == 0.0 && magnitude < 1e15) {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 0.1 || magnitude == 0.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// `median unit (min–max)`, or `-`.
fn figures(figures: &[Figure]) -> String {
    let values: Vec<f64> = figures.iter().map(|f| f.value).collect();
    let Some(spread) = Spread::of(&values) else {
        return "-".to_owned();
    };
    let unit = figures.first().map_or("", |f| f.unit.as_str());
    let glue = if unit.starts_with('/') || unit.is_empty() {
        ""
    } else {
        " "
    };
    spread_text(spread, &format!("{glue}{unit}"))
}

fn spread_text(spread: Spread, unit: &str) -> String {
    let median = format!("{}{unit}", number(spread.median));
    if spread.min == spread.max {
        median
    } else {
        format!("{median} ({}–{})", number(spread.min), number(spread.max))
    }
}

fn verdict(row: &Row) -> String {
    let met = row.meets.iter().filter(|m| **m).count();
    let judged = row.meets.len();
    match (met, judged) {
        (_, 0) => "-".to_owned(),
        (met, judged) if met == judged => format!("yes ({met}/{judged})"),
        (0, judged) => format!("no (0/{judged})"),
        (met, judged) => format!("mixed ({met}/{judged})"),
    }
}

/// The whole report.
pub fn markdown(rows: &[Row], meta: &Value, failed: &[String], plots: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmark results\n");
    let text = |key: &str| match &meta[key] {
        Value::String(s) => s.clone(),
        Value::Null => "?".to_owned(),
        other => other.to_string(),
    };
    let _ = writeln!(
        out,
        "{} on {} ({} cores, load average {} at the start), commit {}; {} repeat(s){}; \
         figures are medians with (min–max) over the repeats, ratios are per run (ours over \
         the anchor measured beside it), and \"met?\" counts the runs whose own verdict met \
         the budget.\n",
        text("started"),
        text("host"),
        text("cores"),
        text("load_average"),
        text("commit"),
        text("repeats"),
        if meta["quick"].as_bool() == Some(true) {
            ", QUICK sizes (a smoke run: not comparable with the budgets)"
        } else {
            ""
        }
    );
    let mut stores: Vec<&str> = Vec::new();
    for row in rows {
        if !stores.contains(&row.store.as_str()) {
            stores.push(&row.store);
        }
    }
    for store in stores {
        let heading = STORES.iter().find(|s| s.0 == store).map_or(store, |s| s.1);
        let _ = writeln!(out, "## {heading}\n");
        let _ = writeln!(
            out,
            "| workload | ours: median (min–max) | anchor: median | ratio: median (min–max) | budget | met? |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for row in rows.iter().filter(|row| row.store == store) {
            let ratio = Spread::of(&row.ratio).map_or("-".to_owned(), |s| spread_text(s, ""));
            let anchor = if row.anchor.is_empty() {
                "-".to_owned()
            } else {
                // The anchor's spread matters less than ours: the median alone.
                let values: Vec<f64> = row.anchor.iter().map(|f| f.value).collect();
                let unit = row.anchor.first().map_or("", |f| f.unit.as_str());
                let median = Spread::of(&values).map_or(0.0, |s| s.median);
                let glue = if unit.starts_with('/') { "" } else { " " };
                format!("{}{glue}{unit}", number(median))
            };
            let _ = writeln!(
                out,
                "| {} {} | {} | {anchor} | {ratio} | {} | {} |",
                row.budget,
                row.what.replace('|', "/"),
                figures(&row.ours),
                row.limit,
                verdict(row)
            );
        }
        out.push('\n');
    }
    if !failed.is_empty() {
        let _ = writeln!(
            out,
            "Runs that failed (their logs are in raw/): {}\n",
            failed.join(", ")
        );
    }
    if !plots.is_empty() {
        let _ = writeln!(out, "Plots: {}\n", plots.join(", "));
    }
    out
}
