//! The run report as one self-contained HTML page: inline CSS (with print rules), the plot as
//! inline SVG, no script, no external asset, so it opens from a file, prints, and passes the
//! strict Content-Security-Policy the hub sends with it (`super::CSP`). Every text from the
//! run, the template or the delegate is escaped.
use super::model::{Report, Tone};
use super::plot::{self, Scene};
use std::fmt::Write;

/// The plot's box in SVG user units; the page scales it to its width.
pub const LAYOUT: plot::Layout = plot::Layout {
    width: 960.0,
    height: 320.0,
    left: 56.0,
    right: 12.0,
    top: 8.0,
    bottom: 40.0,
    font: 11.0,
};

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

const CSS: &str = r#"
:root { --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --ok: #15803d; --ok-bg: #dcfce7;
  --bad: #b91c1c; --bad-bg: #fee2e2; --warn: #a16207; --warn-bg: #fef3c7; --wait: #4b5563; --wait-bg: #f3f4f6; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  color: var(--ink); background: #fff; margin: 0 auto; max-width: 1040px; padding: 24px; }
h1 { font-size: 24px; margin: 4px 0; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.brand { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .06em; }
.muted { color: var(--muted); } code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.stats { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0 8px; }
.stat { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 150px; flex: 1 1 150px; }
.stat .label { color: var(--muted); font-size: 12px; } .stat .value { font-size: 20px; font-weight: 600; }
.stat .sub { font-size: 12px; color: var(--muted); font-weight: 400; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 13px; font-weight: 600; }
.badge-ok { color: var(--ok); background: var(--ok-bg); } .badge-bad { color: var(--bad); background: var(--bad-bg); }
.badge-warn { color: var(--warn); background: var(--warn-bg); } .badge-wait { color: var(--wait); background: var(--wait-bg); }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.tl-fault td:nth-child(2) { color: var(--bad); } tr.tl-ok td:nth-child(2) { color: var(--ok); }
tr.tl-bad td:nth-child(2) { color: var(--bad); font-weight: 600; } tr.tl-warn td:nth-child(2) { color: var(--warn); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 8px 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
figure { margin: 8px 0; } figure svg { width: 100%; height: auto; display: block; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 12px; color: var(--muted); margin-top: 4px; }
.swatch { display: inline-block; width: 14px; height: 10px; margin-right: 4px; vertical-align: middle; border-radius: 2px; }
.dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: #dc2626; margin-right: 4px; vertical-align: middle; }
ul.sentences { padding-left: 18px; } .reason { margin: 8px 0; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
@page { size: A4; margin: 14mm; }
@media print {
  body { padding: 0; max-width: none; font-size: 11pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; } figure, .stats, tr { break-inside: avoid; }
  thead { display: table-header-group; }
}
"#;

fn badge(status: &str, dry_run: bool) -> String {
    let class = match status {
        "PASSED" => "badge-ok",
        "FAILED" | "ERROR" => "badge-bad",
        "ABORTED" | "ABORTING" => "badge-warn",
        _ => "badge-wait",
    };
    let text = if dry_run && status == "PASSED" {
        "PLANNED"
    } else {
        status
    };
    format!(
        r#"<span class="badge {class}" data-testid="verdict">{}</span>"#,
        esc(text)
    )
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v.abs() < 10.0 => format!("{v:.1} ms"),
        Some(v) => format!("{} ms", v.round()),
        None => "–".into(),
    }
}

fn plus(t: f64) -> String {
    format!("+{t:.1} s")
}

fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The whole page.
pub fn render(r: &Report) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = format!(
        "Run report: {} v{} — {}",
        r.template, r.version.version, r.run.state
    );
    let _ = writeln!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"generator\" content=\"Faultline\"><title>{}</title><style>{CSS}</style></head><body>",
        esc(&title)
    );
    header(&mut h, r);
    verdict(&mut h, r);
    hypothesis(&mut h, r);
    plot_section(&mut h, r);
    latency(&mut h, r);
    probes(&mut h, r);
    timeline(&mut h, r);
    failures(&mut h, r);
    provenance(&mut h, r);
    let _ = writeln!(
        h,
        "<footer>Made by Faultline on {} for run <span class=\"mono\">{}</span>. Times are seconds since the run started.</footer>\n</body></html>",
        when(r.generated_at),
        r.run.id
    );
    h
}

fn header(h: &mut String, r: &Report) {
    let commit = r
        .version
        .git_commit
        .as_deref()
        .map(|c| {
            format!(
                " <span class=\"muted\">@ <code>{}</code></span>",
                esc(&c[..c.len().min(10)])
            )
        })
        .unwrap_or_default();
    let _ = writeln!(
        h,
        "<header><div class=\"brand\">Faultline run report</div>\
         <h1>{} <span class=\"muted\">v{}</span>{commit} {}</h1>\
         <div class=\"muted\">Run <span class=\"mono\">{}</span> · project {} · delegate {}</div></header>",
        esc(&r.template),
        r.version.version,
        badge(&r.run.state, r.run.dry_run),
        r.run.id,
        esc(&r.project),
        esc(r.delegate.as_deref().unwrap_or("none")),
    );
}

fn verdict(h: &mut String, r: &Report) {
    let _ = writeln!(
        h,
        "<section id=\"verdict\" aria-label=\"Verdict\"><h2>Verdict</h2><div class=\"stats\">\
         <div class=\"stat\"><div class=\"label\">Verdict</div><div class=\"value\">{}</div></div>\
         <div class=\"stat\"><div class=\"label\">Resilience score</div><div class=\"value\" data-testid=\"score\">{}</div></div>\
         <div class=\"stat\"><div class=\"label\">Recovery</div><div class=\"value\" data-testid=\"recovery\">{}</div></div>\
         <div class=\"stat\"><div class=\"label\">Probe checks passed</div><div class=\"value\">{}/{}{}</div></div></div>",
        badge(&r.run.state, r.run.dry_run),
        esc(&r.score_text()),
        recovery_html(r),
        r.passed,
        r.passed + r.failed,
        if r.failed > 0 {
            format!(" <span class=\"sub\">{} failed</span>", r.failed)
        } else {
            String::new()
        }
    );
    if let Some(reason) = &r.run.verdict_reason {
        let _ = write!(
            h,
            "<p class=\"reason\" data-testid=\"reason\"><strong>Reason:</strong> {}</p>",
            esc(reason)
        );
    }
    if let (Some(hub), Some(delegate)) = (r.run.score, r.run.delegate_score) {
        if (hub - delegate).abs() >= 0.05 {
            let _ = write!(
                h,
                "<p class=\"reason\"><strong>Note:</strong> the delegate computed a score of {delegate:.1}, the hub {hub:.1} from the stored checks: some checks may be missing.</p>"
            );
        }
    }
    h.push_str("</section>\n");
}

fn recovery_html(r: &Report) -> String {
    match (r.run.recovery_ms, &r.run.recovery_from) {
        (Some(ms), Some(from)) => format!(
            "{} <span class=\"sub\">{}</span>",
            esc(&super::model::duration_ms(ms as f64)),
            esc(&from.0.describe())
        ),
        _ => esc(&r.recovery_text()),
    }
}

fn hypothesis(h: &mut String, r: &Report) {
    h.push_str("<section id=\"hypothesis\" aria-label=\"Hypothesis\"><h2>Hypothesis</h2>\n");
    let Some(spec) = &r.spec else {
        h.push_str("<p class=\"muted\">The template version could not be read.</p></section>\n");
        return;
    };
    if !spec.metadata.description.is_empty() {
        let _ = write!(h, "<p>{}</p>", esc(&spec.metadata.description));
    }
    h.push_str("<p>The steady state holds while these probes pass:</p><table><thead><tr><th>Probe</th><th>Kind</th><th>Mode</th><th>Every</th><th>Timeout</th></tr></thead><tbody>");
    for p in &spec.hypothesis.probes {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.name),
            esc(p.kind_name()),
            esc(p.mode.as_str()),
            esc(&p.interval.to_string()),
            esc(&p.timeout.to_string()),
        );
    }
    h.push_str("</tbody></table><ul>");
    let hy = &spec.hypothesis;
    if !spec.steps.is_empty() {
        let _ = write!(
            h,
            "<li>After the last fault ends, every probe passes again within {}.</li>",
            esc(&hy.recover_within.to_string())
        );
    }
    if !hy.baseline.0.is_zero() {
        let _ = write!(
            h,
            "<li>A baseline of {} of steady state comes before the first fault.</li>",
            esc(&hy.baseline.to_string())
        );
    }
    if let Some(m) = hy.min_score {
        let _ = write!(h, "<li>The run fails below a resilience score of {m}.</li>");
    }
    h.push_str("</ul>");
    let steps = r.planned_steps();
    if steps.is_empty() {
        h.push_str("<p class=\"muted\">No method: a steady-state check, nothing is injected.</p>");
    } else {
        h.push_str("<p>The method:</p><ol class=\"plan\">");
        for s in steps {
            let _ = write!(h, "<li>{}</li>", esc(&s));
        }
        h.push_str("</ol>");
    }
    h.push_str("</section>\n");
}

