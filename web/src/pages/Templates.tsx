// The project's templates: name, description, labels, latest version, last update; a search box
// (free words and `key=value` label terms) and label chips that filter; "New template" for
// editors and owners; the project's git sync status, and templates managed by a sync marked.
import { useMemo, useState } from 'react';
import { useQuery } from 'urql';
import { Link } from 'wouter';
import { graphql } from '../gql';
import { useProject } from '../project';
import { Ago, Empty, ErrorBox, Loading } from '../ui';
import { filterTemplates, labelPairs } from './templates/filter';
import { GitSyncPanel } from './templates/GitSyncPanel';
import { ImportDialog } from './templates/ImportDialog';
import './templates/templates.css';

const TemplatesListDoc = graphql(`
  query TemplatesList($project: String!) {
    templates(project: $project) {
      id
      name
      description
      labels
      version
      updatedAt
      gitManaged
      gitPath
      source
    }
  }
`);

// An empty list carries no __typename: name it, so a new template refreshes the list.
const LIST_CONTEXT = { additionalTypenames: ['Template'] };

export function TemplatesPage() {
  const project = useProject();
  const [search, setSearch] = useState('');
  const [picked, setPicked] = useState<string[]>([]);
  const [importing, setImporting] = useState(false);
  const [{ data, fetching, error }, reexecute] = useQuery({
    query: TemplatesListDoc,
    variables: { project: project.name },
    context: LIST_CONTEXT,
  });
  const all = useMemo(
    () => [...(data?.templates ?? [])].sort((a, b) => a.name.localeCompare(b.name)),
    [data],
  );
  const shown = useMemo(() => filterTemplates(all, search, picked), [all, search, picked]);
  const toggle = (label: string) =>
    setPicked((p) => (p.includes(label) ? p.filter((x) => x !== label) : [...p, label]));

  return (
    <div className="page templates-page">
      <div className="row tpl-head">
        <h1>Templates</h1>
        <div className="spacer" />
        {project.can('EDITOR') && (
          <>
            <button type="button" onClick={() => setImporting(true)} title="Import a Chaos Toolkit experiment">
              Import
            </button>
            <Link href="/templates/new" className="button primary">
              New template
            </Link>
          </>
        )}
      </div>
      {importing && <ImportDialog onClose={() => setImporting(false)} />}
      <GitSyncPanel />

      {fetching && !data && <Loading what="templates" />}
      <ErrorBox error={error} retry={() => reexecute({ requestPolicy: 'network-only' })} />

      {data && all.length === 0 && <FirstTemplate canWrite={project.can('EDITOR')} />}

      {data && all.length > 0 && (
        <>
          <div className="filters">
            <label className="tpl-search">
              Search
              <input
                type="search"
                value={search}
                onChange={(e) => setSearch(e.target.value)}
                placeholder="name, description or key=value"
                aria-label="Search templates"
              />
            </label>
            {picked.length > 0 && (
              <div className="tpl-picked" aria-label="Label filters">
                <span className="muted">Labels:</span>
                {picked.map((l) => (
                  <button
                    key={l}
                    type="button"
                    className="label-chip chip-button picked"
                    onClick={() => toggle(l)}
                    aria-label={`Remove label filter ${l}`}
                    title="Remove this filter"
                  >
                    {l} ×
                  </button>
                ))}
              </div>
            )}
            <span className="muted tpl-count">
              {shown.length === all.length ? plural(all.length) : `${shown.length} of ${plural(all.length)}`}
            </span>
          </div>
          {shown.length === 0 ? (
            <Empty>
              No template matches{search.trim() && <> “{search.trim()}”</>}
              {picked.length > 0 && <> with labels {picked.join(', ')}</>}.{' '}
              <button
                type="button"
                className="link"
                onClick={() => {
                  setSearch('');
                  setPicked([]);
                }}
              >
                Clear filters
              </button>
            </Empty>
          ) : (
            <table data-testid="templates">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Description</th>
                  <th>Labels</th>
                  <th>Version</th>
                  <th>Updated</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((t) => (
                  <tr key={t.id}>
                    <td>
                      <Link href={`/templates/${t.id}`} className="tpl-name">
                        {t.name}
                      </Link>
                      {t.gitManaged && (
                        <span
                          className="badge badge-wait tpl-git"
                          title={`Managed by a sync from ${t.source ?? 'git'}${t.gitPath ? `, file ${t.gitPath}` : ''}`}
                        >
                          git
                        </span>
                      )}
                    </td>
                    <td>{t.description || <span className="muted">–</span>}</td>
                    <td>
                      {labelPairs(t.labels).map(([k, v]) => {
                        const l = `${k}=${v}`;
                        return (
                          <button
                            key={k}
                            type="button"
                            className={`label-chip chip-button${picked.includes(l) ? ' picked' : ''}`}
                            onClick={() => toggle(l)}
                            aria-pressed={picked.includes(l)}
                            title={picked.includes(l) ? 'Remove this filter' : 'Show only templates with this label'}
                          >
                            {l}
                          </button>
                        );
                      })}
                    </td>
                    <td>v{t.version}</td>
                    <td>
                      <Ago at={t.updatedAt} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </div>
  );
}

function FirstTemplate({ canWrite }: { canWrite: boolean }) {
  return (
    <Empty>
      <div className="tpl-first">
        <p>
          <strong>No templates in this project yet.</strong>
        </p>
        <p>
          A template is a YAML experiment: the <code>target</code> delegate that runs it, a <code>hypothesis</code> of
          probes that should keep passing (an HTTP check, a TCP connect…), and the <code>steps</code>: the faults to
          inject and the pauses between them.
        </p>
        {canWrite ? (
          <p>
            <strong>New template</strong> (top right) opens the editor with a small working example to adapt; it
            checks the YAML as you type; <strong>Import</strong> converts a Chaos Toolkit experiment. From a shell, <code>faultline template validate FILE</code> checks a file
            offline.
          </p>
        ) : (
          <p>Your role in this project is viewer: an editor or owner can create the first template.</p>
        )}
      </div>
    </Empty>
  );
}

function plural(n: number): string {
  return n === 1 ? '1 template' : `${n} templates`;
}
