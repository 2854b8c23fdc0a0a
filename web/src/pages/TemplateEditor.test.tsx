import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { GraphQLError } from 'graphql';
import { memoryLocation } from 'wouter/memory-location';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import TemplateEditorPage from './TemplateEditor';
import { fakeHub, Wrap, type Handlers } from './templates/testClient';

beforeAll(() => {
  // jsdom lays nothing out, and CodeMirror measures text ranges.
  const empty = () => ({ length: 0, item: () => null, [Symbol.iterator]: [][Symbol.iterator] }) as unknown as DOMRectList;
  Range.prototype.getClientRects ??= empty;
  Range.prototype.getBoundingClientRect ??= () => new DOMRect();
});

const YAML = 'apiVersion: faultline.dev/v1\nkind: Experiment\n';
const template = {
  __typename: 'Template',
  id: 't1',
  name: 'web-survives-kill',
  version: 2,
  yaml: YAML,
  description: '',
  updatedAt: new Date().toISOString(),
  versions: [
    { __typename: 'TemplateVersion', version: 2, createdBy: 'user:a@x', createdAt: new Date().toISOString() },
    { __typename: 'TemplateVersion', version: 1, createdBy: 'user:b@x', createdAt: new Date().toISOString() },
  ],
};

const hub = (extra: Handlers = {}): Handlers => ({
  TemplateEditorLoad: () => ({ template }),
  TemplateEditorValidate: () => ({ validateTemplate: [] }),
  TemplateEditorDelegateChecks: () => ({
    delegateChecks: [{ __typename: 'DelegateCheck', delegate: 'edge-1', connected: true, problems: [] }],
  }),
  TemplateSchedules: () => ({ schedules: [] }),
  TemplateEditorDiff: (v) => ({
    template: { __typename: 'Template', id: 't1', diff: `--- version ${v.from}\n+++ version ${v.to}\n@@ -1 +1 @@\n-a: 1\n+a: 2\n` },
  }),
  ...extra,
});

