// A unified diff with added and removed lines coloured.
import { parseDiff } from './diff';

export function DiffView({ diff }: { diff: string }) {
  const lines = parseDiff(diff);
  return (
    <pre className="diff" data-testid="diff">
      {lines.length === 0 ? (
        <span className="muted">No differences.</span>
      ) : (
        lines.map((l, i) => (
          <div key={i} className={`diff-${l.kind}`}>
            {l.text || ' '}
          </div>
        ))
      )}
    </pre>
  );
}
