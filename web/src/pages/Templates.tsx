// TODO(dashboard): Templates page.
export function TemplatesPage() {
  return <div className="page"><h1>Templates</h1><p className="muted">Coming soon.</p></div>;
}
