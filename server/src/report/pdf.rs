//! The run report as a PDF, written with `pdf-writer`: A4 pages, the base-14 Helvetica fonts
//! (nothing embedded, see `helvetica.rs`), the same sections as the HTML page, and the plot
//! drawn with vector operators from the same [`Scene`] the SVG is drawn from. The text is real
//! text (WinAnsiEncoding), so it can be searched, copied and extracted (`pdftotext`).
use super::helvetica::{encode, fit, width, wrap};
use super::model::{duration_ms, Report, Tone};
use super::plot::{self, Layout, Scene};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 42.0;
/// Room kept at the bottom of each page for its footer.
const FOOTER: f32 = 22.0;
const TEXT_W: f32 = PAGE_W - 2.0 * MARGIN;

const INK: (f32, f32, f32) = (0.122, 0.161, 0.216);
const MUTED: (f32, f32, f32) = (0.42, 0.447, 0.502);
const LINE: (f32, f32, f32) = (0.898, 0.906, 0.922);
const OK: (f32, f32, f32) = (0.082, 0.502, 0.239);
const BAD: (f32, f32, f32) = (0.725, 0.11, 0.11);
const WARN: (f32, f32, f32) = (0.631, 0.384, 0.027);

const REGULAR: Name = Name(b"F1");
const BOLD: Name = Name(b"F2");
/// Fill opacities, as named graphics states.
const ALPHAS: [(Name, f32); 4] = [
    (Name(b"A10"), 0.10),
    (Name(b"A13"), 0.13),
    (Name(b"A20"), 0.20),
    (Name(b"A80"), 0.80),
];

/// The plot's box on the page, in points.
pub const LAYOUT: Layout = Layout {
    width: TEXT_W as f64,
    height: 230.0,
    left: 44.0,
    right: 6.0,
    top: 6.0,
    bottom: 30.0,
    font: 7.5,
};

fn rgb(hex: &str) -> (f32, f32, f32) {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0);
    let c = |s: u32| ((v >> s) & 0xff) as f32 / 255.0;
    (c(16), c(8), c(0))
}

