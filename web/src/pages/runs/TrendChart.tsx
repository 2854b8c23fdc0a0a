// The trends chart (uPlot). Only the lazy-loaded Trends page imports this file, so uPlot stays
// out of the main bundle.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { fitTimeRange, ticksFor, timeLabels, timeSplits } from './timeAxis';
import type { ChartData } from './trends';

const HEIGHT = 300;

/** The plot's width in CSS pixels (uPlot's bbox is in device pixels). */
const plotWidth = (u: uPlot) => u.bbox.width / (window.devicePixelRatio || 1) || u.width;

/**
 * The chart's uPlot options: the x axis fits the runs (timeAxis.ts), with ticks on round local
 * times labelled for the span; the score axis is 0 to 100.
 */
export function trendChartOptions(chart: ChartData, width: number): uPlot.Options {
  return {
    width,
    height: HEIGHT,
    scales: { x: { time: true, range: fitTimeRange }, y: { range: [0, 100] } },
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
    axes: [
      {
        splits: (u: uPlot, _axis: number, min: number, max: number) => timeSplits(min, max, ticksFor(plotWidth(u))),
        values: (_u: uPlot, splits: number[]) => timeLabels(splits),
      },
      { label: 'Resilience score', size: 56 },
    ],
    legend: { live: true },
  };
}

export function TrendChart({ chart }: { chart: ChartData }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const u = new uPlot(trendChartOptions(chart, Math.max(300, el.clientWidth - 16)), chart.data, el);
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(300, el.clientWidth - 16), height: HEIGHT }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
    };
  }, [chart]);
  return <div ref={ref} className="trend-chart" data-testid="trend-chart" role="img" aria-label="Resilience score over time" />;
}
