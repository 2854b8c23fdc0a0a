// The template editor (`/templates/new` and `/templates/:id`): CodeMirror with the hub's
// validation as you type, Create/Save, version history with diffs, and Run. Lazily loaded: every
// CodeMirror import lives in ../editor/, which only this page imports.
import { useEffect, useMemo, useRef, useState } from 'react';
import { useMutation, useQuery } from 'urql';
import { Link, useLocation } from 'wouter';
import { AddStepMenu } from '../editor/AddStepMenu';
import { YamlEditor, type YamlEditorHandle } from '../editor/YamlEditor';
import { graphql } from '../gql';
import type { TemplateEditorLoadQuery } from '../gql/graphql';
import { useProject } from '../project';
import { Ago, Empty, ErrorBox, isNotFound, Loading, NotFound } from '../ui';
import { DelegateWarnings } from './templates/DelegateWarnings';
import { DiffView } from './templates/DiffView';
import { copyName, renameTemplate } from './templates/duplicate';
import { shortCommit } from './templates/GitSyncPanel';
import { EXAMPLE_TEMPLATE } from './templates/example';
import { ProblemList } from './templates/ProblemList';
import { problemsOfError, type Problem } from './templates/problems';
import { useValidation } from './templates/useValidation';
import { TemplateSchedules } from './schedules/TemplateSchedules';
import './templates/templates.css';

const LoadDoc = graphql(`
  query TemplateEditorLoad($id: ID!) {
    template(id: $id) {
      id
      name
      version
      yaml
      description
      updatedAt
      gitManaged
      gitPath
      gitCommit
      source
      archivedAt
      versions {
        version
        createdBy
        createdAt
        gitCommit
      }
    }
  }
`);

const CreateDoc = graphql(`
  mutation TemplateEditorCreate($project: String!, $yaml: String!) {
    createTemplate(project: $project, yaml: $yaml) {
      id
      name
      version
    }
  }
`);

const SaveDoc = graphql(`
  mutation TemplateEditorSave($id: ID!, $yaml: String!) {
    updateTemplate(id: $id, yaml: $yaml) {
      id
      name
      version
      yaml
      updatedAt
    }
  }
`);

const RunDoc = graphql(`
  mutation TemplateEditorRun($templateId: ID!, $delegate: String, $dryRun: Boolean!) {
    startRun(templateId: $templateId, delegate: $delegate, dryRun: $dryRun) {
      id
      status
    }
  }
`);

const DiffDoc = graphql(`
  query TemplateEditorDiff($id: ID!, $from: Int!, $to: Int!) {
    template(id: $id) {
      id
      diff(from: $from, to: $to)
    }
  }
`);

const VersionYamlDoc = graphql(`
  query TemplateEditorVersionYaml($id: ID!) {
    template(id: $id) {
      id
      versions {
        version
        yaml
      }
    }
  }
`);

type Loaded = TemplateEditorLoadQuery['template'];

const CopyNamesDoc = graphql(`
  query TemplateEditorCopyNames($project: String!) {
    templates(project: $project) {
      id
      name
    }
  }
`);

/** `/templates/:id`, `/templates/new`, or `/templates/new?copy=<id>` (Duplicate: `copyOf`). */
export default function TemplateEditorPage({ id, copyOf }: { id?: string; copyOf?: string }) {
  const project = useProject();
  if (!id) {
    if (!project.can('EDITOR')) {
      return (
        <div className="page">
          <h1>New template</h1>
          <Empty>
            Your role in {project.name} is {project.role.toLowerCase()}: only editors and owners create templates.{' '}
            <Link href="/templates">Back to the list</Link>
          </Empty>
        </div>
      );
    }
    if (copyOf) return <Copy key={copyOf} id={copyOf} />;
    return <Editor template={null} />;
  }
  return <Existing id={id} />;
}

function Existing({ id }: { id: string }) {
  const [{ data, fetching, error }, reexecute] = useQuery({ query: LoadDoc, variables: { id } });
  if (fetching && !data) return <Loading what="the template" />;
  if (!data && isNotFound(error)) return <NotFound what="Template" id={id} back="/templates" backLabel="← All templates" />;
  if (!data) {
    return (
      <div className="page">
        <h1>Template</h1>
        <ErrorBox error={error ?? 'No answer from the hub'} retry={() => reexecute({ requestPolicy: 'network-only' })} />
        <Link href="/templates">Back to the list</Link>
      </div>
    );
  }
  return <Editor key={id} template={data.template} />;
}

