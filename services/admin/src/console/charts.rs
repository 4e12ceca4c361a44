//! Line charts drawn on the server as SVG: no script, no framework, and
//! each with a text alternative and the same figures as a table.
//!
//! A chart is a few series over the same buckets (hours, six-hour spans or
//! days). The previous period is drawn as a faint line under the current
//! one; a limit (a budget) as a dashed line. Colours and line styles come
//! from the console's stylesheet (`.series-*` classes), so the strict
//! Content-Security-Policy (no inline styles) holds.

use std::fmt::Write as _;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The period being looked at.
    Current,
    /// A second figure of the same period (p50 beside p95, notes beside
    /// tickets).
    Second,
    /// The period before, faint.
    Previous,
    /// A limit the others should stay under, dashed.
    Limit,
}

impl Style {
    fn class(self) -> &'static str {
        match self {
            Self::Current => "series-current",
            Self::Second => "series-second",
            Self::Previous => "series-previous",
            Self::Limit => "series-limit",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub style: Style,
    /// One value per bucket; `None` where there is nothing to show (no
    /// completed ticket to take a percentile of).
    pub values: Vec<Option<f64>>,
}

#[derive(Debug, Clone)]
pub struct Chart {
    /// Unique on the page: the ids of the SVG's title and description.
    pub id: String,
    pub title: String,
    /// What the figures are, as the axis and the table say it.
    pub unit: String,
    /// One label per bucket, oldest first.
    pub buckets: Vec<String>,
    pub series: Vec<Series>,
}

/// A legend entry, for the HTML under the chart.
#[derive(Debug)]
pub struct Legend {
    pub label: String,
    pub class: &'static str,
}

const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 28.0;

impl Chart {
    /// The highest value of any series: the top of the y axis.
    fn ceiling(&self) -> f64 {
        let top = self
            .series
            .iter()
            .flat_map(|series| series.values.iter().flatten())
            .fold(0.0_f64, |top, value| top.max(*value));
        nice_ceiling(top)
    }

