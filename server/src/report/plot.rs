//! The report's probe-latency plot as geometry: the run view's chart (`web/src/pages/runs/
//! chart.ts`, `RunChart.tsx`) with the same meaning (x: seconds since the run started, y:
//! latency in ms; one line per probe, failed checks as red dots, each fault's window shaded and
//! labelled, a one-shot kill as a thin band, action steps as dashed lines, the baseline before
//! the method), laid out once in abstract units with y pointing down. `html.rs` draws it as SVG
//! and `pdf.rs` with PDF vector operators, so both show the same picture.
//!
//! Bounded whatever the run's size: each line keeps at most four points per unit of width (the
//! first, lowest, highest and last of the checks in that column, so its shape is kept), while
//! every failed check keeps its dot: dots are only merged where they would land on the same
//! spot (within a quarter unit), which leaves every visible mark in place.
use super::model::PlotData;
use std::collections::HashSet;

/// The dashboard's series colours, by probe (sorted by name).
pub const COLORS: [&str; 8] = [
    "#2563eb", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563", "#65a30d",
];
/// Failed checks.
pub const FAIL: &str = "#dc2626";
/// Fault windows (labels a little darker).
pub const FAULT: &str = "#dc2626";
pub const FAULT_INK: &str = "#b91c1c";
pub const BASELINE: &str = "#64748b";
pub const ACTION: &str = "#7c3aed";
pub const ACTION_BAD: &str = "#b91c1c";

/// The plot's size and margins, in the medium's units (SVG user units, PDF points).
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    /// Room for the y axis' tick labels and title.
    pub left: f64,
    pub right: f64,
    pub top: f64,
    /// Room for the x axis' tick labels and title.
    pub bottom: f64,
    /// Label text size, for placing labels so they do not overlap.
    pub font: f64,
}

/// A rectangle, y down.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// A shaded window: a fault's or the baseline's.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub x0: f64,
    pub x1: f64,
    pub label: String,
    /// Where the label's baseline sits (no label when empty).
    pub label_y: f64,
    /// The fault's ordinal; `None` for the baseline.
    pub step: Option<i64>,
    /// A one-shot kill: a thin line at its time.
    pub instant: bool,
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ActionLine {
    pub x: f64,
    pub label: String,
    pub label_y: f64,
    pub bad: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub probe: String,
    pub color: &'static str,
    /// The polyline, in time order.
    pub points: Vec<(f64, f64)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dot {
    pub x: f64,
    pub y: f64,
    pub probe: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    /// Position along its axis (x for the time axis, y for the latency axis).
    pub at: f64,
    pub label: String,
}

/// Everything to draw, placed.
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    pub width: f64,
    pub height: f64,
    /// The plotting area; marks are clipped to it.
    pub area: Rect,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
    /// The baseline first, then each fault window.
    pub bands: Vec<Band>,
    pub actions: Vec<ActionLine>,
    pub series: Vec<Series>,
    /// Failed checks, one dot per visible spot.
    pub dots: Vec<Dot>,
    /// Failed checks in the data (dots may be fewer where they coincide).
    pub failed: usize,
    /// The time axis' extent, seconds.
    pub x_max: f64,
    /// The latency axis' extent, ms.
    pub y_max: f64,
}

/// Width of a thin band (a one-shot kill).
const INSTANT_W: f64 = 2.0;

/// A "nice" step (1, 2 or 5 × 10ⁿ) for about `target` ticks over `range`.
pub fn nice_step(range: f64, target: f64) -> f64 {
    let raw = (range / target.max(1.0)).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    // A little slack: 0.2 / 0.1 is 2.0000000000000004.
    let k = if norm <= 1.0 + 1e-9 {
        1.0
    } else if norm <= 2.0 + 1e-9 {
        2.0
    } else if norm <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    k * mag
}

/// A tick value without float noise: "0", "2.5", "120".
fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{:.*}", decimals, v + 0.0)
}