/** A new template from another's YAML, named `NAME-copy` (or the next free `NAME-copy-N`). */
function Copy({ id }: { id: string }) {
  const project = useProject();
  const [{ data, fetching, error }] = useQuery({ query: LoadDoc, variables: { id } });
  const [names] = useQuery({ query: CopyNamesDoc, variables: { project: project.name } });
  if ((fetching && !data) || (names.fetching && !names.data)) return <Loading what="the template" />;
  if (!data && isNotFound(error)) return <NotFound what="Template" id={id} back="/templates" backLabel="← All templates" />;
  if (!data) return <ErrorBox error={error ?? 'No answer from the hub'} />;
  const source = data.template;
  const name = copyName(source.name, names.data?.templates.map((t) => t.name) ?? []);
  const yaml = renameTemplate(source.yaml, name) ?? source.yaml;
  return <Editor template={null} initial={yaml} copyOf={source.name} />;
}

function Editor({ template, initial, copyOf }: { template: Loaded | null; initial?: string; copyOf?: string }) {
  const project = useProject();
  const [, navigate] = useLocation();
  const canWrite = project.can('EDITOR');
  const [text, setText] = useState(template?.yaml ?? initial ?? EXAMPLE_TEMPLATE);
  const editor = useRef<YamlEditorHandle>(null);
  // The text as last stored: Save is enabled only when the editor differs from it.
  const [saved, setSaved] = useState(template?.yaml ?? null);
  const dirty = saved === null || text !== saved;
  const validation = useValidation(text);
  const [created, create] = useMutation(CreateDoc);
  const [save, update] = useMutation(SaveDoc);
  const writeError = template && !template.gitManaged ? save.error : created.error;
  const busy = created.fetching || save.fetching;
  // Problems the hub named when it refused to store the text, shown until the text changes.
  const [refused, setRefused] = useState<{ text: string; problems: Problem[] } | null>(null);
  const refusedNow = refused && refused.text === text ? refused.problems : null;
  // A template a sync manages is edited in its file: an edit here would be replaced by the next
  // sync, so the editor stores the text as a new template instead ("Save as a copy").
  const managed = template?.gitManaged === true;
  const [names] = useQuery({ query: CopyNamesDoc, variables: { project: project.name }, pause: !managed || !canWrite });
  const saveCopy = () => {
    if (!template) return;
    const name = copyName(template.name, names.data?.templates.map((t) => t.name) ?? []);
    const yaml = renameTemplate(text, name) ?? text;
    void create({ project: project.name, yaml }).then((r) => {
      if (r.data) {
        setSaved(text);
        navigate(`/templates/${r.data.createTemplate.id}`);
      } else {
        const p = problemsOfError(r.error);
        setRefused(p.length ? { text, problems: p } : null);
      }
    });
  };

  useEffect(() => {
    if (!dirty || !canWrite) return;
    const warn = (e: BeforeUnloadEvent) => {
      e.preventDefault();
    };
    window.addEventListener('beforeunload', warn);
    return () => window.removeEventListener('beforeunload', warn);
  }, [dirty, canWrite]);

  const submit = () => {
    const yaml = text;
    if (!template) {
      void create({ project: project.name, yaml }).then((r) => {
        if (r.data) {
          setSaved(yaml);
          navigate(`/templates/${r.data.createTemplate.id}`);
        } else {
          const p = problemsOfError(r.error);
          setRefused(p.length ? { text: yaml, problems: p } : null);
        }
      });
    } else {
      void update({ id: template.id, yaml }).then((r) => {
        if (r.data) {
          setSaved(r.data.updateTemplate.yaml);
          setRefused(null);
        } else {
          const p = problemsOfError(r.error);
          setRefused(p.length ? { text: yaml, problems: p } : null);
        }
      });
    }
  };

  const problems = refusedNow ?? validation.problems;
  const editorProblems = useMemo(
    () => refusedNow ?? (validation.checked === text ? validation.problems ?? undefined : undefined),
    [refusedNow, validation.checked, validation.problems, text],
  );

  return (
    <div className="page tpl-editor">
      <div className="row tpl-head">
        {/* Not named "Templates": the topbar's link is. */}
        <Link href="/templates" className="muted" aria-label="Back to the template list" title="Back to the template list">
          ← Back
        </Link>
        <h1>{template ? template.name : copyOf ? `Copy of ${copyOf}` : 'New template'}</h1>
        {template && <span className="badge badge-wait">v{template.version}</span>}
        {template && dirty && canWrite && <span className="badge badge-warn">Unsaved changes</span>}
        {!canWrite && <span className="badge badge-wait">Read-only ({project.role.toLowerCase()})</span>}
        <div className="spacer" />
        {canWrite && template && dirty && (
          <button type="button" onClick={() => setText(saved ?? '')} disabled={busy}>
            Discard changes
          </button>
        )}
        {canWrite && template && (
          <button
            type="button"
            onClick={() => navigate(`/templates/new?copy=${encodeURIComponent(template.id)}`)}
            title="A new template from this one's saved YAML, named …-copy"
          >
            Duplicate
          </button>
        )}
        {canWrite && managed && (
          <button
            type="button"
            className="primary"
            onClick={saveCopy}
            disabled={busy}
            title="Store the editor's text as a new template, named …-copy; this one follows its file"
          >
            {created.fetching ? 'Saving…' : 'Save as a copy'}
          </button>
        )}
        {canWrite && !managed && (
          <button type="button" className="primary" onClick={submit} disabled={busy || (template !== null && !dirty)}>
            {template ? (save.fetching ? 'Saving…' : 'Save') : created.fetching ? 'Creating…' : 'Create'}
          </button>
        )}
      </div>
      {template && managed && (
        <p className="tpl-git-note" role="note" data-testid="git-managed">
          Managed by git: this template follows <code>{template.gitPath}</code> from <code>{template.source}</code>
          {template.gitCommit && (
            <>
              {' '}
              (commit <code title={template.gitCommit}>{shortCommit(template.gitCommit)}</code>)
            </>
          )}
          . Change the file and let the sync bring it here; an edit saved here would be replaced by the next sync, so
          the editor offers <strong>Save as a copy</strong> instead.
        </p>
      )}
      {template?.archivedAt && (
        <p className="tpl-git-note" role="note">
          Archived <Ago at={template.archivedAt} />: its file is gone from its source. Its runs stay readable; it starts
          no new runs.
        </p>
      )}
      {!template && copyOf && (
        <p className="muted tpl-intro">
          A copy of {copyOf}: change what differs, then Create stores it as a new template.
        </p>
      )}
      {!template && !copyOf && (
        <p className="muted tpl-intro">
          Adapt the example: the name, the delegate to run on, what to probe and which faults to inject. The hub checks
          the YAML as you type. Ctrl-Space offers the fields at the cursor, hovering a key or a fault kind explains it,
          and Add step appends an example of any kind. Field reference: <code>docs/template-reference.md</code>.
        </p>
      )}

      <div className={template ? 'tpl-grid' : 'tpl-grid single'}>
        <section className="tpl-main" aria-label="Editor">
          {canWrite && <AddStepMenu editor={editor} />}
          <YamlEditor ref={editor} value={text} onChange={setText} readOnly={!canWrite} problems={editorProblems} />
          <ProblemList
            problems={problems}
            pending={refusedNow ? false : validation.pending}
            source={refusedNow ? `The hub refused to ${template ? 'save' : 'create'} it:` : undefined}
          />
          <ErrorBox error={validation.error} />
          {canWrite && !refusedNow && (
            <DelegateWarnings
              project={project.name}
              yaml={validation.checked === text && validation.problems?.length === 0 ? text : null}
            />
          )}
          {writeError && !refusedNow && <ErrorBox error={writeError} />}
        </section>
        {template && (
          <aside className="tpl-side">
            {canWrite && <RunPanel templateId={template.id} dirty={dirty} />}
            <TemplateSchedules templateId={template.id} />
            <Versions template={template} canWrite={canWrite} onLoad={setText} />
          </aside>
        )}
      </div>
    </div>
  );
}

