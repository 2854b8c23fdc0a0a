// TODO(dashboard): live run view.
export function RunPage({ id }: { id: string }) {
  return <div className="page"><h1>Run {id}</h1></div>;
}