fn status_color(status: &str) -> (f32, f32, f32) {
    match status {
        "PASSED" => OK,
        "FAILED" | "ERROR" => BAD,
        "ABORTED" | "ABORTING" => WARN,
        _ => MUTED,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Align {
    Left,
    Right,
}

struct Col {
    title: &'static str,
    width: f32,
    align: Align,
}

/// Pages being written, top-down: `y` is the distance from the page's top edge.
struct Doc {
    pages: Vec<Content>,
    page: Content,
    y: f32,
}

impl Doc {
    fn new() -> Doc {
        Doc {
            pages: Vec::new(),
            page: Content::new(),
            y: MARGIN,
        }
    }

    fn new_page(&mut self) {
        let done = std::mem::replace(&mut self.page, Content::new());
        self.pages.push(done);
        self.y = MARGIN;
    }

    /// Starts a new page unless `h` more points fit on this one.
    fn ensure(&mut self, h: f32) {
        if self.y + h > PAGE_H - MARGIN - FOOTER && self.y > MARGIN {
            self.new_page();
        }
    }

    fn text(
        &mut self,
        x: f32,
        baseline: f32,
        size: f32,
        bold: bool,
        color: (f32, f32, f32),
        s: &str,
    ) {
        let c = &mut self.page;
        c.set_fill_rgb(color.0, color.1, color.2);
        c.begin_text();
        c.set_font(if bold { BOLD } else { REGULAR }, size);
        c.next_line(x, PAGE_H - baseline);
        c.show(Str(&encode(s)));
        c.end_text();
    }

    /// Text right-aligned at `x`.
    fn text_right(
        &mut self,
        x: f32,
        baseline: f32,
        size: f32,
        bold: bool,
        color: (f32, f32, f32),
        s: &str,
    ) {
        let w = width(s, size, bold);
        self.text(x - w, baseline, size, bold, color, s);
    }

    fn rule(&mut self, x0: f32, x1: f32, y: f32, color: (f32, f32, f32)) {
        let c = &mut self.page;
        c.set_stroke_rgb(color.0, color.1, color.2);
        c.set_line_width(0.6);
        c.move_to(x0, PAGE_H - y);
        c.line_to(x1, PAGE_H - y);
        c.stroke();
    }

    /// A wrapped paragraph.
    fn para(&mut self, s: &str, size: f32, bold: bool, color: (f32, f32, f32), indent: f32) {
        let leading = size * 1.35;
        for line in wrap(s, size, bold, TEXT_W - indent) {
            self.ensure(leading);
            self.y += leading;
            self.text(
                MARGIN + indent,
                self.y - size * 0.3,
                size,
                bold,
                color,
                &line,
            );
        }
    }

    fn heading(&mut self, s: &str) {
        // A heading never ends a page alone.
        self.ensure(100.0);
        self.y += 22.0;
        self.text(MARGIN, self.y, 13.0, true, INK, s);
        self.y += 5.0;
        self.rule(MARGIN, PAGE_W - MARGIN, self.y, LINE);
        self.y += 4.0;
    }

    /// A table: wrapped cells, a header repeated on each page it spans.
    fn table(&mut self, cols: &[Col], rows: &[Row]) {
        let size = 8.5;
        let leading = size * 1.3;
        let header = |d: &mut Doc| {
            d.y += leading + 2.0;
            let mut x = MARGIN;
            for c in cols {
                match c.align {
                    Align::Left => d.text(x + 3.0, d.y - 2.0, 7.5, true, MUTED, c.title),
                    Align::Right => {
                        d.text_right(x + c.width - 3.0, d.y - 2.0, 7.5, true, MUTED, c.title)
                    }
                }
                x += c.width;
            }
            d.y += 2.0;
            d.rule(
                MARGIN,
                MARGIN + cols.iter().map(|c| c.width).sum::<f32>(),
                d.y,
                LINE,
            );
        };
        self.ensure(3.0 * leading + 6.0);
        header(self);
        for row in rows {
            let cells: Vec<Vec<String>> = row
                .iter()
                .zip(cols)
                .map(|((text, _, bold), c)| wrap(text, size, *bold, c.width - 6.0))
                .collect();
            let lines = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
            let h = lines as f32 * leading + 4.0;
            if self.y + h > PAGE_H - MARGIN - FOOTER {
                self.new_page();
                header(self);
            }
            let top = self.y;
            let mut x = MARGIN;
            for ((cell, (_, color, bold)), c) in cells.iter().zip(row).zip(cols) {
                for (i, line) in cell.iter().enumerate() {
                    let base = top + leading * (i as f32 + 1.0);
                    let color = color.unwrap_or(INK);
                    match c.align {
                        Align::Left => self.text(x + 3.0, base, size, *bold, color, line),
                        Align::Right => {
                            self.text_right(x + c.width - 3.0, base, size, *bold, color, line)
                        }
                    }
                }
                x += c.width;
            }
            self.y = top + h;
            self.rule(MARGIN, x, self.y, LINE);
        }
        self.y += 4.0;
    }

    /// Label / value boxes in a row.
    fn stats(&mut self, items: &[(&str, String, (f32, f32, f32))]) {
        let h = 40.0;
        self.ensure(h + 8.0);
        self.y += 8.0;
        let gap = 8.0;
        let w = (TEXT_W - gap * (items.len() as f32 - 1.0)) / items.len() as f32;
        for (i, (label, value, color)) in items.iter().enumerate() {
            let x = MARGIN + i as f32 * (w + gap);
            let c = &mut self.page;
            c.set_stroke_rgb(LINE.0, LINE.1, LINE.2);
            c.set_line_width(0.8);
            c.rect(x, PAGE_H - self.y - h, w, h);
            c.stroke();
            let top = self.y;
            self.text(x + 8.0, top + 13.0, 8.0, false, MUTED, label);
            let value = fit(value, 13.0, true, w - 16.0);
            self.text(x + 8.0, top + 31.0, 13.0, true, *color, &value);
        }
        self.y += h;
    }

    /// The plot, drawn from the scene (y down) at the current position.
    fn plot(&mut self, s: &Scene) {
        let h = s.height as f32;
        self.ensure(h + 4.0);
        let (ox, oy) = (MARGIN, self.y);
        let px = |x: f64| ox + x as f32;
        let py = |y: f64| PAGE_H - (oy + y as f32);
        let a = s.area;
        let c = &mut self.page;
        // Grid.
        c.set_line_width(0.4);
        c.set_stroke_rgb(LINE.0, LINE.1, LINE.2);
        for t in &s.y_ticks {
            c.move_to(px(a.x), py(t.at));
            c.line_to(px(a.x + a.w), py(t.at));
        }
        c.stroke();
        // Marks, clipped to the area.
        c.save_state();
        c.rect(px(a.x), py(a.y + a.h), a.w as f32, a.h as f32);
        c.clip_nonzero();
        c.end_path();
        for b in &s.bands {
            let (color, alpha) = match b.step {
                None => (rgb(plot::BASELINE), ALPHAS[0].0),
                Some(_) if b.instant => (rgb(plot::FAULT), ALPHAS[3].0),
                Some(_) if b.active => (rgb(plot::FAULT), ALPHAS[2].0),
                Some(_) => (rgb(plot::FAULT), ALPHAS[1].0),
            };
            c.save_state();
            c.set_parameters(alpha);
            c.set_fill_rgb(color.0, color.1, color.2);
            c.rect(
                px(b.x0),
                py(a.y + a.h),
                (b.x1 - b.x0).max(0.0) as f32,
                a.h as f32,
            );
            c.fill_nonzero();
            c.restore_state();
            if b.step.is_some() && !b.instant {
                let f = rgb(plot::FAULT);
                c.set_stroke_rgb(f.0 * 0.5 + 0.5, f.1 * 0.5 + 0.5, f.2 * 0.5 + 0.5);
                c.set_line_width(0.5);
                for x in [b.x0, b.x1] {
                    c.move_to(px(x), py(a.y));
                    c.line_to(px(x), py(a.y + a.h));
                }
                c.stroke();
            }
        }
        for l in &s.actions {
            let col = rgb(if l.bad {
                plot::ACTION_BAD
            } else {
                plot::ACTION
            });
            c.set_stroke_rgb(col.0, col.1, col.2);
            c.set_line_width(1.0);
            c.set_dash_pattern([3.0, 2.0], 0.0);
            c.move_to(px(l.x), py(a.y));
            c.line_to(px(l.x), py(a.y + a.h));
            c.stroke();
            c.set_dash_pattern(std::iter::empty(), 0.0);
        }
        c.set_line_width(1.0);
        c.set_line_join(pdf_writer::types::LineJoinStyle::RoundJoin);
        for se in &s.series {
            let col = rgb(se.color);
            c.set_stroke_rgb(col.0, col.1, col.2);
            let mut pts = se.points.iter();
            if let Some((x, y)) = pts.next() {
                c.move_to(px(*x), py(*y));
                if se.points.len() == 1 {
                    c.line_to(px(*x) + 0.5, py(*y));
                }
                for (x, y) in pts {
                    c.line_to(px(*x), py(*y));
                }
                c.stroke();
            }
        }
        let f = rgb(plot::FAIL);
        c.set_fill_rgb(f.0, f.1, f.2);
        for d in &s.dots {
            circle(c, px(d.x), py(d.y), 2.4);
        }
        if !s.dots.is_empty() {
            c.fill_nonzero();
        }
        c.restore_state();
        // Frame, ticks and labels.
        c.set_stroke_rgb(0.612, 0.639, 0.686);
        c.set_line_width(0.6);
        c.rect(px(a.x), py(a.y + a.h), a.w as f32, a.h as f32);
        c.stroke();
        for t in &s.x_ticks {
            c.move_to(px(t.at), py(a.y + a.h));
            c.line_to(px(t.at), py(a.y + a.h + 3.0));
        }
        c.stroke();
        let font = LAYOUT.font as f32;
        for t in &s.y_ticks {
            self.text_right(
                px(a.x) - 4.0,
                oy + t.at as f32 + 2.5,
                font,
                false,
                MUTED,
                &t.label,
            );
        }
        for t in &s.x_ticks {
            let w = width(&t.label, font, false);
            self.text(
                px(t.at) - w / 2.0,
                oy + (a.y + a.h) as f32 + 12.0,
                font,
                false,
                MUTED,
                &t.label,
            );
        }
        let title = "seconds since the run started";
        let w = width(title, font, false);
        self.text(
            px(a.x + a.w / 2.0) - w / 2.0,
            oy + h - 3.0,
            font,
            false,
            MUTED,
            title,
        );
        // The y axis' title, turned a quarter.
        let c = &mut self.page;
        let label = "latency (ms)";
        let w = width(label, font, false);
        c.set_fill_rgb(MUTED.0, MUTED.1, MUTED.2);
        c.begin_text();
        c.set_font(REGULAR, font);
        c.set_text_matrix([
            0.0,
            1.0,
            -1.0,
            0.0,
            px(0.0) + 9.0,
            py(a.y + a.h / 2.0) - w / 2.0,
        ]);
        c.show(Str(&encode(label)));
        c.end_text();
        for b in s.bands.iter().filter(|b| !b.label.is_empty()) {
            let (color, bold) = match b.step {
                None => (rgb(plot::BASELINE), false),
                Some(_) => (rgb(plot::FAULT_INK), true),
            };
            self.text(
                px(b.x0 + 2.0),
                oy + b.label_y as f32,
                font,
                bold,
                color,
                &b.label,
            );
        }
        for l in &s.actions {
            let col = rgb(if l.bad { plot::ACTION_BAD } else { "#6d28d9" });
            self.text(
                px(l.x + 2.0),
                oy + l.label_y as f32,
                font,
                false,
                col,
                &l.label,
            );
        }
        self.y += h;
        // The legend.
        self.y += 12.0;
        let mut x = MARGIN;
        let items: Vec<(String, (f32, f32, f32), bool)> = s
            .series
            .iter()
            .map(|se| (se.probe.clone(), rgb(se.color), false))
            .chain([
                (
                    format!("failed check ({})", s.failed),
                    rgb(plot::FAIL),
                    true,
                ),
                ("fault window".to_string(), (0.98, 0.84, 0.84), false),
                ("baseline".to_string(), (0.9, 0.92, 0.94), false),
            ])
            .collect();
        for (label, col, dot) in items {
            let w = width(&label, 8.0, false) + 22.0;
            if x + w > PAGE_W - MARGIN {
                x = MARGIN;
                self.y += 12.0;
            }
            let c = &mut self.page;
            c.set_fill_rgb(col.0, col.1, col.2);
            if dot {
                circle(c, x + 5.0, PAGE_H - self.y + 3.0, 3.0);
            } else {
                c.rect(x, PAGE_H - self.y, 10.0, 7.0);
            }
            c.fill_nonzero();
            self.text(x + 14.0, self.y, 8.0, false, MUTED, &label);
            x += w;
        }
        self.y += 4.0;
    }
}

/// A circle path (four Bézier arcs).
fn circle(c: &mut Content, x: f32, y: f32, r: f32) {
    let k = 0.552_284_8 * r;
    c.move_to(x + r, y);
    c.cubic_to(x + r, y + k, x + k, y + r, x, y + r);
    c.cubic_to(x - k, y + r, x - r, y + k, x - r, y);
    c.cubic_to(x - r, y - k, x - k, y - r, x, y - r);
    c.cubic_to(x + k, y - r, x + r, y - k, x + r, y);
    c.close_path();
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v.abs() < 10.0 => format!("{v:.1} ms"),
        Some(v) => format!("{} ms", v.round()),
        None => "–".into(),
    }
}

fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

type Rgb = (f32, f32, f32);
/// A table cell: its text, its colour (else ink), bold.
type Cell = (String, Option<Rgb>, bool);
type Row = Vec<Cell>;

fn cell(s: impl Into<String>) -> Cell {
    (s.into(), None, false)
}

/// The whole document.
pub fn render(r: &Report) -> Vec<u8> {
    let mut d = Doc::new();
    // Title.
    d.y += 10.0;
    d.text(MARGIN, d.y, 8.0, true, MUTED, "FAULTLINE RUN REPORT");
    d.y += 22.0;
    let title = format!("{} v{}", r.template, r.version.version);
    d.text(MARGIN, d.y, 20.0, true, INK, &title);
    let status = if r.run.dry_run && r.run.state == "PASSED" {
        "PLANNED".to_string()
    } else {
        r.run.state.clone()
    };
    let tw = width(&title, 20.0, true);
    d.text(
        MARGIN + tw + 10.0,
        d.y,
        14.0,
        true,
        status_color(&r.run.state),
        &status,
    );
    d.y += 4.0;
    d.para(
        &format!(
            "Run {} · project {} · delegate {}",
            r.run.id,
            r.project,
            r.delegate.as_deref().unwrap_or("none")
        ),
        9.0,
        false,
        MUTED,
        0.0,
    );

    d.heading("Verdict");
    d.stats(&[
        ("Verdict", status.clone(), status_color(&r.run.state)),
        ("Resilience score", r.score_text(), INK),
        (
            "Recovery",
            r.run
                .recovery_ms
                .map(|m| duration_ms(m as f64))
                .unwrap_or("–".into()),
            INK,
        ),
        (
            "Probe checks passed",
            format!("{}/{}", r.passed, r.passed + r.failed),
            INK,
        ),
    ]);
    d.y += 4.0;
    if let Some(from) = &r.run.recovery_from {
        if let Some(ms) = r.run.recovery_ms {
            d.para(
                &format!("Recovery: {}.", from.0.sentence(ms.max(0) as u64)),
                9.0,
                false,
                INK,
                0.0,
            );
        }
    }
    if let Some(reason) = &r.run.verdict_reason {
        d.para(&format!("Reason: {reason}"), 9.0, false, INK, 0.0);
    }
    if r.failed > 0 {
        d.para(
            &format!("{} probe checks failed.", r.failed),
            9.0,
            false,
            INK,
            0.0,
        );
    }

    d.heading("Hypothesis");
    match &r.spec {
        None => d.para(
            "The template version could not be read.",
            9.0,
            false,
            MUTED,
            0.0,
        ),
        Some(spec) => {
            if !spec.metadata.description.is_empty() {
                d.para(&spec.metadata.description, 9.5, false, INK, 0.0);
                d.y += 3.0;
            }
            d.para(
                "The steady state holds while these probes pass:",
                9.5,
                false,
                INK,
                0.0,
            );
            let cols = [
                Col {
                    title: "Probe",
                    width: 170.0,
                    align: Align::Left,
                },
                Col {
                    title: "Kind",
                    width: 80.0,
                    align: Align::Left,
                },
                Col {
                    title: "Mode",
                    width: 90.0,
                    align: Align::Left,
                },
                Col {
                    title: "Every",
                    width: 85.0,
                    align: Align::Left,
                },
                Col {
                    title: "Timeout",
                    width: TEXT_W - 425.0,
                    align: Align::Left,
                },
            ];
            let rows: Vec<Row> = spec
                .hypothesis
                .probes
                .iter()
                .map(|p| {
                    vec![
                        (p.name.clone(), None, true),
                        cell(p.kind_name()),
                        cell(p.mode.as_str()),
                        cell(p.interval.to_string()),
                        cell(p.timeout.to_string()),
                    ]
                })
                .collect();
            d.table(&cols, &rows);
            let hy = &spec.hypothesis;
            if !spec.steps.is_empty() {
                d.para(
                    &format!(
                        "• After the last fault ends, every probe passes again within {}.",
                        hy.recover_within
                    ),
                    9.5,
                    false,
                    INK,
                    0.0,
                );
            }
            if !hy.baseline.0.is_zero() {
                d.para(
                    &format!(
                        "• A baseline of {} of steady state comes before the first fault.",
                        hy.baseline
                    ),
                    9.5,
                    false,
                    INK,
                    0.0,
                );
            }
            if let Some(m) = hy.min_score {
                d.para(
                    &format!("• The run fails below a resilience score of {m}."),
                    9.5,
                    false,
                    INK,
                    0.0,
                );
            }
            let steps = r.planned_steps();
            if steps.is_empty() {
                d.para(
                    "No method: a steady-state check, nothing is injected.",
                    9.5,
                    false,
                    MUTED,
                    0.0,
                );
            } else {
                d.y += 3.0;
                d.para("The method:", 9.5, false, INK, 0.0);
                for s in steps {
                    d.para(&s, 9.5, false, INK, 12.0);
                }
            }
        }
    }

    d.heading("Probe latency");
    if r.points.is_empty() {
        d.para("No probe checks were recorded.", 9.0, false, MUTED, 0.0);
    } else {
        d.y += 4.0;
        d.plot(&Scene::build(r.plot_data(), LAYOUT));
    }

    d.heading("Latency statistics");
    let l = r.latency();
    if l.is_empty() {
        let why = if r.done {
            "No probe measured latency before and during the faults."
        } else {
            "Computed when the run ends."
        };
        d.para(why, 9.0, false, MUTED, 0.0);
    } else {
        for s in l {
            d.para(&format!("{}: {}", s.probe, s.summary), 9.5, false, INK, 0.0);
        }
    }

    d.heading("Probes");
    if r.probes.is_empty() {
        d.para("No probe checks were recorded.", 9.0, false, MUTED, 0.0);
    } else {
        d.para(
            "Latency percentiles of the passing checks, per phase (before the faults, during them, between two, after the last).",
            8.5,
            false,
            MUTED,
            0.0,
        );
        let num = |t, w| Col {
            title: t,
            width: w,
            align: Align::Right,
        };
        let cols = [
            Col {
                title: "Probe",
                width: 141.0,
                align: Align::Left,
            },
            Col {
                title: "Phase",
                width: 60.0,
                align: Align::Left,
            },
            num("Checks", 50.0),
            num("Failed", 45.0),
            num("p50", 55.0),
            num("p95", 55.0),
            num("p99", 55.0),
            num("max", TEXT_W - 461.0),
        ];
        let mut rows: Vec<Row> = Vec::new();
        for p in &r.probes {
            let kind = [p.kind.as_str(), p.mode.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            rows.push(vec![
                (format!("{} ({kind})", p.name), None, true),
                cell("all"),
                cell(p.checks.to_string()),
                (p.failed.to_string(), (p.failed > 0).then_some(BAD), false),
                cell(""),
                cell(""),
                cell(""),
                cell(""),
            ]);
            for ph in &p.phases {
                rows.push(vec![
                    cell(""),
                    cell(ph.phase.clone()),
                    cell(ph.checks.to_string()),
                    (ph.failed.to_string(), (ph.failed > 0).then_some(BAD), false),
                    cell(ms(ph.p50)),
                    cell(ms(ph.p95)),
                    cell(ms(ph.p99)),
                    cell(ms(ph.max)),
                ]);
            }
        }
        d.table(&cols, &rows);
    }

    d.heading("Timeline of the method");
    if r.timeline.is_empty() {
        d.para("This run recorded no events.", 9.0, false, MUTED, 0.0);
    } else {
        let cols = [
            Col {
                title: "At",
                width: 55.0,
                align: Align::Right,
            },
            Col {
                title: "Event",
                width: 210.0,
                align: Align::Left,
            },
            Col {
                title: "Detail",
                width: TEXT_W - 265.0,
                align: Align::Left,
            },
        ];
        let rows: Vec<Row> = r
            .timeline
            .iter()
            .map(|t| {
                let color = match t.tone {
                    Tone::Info => None,
                    Tone::Fault | Tone::Bad => Some(BAD),
                    Tone::Ok => Some(OK),
                    Tone::Warn => Some(WARN),
                };
                vec![
                    cell(format!("+{:.1} s", t.t)),
                    (t.title.clone(), color, t.tone == Tone::Bad),
                    (t.detail.clone(), Some(MUTED), false),
                ]
            })
            .collect();
        d.table(&cols, &rows);
    }

    if r.failed > 0 {
        d.heading("Failed checks");
        let cols = [
            Col {
                title: "At",
                width: 55.0,
                align: Align::Right,
            },
            Col {
                title: "Probe",
                width: 110.0,
                align: Align::Left,
            },
            Col {
                title: "Phase",
                width: 55.0,
                align: Align::Left,
            },
            Col {
                title: "Latency",
                width: 60.0,
                align: Align::Right,
            },
            Col {
                title: "Detail",
                width: TEXT_W - 280.0,
                align: Align::Left,
            },
        ];
        let rows: Vec<Row> = r
            .failures
            .iter()
            .map(|f| {
                vec![
                    cell(format!("+{:.1} s", f.t)),
                    cell(f.probe.clone()),
                    cell(f.phase.clone()),
                    cell(ms(Some(f.latency_ms))),
                    (f.detail.clone(), Some(MUTED), false),
                ]
            })
            .collect();
        d.table(&cols, &rows);
        if r.failed > r.failures.len() {
            d.para(
                &format!(
                    "The first {} of {} failed checks.",
                    r.failures.len(),
                    r.failed
                ),
                8.5,
                false,
                MUTED,
                0.0,
            );
        }
    }

    d.heading("Template and run");
    let v = &r.version;
    let mut facts: Vec<(&str, String)> = vec![(
        "Template",
        format!(
            "{} version {} (saved by {} on {})",
            r.template,
            v.version,
            v.created_by,
            when(v.created_at)
        ),
    )];
    if let Some(c) = &v.git_commit {
        let file = v
            .git_path
            .as_deref()
            .map(|p| format!(", file {p}"))
            .unwrap_or_default();
        facts.push(("Git commit", format!("{c}{file}")));
    }
    let by = r
        .run
        .created_by
        .strip_prefix("user:")
        .unwrap_or(&r.run.created_by);
    facts.push(("Started by", by.to_string()));
    facts.push(("Created", when(r.run.created_at)));
    if let Some(s) = r.run.started_at {
        facts.push(("Started", when(s)));
    }
    if let Some(e) = r.run.ended_at {
        let took = r
            .run
            .started_at
            .map(|s| format!(" (took {})", duration_ms((e - s).num_milliseconds() as f64)))
            .unwrap_or_default();
        facts.push(("Ended", format!("{}{took}", when(e))));
    }
    facts.push(("Delegate", r.delegate.clone().unwrap_or("none".into())));
    facts.push(("Project", r.project.clone()));
    facts.push(("Run", r.run.id.to_string()));
    if r.run.dry_run {
        facts.push((
            "Dry run",
            "yes: the faults were resolved, nothing was applied".into(),
        ));
    }
    for (k, val) in facts {
        let lines = wrap(&val, 9.0, false, TEXT_W - 90.0);
        d.ensure(12.0 * lines.len() as f32);
        d.y += 12.0;
        d.text(MARGIN, d.y, 9.0, false, MUTED, k);
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                d.y += 12.0;
            }
            d.text(MARGIN + 90.0, d.y, 9.0, false, INK, line);
        }
    }
    d.y += 10.0;
    d.para(
        &format!(
            "Made by Faultline on {}. Times are seconds since the run started.",
            when(r.generated_at)
        ),
        8.0,
        false,
        MUTED,
        0.0,
    );
    d.new_page();
    finish(r, d.pages)
}

