// Before saving: which of the project's delegates would refuse the template, and why (a kind it
// lacks, an allow-list entry its operator has not given). Asked with `delegateChecks` only for a
// text the hub has found valid; the same refusals startRun would give.
import { useQuery } from 'urql';
import { graphql } from '../../gql';
import { formatProblem } from './problems';

export const DelegateChecksDoc = graphql(`
  query TemplateEditorDelegateChecks($project: String!, $yaml: String!) {
    delegateChecks(project: $project, yaml: $yaml) {
      delegate
      connected
      problems {
        line
        column
        field
        message
        hint
      }
    }
  }
`);

/** `yaml`: the valid text to ask about, or null while there is none (nothing is asked). */
export function DelegateWarnings({ project, yaml }: { project: string; yaml: string | null }) {
  const [{ data }] = useQuery({
    query: DelegateChecksDoc,
    variables: { project, yaml: yaml ?? '' },
    pause: yaml === null,
    requestPolicy: 'network-only',
  });
  if (yaml === null || !data) return null;
  const checks = data.delegateChecks;
  if (checks.length === 0) {
    return (
      <div className="problems-box warn" role="note" data-testid="delegate-warnings">
        No delegate of this project matches the template's <code>target.delegate</code>: a run will wait for one.
      </div>
    );
  }
  const refusing = checks.filter((c) => c.problems.length > 0);
  if (refusing.length === 0) return null;
  return (
    <div className="problems-box warn" role="note" data-testid="delegate-warnings">
      <div className="problems-title">
        {refusing.length === checks.length
          ? checks.length === 1
            ? 'Its delegate would refuse to run it:'
            : `All ${checks.length} delegates it could run on would refuse it:`
          : `${refusing.length} of ${checks.length} delegates it could run on would refuse it:`}
      </div>
      {refusing.map((c) => (
        <div key={c.delegate} className="delegate-refusal">
          <strong>{c.delegate}</strong>
          {!c.connected && <span className="muted"> (offline)</span>}
          <ul className="problems">
            {c.problems.map((p, i) => (
              <li key={i}>{formatProblem(p)}</li>
            ))}
          </ul>
        </div>
      ))}
      <p className="muted">
        Saving is allowed; a run on such a delegate is refused until its operator adds the entry (docs/safety.md).
      </p>
    </div>
  );
}
