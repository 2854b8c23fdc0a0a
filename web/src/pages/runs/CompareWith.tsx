// "Compare with…" on a run's page: pick another run of the same template (by default the latest
// finished one before it) and open the two side by side, the older as the baseline A.
import { useEffect, useMemo, useState } from 'react';
import { useQuery } from 'urql';
import { useLocation } from 'wouter';
import { graphql } from '../../gql';
import { useProject } from '../../project';
import { ErrorBox, Loading } from '../../ui';
import { compareHref, defaultBaseline, orderPair } from './comparePair';
import { formatScore } from './time';

const CompareCandidatesDoc = graphql(`
  query CompareCandidates($project: String!, $templateId: ID!, $at: DateTime!) {
    earlier: runs(project: $project, templateId: $templateId, until: $at, limit: 50) {
      ...CompareCandidate
    }
    later: runs(project: $project, templateId: $templateId, since: $at, limit: 50) {
      ...CompareCandidate
    }
  }
  fragment CompareCandidate on Run {
    id
    status
    createdAt
    dryRun
    templateVersion
    resilienceScore
  }
`);

interface ThisRun {
  id: string;
  createdAt: string;
  template: { id: string; name: string };
}

export function CompareWithButton({ run }: { run: ThisRun }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button type="button" onClick={() => setOpen(true)} title={`Compare this run with another run of ${run.template.name}`}>
        Compare with…
      </button>
      {open && <CompareWithDialog run={run} onClose={() => setOpen(false)} />}
    </>
  );
}

function CompareWithDialog({ run, onClose }: { run: ThisRun; onClose(): void }) {
  const project = useProject();
  const [, navigate] = useLocation();
  // Runs just before this one (where the default is) and the newest after it.
  const [{ data, fetching, error }] = useQuery({
    query: CompareCandidatesDoc,
    variables: { project: project.name, templateId: run.template.id, at: run.createdAt },
  });
  const others = useMemo(() => {
    const seen = new Set([run.id]);
    return [...(data?.later ?? []), ...(data?.earlier ?? [])]
      .filter((r) => !seen.has(r.id) && (seen.add(r.id), true))
      .sort((x, y) => Date.parse(y.createdAt) - Date.parse(x.createdAt));
  }, [data, run.id]);
  const fallback = useMemo(() => defaultBaseline(others, run), [others, run]);
  const [choice, setChoice] = useState<string | null>(null);
  const chosen = others.find((r) => r.id === (choice ?? fallback?.id)) ?? null;

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [onClose]);

  return (
    <div className="modal-backdrop" onClick={onClose}>
      <div className="modal" role="dialog" aria-modal="true" aria-label="Compare with another run" onClick={(e) => e.stopPropagation()}>
        <h2>Compare with another run</h2>
        {fetching && !data ? (
          <Loading what={`the runs of ${run.template.name}`} />
        ) : others.length === 0 ? (
          <p className="muted">{error ? 'The runs could not be listed.' : `No other run of ${run.template.name} yet.`}</p>
        ) : (
          <label>
            Run of {run.template.name}
            <select aria-label="Run to compare with" value={chosen?.id ?? ''} onChange={(e) => setChoice(e.target.value || null)}>
              {!chosen && <option value="">Choose a run…</option>}
              {others.map((r) => (
                <option key={r.id} value={r.id}>
                  {r.id.slice(0, 8)} · {r.dryRun ? 'dry run' : r.status} · v{r.templateVersion}
                  {r.resilienceScore !== null && r.resilienceScore !== undefined ? ` · score ${formatScore(r.resilienceScore)}` : ''} ·{' '}
                  {new Date(r.createdAt).toLocaleString()}
                  {r.id === fallback?.id ? ' (previous finished)' : ''}
                </option>
              ))}
            </select>
          </label>
        )}
        <p className="muted">The older of the two runs is the baseline (A); the comparison shows how the newer one (B) differs.</p>
        <ErrorBox error={error} />
        <div className="modal-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button
            type="button"
            className="primary"
            disabled={!chosen}
            onClick={() => {
              if (!chosen) return;
              const [a, b] = orderPair<{ id: string; createdAt: string }>(chosen, run);
              navigate(compareHref(a.id, b.id));
            }}
          >
            Compare
          </button>
        </div>
      </div>
    </div>
  );
}