    /// The chart as an SVG element: scales with the page's width, readable
    /// from a phone to a desktop.
    pub fn svg(&self) -> String {
        let ceiling = self.ceiling();
        let count = self.buckets.len().max(1);
        let plot_width = WIDTH - LEFT - RIGHT;
        let plot_height = HEIGHT - TOP - BOTTOM;
        let x = |index: usize| {
            if count == 1 {
                LEFT + plot_width / 2.0
            } else {
                LEFT + plot_width * index as f64 / (count - 1) as f64
            }
        };
        let y = |value: f64| TOP + plot_height * (1.0 - value / ceiling);
        let mut svg = String::with_capacity(4096);
        let _ = write!(
            svg,
            r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-title {id}-desc" preserveAspectRatio="xMidYMid meet"><title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>"#,
            id = escape(&self.id),
            title = escape(&self.title),
            desc = escape(&self.summary()),
        );
        // Grid lines and y labels at 0, half and the top.
        for fraction in [0.0, 0.5, 1.0] {
            let value = ceiling * fraction;
            let at = y(value);
            let _ = write!(
                svg,
                r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{at:.1}" y2="{at:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                WIDTH - RIGHT,
                LEFT - 6.0,
                at + 4.0,
                escape(&figure(value)),
            );
        }
        // X labels: first, middle and last bucket.
        let mut shown = vec![0, count / 2, count - 1];
        shown.dedup();
        for index in shown {
            if let Some(label) = self.buckets.get(index) {
                let anchor = match index {
                    0 => "start",
                    i if i == count - 1 => "end",
                    _ => "middle",
                };
                let _ = write!(
                    svg,
                    r#"<text class="axis" x="{:.1}" y="{}" text-anchor="{anchor}">{}</text>"#,
                    x(index),
                    HEIGHT - 8.0,
                    escape(label),
                );
            }
        }
        let empty = self
            .series
            .iter()
            .all(|series| series.values.iter().all(Option::is_none));
        if empty {
            let _ = write!(
                svg,
                r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">No data in this period</text>"#,
                LEFT + plot_width / 2.0,
                TOP + plot_height / 2.0,
            );
        }
        // Faint and dashed lines first, the current period on top.
        let mut order: Vec<&Series> = self.series.iter().collect();
        order.sort_by_key(|series| match series.style {
            Style::Previous => 0,
            Style::Limit => 1,
            Style::Second => 2,
            Style::Current => 3,
        });
        for series in order {
            for run in segments(&series.values) {
                let points: Vec<String> = run
                    .iter()
                    .map(|(index, value)| format!("{:.1},{:.1}", x(*index), y(*value)))
                    .collect();
                if points.len() == 1 {
                    let (index, value) = run[0];
                    let _ = write!(
                        svg,
                        r#"<circle class="{}" cx="{:.1}" cy="{:.1}" r="2.5"/>"#,
                        series.style.class(),
                        x(index),
                        y(value)
                    );
                } else {
                    let _ = write!(
                        svg,
                        r#"<polyline class="{}" points="{}"/>"#,
                        series.style.class(),
                        points.join(" ")
                    );
                }
            }
        }
        svg.push_str("</svg>");
        svg
    }

    /// The chart in words, for a screen reader and the SVG's description:
    /// each series' latest value, its peak and its total where a total
    /// means something.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for series in &self.series {
            let values: Vec<(usize, f64)> = series
                .values
                .iter()
                .enumerate()
                .filter_map(|(index, value)| value.map(|value| (index, value)))
                .collect();
            let Some(&(last_index, last)) = values.last() else {
                parts.push(format!("{}: no data", series.label));
                continue;
            };
            let (peak_index, peak) =
                values
                    .iter()
                    .copied()
                    .fold((last_index, last), |best, item| {
                        if item.1 > best.1 { item } else { best }
                    });
            let bucket = |index: usize| self.buckets.get(index).cloned().unwrap_or_default();
            parts.push(format!(
                "{}: latest {} ({}), highest {} ({})",
                series.label,
                figure(last),
                bucket(last_index),
                figure(peak),
                bucket(peak_index),
            ));
        }
        format!("{} ({}). {}.", self.title, self.unit, parts.join("; "))
    }

    /// The legend, for HTML under the chart (it wraps on a phone, where
    /// text inside the SVG would shrink).
    pub fn legend(&self) -> Vec<Legend> {
        self.series
            .iter()
            .map(|series| Legend {
                label: series.label.clone(),
                class: series.style.class(),
            })
            .collect()
    }

    /// The table behind the chart: a header row, then one row per bucket.
    pub fn rows(&self) -> Vec<Vec<String>> {
        self.buckets
            .iter()
            .enumerate()
            .map(|(index, bucket)| {
                std::iter::once(bucket.clone())
                    .chain(self.series.iter().map(|series| {
                        series
                            .values
                            .get(index)
                            .copied()
                            .flatten()
                            .map(figure)
                            .unwrap_or_else(|| "—".into())
                    }))
                    .collect()
            })
            .collect()
    }

    pub fn headers(&self) -> Vec<String> {
        std::iter::once("When (UTC)".to_owned())
            .chain(self.series.iter().map(|series| series.label.clone()))
            .collect()
    }
}

