// TODO(dashboard): Delegates page.
export function DelegatesPage() {
  return <div className="page"><h1>Delegates</h1><p className="muted">Coming soon.</p></div>;
}
