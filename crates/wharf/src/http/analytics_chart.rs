//! The Analytics page's chart, drawn on the server as SVG coordinates: a line per
//! repository over the periods, round y-axis steps, period labels along the bottom, and the
//! numbers each point carries for the tooltip.

use std::collections::HashMap;

use wharf_analytics::report::Period;
use wharf_hub::SeriesPoint;

pub(super) const WIDTH: f64 = 760.0;
pub(super) const HEIGHT: f64 = 300.0;
pub(super) const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 44.0;
/// Line colours, told apart also by the legend and the table.
const COLOURS: [&str; 8] = [
    "#0b5cad", "#c2410c", "#067647", "#7e22ce", "#b42318", "#0e7490", "#a16207", "#4b5563",
];

pub(super) struct Dot {
    pub(super) x: String,
    pub(super) y: String,
    pub(super) period: String,
    pub(super) dates: String,
    pub(super) repo: String,
    pub(super) pulls: u64,
    pub(super) version_checks: u64,
    pub(super) unique_ips: u64,
}

pub(super) struct Line {
    pub(super) repo: String,
    pub(super) colour: &'static str,
    pub(super) points: String,
    pub(super) dots: Vec<Dot>,
}

pub(super) struct Label {
    pub(super) x: String,
    pub(super) y: String,
    pub(super) text: String,
}

pub(super) struct Chart {
    pub(super) lines: Vec<Line>,
    pub(super) x_labels: Vec<Label>,
    pub(super) y_labels: Vec<Label>,
    /// Horizontal grid lines' y.
    pub(super) grid: Vec<String>,
    pub(super) axis_y: String,
    pub(super) axis_x_end: String,
}

pub(super) fn coord(v: f64) -> String {
    format!("{v:.1}")
}

/// A round step for the y axis's four intervals (1, 2, 5, then 10, 20, 25, 50 times a power
/// of ten), so that four steps reach at least `max` and every label is a whole number.
fn nice_step(max: u64) -> u64 {
    for step in [1, 2, 5] {
        if step * 4 >= max {
            return step;
        }
    }
    let mut p = 1u64;
    loop {
        for m in [10u64, 20, 25, 50] {
            let step = m.saturating_mul(p);
            if step.saturating_mul(4) >= max || step == u64::MAX {
                return step;
            }
        }
        p = p.saturating_mul(10);
    }
}

pub(super) fn period_dates(p: &Period) -> String {
    use wharf_analytics::report::period::format_date;
    format!(
        "{} to {}",
        format_date(p.start()),
        format_date(p.last_day())
    )
}

pub(super) fn chart(periods: &[Period], repos: &[String], points: &[SeriesPoint]) -> Chart {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let n = periods.len().max(1);
    let x_of = |i: usize| {
        if n == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let step = nice_step(points.iter().map(|p| p.pulls).max().unwrap_or(0));
    let top = step.saturating_mul(4);
    let y_of = |v: u64| TOP + plot_h - plot_h * v as f64 / top as f64;
    let by_key: HashMap<(Period, &str), &SeriesPoint> = points
        .iter()
        .map(|p| ((p.period, p.repo.as_str()), p))
        .collect();
    let lines = repos
        .iter()
        .enumerate()
        .map(|(ri, repo)| {
            let dots: Vec<Dot> = periods
                .iter()
                .enumerate()
                .filter_map(|(i, period)| {
                    let p = by_key.get(&(*period, repo.as_str()))?;
                    Some(Dot {
                        x: coord(x_of(i)),
                        y: coord(y_of(p.pulls)),
                        period: period.name(),
                        dates: period_dates(period),
                        repo: repo.clone(),
                        pulls: p.pulls,
                        version_checks: p.version_checks,
                        unique_ips: p.unique_ips,
                    })
                })
                .collect();
            Line {
                repo: repo.clone(),
                colour: COLOURS[ri % COLOURS.len()],
                points: dots
                    .iter()
                    .map(|d| format!("{},{}", d.x, d.y))
                    .collect::<Vec<_>>()
                    .join(" "),
                dots,
            }
        })
        .collect();
    // At most about 13 labels along the bottom.
    let every = n.div_ceil(13);
    let x_labels = periods
        .iter()
        .enumerate()
        // The last period always; a regular one only when it does not crowd the last.
        .filter(|(i, _)| *i == n - 1 || (i % every == 0 && n - 1 - i >= every.div_ceil(2)))
        .map(|(i, p)| Label {
            x: coord(x_of(i)),
            y: coord(HEIGHT - BOTTOM + 18.0),
            text: p.name(),
        })
        .collect();
    let ticks: Vec<u64> = (0..=4).map(|k| step.saturating_mul(k)).collect();
    Chart {
        lines,
        x_labels,
        y_labels: ticks
            .iter()
            .map(|v| Label {
                x: coord(LEFT - 8.0),
                y: coord(y_of(*v) + 4.0),
                text: v.to_string(),
            })
            .collect(),
        grid: ticks.iter().map(|v| coord(y_of(*v))).collect(),
        axis_y: coord(HEIGHT - BOTTOM),
        axis_x_end: coord(WIDTH - RIGHT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn y_axis_steps_are_round_and_reach_the_maximum() {
        for (max, step) in [
            (0, 1),
            (3, 1),
            (4, 1),
            (5, 2),
            (8, 2),
            (9, 5),
            (21, 10),
            (100, 25),
            (101, 50),
            (1_000_000, 250_000),
            (1_000_001, 500_000),
            (u64::MAX, u64::MAX / 4 + 1),
        ] {
            let got = nice_step(max);
            assert!(got.saturating_mul(4) >= max, "{max}");
            if max < u64::MAX {
                assert_eq!(got, step, "{max}");
            }
        }
    }

    #[test]
    fn period_labels_are_spaced_and_end_with_the_current_period() {
        use wharf_analytics::report::Granularity;
        let today = time::macros::date!(2026 - 11 - 18);
        for (g, months) in [
            (Granularity::Weekly, 12),
            (Granularity::Weekly, 3),
            (Granularity::Monthly, 6),
        ] {
            let periods = wharf_hub::series_periods(today, g, months).unwrap();
            let zeros: Vec<SeriesPoint> = periods
                .iter()
                .map(|p| SeriesPoint {
                    period: *p,
                    repo: "app".into(),
                    pulls: 0,
                    pulls_by_tag: 0,
                    pulls_by_digest: 0,
                    version_checks: 0,
                    unique_ips: 0,
                })
                .collect();
            let c = chart(&periods, &["app".to_owned()], &zeros);
            assert!(c.x_labels.len() <= 14, "{}", c.x_labels.len());
            assert_eq!(
                c.x_labels.last().unwrap().text,
                periods.last().unwrap().name()
            );
            let xs: Vec<f64> = c.x_labels.iter().map(|l| l.x.parse().unwrap()).collect();
            assert!(
                xs.windows(2).all(|w| w[1] - w[0] >= 40.0),
                "{g:?} {months}: {xs:?}"
            );
            // No pulls: every point on the axis, none above it.
            assert_eq!(c.lines[0].dots.len(), periods.len());
            assert!(c.lines[0].dots.iter().all(|d| d.y == c.axis_y));
        }
    }
}
