// Imports a Chaos Toolkit experiment (JSON or YAML) as a new template, showing the conversion's
// notes, or every problem with its path in the source when it cannot be converted.
import { useEffect, useState } from 'react';
import { useMutation, type CombinedError } from 'urql';
import { useLocation } from 'wouter';
import { graphql } from '../../gql';
import { useProject } from '../../project';
import { ErrorBox } from '../../ui';

const ImportDoc = graphql(`
  mutation TemplatesImport($project: String!, $source: String!, $name: String) {
    importTemplate(project: $project, format: CHAOS_TOOLKIT, source: $source, name: $name) {
      template {
        id
        name
        version
      }
      notes
    }
  }
`);

/** `path: message` for each problem of an INVALID_IMPORT error; empty for other errors. */
export function importProblems(err: CombinedError | null | undefined): string[] {
  const out: string[] = [];
  for (const e of err?.graphQLErrors ?? []) {
    if (e.extensions?.code !== 'INVALID_IMPORT' || !Array.isArray(e.extensions.errors)) continue;
    for (const p of e.extensions.errors as { path?: unknown; message?: unknown }[]) {
      out.push(p.path ? `${String(p.path)}: ${String(p.message)}` : String(p.message));
    }
  }
  return out;
}

export function ImportDialog({ onClose }: { onClose(): void }) {
  const project = useProject();
  const [, navigate] = useLocation();
  const [source, setSource] = useState('');
  const [name, setName] = useState('');
  const [state, run] = useMutation(ImportDoc);
  const done = state.data?.importTemplate;
  const problems = importProblems(state.error);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [onClose]);

  return (
    <div className="modal-backdrop" onClick={onClose}>
      <div
        className="modal tpl-import"
        role="dialog"
        aria-modal="true"
        aria-label="Import a Chaos Toolkit experiment"
        onClick={(e) => e.stopPropagation()}
      >
        <h2>Import a Chaos Toolkit experiment</h2>
        {done ? (
          <>
            <p>
              Stored as <strong>{done.template.name}</strong> (version {done.template.version}).
            </p>
            {done.notes.length > 0 && (
              <>
                <div className="muted">What was mapped approximately or left out:</div>
                <ul className="tpl-notes">
                  {done.notes.map((n, i) => (
                    <li key={i}>{n}</li>
                  ))}
                </ul>
              </>
            )}
            <div className="modal-actions">
              <button type="button" onClick={onClose}>
                Close
              </button>
              <button type="button" className="primary" onClick={() => navigate(`/templates/${done.template.id}`)}>
                Open template
              </button>
            </div>
          </>
        ) : (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              if (!source.trim()) return;
              void run(
                { project: project.name, source, name: name.trim() || null },
                { additionalTypenames: ['Template'] },
              );
            }}
          >
            <label>
              Experiment (JSON or YAML)
              <textarea
                value={source}
                onChange={(e) => setSource(e.target.value)}
                rows={12}
                spellCheck={false}
                placeholder='{"title": "...", "steady-state-hypothesis": {...}, "method": [...]}'
                autoFocus
              />
            </label>
            <label>
              Name (optional: else made from its title)
              <input value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. web-survives-kill" />
            </label>
            {problems.length > 0 ? (
              <div className="error-box tpl-import-problems" role="alert">
                <div>
                  It cannot be converted:
                  <ul>
                    {problems.map((p, i) => (
                      <li key={i}>{p}</li>
                    ))}
                  </ul>
                </div>
              </div>
            ) : (
              <ErrorBox error={state.error} />
            )}
            <div className="modal-actions">
              <button type="button" onClick={onClose} disabled={state.fetching}>
                Cancel
              </button>
              <button type="submit" className="primary" disabled={state.fetching || !source.trim()}>
                {state.fetching ? 'Importing…' : 'Import'}
              </button>
            </div>
          </form>
        )}
      </div>
    </div>
  );
}