/// Runs of consecutive values, so a missing bucket breaks the line rather
/// than being drawn as zero.
fn segments(values: &[Option<f64>]) -> Vec<Vec<(usize, f64)>> {
    let mut runs = Vec::new();
    let mut run = Vec::new();
    for (index, value) in values.iter().enumerate() {
        match value {
            Some(value) if value.is_finite() => run.push((index, *value)),
            _ => {
                if !run.is_empty() {
                    runs.push(std::mem::take(&mut run));
                }
            }
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// A round number at or above `top`: 1, 2 or 5 times a power of ten.
fn nice_ceiling(top: f64) -> f64 {
    if !top.is_finite() || top <= 0.0 {
        return 1.0;
    }
    let magnitude = 10_f64.powf(top.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * magnitude)
        .find(|candidate| *candidate >= top)
        .unwrap_or(10.0 * magnitude)
}

/// A figure as the axis and the table print it: whole numbers without
/// decimals, small ones with what they need.
pub fn figure(value: f64) -> String {
    if (value == value.trunc() && value.abs() < 1e12) || value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// Text for SVG (its markup is written here, not by the template engine).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(current: Vec<Option<f64>>, previous: Vec<Option<f64>>) -> Chart {
        Chart {
            id: "received".into(),
            title: "Tickets <received>".into(),
            unit: "tickets per hour".into(),
            buckets: (0..current.len()).map(|h| format!("{h:02}:00")).collect(),
            series: vec![
                Series {
                    label: "last 24 hours".into(),
                    style: Style::Current,
                    values: current,
                },
                Series {
                    label: "the 24 hours before".into(),
                    style: Style::Previous,
                    values: previous,
                },
            ],
        }
    }

    #[test]
    fn the_axis_tops_at_a_round_number_above_the_highest_value() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(13.0), 20.0);
        assert_eq!(nice_ceiling(420.0), 500.0);
        assert_eq!(nice_ceiling(0.034), 0.05);
        assert_eq!(nice_ceiling(100.0), 100.0);
    }

    #[test]
    fn a_missing_bucket_breaks_the_line_instead_of_dropping_to_zero() {
        let runs = segments(&[Some(1.0), Some(2.0), None, Some(4.0), Some(f64::NAN)]);
        assert_eq!(runs, vec![vec![(0, 1.0), (1, 2.0)], vec![(3, 4.0)]]);
        let svg = chart(vec![Some(1.0), Some(2.0), None, Some(4.0)], vec![None; 4]).svg();
        assert_eq!(svg.matches("<polyline").count(), 1, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
    }

    #[test]
    fn points_scale_to_the_plot_and_the_current_period_is_drawn_last() {
        let svg = chart(vec![Some(0.0), Some(10.0)], vec![Some(5.0), Some(5.0)]).svg();
        // 0 sits on the bottom of the plot, the top (10) on its top edge.
        let bottom = HEIGHT - BOTTOM;
        assert!(
            svg.contains(&format!(
                r#"points="{LEFT:.1},{bottom:.1} {:.1},{TOP:.1}""#,
                WIDTH - RIGHT
            )),
            "{svg}"
        );
        let previous = svg.find("series-previous").unwrap();
        let current = svg.find(r#"<polyline class="series-current""#).unwrap();
        assert!(
            previous < current,
            "the faint line is under the current one"
        );
    }

    #[test]
    fn text_is_escaped_and_the_description_says_what_the_chart_shows() {
        let chart = chart(vec![Some(3.0), Some(12.0), Some(5.0)], vec![None; 3]);
        let svg = chart.svg();
        assert!(svg.contains("Tickets &lt;received&gt;"));
        assert!(!svg.contains("<received>"));
        assert_eq!(
            chart.summary(),
            "Tickets <received> (tickets per hour). last 24 hours: latest 5 (02:00), highest 12 (01:00); the 24 hours before: no data."
        );
    }

    #[test]
    fn a_chart_without_data_says_so_instead_of_drawing_nothing() {
        let svg = chart(vec![None, None], vec![None, None]).svg();
        assert!(svg.contains("No data in this period"), "{svg}");
        let svg = chart(vec![None, Some(0.0)], vec![None, None]).svg();
        assert!(!svg.contains("No data"), "a zero is data: {svg}");
    }

    #[test]
    fn the_table_has_a_row_per_bucket_and_a_column_per_series() {
        let chart = chart(vec![Some(1.5), None], vec![Some(0.25), Some(2.0)]);
        assert_eq!(
            chart.headers(),
            ["When (UTC)", "last 24 hours", "the 24 hours before"]
        );
        assert_eq!(
            chart.rows(),
            vec![vec!["00:00", "1.5", "0.25"], vec!["01:00", "—", "2"]]
        );
    }
}