fn plot_section(h: &mut String, r: &Report) {
    h.push_str("<section id=\"plot\" aria-label=\"Probe latency\"><h2>Probe latency</h2>\n");
    if r.points.is_empty() {
        h.push_str("<p class=\"muted\">No probe checks were recorded.</p></section>\n");
        return;
    }
    let scene = Scene::build(r.plot_data(), LAYOUT);
    h.push_str("<figure>");
    svg(h, &scene);
    h.push_str("<figcaption class=\"legend\">");
    for s in &scene.series {
        let _ = write!(
            h,
            "<span><span class=\"swatch\" style=\"background:{}\"></span>{}</span>",
            s.color,
            esc(&s.probe)
        );
    }
    let _ = writeln!(
        h,
        "<span><span class=\"dot\"></span>failed check ({})</span>\
         <span><span class=\"swatch\" style=\"background:rgba(220,38,38,.2)\"></span>fault window</span>\
         <span><span class=\"swatch\" style=\"background:rgba(100,116,139,.15)\"></span>baseline</span>\
         <span>x: seconds since the run started · y: latency (ms)</span></figcaption></figure></section>",
        scene.failed
    );
}

/// The plot as an SVG element.
pub fn svg(h: &mut String, s: &Scene) {
    let a = s.area;
    let _ = writeln!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" role=\"img\" aria-labelledby=\"plot-title\" \
         data-testid=\"latency-plot\" data-bands=\"{}\" data-failures=\"{}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\
         <title id=\"plot-title\">Probe latency over the run, with fault windows shaded and failed checks marked</title>\
         <defs><clipPath id=\"plot-area\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/></clipPath>\
         <pattern id=\"hatch\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\
         <rect width=\"4\" height=\"8\" fill=\"{}\" fill-opacity=\"0.16\"/></pattern></defs>",
        s.width,
        s.height,
        s.bands.iter().filter(|b| b.step.is_some()).count(),
        s.failed,
        a.x,
        a.y,
        a.w,
        a.h,
        plot::FAULT
    );
    // Grid and axes.
    for t in &s.y_ticks {
        let _ = write!(
            h,
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e5e7eb\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#6b7280\">{}</text>",
            a.x,
            a.x + a.w,
            t.at,
            t.at,
            a.x - 6.0,
            t.at + 4.0,
            esc(&t.label)
        );
    }
    for t in &s.x_ticks {
        let _ = write!(
            h,
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#9ca3af\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#6b7280\">{}</text>",
            t.at,
            t.at,
            a.y + a.h,
            a.y + a.h + 4.0,
            t.at,
            a.y + a.h + 16.0,
            esc(&t.label)
        );
    }
    let _ = writeln!(
        h,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#6b7280\">seconds since the run started</text>\
         <text transform=\"translate({:.1} {:.1}) rotate(-90)\" text-anchor=\"middle\" fill=\"#6b7280\">latency (ms)</text>",
        a.x + a.w / 2.0,
        s.height - 4.0,
        14.0,
        a.y + a.h / 2.0
    );
    h.push_str("<g clip-path=\"url(#plot-area)\">");
    for b in &s.bands {
        let w = (b.x1 - b.x0).max(0.0);
        match b.step {
            None => {
                let _ = write!(
                    h,
                    "<rect data-testid=\"baseline-band\" x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\" fill-opacity=\"0.10\"><title>baseline</title></rect>",
                    b.x0, a.y, a.h, plot::BASELINE
                );
            }
            Some(step) => {
                let fill = if b.instant {
                    format!("fill=\"{}\" fill-opacity=\"0.8\"", plot::FAULT)
                } else if b.active {
                    "fill=\"url(#hatch)\"".to_string()
                } else {
                    format!("fill=\"{}\" fill-opacity=\"0.13\"", plot::FAULT)
                };
                let _ = write!(
                    h,
                    "<rect data-testid=\"fault-band\" data-step=\"{step}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" {fill}><title>{}</title></rect>",
                    b.x0,
                    a.y,
                    a.h,
                    esc(&b.label)
                );
                if !b.instant {
                    let _ = write!(
                        h,
                        "<path d=\"M{:.1} {:.1}V{:.1}M{:.1} {:.1}V{:.1}\" stroke=\"{}\" stroke-opacity=\"0.5\"/>",
                        b.x0,
                        a.y,
                        a.y + a.h,
                        b.x1,
                        a.y,
                        a.y + a.h,
                        plot::FAULT
                    );
                }
            }
        }
    }
    for l in &s.actions {
        let _ = write!(
            h,
            "<line data-testid=\"action-mark\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>",
            l.x,
            l.x,
            a.y,
            a.y + a.h,
            if l.bad { plot::ACTION_BAD } else { plot::ACTION }
        );
    }
    for se in &s.series {
        let _ = write!(
            h,
            "<polyline data-probe=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" stroke-linejoin=\"round\" points=\"",
            esc(&se.probe),
            se.color
        );
        for (x, y) in &se.points {
            let _ = write!(h, "{x:.1},{y:.1} ");
        }
        h.push_str("\"/>");
    }
    for d in &s.dots {
        let _ = write!(
            h,
            "<circle data-testid=\"failed-check\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{}\"/>",
            d.x,
            d.y,
            plot::FAIL
        );
    }
    h.push_str("</g>\n");
    // Labels over everything, outside the clip so a label near the right edge stays whole.
    for b in s.bands.iter().filter(|b| !b.label.is_empty()) {
        let (color, weight) = match b.step {
            None => (plot::BASELINE, "400"),
            Some(_) => (plot::FAULT_INK, "600"),
        };
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\" font-weight=\"{weight}\" paint-order=\"stroke\" stroke=\"#fff\" stroke-width=\"3\">{}</text>",
            b.x0 + 3.0,
            b.label_y,
            esc(&b.label)
        );
    }
    for l in &s.actions {
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\" paint-order=\"stroke\" stroke=\"#fff\" stroke-width=\"3\">{}</text>",
            l.x + 3.0,
            l.label_y,
            if l.bad { plot::ACTION_BAD } else { "#6d28d9" },
            esc(&l.label)
        );
    }
    let _ = write!(
        h,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#9ca3af\"/></svg>",
        a.x, a.y, a.w, a.h
    );
}