impl Scene {
    pub fn build(d: PlotData<'_>, l: Layout) -> Scene {
        let area = Rect {
            x: l.left,
            y: l.top,
            w: (l.width - l.left - l.right).max(1.0),
            h: (l.height - l.top - l.bottom).max(1.0),
        };
        let x_max = if d.x_end.is_finite() && d.x_end > 0.0 {
            d.x_end
        } else {
            1.0
        };
        let highest = d
            .points
            .iter()
            .map(|p| p.latency_ms)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        // The dashboard's headroom: a quarter above the highest check.
        let top = if highest > 0.0 { highest * 1.25 } else { 1.0 };
        let y_step = nice_step(top, 5.0);
        let y_max = (top / y_step).ceil() * y_step;
        let x = |t: f64| area.x + (t / x_max).clamp(0.0, 1.0) * area.w;
        let y = |v: f64| area.y + area.h - (v.max(0.0) / y_max).min(1.0) * area.h;

        let x_step = nice_step(x_max, 8.0);
        let x_ticks = (0..)
            .map(|i| i as f64 * x_step)
            .take_while(|t| *t <= x_max + x_step * 1e-9)
            .map(|t| Tick {
                at: x(t),
                label: tick_label(t, x_step),
            })
            .collect();
        let y_ticks = (0..)
            .map(|i| i as f64 * y_step)
            .take_while(|v| *v <= y_max + y_step * 1e-9)
            .map(|v| Tick {
                at: y(v),
                label: tick_label(v, y_step),
            })
            .collect();

        // Labels on rows under the top edge: the baseline's on the first, faults' from the
        // second, moving down a row where they would run into the previous one.
        let row = |r: usize| area.y + l.font * (1.1 + 1.2 * r as f64);
        let text_w = |s: &str| s.chars().count() as f64 * l.font * 0.55;
        let mut bands = Vec::new();
        if let Some((from, to)) = d.baseline {
            // A baseline too narrow for its label (the method began at once) goes unlabelled.
            let label = if x(to) - x(from) >= text_w("baseline") {
                "baseline"
            } else {
                ""
            };
            bands.push(Band {
                x0: x(from),
                x1: x(to),
                label: label.into(),
                label_y: row(0),
                step: None,
                instant: false,
                active: false,
            });
        }
        let mut rows_end: Vec<f64> = vec![f64::MIN; 3];
        for w in d.windows {
            let (x0, x1) = if w.instant {
                (x(w.from), (x(w.from) + INSTANT_W).min(area.x + area.w))
            } else {
                (x(w.from), x(w.to.max(w.from)))
            };
            let label = if w.active {
                format!("{} (active)", w.label)
            } else {
                w.label.clone()
            };
            let start = x0 + 3.0;
            let r = rows_end.iter().position(|e| *e < start).unwrap_or(0);
            rows_end[r] = start + text_w(&label) + 4.0;
            bands.push(Band {
                x0,
                x1,
                label,
                label_y: row(r + 1),
                step: Some(w.step),
                instant: w.instant,
                active: w.active,
            });
        }
        let bottom_row = |r: usize| area.y + area.h - 3.0 - l.font * 1.2 * (r % 3) as f64;
        let actions = d
            .actions
            .iter()
            .enumerate()
            .map(|(i, a)| ActionLine {
                x: x(a.t),
                label: a.label.clone(),
                label_y: bottom_row(i),
                bad: a.bad,
            })
            .collect();

        // Per probe: its checks in time order, reduced per unit-wide column to the first,
        // lowest, highest and last.
        let mut per_probe: Vec<Vec<(f64, f64)>> = vec![Vec::new(); d.probes.len()];
        let mut dots = Vec::new();
        let mut seen = HashSet::new();
        let mut failed = 0;
        for p in d.points {
            if p.probe >= per_probe.len() || !p.t.is_finite() || !p.latency_ms.is_finite() {
                continue;
            }
            let (px, py) = (x(p.t), y(p.latency_ms));
            per_probe[p.probe].push((px, py));
            if !p.ok {
                failed += 1;
                let key = (
                    p.probe,
                    (px * 4.0).round() as i64,
                    (py * 4.0).round() as i64,
                );
                if seen.insert(key) {
                    dots.push(Dot {
                        x: px,
                        y: py,
                        probe: p.probe,
                    });
                }
            }
        }
        let series = per_probe
            .into_iter()
            .enumerate()
            .map(|(i, pts)| Series {
                probe: d.probes[i].clone(),
                color: COLORS[i % COLORS.len()],
                points: reduce(&pts),
            })
            .collect();
        Scene {
            width: l.width,
            height: l.height,
            area,
            x_ticks,
            y_ticks,
            bands,
            actions,
            series,
            dots,
            failed,
            x_max,
            y_max,
        }
    }
}

