// TODO(dashboard): Access page.
export function AccessPage() {
  return <div className="page"><h1>Access</h1><p className="muted">Coming soon.</p></div>;
}
