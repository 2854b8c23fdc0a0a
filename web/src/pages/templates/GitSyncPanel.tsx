// The project's git sync status on the Templates page (docs/gitops.md): the bound repository,
// the last sync (commit, time, what it changed) and its error, never hidden, with "Sync now"
// for editors. Nothing is shown for a project that is not bound to a repository.
import { useMutation, useQuery } from 'urql';
import { graphql } from '../../gql';
import { useProject } from '../../project';
import { Ago, ErrorBox } from '../../ui';

const GitSyncDoc = graphql(`
  query GitSyncStatus($project: String!) {
    gitSync(project: $project, limit: 1) {
      repository {
        url
        branch
        path
        intervalSecs
        nextSyncAt
        syncingOn
      }
      lastCommit
      last {
        ok
        commit
        error
        finishedAt
        report {
          created {
            name
          }
          updated {
            name
          }
          unchanged {
            name
          }
          archived {
            name
          }
          invalid {
            text
          }
          schedules {
            name
            action
          }
        }
      }
    }
  }
`);

const SyncNowDoc = graphql(`
  mutation GitSyncNow($project: String!) {
    syncNow(project: $project) {
      lastCommit
    }
  }
`);

/** The first 10 characters of a commit, as `git log --oneline` shows it. */
export function shortCommit(c: string | null | undefined): string {
  return c ? c.slice(0, 10) : '';
}

export function GitSyncPanel() {
  const project = useProject();
  const [{ data }, reexecute] = useQuery({ query: GitSyncDoc, variables: { project: project.name } });
  const [now, syncNow] = useMutation(SyncNowDoc);
  const st = data?.gitSync;
  if (!st?.repository) return null;
  const repo = st.repository;
  const last = st.last;
  const r = last?.report;
  const counts = r
    ? [
        ['created', r.created.length],
        ['updated', r.updated.length],
        ['unchanged', r.unchanged.length],
        ['archived', r.archived.length],
        ['invalid files', new Set(r.invalid.map((i) => i.text.split(':')[0])).size],
      ]
        .filter(([, n]) => n !== 0)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ')
    : '';
  return (
    <section className="panel git-sync" aria-label="Git sync" data-testid="git-sync">
      <div className="row">
        <h2>Synced from git</h2>
        {last && (
          <span className={`badge ${last.ok ? 'badge-ok' : 'badge-bad'}`}>{last.ok ? 'in sync' : 'sync failed'}</span>
        )}
        {repo.syncingOn && <span className="badge badge-live">syncing…</span>}
        <div className="spacer" />
        {project.can('EDITOR') && (
          <button
            type="button"
            disabled={now.fetching}
            onClick={() =>
              void syncNow({ project: project.name }).then(() => reexecute({ requestPolicy: 'network-only' }))
            }
          >
            {now.fetching ? 'Syncing…' : 'Sync now'}
          </button>
        )}
      </div>
      <p>
        <code>{repo.url}</code> branch <code>{repo.branch}</code>
        {repo.path && (
          <>
            {' '}
            path <code>{repo.path}</code>
          </>
        )}
        , every {repo.intervalSecs} s.
      </p>
      {!last && <p className="muted">Not synced yet.</p>}
      {last && (
        <p>
          Last sync <Ago at={last.finishedAt} />
          {last.commit ? (
            <>
              {' '}
              at commit <code title={last.commit}>{shortCommit(last.commit)}</code>
            </>
          ) : null}
          {counts && <>: {counts}</>}.
          {!last.ok && st.lastCommit && last.commit !== st.lastCommit && (
            <>
              {' '}
              The templates are those of commit <code title={st.lastCommit}>{shortCommit(st.lastCommit)}</code>.
            </>
          )}
        </p>
      )}
      {last?.error && (
        <div className="error-box git-sync-error" role="alert">
          {last.error}
        </div>
      )}
      {r && r.invalid.length > 0 && (
        <ul className="git-sync-invalid">
          {r.invalid.map((i) => (
            <li key={i.text}>
              <code>{i.text}</code>
            </li>
          ))}
        </ul>
      )}
      <ErrorBox error={now.error} />
    </section>
  );
}