/// Keeps, of each unit-wide column of points (in order), the first, lowest, highest and last,
/// in their order: at most four points per column, the line's outline unchanged.
fn reduce(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(pts.len().min(4096));
    let mut i = 0;
    while i < pts.len() {
        let col = pts[i].0.floor();
        let mut j = i;
        let (mut lo, mut hi) = (i, i);
        while j < pts.len() && pts[j].0.floor() == col {
            // y points down: the lowest latency has the largest y.
            if pts[j].1 > pts[lo].1 {
                lo = j;
            }
            if pts[j].1 < pts[hi].1 {
                hi = j;
            }
            j += 1;
        }
        let mut keep = [i, lo, hi, j - 1];
        keep.sort_unstable();
        let mut last = usize::MAX;
        for k in keep {
            if k != last {
                out.push(pts[k]);
                last = k;
            }
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{ActionMark, CheckPoint, FaultWindow};

    const L: Layout = Layout {
        width: 1100.0,
        height: 300.0,
        left: 100.0,
        right: 0.0,
        top: 0.0,
        bottom: 100.0,
        font: 10.0,
    };

    fn window(step: i64, from: f64, to: f64, instant: bool) -> FaultWindow {
        FaultWindow {
            step,
            label: format!("fault-{step}"),
            from,
            to,
            instant,
            active: false,
        }
    }

    fn point(probe: usize, t: f64, latency_ms: f64, ok: bool) -> CheckPoint {
        CheckPoint {
            probe,
            t,
            latency_ms,
            ok,
        }
    }

    #[test]
    fn fault_windows_map_to_their_time_range() {
        // A 1000-unit area over 20 s: 50 units a second, starting at x = 100.
        let windows = [window(0, 2.0, 5.0, false), window(1, 12.0, 12.0, true)];
        let probes = ["web".to_string()];
        let points = [point(0, 0.0, 10.0, true), point(0, 20.0, 10.0, true)];
        let s = Scene::build(
            PlotData {
                probes: &probes,
                points: &points,
                windows: &windows,
                actions: &[],
                baseline: Some((0.0, 2.0)),
                x_end: 20.0,
            },
            L,
        );
        assert_eq!(
            s.area,
            Rect {
                x: 100.0,
                y: 0.0,
                w: 1000.0,
                h: 200.0
            }
        );
        let base = &s.bands[0];
        assert_eq!((base.x0, base.x1, base.step), (100.0, 200.0, None));
        let pause = &s.bands[1];
        assert_eq!((pause.x0, pause.x1, pause.step), (200.0, 350.0, Some(0)));
        let kill = &s.bands[2];
        assert_eq!((kill.x0, kill.x1, kill.instant), (700.0, 702.0, true));
        // Ticks every 5 s, the last at the end.
        assert_eq!(s.x_ticks.first().unwrap().at, 100.0);
        assert_eq!(
            s.x_ticks.last().unwrap(),
            &Tick {
                at: 1100.0,
                label: "20".into()
            }
        );
        assert_eq!((s.x_ticks[1].at, s.x_ticks[1].label.as_str()), (350.0, "5"));
    }

    #[test]
    fn failed_checks_are_marked_where_they_were_checked() {
        let probes = ["api".to_string(), "web".to_string()];
        let points = [
            point(1, 0.0, 10.0, true),
            point(1, 4.0, 80.0, false),
            point(0, 6.0, 40.0, false),
            point(1, 10.0, 10.0, true),
        ];
        let s = Scene::build(
            PlotData {
                probes: &probes,
                points: &points,
                windows: &[],
                actions: &[ActionMark {
                    t: 5.0,
                    label: "scale done".into(),
                    bad: false,
                }],
                baseline: None,
                x_end: 10.0,
            },
            L,
        );
        // y: 80 ms × 1.25 = 100 → axis to 100 ms; 200 units tall.
        assert_eq!(s.y_max, 100.0);
        assert_eq!(s.failed, 2);
        assert_eq!(
            s.dots,
            [
                Dot {
                    x: 500.0,
                    y: 40.0,
                    probe: 1
                },
                Dot {
                    x: 700.0,
                    y: 120.0,
                    probe: 0
                },
            ]
        );
        assert_eq!(s.series[1].color, COLORS[1]);
        assert_eq!(
            s.series[1].points.len(),
            3,
            "failed checks are on the line too"
        );
        assert_eq!(s.actions[0].x, 600.0);
    }

    #[test]
    fn a_baseline_too_narrow_for_its_label_has_none() {
        let plot = |to: f64| {
            Scene::build(
                PlotData {
                    probes: &[],
                    points: &[],
                    windows: &[],
                    actions: &[],
                    baseline: Some((0.0, to)),
                    x_end: 10.0,
                },
                L,
            )
            .bands[0]
                .label
                .clone()
        };
        assert_eq!(plot(2.0), "baseline");
        assert_eq!(plot(0.01), "");
    }

    #[test]
    fn ten_thousand_checks_draw_few_points_and_keep_every_failure() {
        let probes = ["web".to_string()];
        // 10,000 checks over 100 s; every 37th fails, at a latency of its own.
        let points: Vec<CheckPoint> = (0..10_000)
            .map(|i| {
                let fail = i % 37 == 0;
                point(
                    0,
                    i as f64 / 100.0,
                    if fail {
                        100.0 + i as f64 / 10.0
                    } else {
                        10.0 + (i % 7) as f64
                    },
                    !fail,
                )
            })
            .collect();
        let s = Scene::build(
            PlotData {
                probes: &probes,
                points: &points,
                windows: &[],
                actions: &[],
                baseline: None,
                x_end: 100.0,
            },
            L,
        );
        let fails = points.iter().filter(|p| !p.ok).count();
        assert_eq!(s.failed, fails);
        assert_eq!(s.dots.len(), fails, "distinct spots each keep their dot");
        assert!(
            s.series[0].points.len() <= 4 * 1001,
            "{}",
            s.series[0].points.len()
        );
        // The line still reaches the highest and lowest check of the run.
        let ys: Vec<f64> = s.series[0].points.iter().map(|p| p.1).collect();
        let top = ys.iter().cloned().fold(f64::MAX, f64::min);
        assert_eq!(top, s.dots.iter().map(|d| d.y).fold(f64::MAX, f64::min));
    }

    #[test]
    fn coinciding_failures_share_a_dot() {
        let probes = ["web".to_string()];
        let points = [
            point(0, 1.0, 50.0, false),
            point(0, 1.0001, 50.0, false),
            point(0, 9.0, 50.0, false),
        ];
        let s = Scene::build(
            PlotData {
                probes: &probes,
                points: &points,
                windows: &[],
                actions: &[],
                baseline: None,
                x_end: 10.0,
            },
            L,
        );
        assert_eq!((s.failed, s.dots.len()), (3, 2));
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(20.0, 8.0), 5.0);
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(1.0, 5.0), 0.2);
        assert_eq!(nice_step(0.3, 5.0), 0.1);
        assert_eq!(nice_step(7_000.0, 8.0), 1000.0);
        assert_eq!(tick_label(0.30000000000000004, 0.1), "0.3");
        assert_eq!(tick_label(120.0, 20.0), "120");
    }
}
