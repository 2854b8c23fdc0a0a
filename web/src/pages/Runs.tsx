// TODO(dashboard): Runs page.
export function RunsPage() {
  return <div className="page"><h1>Runs</h1><p className="muted">Coming soon.</p></div>;
}
