// TODO(dashboard): resilience score trends (lazy-loaded: the chart lives in its own chunk).
export default function TrendsPage() {
  return <div className="page"><h1>Trends</h1></div>;
}
