//! Line charts as standalone SVG, written by hand: axes with round ticks, one polyline per
//! line, a legend on the right. Two x scales: linear (time) and the tail scale of latency
//! percentile plots, where 90 %, 99 %, 99.9 % and 99.99 % are equally far apart.

use std::fmt::Write;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 260.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
/// Where the tail scale puts the maximum (100 %): a little right of 99.99 %.
const TAIL_MAX: f64 = 4.5;

/// How x values map onto the axis.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum XScale {
    /// As they are (seconds).
    Linear,
    /// Percentiles 0..=100 on `-log10(1 - p/100)`.
    Tail,
}

/// One line of a chart.
pub struct Line {
    /// Shown in the legend.
    pub label: String,
    /// Index into the palette: lines of one label share it.
    pub color: usize,
    /// Drawn lighter (a repeat of a run already drawn in this colour).
    pub faded: bool,
    /// (x, y) in data units.
    pub points: Vec<(f64, f64)>,
}

/// A chart to render.
pub struct Chart {
    /// Above the plot.
    pub title: String,
    /// Under the x axis.
    pub x_label: String,
    /// Beside the y axis.
    pub y_label: String,
    /// How x maps.
    pub x_scale: XScale,
    /// The lines.
    pub lines: Vec<Line>,
}

fn tail(p: f64) -> f64 {
    if p >= 100.0 {
        TAIL_MAX
    } else {
        -(1.0 - p / 100.0).max(1e-4).log10()
    }
}

/// Round tick positions covering 0..=`max`.
fn ticks(max: f64) -> Vec<f64> {
    let max = if max > 0.0 { max } else { 1.0 };
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude);
    let count = (max / step).ceil() as usize;
    (0..=count).map(|i| i as f64 * step).collect()
}

fn number(value: f64) -> String {
    if value == 0.0 {
        "0".to_owned()
    } else if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.1}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    } else {
        format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Chart {
    /// The chart as an SVG document.
    pub fn render(&self) -> String {
        let map_x = |x: f64| match self.x_scale {
            XScale::Linear => x,
            XScale::Tail => tail(x),
        };
        let points = self.lines.iter().flat_map(|line| line.points.iter());
        let (mut x_max, mut y_max) = (0f64, 0f64);
        for &(x, y) in points {
            x_max = x_max.max(map_x(x));
            y_max = y_max.max(y);
        }
        let x_ticks: Vec<(f64, String)> = match self.x_scale {
            XScale::Linear => ticks(x_max).into_iter().map(|t| (t, number(t))).collect(),
            XScale::Tail => [
                (0.0, "0%"),
                (50.0, "50%"),
                (90.0, "90%"),
                (99.0, "99%"),
                (99.9, "99.9%"),
                (99.99, "99.99%"),
                (100.0, "max"),
            ]
            .into_iter()
            .map(|(p, label)| (tail(p), label.to_owned()))
            .collect(),
        };
        let x_end = x_ticks.last().map_or(1.0, |t| t.0).max(1e-9);
        let y_ticks = ticks(y_max);
        let y_end = y_ticks.last().copied().unwrap_or(1.0).max(1e-9);
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let px = |x: f64| LEFT + map_x(x) / x_end * plot_w;
        let px_mapped = |x: f64| LEFT + x / x_end * plot_w;
        let py = |y: f64| TOP + plot_h - y / y_end * plot_h;

        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            svg,
            r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
            LEFT + plot_w / 2.0,
            escape(&self.title)
        );
        for (x, label) in &x_ticks {
            let at = px_mapped(*x);
            let _ = writeln!(
                svg,
                r##"<line x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{:.1}" stroke="#e0e0e0"/><text x="{at:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                TOP + plot_h,
                TOP + plot_h + 16.0,
                escape(label)
            );
        }
        for y in &y_ticks {
            let at = py(*y);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{at:.1}" x2="{:.1}" y2="{at:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + plot_w,
                LEFT - 6.0,
                at + 4.0,
                number(*y)
            );
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + plot_w / 2.0,
            HEIGHT - 12.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            svg,
            r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            TOP + plot_h / 2.0,
            escape(&self.y_label)
        );
        for line in &self.lines {
            let path: Vec<String> = line
                .points
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.6" stroke-opacity="{}" points="{}"/>"#,
                COLORS[line.color % COLORS.len()],
                if line.faded { 0.45 } else { 1.0 },
                path.join(" ")
            );
        }
        let mut legend_y = TOP + 8.0;
        for line in self.lines.iter().filter(|line| !line.faded) {
            let x = LEFT + plot_w + 14.0;
            let _ = writeln!(
                svg,
                r#"<line x1="{x}" y1="{legend_y}" x2="{}" y2="{legend_y}" stroke="{}" stroke-width="3"/><text x="{}" y="{:.1}">{}</text>"#,
                x + 18.0,
                COLORS[line.color % COLORS.len()],
                x + 24.0,
                legend_y + 4.0,
                escape(&line.label)
            );
            legend_y += 18.0;
        }
        if self.lines.iter().any(|line| line.faded) {
            let _ = writeln!(
                svg,
                r##"<text x="{}" y="{:.1}" fill="#666">lighter: the other repeats</text>"##,
                LEFT + plot_w + 14.0,
                legend_y + 4.0
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}
