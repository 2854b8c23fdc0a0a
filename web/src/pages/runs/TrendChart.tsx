// The trends chart (uPlot). Only the lazy-loaded Trends page imports this file, so uPlot stays
// out of the main bundle.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { xRange, type ChartData } from './trends';

const HEIGHT = 300;
export function TrendChart({ chart }: { chart: ChartData }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: Math.max(300, el.clientWidth - 16),
      height: HEIGHT,
      scales: { x: { time: true, range: xRange }, y: { range: [0, 100] } },
      series: [
        { label: 'Ended' },
        ...chart.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.dashed ? 2 : 1.5,
          dash: s.dashed ? [6, 4] : undefined,
          spanGaps: true,
          points: { show: true, size: 5 },
          value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? '–' : v.toFixed(1)),
        })),
      ],
      axes: [{}, { label: 'Resilience score', size: 56 }],
      legend: { live: true },
    };
    const u = new uPlot(opts, chart.data, el);
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(300, el.clientWidth - 16), height: HEIGHT }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
    };
  }, [chart]);
  return <div ref={ref} className="trend-chart" data-testid="trend-chart" role="img" aria-label="Resilience score over time" />;
}
