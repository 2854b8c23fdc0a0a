// TODO(dashboard): Audit page.
export function AuditPage() {
  return <div className="page"><h1>Audit</h1><p className="muted">Coming soon.</p></div>;
}