describe('TemplateEditorPage', () => {
  it('shows a saved template with Save disabled, Run, versions and the diff of the last two', async () => {
    render(
      <Wrap client={fakeHub(hub())}>
        <TemplateEditorPage id="t1" />
      </Wrap>,
    );
    expect(await screen.findByRole('heading', { name: 'web-survives-kill' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Save' }).hasAttribute('disabled')).toBe(true);
    expect(screen.getByRole('button', { name: 'Run' }).hasAttribute('disabled')).toBe(false);
    expect(document.querySelector('.cm-content')?.getAttribute('contenteditable')).toBe('true');
    const diff = await screen.findByTestId('diff');
    expect(diff.querySelector('.diff-add')?.textContent).toBe('+a: 2');
    expect(diff.querySelector('.diff-del')?.textContent).toBe('-a: 1');
    expect(diff.textContent).toContain('--- version 1');
    await screen.findByTestId('valid');
  });

  it('lists the template’s schedules, and “Schedule…” opens the form with it picked', async () => {
    const seen: { name: string; variables: Record<string, unknown> }[] = [];
    const location = memoryLocation({ path: '/templates/t1', record: true });
    const schedules = [
      { id: 's1', name: 'nightly', cron: '0 2 * * *', timezone: 'Europe/Berlin', enabled: true, nextFireAt: new Date(Date.now() + 3_600_000).toISOString() },
      { id: 's2', name: 'weekly', cron: '0 6 * * 1', timezone: 'UTC', enabled: false, nextFireAt: null },
    ];
    render(
      <Wrap client={fakeHub(hub({ TemplateSchedules: () => ({ schedules }) }), seen)} location={location}>
        <TemplateEditorPage id="t1" />
      </Wrap>,
    );
    const rows = await screen.findAllByTestId('template-schedule');
    expect(rows.map((r) => r.textContent)).toEqual([expect.stringContaining('nightly'), expect.stringContaining('paused')]);
    expect(screen.getByRole('link', { name: 'nightly' }).getAttribute('href')).toBe('/schedules/s1');
    expect(seen.find((s) => s.name === 'TemplateSchedules')?.variables).toEqual({ project: 'default', templateId: 't1' });
    fireEvent.click(screen.getByRole('button', { name: 'Schedule…' }));
    expect(location.history!.at(-1)).toBe('/schedules/new?template=t1');
  });

  it('is read-only for viewers: no Save, no Run', async () => {
    render(
      <Wrap role="VIEWER" client={fakeHub(hub())}>
        <TemplateEditorPage id="t1" />
      </Wrap>,
    );
    await screen.findByRole('heading', { name: 'web-survives-kill' });
    expect(screen.queryByRole('button', { name: 'Save' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Run' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Schedule…' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Add step' })).toBeNull();
    expect(document.querySelector('.cm-content')?.getAttribute('contenteditable')).toBe('false');
  });

  it('lists the problems the hub finds in the text', async () => {
    const problems = [
      { __typename: 'TemplateProblem', line: 2, column: 7, field: 'kind', message: 'unknown kind', hint: 'write Experiment' },
      { __typename: 'TemplateProblem', line: null, column: null, field: '', message: 'too large', hint: null },
    ];
    render(
      <Wrap client={fakeHub(hub({ TemplateEditorValidate: () => ({ validateTemplate: problems }) }))}>
        <TemplateEditorPage id="t1" />
      </Wrap>,
    );
    const list = await screen.findByTestId('problems');
    expect([...list.querySelectorAll('li')].map((li) => li.textContent)).toEqual([
      'line 2, column 7: kind: unknown kind (hint: write Experiment)',
      'too large',
    ]);
    expect(screen.queryByTestId('valid')).toBeNull();
  });

  it('warns before saving which delegates would refuse the text', async () => {
    const seen: { name: string; variables: Record<string, unknown> }[] = [];
    const refusal = {
      __typename: 'TemplateProblem',
      line: 9,
      column: 9,
      field: 'hypothesis.probes[0].command',
      message: 'runs /bin/sh, which this delegate does not allow',
      hint: '--allow command=/bin/sh',
    };
    render(
      <Wrap
        client={fakeHub(
          hub({
            TemplateEditorValidate: () => ({
              validateTemplate: [],
            }),
            TemplateEditorDelegateChecks: () => ({
              delegateChecks: [
                { __typename: 'DelegateCheck', delegate: 'edge-1', connected: true, problems: [refusal] },
                { __typename: 'DelegateCheck', delegate: 'edge-2', connected: false, problems: [] },
              ],
            }),
          }),
          seen,
        )}
      >
        <TemplateEditorPage id="t1" />
      </Wrap>,
    );
    const box = await screen.findByTestId('delegate-warnings');
    expect(box.textContent).toContain('1 of 2 delegates it could run on would refuse it:');
    expect(box.textContent).toContain('edge-1');
    expect(box.textContent).not.toContain('edge-2');
    expect(box.querySelector('li')?.textContent).toBe(
      'line 9, column 9: hypothesis.probes[0].command: runs /bin/sh, which this delegate does not allow (hint: --allow command=/bin/sh)',
    );
    expect(seen.find((s) => s.name === 'TemplateEditorDelegateChecks')?.variables).toEqual({ project: 'default', yaml: YAML });
    // Saving stays possible: the warning is advice, the refusal comes at startRun.
    expect(screen.getByRole('button', { name: 'Save' })).toBeTruthy();
  });

  it('asks no delegate about a text the hub found invalid', async () => {
    const seen: { name: string; variables: Record<string, unknown> }[] = [];
    const problems = [{ __typename: 'TemplateProblem', line: 2, column: 7, field: 'kind', message: 'unknown kind', hint: null }];
    render(
      <Wrap client={fakeHub(hub({ TemplateEditorValidate: () => ({ validateTemplate: problems }) }), seen)}>
        <TemplateEditorPage id="t1" />
      </Wrap>,
    );
    await screen.findByTestId('problems');
    expect(seen.some((s) => s.name === 'TemplateEditorDelegateChecks')).toBe(false);
    expect(screen.queryByTestId('delegate-warnings')).toBeNull();
  });

  it('says when no delegate matches the target selector', async () => {
    render(
      <Wrap client={fakeHub(hub({ TemplateEditorDelegateChecks: () => ({ delegateChecks: [] }) }))}>
        <TemplateEditorPage id="t1" />
      </Wrap>,
    );
    expect((await screen.findByTestId('delegate-warnings')).textContent).toContain('No delegate of this project matches');
  });

  it('creates a new template from the example and opens it', async () => {
    const seen: { name: string; variables: Record<string, unknown> }[] = [];
    const location = memoryLocation({ path: '/templates/new', record: true });
    render(
      <Wrap
        location={location}
        client={fakeHub(
          hub({ TemplateEditorCreate: () => ({ createTemplate: { __typename: 'Template', id: 'new1', name: 'x', version: 1 } }) }),
          seen,
        )}
      >
        <TemplateEditorPage />
      </Wrap>,
    );
    expect(document.querySelector('.cm-content')?.textContent).toContain('kind: Experiment');
    fireEvent.click(screen.getByRole('button', { name: 'Create' }));
    await waitFor(() => expect(location.history?.at(-1)).toBe('/templates/new1'));
    const create = seen.find((s) => s.name === 'TemplateEditorCreate');
    expect(create?.variables.project).toBe('default');
    expect(String(create?.variables.yaml)).toContain('apiVersion: faultline.dev/v1');
  });

  it('Add step: kinds by family from the schema; the picked kind’s example goes at the end of steps', async () => {
    const seen: { name: string; variables: Record<string, unknown> }[] = [];
    const location = memoryLocation({ path: '/templates/new', record: true });
    render(
      <Wrap
        location={location}
        client={fakeHub(
          hub({ TemplateEditorCreate: () => ({ createTemplate: { __typename: 'Template', id: 'new1', name: 'x', version: 1 } }) }),
          seen,
        )}
      >
        <TemplateEditorPage />
      </Wrap>,
    );
    await screen.findByRole('option', { name: 'node-drain' });
    const group = screen.getByRole('group', { name: 'Add a step' });
    expect([...group.querySelectorAll('optgroup')].map((g) => g.label)).toEqual(['Process', 'Resources', 'Network', 'HTTP / proxy', 'Kubernetes', 'Inside pods']);
    const kubernetes = [...group.querySelectorAll('optgroup[label="Kubernetes"] option')].map((o) => o.textContent);
    expect(kubernetes).toEqual(['pod-delete', 'deployment-scale', 'statefulset-scale', 'node-cordon', 'node-drain', 'container-kill']);

    const select = screen.getByRole('combobox', { name: 'Fault kind' });
    fireEvent.change(select, { target: { value: 'node-drain' } });
    // The kind's first sentence describes the select.
    expect(document.getElementById(select.getAttribute('aria-describedby')!)?.textContent).toMatch(/^Cordon the target nodes, then evict/);
    fireEvent.click(screen.getByRole('button', { name: 'Add step' }));
    fireEvent.change(select, { target: { value: 'deployment-scale' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add step' }));

    fireEvent.click(screen.getByRole('button', { name: 'Create' }));
    await waitFor(() => expect(location.history?.at(-1)).toBe('/templates/new1'));
    const yaml = String(seen.find((s) => s.name === 'TemplateEditorCreate')?.variables.yaml);
    const steps = parse(yaml).steps;
    expect(steps.map((s: { fault?: string }) => s.fault)).toEqual(['process-pause', undefined, 'process-kill', 'node-drain', 'deployment-scale']);
    expect(steps[3]).toEqual({ fault: 'node-drain', target: { labelSelector: 'pool=my-pool', count: 1 }, duration: '30s' });
    expect(steps[4]).toMatchObject({ target: { namespace: 'default', name: 'my-app' }, params: { replicas: 0 } });
  });

  it('shows the problems of a refused create', async () => {
    const refused = new GraphQLError('invalid template: line 1', {
      extensions: {
        code: 'INVALID_TEMPLATE',
        errors: [{ line: 1, column: 1, field: 'apiVersion', message: 'unsupported', hint: null }],
      },
    });
    render(
      <Wrap client={fakeHub(hub({ TemplateEditorCreate: () => refused }))}>
        <TemplateEditorPage />
      </Wrap>,
    );
    fireEvent.click(screen.getByRole('button', { name: 'Create' }));
    const list = await screen.findByTestId('problems');
    expect(list.textContent).toBe('line 1, column 1: apiVersion: unsupported');
    expect(screen.getByText(/The hub refused to create it/)).toBeTruthy();
  });

  it('starts a run and opens it; shows why a run was refused', async () => {
    const location = memoryLocation({ path: '/templates/t1', record: true });
    let halted = true;
    const seen: { name: string; variables: Record<string, unknown> }[] = [];
    render(
      <Wrap
        location={location}
        client={fakeHub(
          hub({
            TemplateEditorRun: () =>
              halted
                ? new GraphQLError('the project is halted', { extensions: { code: 'PROJECT_HALTED' } })
                : { startRun: { __typename: 'Run', id: 'r9', status: 'PENDING' } },
          }),
          seen,
        )}
      >
        <TemplateEditorPage id="t1" />
      </Wrap>,
    );
    fireEvent.click(await screen.findByRole('button', { name: 'Run' }));
    expect((await screen.findByRole('alert')).textContent).toContain('PROJECT_HALTED');
    halted = false;
    fireEvent.change(screen.getByRole('textbox', { name: 'Delegate' }), { target: { value: ' env=demo ' } });
    fireEvent.click(screen.getByRole('checkbox', { name: /Dry run/ }));
    fireEvent.click(screen.getByRole('button', { name: 'Run' }));
    await waitFor(() => expect(location.history?.at(-1)).toBe('/runs/r9'));
    expect(seen.filter((s) => s.name === 'TemplateEditorRun').at(-1)?.variables).toEqual({
      templateId: 't1',
      delegate: 'env=demo',
      dryRun: true,
    });
  });

  it('loads an old version into the editor; Save stores it and is disabled again', async () => {
    const OLD = 'apiVersion: faultline.dev/v1\nkind: Experiment # v1\n';
    const seen: { name: string; variables: Record<string, unknown> }[] = [];
    render(
      <Wrap
        client={fakeHub(
          hub({
            TemplateEditorVersionYaml: () => ({
              template: {
                __typename: 'Template',
                id: 't1',
                versions: [
                  { __typename: 'TemplateVersion', version: 2, yaml: YAML },
                  { __typename: 'TemplateVersion', version: 1, yaml: OLD },
                ],
              },
            }),
            TemplateEditorSave: (v) => ({
              updateTemplate: { __typename: 'Template', id: 't1', name: 'web-survives-kill', version: 3, yaml: v.yaml, updatedAt: new Date().toISOString() },
            }),
          }),
          seen,
        )}
      >
        <TemplateEditorPage id="t1" />
      </Wrap>,
    );
    fireEvent.click(await screen.findByRole('button', { name: 'View version 1' }));
    expect((await screen.findByText(/# v1/)).tagName).toBe('PRE');
    fireEvent.click(screen.getByRole('button', { name: 'Load into editor' }));
    expect(document.querySelector('.cm-content')?.textContent).toContain('# v1');
    const save = screen.getByRole('button', { name: 'Save' });
    expect(save.hasAttribute('disabled')).toBe(false);
    expect(screen.getByRole('button', { name: 'Run' }).hasAttribute('disabled')).toBe(true);
    expect(screen.getByText('Unsaved changes')).toBeTruthy();
    fireEvent.click(save);
    await waitFor(() => expect(screen.getByRole('button', { name: 'Save' }).hasAttribute('disabled')).toBe(true));
    expect(seen.find((s) => s.name === 'TemplateEditorSave')?.variables).toEqual({ id: 't1', yaml: OLD });
    expect(screen.queryByText('Unsaved changes')).toBeNull();
  });
});

describe('Duplicate and not found', () => {
  const named = { ...template, yaml: 'apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata:\n  name: web-survives-kill\n' };

  it('Duplicate opens a new template from this one', async () => {
    const location = memoryLocation({ path: '/templates/t1', record: true });
    render(
      <Wrap location={location} client={fakeHub(hub())}>
        <TemplateEditorPage id="t1" />
      </Wrap>,
    );
    fireEvent.click(await screen.findByRole('button', { name: 'Duplicate' }));
    expect(location.history?.at(-1)).toBe('/templates/new?copy=t1');
  });

  it('is not offered to viewers', async () => {
    render(
      <Wrap role="VIEWER" client={fakeHub(hub())}>
        <TemplateEditorPage id="t1" />
      </Wrap>,
    );
    await screen.findByRole('heading', { name: 'web-survives-kill' });
    expect(screen.queryByRole('button', { name: 'Duplicate' })).toBeNull();
  });

  it('the copy has the YAML under a new name, and Create stores it as a new template', async () => {
    const seen: { name: string; variables: Record<string, unknown> }[] = [];
    const client = fakeHub(
      hub({
        TemplateEditorLoad: () => ({ template: named }),
        TemplateEditorCopyNames: () => ({
          templates: [
            { __typename: 'Template', id: 't1', name: 'web-survives-kill' },
            { __typename: 'Template', id: 't9', name: 'web-survives-kill-copy' },
          ],
        }),
        TemplateEditorCreate: () => ({ createTemplate: { __typename: 'Template', id: 'new2', name: 'x', version: 1 } }),
      }),
      seen,
    );
    render(
      <Wrap client={client}>
        <TemplateEditorPage copyOf="t1" />
      </Wrap>,
    );
    expect(await screen.findByRole('heading', { name: 'Copy of web-survives-kill' })).toBeTruthy();
    // The first copy's name is taken: the next free one.
    expect(document.querySelector('.cm-content')?.textContent).toContain('name: web-survives-kill-copy-2');
    fireEvent.click(screen.getByRole('button', { name: 'Create' }));
    await waitFor(() => expect(seen.some((x) => x.name === 'TemplateEditorCreate')).toBe(true));
    const create = seen.find((x) => x.name === 'TemplateEditorCreate')!;
    expect(create.variables.yaml).toBe(named.yaml.replace('name: web-survives-kill', 'name: web-survives-kill-copy-2'));
  });

  it('says a missing template is not found, with a way back', async () => {
    const missing = new GraphQLError('template 0b6c3f0e-0000-4000-8000-000000000000 not found', { extensions: { code: 'NOT_FOUND' } });
    render(
      <Wrap client={fakeHub(hub({ TemplateEditorLoad: () => missing }))}>
        <TemplateEditorPage id="0b6c3f0e-0000-4000-8000-000000000000" />
      </Wrap>,
    );
    expect((await screen.findByRole('heading')).textContent).toBe('Template 0b6c3f0e not found');
    expect(screen.getByRole('link', { name: '← All templates' }).getAttribute('href')).toBe('/templates');
    expect(screen.queryByText(/NOT_FOUND/)).toBeNull();
  });

  it('says a git-managed template follows its file and offers Save as a copy instead of Save', async () => {
    const seen: { name: string; variables: Record<string, unknown> }[] = [];
    const location = memoryLocation({ path: '/templates/t1', record: true });
    const managed = {
      ...template,
      yaml: 'apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata:\n  name: web-survives-kill\n',
      gitManaged: true,
      gitPath: 'web/kill.yaml',
      gitCommit: '0123456789abcdef',
      source: 'git:git@git.example:acme/chaos.git#main:experiments',
      archivedAt: null,
      versions: template.versions.map((v) => ({ ...v, gitCommit: v.version === 2 ? '0123456789abcdef' : null })),
    };
    render(
      <Wrap
        client={fakeHub(
          hub({
            TemplateEditorLoad: () => ({ template: managed }),
            TemplateEditorCopyNames: () => ({
              templates: [
                { __typename: 'Template', id: 't1', name: 'web-survives-kill' },
                { __typename: 'Template', id: 't2', name: 'web-survives-kill-copy' },
              ],
            }),
            TemplateEditorCreate: () => ({
              createTemplate: { __typename: 'Template', id: 't9', name: 'web-survives-kill-copy-2', version: 1 },
            }),
          }),
          seen,
        )}
        location={location}
      >
        <TemplateEditorPage id="t1" />
      </Wrap>,
    );
    const note = await screen.findByTestId('git-managed');
    expect(note.textContent).toContain('web/kill.yaml');
    expect(note.textContent).toContain('0123456789');
    expect(screen.queryByRole('button', { name: 'Save' })).toBeNull();
    expect(screen.getAllByText('0123456789').length).toBeGreaterThan(1); // the note and version 2
    await waitFor(() => expect(seen.some((s) => s.name === 'TemplateEditorCopyNames')).toBe(true));
    await new Promise((r) => setTimeout(r, 0));
    fireEvent.click(screen.getByRole('button', { name: 'Save as a copy' }));
    await waitFor(() => expect(location.history!.at(-1)).toBe('/templates/t9'));
    const created = seen.find((s) => s.name === 'TemplateEditorCreate')?.variables;
    expect(created?.yaml).toContain('name: web-survives-kill-copy-2');
    expect(seen.some((s) => s.name === 'TemplateEditorSave')).toBe(false);
  });
});