fn latency(h: &mut String, r: &Report) {
    h.push_str(
        "<section id=\"latency\" aria-label=\"Latency statistics\"><h2>Latency statistics</h2>",
    );
    let l = r.latency();
    if l.is_empty() {
        h.push_str(if r.done {
            "<p class=\"muted\">No probe measured latency before and during the faults.</p>"
        } else {
            "<p class=\"muted\">Computed when the run ends.</p>"
        });
    } else {
        h.push_str("<p class=\"muted\">Latency of each probe while faults were active against before them (Mann-Whitney U, failed checks ranked above every answered one; failure rates by Fisher's exact test).</p><ul class=\"sentences\">");
        for s in l {
            let _ = write!(
                h,
                "<li data-testid=\"latency-sentence\"><strong>{}</strong>: {}</li>",
                esc(&s.probe),
                esc(&s.summary)
            );
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>\n");
}

fn probes(h: &mut String, r: &Report) {
    h.push_str("<section id=\"probes\" aria-label=\"Probes\"><h2>Probes</h2>");
    if r.probes.is_empty() {
        h.push_str("<p class=\"muted\">No probe checks were recorded.</p></section>\n");
        return;
    }
    h.push_str("<p class=\"muted\">Latency percentiles of the passing checks, per phase (before the faults, during them, between two, after the last).</p>\
        <table data-testid=\"probe-table\"><thead><tr><th>Probe</th><th>Phase</th><th class=\"num\">Checks</th><th class=\"num\">Failed</th>\
        <th class=\"num\">p50</th><th class=\"num\">p95</th><th class=\"num\">p99</th><th class=\"num\">max</th></tr></thead><tbody>");
    for p in &r.probes {
        let kind = [p.kind.as_str(), p.mode.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            h,
            "<tr data-probe=\"{}\"><td><strong>{}</strong> <span class=\"muted\">{}</span></td><td>all</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td colspan=\"4\"></td></tr>",
            esc(&p.name),
            esc(&p.name),
            esc(&kind),
            p.checks,
            p.failed
        );
        for ph in &p.phases {
            let _ = write!(
                h,
                "<tr><td></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&ph.phase),
                ph.checks,
                ph.failed,
                ms(ph.p50),
                ms(ph.p95),
                ms(ph.p99),
                ms(ph.max)
            );
        }
    }
    h.push_str("</tbody></table></section>\n");
}

fn timeline(h: &mut String, r: &Report) {
    h.push_str("<section id=\"timeline\" aria-label=\"Timeline\"><h2>Timeline of the method</h2>");
    if r.timeline.is_empty() {
        h.push_str("<p class=\"muted\">This run recorded no events.</p></section>\n");
        return;
    }
    h.push_str("<table><thead><tr><th class=\"num\">At</th><th>Event</th><th>Detail</th></tr></thead><tbody>");
    for t in &r.timeline {
        let class = match t.tone {
            Tone::Info => "tl-info",
            Tone::Fault => "tl-fault",
            Tone::Ok => "tl-ok",
            Tone::Bad => "tl-bad",
            Tone::Warn => "tl-warn",
        };
        let _ = write!(
            h,
            "<tr class=\"{class}\" data-kind=\"{}\"><td class=\"num mono\" title=\"{}\">{}</td><td>{}</td><td class=\"muted\">{}</td></tr>",
            esc(&t.kind),
            when(t.at),
            plus(t.t),
            esc(&t.title),
            esc(&t.detail)
        );
    }
    h.push_str("</tbody></table></section>\n");
}

fn failures(h: &mut String, r: &Report) {
    if r.failed == 0 {
        return;
    }
    let _ = write!(
        h,
        "<section id=\"failures\" aria-label=\"Failed checks\"><h2>Failed checks</h2>\
         <table><thead><tr><th class=\"num\">At</th><th>Probe</th><th>Phase</th><th class=\"num\">Latency</th><th>Detail</th></tr></thead><tbody>"
    );
    for f in &r.failures {
        let _ = write!(
            h,
            "<tr><td class=\"num mono\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"muted\">{}</td></tr>",
            plus(f.t),
            esc(&f.probe),
            esc(&f.phase),
            ms(Some(f.latency_ms)),
            esc(&f.detail)
        );
    }
    h.push_str("</tbody></table>");
    if r.failed > r.failures.len() {
        let _ = write!(
            h,
            "<p class=\"muted\">The first {} of {} failed checks.</p>",
            r.failures.len(),
            r.failed
        );
    }
    h.push_str("</section>\n");
}

fn provenance(h: &mut String, r: &Report) {
    let v = &r.version;
    let _ = write!(
        h,
        "<section id=\"provenance\" aria-label=\"Template and run\"><h2>Template and run</h2><dl class=\"facts\">\
         <dt>Template</dt><dd data-testid=\"template\">{} version {} <span class=\"muted\">(saved by {} on {})</span></dd>",
        esc(&r.template),
        v.version,
        esc(&v.created_by),
        when(v.created_at)
    );
    if let Some(c) = &v.git_commit {
        let _ = write!(
            h,
            "<dt>Git commit</dt><dd data-testid=\"git-commit\"><code>{}</code>{}</dd>",
            esc(c),
            v.git_path
                .as_deref()
                .map(|p| format!(" <span class=\"muted\">file {}</span>", esc(p)))
                .unwrap_or_default()
        );
    }
    let by = r
        .run
        .created_by
        .strip_prefix("user:")
        .unwrap_or(&r.run.created_by);
    let _ = write!(
        h,
        "<dt>Started by</dt><dd data-testid=\"started-by\">{}</dd><dt>Created</dt><dd>{}</dd>",
        esc(by),
        when(r.run.created_at)
    );
    if let Some(s) = r.run.started_at {
        let _ = write!(h, "<dt>Started</dt><dd>{}</dd>", when(s));
    }
    if let Some(e) = r.run.ended_at {
        let took = r
            .run
            .started_at
            .map(|s| {
                format!(
                    " <span class=\"muted\">(took {})</span>",
                    super::model::duration_ms((e - s).num_milliseconds() as f64)
                )
            })
            .unwrap_or_default();
        let _ = write!(h, "<dt>Ended</dt><dd>{}{took}</dd>", when(e));
    }
    let _ = writeln!(
        h,
        "<dt>Delegate</dt><dd>{}</dd><dt>Project</dt><dd>{}</dd><dt>Run</dt><dd class=\"mono\">{}</dd>{}</dl></section>",
        esc(r.delegate.as_deref().unwrap_or("none")),
        esc(&r.project),
        r.run.id,
        if r.run.dry_run {
            "<dt>Dry run</dt><dd>yes: the faults were resolved, nothing was applied</dd>"
        } else {
            ""
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::tests::sample;

    #[test]
    fn the_page_has_every_section_and_no_script_or_external_asset() {
        let page = render(&sample());
        for id in [
            "verdict",
            "hypothesis",
            "plot",
            "latency",
            "probes",
            "timeline",
            "failures",
            "provenance",
        ] {
            assert!(page.contains(&format!("<section id=\"{id}\"")), "{id}");
        }
        assert!(!page.contains("<script"), "no JavaScript");
        assert!(!page.contains("src="), "no external asset");
        assert!(!page.contains("href="), "no link to load");
        assert!(page.contains("data-testid=\"fault-band\" data-step=\"0\""));
        assert_eq!(page.matches("data-testid=\"failed-check\"").count(), 1);
        assert!(page.contains("@media print"));
        assert!(page.contains(">87.5<"));
    }

    #[test]
    fn recovery_and_the_git_commit_are_shown_when_there_are_some() {
        let mut r = sample();
        let page = render(&r);
        // 1.3 s after the pause was reverted.
        let recovery = page
            .split("data-testid=\"recovery\">")
            .nth(1)
            .and_then(|s| s.split("</div>").next())
            .unwrap();
        assert!(recovery.starts_with("1.3 s"), "{recovery}");
        assert!(recovery.contains("process-pause"), "{recovery}");
        assert!(
            !page.contains("data-testid=\"git-commit\""),
            "no commit, no row"
        );

        r.version.git_commit = Some("4f2a9c1d0e".into());
        r.version.git_path = Some("chaos/pause-web.yaml".into());
        r.run.recovery_ms = None;
        r.run.recovery_from = None;
        let page = render(&r);
        assert!(page.contains(
            "data-testid=\"git-commit\"><code>4f2a9c1d0e</code> <span class=\"muted\">file chaos/pause-web.yaml</span>"
        ));
        assert!(
            page.contains("data-testid=\"recovery\">–<"),
            "no recovery: a dash"
        );
    }

    #[test]
    fn text_from_the_run_is_escaped() {
        let mut r = sample();
        r.template = "<script>x</script>".into();
        r.run.verdict_reason = Some("a \"quoted\" & <b>bold</b> reason".into());
        let page = render(&r);
        assert!(!page.contains("<script>x"));
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(page.contains("a &quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt; reason"));
    }
}