/// The document around the pages: fonts, opacities, the page tree, footers, metadata.
fn finish(r: &Report, mut pages: Vec<Content>) -> Vec<u8> {
    let total = pages.len();
    let footer = format!(
        "Faultline run report · {} v{} · run {}",
        r.template,
        r.version.version,
        r.short_id()
    );
    for (i, c) in pages.iter_mut().enumerate() {
        let y = MARGIN * 0.6;
        c.set_fill_rgb(MUTED.0, MUTED.1, MUTED.2);
        c.begin_text();
        c.set_font(REGULAR, 7.5);
        c.next_line(MARGIN, y);
        c.show(Str(&encode(&fit(&footer, 7.5, false, TEXT_W - 70.0))));
        c.end_text();
        let page = format!("page {} of {total}", i + 1);
        c.begin_text();
        c.next_line(PAGE_W - MARGIN - width(&page, 7.5, false), y);
        c.show(Str(&encode(&page)));
        c.end_text();
    }

    let mut pdf = Pdf::new();
    let mut next = 1;
    let mut id = || {
        let r = Ref::new(next);
        next += 1;
        r
    };
    let (catalog, tree, info, regular, bold) = (id(), id(), id(), id(), id());
    let alphas: Vec<Ref> = ALPHAS.iter().map(|_| id()).collect();
    let ids: Vec<(Ref, Ref)> = pages.iter().map(|_| (id(), id())).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(ids.iter().map(|(p, _)| *p))
        .count(ids.len() as i32);
    for ((page_id, content_id), content) in ids.iter().zip(pages) {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree);
        page.contents(*content_id);
        let mut res = page.resources();
        res.fonts().pair(REGULAR, regular).pair(BOLD, bold);
        let mut gs = res.ext_g_states();
        for ((name, _), r) in ALPHAS.iter().zip(&alphas) {
            gs.pair(*name, *r);
        }
        gs.finish();
        res.finish();
        page.finish();
        pdf.stream(*content_id, &content.finish());
    }
    for (font, base) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
        pdf.type1_font(font)
            .base_font(Name(base.as_bytes()))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    for ((_, a), r) in ALPHAS.iter().zip(&alphas) {
        pdf.ext_graphics(*r).non_stroking_alpha(*a);
    }
    let title = format!(
        "Run report: {} v{} ({})",
        r.template, r.version.version, r.run.state
    );
    pdf.document_info(info)
        .title(TextStr(&title))
        .creator(TextStr("Faultline"))
        .producer(TextStr("Faultline (pdf-writer)"));
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::tests::sample;

    #[test]
    fn a_pdf_with_text_and_vector_plot() {
        let pdf = render(&sample());
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(pdf.ends_with(b"%%EOF") || pdf.ends_with(b"%%EOF\n"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(
            text.contains("/BaseFont /Helvetica"),
            "base-14 font, nothing embedded"
        );
        assert!(text.contains("(FAILED)"));
        assert!(text.contains("(87.5)"));
        assert!(text.contains("/WinAnsiEncoding"));
        assert!(!text.contains("(Git commit)"), "no commit, no row");
    }

    #[test]
    fn the_git_commit_is_among_the_facts_when_there_is_one() {
        let mut r = sample();
        r.version.git_commit = Some("4f2a9c1d0e".into());
        r.version.git_path = Some("chaos/pause-web.yaml".into());
        let text = String::from_utf8_lossy(&render(&r)).into_owned();
        assert!(text.contains("(Git commit)"), "the label");
        assert!(text.contains("4f2a9c1d0e"), "the commit");
        assert!(text.contains("chaos/pause-web.yaml"), "the file");
    }
}