function RunPanel({ templateId, dirty }: { templateId: string; dirty: boolean }) {
  const [, navigate] = useLocation();
  const [delegate, setDelegate] = useState('');
  const [dryRun, setDryRun] = useState(false);
  const [state, start] = useMutation(RunDoc);
  const run = () => {
    void start(
      { templateId, delegate: delegate.trim() || null, dryRun },
      { additionalTypenames: ['Run'] },
    ).then((r) => {
      if (r.data) navigate(`/runs/${r.data.startRun.id}`);
    });
  };
  return (
    <div className="panel tpl-run">
      <h2>Run</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (!dirty) run();
        }}
      >
        <label>
          Delegate
          <input
            value={delegate}
            onChange={(e) => setDelegate(e.target.value)}
            placeholder="default: the template's target.delegate"
            title="A delegate name or a k=v,... label selector"
          />
        </label>
        <label className="inline">
          <input type="checkbox" checked={dryRun} onChange={(e) => setDryRun(e.target.checked)} /> Dry run (resolve
          faults, apply nothing)
        </label>
        <div className="row">
          <button type="submit" className="primary" disabled={dirty || state.fetching}>
            {state.fetching ? 'Starting…' : 'Run'}
          </button>
          {dirty && <span className="muted">Save your changes first: a run uses the saved version.</span>}
        </div>
      </form>
      <ErrorBox error={state.error} />
    </div>
  );
}

