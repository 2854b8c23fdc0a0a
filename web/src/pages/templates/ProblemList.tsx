// The template's problems under the editor, one line each, or "Valid".
import { formatProblem, type Problem } from './problems';

export function ProblemList({
  problems,
  pending,
  source,
}: {
  /** null: not checked yet. */
  problems: readonly Problem[] | null;
  /** The text changed since these problems were found. */
  pending: boolean;
  /** Who found them, when not the live check (e.g. "The hub refused to save"). */
  source?: string;
}) {
  if (problems === null) {
    return (
      <div className="problems-box muted" role="status">
        Checking…
      </div>
    );
  }
  if (problems.length === 0) {
    return (
      <div className={`problems-box valid${pending ? ' stale' : ''}`} role="status" data-testid="valid">
        ✓ Valid{pending && <span className="muted"> (checking…)</span>}
      </div>
    );
  }
  return (
    <div className={`problems-box${pending ? ' stale' : ''}`} role="status">
      <div className="problems-title">
        {source ?? (problems.length === 1 ? '1 problem' : `${problems.length} problems`)}
        {pending && <span className="muted"> (checking…)</span>}
      </div>
      <ul className="problems" data-testid="problems">
        {problems.map((p, i) => (
          <li key={i}>{formatProblem(p)}</li>
        ))}
      </ul>
    </div>
  );
}
