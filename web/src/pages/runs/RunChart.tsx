// The run chart (uPlot): each probe's latency over the run (x = seconds since it started), its
// failed checks as red markers, every fault's window shaded and labelled (to now while active; a
// one-shot kill as a thin band), action steps as dashed lines, the baseline window before the
// method. Drag to zoom, double-click to see the whole run. Lazily loaded with uPlot, like the
// trends chart; what it draws comes from chart.ts.
import { useEffect, useMemo, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { RunLive } from './events';
import { runChartModel, type RunChartModel } from './chart';
import { useNow } from './time';

const HEIGHT = 260;
const COLORS = ['#2563eb', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563', '#65a30d'];
const FAIL = '#dc2626';

export default function RunChart({ live, done }: { live: RunLive; done: boolean }) {
  const now = useNow(1000, !done);
  const model = useMemo(() => runChartModel(live, now, done), [live, now, done]);
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<{ u: uPlot; state: { zoomed: boolean; model: RunChartModel } } | null>(null);
  // A new probe means new series: uPlot is made again; otherwise its data is replaced.
  const shape = model.probes.join('\u0000');

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const state = { zoomed: false, model };
    const whole = (u: uPlot) => {
      state.zoomed = false;
      u.setScale('x', { min: 0, max: state.model.xEnd });
    };
    const opts: uPlot.Options = {
      width: Math.max(300, el.clientWidth),
      height: HEIGHT,
      scales: {
        x: { time: false, auto: false },
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.25 : 1] },
      },
      series: [
        { label: 'time', value: (_u, v) => (v === null || v === undefined ? '–' : `+${v.toFixed(1)} s`) },
        ...model.probes.map((p, i) => ({
          label: p,
          stroke: COLORS[i % COLORS.length],
          width: 1.5,
          spanGaps: true,
          points: { show: false },
          value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? '–' : `${v.toFixed(1)} ms`),
        })),
        ...model.probes.map((p) => ({
          label: `${p} failed`,
          stroke: FAIL,
          width: 0,
          paths: () => null,
          points: { show: true, size: 8, fill: FAIL, stroke: FAIL, width: 1 },
          value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? '–' : `failed, ${v.toFixed(1)} ms`),
        })),
      ],
      axes: [
        { label: 'seconds since the run started', size: 40, values: (_u, ticks) => ticks.map((t) => `${t}`) },
        { label: 'latency (ms)', size: 56 },
      ],
      cursor: {
        drag: { x: true, y: false, setScale: true },
        bind: {
          dblclick: (u) => () => {
            whole(u);
            return null;
          },
        },
      },
      legend: { live: true },
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width > 2) state.zoomed = true;
          },
        ],
        draw: [(u) => drawMarks(u, state.model)],
      },
    };
    const u = new uPlot(opts, model.data as uPlot.AlignedData, el);
    plot.current = { u, state };
    whole(u);
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(300, el.clientWidth), height: HEIGHT }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Made again only when the series change; new data reaches it through the effect below.
  }, [shape]);

  useEffect(() => {
    const p = plot.current;
    if (!p) return;
    p.state.model = model;
    p.u.setData(model.data as uPlot.AlignedData);
    if (!p.state.zoomed) p.u.setScale('x', { min: 0, max: model.xEnd });
    else p.u.redraw(false);
  }, [model]);

  return (
    <figure className="run-chart" aria-label="Probe latency over the run, with fault windows">
      <div ref={host} data-testid="run-chart" data-bands={model.bands.length} data-failures={model.failures} />
      <figcaption className="muted">
        {model.probes.length === 0 ? 'No probe checks yet. ' : ''}
        Shaded: fault windows{model.baseline ? ' and the baseline' : ''}. Red dots: failed checks. Drag to zoom, double-click
        to see the whole run.
      </figcaption>
    </figure>
  );
}

/**
 * The bands and lines under the plot (behind the lines), their labels over it (above the failure
 * markers), placed for the current scale on every redraw.
 */
function drawMarks(u: uPlot, m: RunChartModel) {
  const { under, over } = u;
  // The visible window, for people's tools and the e2e test (zoomed or not).
  const host = u.root.parentElement;
  host?.setAttribute('data-x-min', (u.scales.x.min ?? 0).toFixed(2));
  host?.setAttribute('data-x-max', (u.scales.x.max ?? 0).toFixed(2));
  under.querySelectorAll('.rc-mark').forEach((n) => n.remove());
  over.querySelectorAll('.rc-label').forEach((n) => n.remove());
  const width = under.clientWidth;
  const x = (t: number) => u.valToPos(t, 'x');
  let actionRow = 0;
  const add = (cls: string, from: number, to: number, label: string, attrs: Record<string, string> = {}) => {
    if (x(to) < 0 || x(from) > width) return; // zoomed away
    const l = Math.max(0, Math.min(width, x(from)));
    const r = Math.max(0, Math.min(width, x(to)));
    const d = document.createElement('div');
    d.className = `rc-mark ${cls}`;
    d.style.left = `${l}px`;
    d.style.width = `${Math.max(r - l, 0)}px`;
    for (const [k, v] of Object.entries(attrs)) d.setAttribute(k, v);
    d.title = label;
    under.appendChild(d);
    const t = document.createElement('span');
    t.className = `rc-label ${cls}`;
    t.textContent = label;
    t.style.left = `${l + 3}px`;
    if (cls.startsWith('rc-action')) t.style.bottom = `${2 + 13 * (actionRow++ % 3)}px`;
    over.appendChild(t);
  };
  if (m.baseline) add('rc-baseline', m.baseline.from, m.baseline.to, 'baseline', { 'data-testid': 'baseline-band' });
  for (const b of m.bands) {
    const cls = `rc-band${b.active ? ' rc-active' : ''}${b.instant ? ' rc-instant' : ''}`;
    add(cls, b.from, b.to, b.active ? `${b.label} (active)` : b.label, { 'data-testid': 'fault-band', 'data-step': String(b.step) });
  }
  for (const a of m.actions) {
    const cls = `rc-action${a.ok === false ? ' rc-action-bad' : ''}`;
    add(cls, a.t, a.t, a.label, { 'data-testid': 'action-mark', 'data-kind': a.kind });
  }
}