function Versions({ template, canWrite, onLoad }: { template: Loaded; canWrite: boolean; onLoad(yaml: string): void }) {
  const versions = template.versions;
  const [fromPick, setFrom] = useState<number | null>(null);
  const [toPick, setTo] = useState<number | null>(null);
  const [viewing, setViewing] = useState<number | null>(null);
  // Until picked: the newest version against the one before it.
  const to = toPick ?? versions[0]?.version ?? null;
  const from = fromPick ?? versions[1]?.version ?? null;
  const canDiff = from !== null && to !== null && from !== to;
  const [diff] = useQuery({
    query: DiffDoc,
    variables: { id: template.id, from: from ?? 0, to: to ?? 0 },
    pause: !canDiff,
  });
  const [old] = useQuery({ query: VersionYamlDoc, variables: { id: template.id }, pause: viewing === null });
  const oldYaml = old.data?.template.versions.find((v) => v.version === viewing)?.yaml;

  return (
    <div className="panel tpl-versions">
      <h2>Versions</h2>
      <table className="compact">
        <tbody>
          {versions.map((v) => (
            <tr key={v.version} className={v.version === viewing ? 'selected' : undefined}>
              <td>v{v.version}</td>
              <td className="tpl-by" title={v.createdBy}>
                {v.createdBy.replace(/^user:/, '')}
              </td>
              <td>{v.gitCommit && <code title={v.gitCommit}>{shortCommit(v.gitCommit)}</code>}</td>
              <td>
                <Ago at={v.createdAt} />
              </td>
              <td>
                <button
                  type="button"
                  className="link"
                  onClick={() => setViewing(v.version === viewing ? null : v.version)}
                  aria-label={`View version ${v.version}`}
                >
                  {v.version === viewing ? 'Hide' : 'View'}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>

      {viewing !== null && (
        <div className="tpl-old">
          <div className="row">
            <h3>Version {viewing} (read-only)</h3>
            <div className="spacer" />
            {canWrite && oldYaml !== undefined && (
              <button type="button" onClick={() => onLoad(oldYaml)} title="Replace the editor's text; Save stores it as a new version">
                Load into editor
              </button>
            )}
          </div>
          {old.fetching && !old.data && <Loading what={`version ${viewing}`} />}
          <ErrorBox error={old.error} />
          {oldYaml !== undefined && <pre className="tpl-old-yaml">{oldYaml}</pre>}
        </div>
      )}

      {versions.length < 2 ? (
        <p className="muted">Only one version so far: each Save adds one, and here you can compare any two.</p>
      ) : (
        <>
          <h3>Compare</h3>
          <div className="row tpl-compare">
            <label className="inline">
              From
              <select aria-label="From version" value={from ?? ''} onChange={(e) => setFrom(Number(e.target.value))}>
                {versions.map((v) => (
                  <option key={v.version} value={v.version}>
                    v{v.version}
                  </option>
                ))}
              </select>
            </label>
            <label className="inline">
              To
              <select aria-label="To version" value={to ?? ''} onChange={(e) => setTo(Number(e.target.value))}>
                {versions.map((v) => (
                  <option key={v.version} value={v.version}>
                    v{v.version}
                  </option>
                ))}
              </select>
            </label>
          </div>
          {!canDiff ? (
            <p className="muted">Pick two different versions.</p>
          ) : diff.fetching && !diff.data ? (
            <Loading what="the diff" />
          ) : diff.error ? (
            <ErrorBox error={diff.error} />
          ) : diff.data ? (
            <DiffView diff={diff.data.template.diff} />
          ) : null}
        </>
      )}
    </div>
  );
}
