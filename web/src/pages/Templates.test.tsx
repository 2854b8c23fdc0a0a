import { fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { TemplatesPage } from './Templates';
import { fakeHub, Wrap } from './templates/testClient';

const templates = [
  {
    __typename: 'Template',
    id: 't1',
    name: 'web-survives-kill',
    description: 'the web server comes back',
    labels: { tier: 'demo', team: 'web' },
    version: 3,
    updatedAt: new Date().toISOString(),
  },
  {
    __typename: 'Template',
    id: 't2',
    name: 'db-failover',
    description: 'Postgres fails over',
    labels: { tier: 'prod' },
    version: 1,
    updatedAt: new Date().toISOString(),
  },
];

function rows() {
  return screen
    .getAllByRole('row')
    .slice(1)
    .map((r) => within(r).getAllByRole('link')[0].textContent);
}

describe('TemplatesPage', () => {
  it('lists names linking to the editor, label chips and versions', () => {
    render(
      <Wrap client={fakeHub({ TemplatesList: () => ({ templates }) })}>
        <TemplatesPage />
      </Wrap>,
    );
    expect(rows()).toEqual(['db-failover', 'web-survives-kill']);
    expect(screen.getByRole('link', { name: 'web-survives-kill' }).getAttribute('href')).toBe('/templates/t1');
    expect(screen.getByRole('button', { name: 'tier=demo' }).className).toContain('label-chip');
    expect(screen.getByRole('button', { name: 'team=web' })).toBeTruthy();
    expect(screen.getByText('v3')).toBeTruthy();
    expect(screen.getByRole('link', { name: 'New template' }).getAttribute('href')).toBe('/templates/new');
  });

  it('filters rows as you type, by text and by key=value', () => {
    render(
      <Wrap client={fakeHub({ TemplatesList: () => ({ templates }) })}>
        <TemplatesPage />
      </Wrap>,
    );
    const search = screen.getByRole('searchbox', { name: 'Search templates' });
    fireEvent.change(search, { target: { value: 'postgres' } });
    expect(rows()).toEqual(['db-failover']);
    fireEvent.change(search, { target: { value: 'tier=demo' } });
    expect(rows()).toEqual(['web-survives-kill']);
    fireEvent.change(search, { target: { value: 'nothing-like-this' } });
    expect(screen.queryByRole('table')).toBeNull();
    expect(screen.getByText(/No template matches/)).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Clear filters' }));
    expect(rows()).toHaveLength(2);
  });

  it('filters by a clicked label chip until it is removed', () => {
    render(
      <Wrap client={fakeHub({ TemplatesList: () => ({ templates }) })}>
        <TemplatesPage />
      </Wrap>,
    );
    fireEvent.click(screen.getByRole('button', { name: 'tier=prod' }));
    expect(rows()).toEqual(['db-failover']);
    fireEvent.click(screen.getByRole('button', { name: 'Remove label filter tier=prod' }));
    expect(rows()).toHaveLength(2);
  });

  it('hides "New template" from viewers', () => {
    render(
      <Wrap role="VIEWER" client={fakeHub({ TemplatesList: () => ({ templates }) })}>
        <TemplatesPage />
      </Wrap>,
    );
    expect(screen.queryByRole('link', { name: 'New template' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Import' })).toBeNull();
  });

  it('explains how to write a first template when there is none', () => {
    render(
      <Wrap client={fakeHub({ TemplatesList: () => ({ templates: [] }) })}>
        <TemplatesPage />
      </Wrap>,
    );
    expect(screen.getByText(/No templates in this project yet/)).toBeTruthy();
    expect(screen.getByText(/opens the editor with a small working example/)).toBeTruthy();
  });

  it('shows the hub error', () => {
    render(
      <Wrap client={fakeHub({})}>
        <TemplatesPage />
      </Wrap>,
    );
    expect(screen.getByRole('alert').textContent).toContain('no handler for TemplatesList');
  });

  it('imports a Chaos Toolkit experiment and shows its notes, or each problem with its path', async () => {
    const seen: { name: string; variables: Record<string, unknown> }[] = [];
    let fail = true;
    render(
      <Wrap
        client={fakeHub(
          {
            TemplatesList: () => ({ templates }),
            TemplatesImport: () =>
              fail
                ? new GraphQLError('cannot import', {
                    extensions: { code: 'INVALID_IMPORT', errors: [{ path: 'method[0].provider', message: 'python cannot be mapped' }] },
                  })
                : {
                    importTemplate: {
                      __typename: 'ImportResult',
                      template: { __typename: 'Template', id: 't3', name: 'web-kill', version: 1 },
                      notes: ['title: shortened'],
                    },
                  },
          },
          seen,
        )}
      >
        <TemplatesPage />
      </Wrap>,
    );
    fireEvent.click(screen.getByRole('button', { name: 'Import' }));
    const dialog = screen.getByRole('dialog');
    fireEvent.change(within(dialog).getByRole('textbox', { name: /Experiment/ }), { target: { value: '{"title": "x"}' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Import' }));
    expect((await within(dialog).findByRole('alert')).textContent).toContain('method[0].provider: python cannot be mapped');
    fail = false;
    fireEvent.change(within(dialog).getByRole('textbox', { name: /Name/ }), { target: { value: ' web-kill ' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Import' }));
    await waitFor(() => expect(within(dialog).getByText('title: shortened')).toBeTruthy());
    expect(within(dialog).getByRole('button', { name: 'Open template' })).toBeTruthy();
    expect(seen.filter((s) => s.name === 'TemplatesImport').at(-1)?.variables).toEqual({
      project: 'default',
      source: '{"title": "x"}',
      name: 'web-kill',
    });
  });

  it('marks git-managed templates and shows the sync status, its error, and Sync now', async () => {
    const seen: { name: string; variables: Record<string, unknown> }[] = [];
    const managed = [{ ...templates[0], gitManaged: true, gitPath: 'web/kill.yaml', source: 'git:file:///r.git#main:' }];
    const status = (commit: string, ok: boolean) => ({
      gitSync: {
        __typename: 'GitSyncStatus',
        repository: {
          __typename: 'GitRepository',
          url: 'git@git.example:acme/chaos.git',
          branch: 'main',
          path: 'experiments',
          intervalSecs: 300,
          nextSyncAt: new Date().toISOString(),
          syncingOn: null,
        },
        lastCommit: '0123456789abcdef',
        last: {
          __typename: 'GitSyncAttempt',
          ok,
          commit,
          error: ok ? null : '1 invalid file problem(s): bad.yaml:3:7: steps[0].duration: invalid',
          finishedAt: new Date().toISOString(),
          report: {
            __typename: 'SyncReport',
            created: [{ __typename: 'SyncedTemplate', name: 'a' }],
            updated: [],
            unchanged: [{ __typename: 'SyncedTemplate', name: 'b' }],
            archived: [],
            invalid: ok ? [] : [{ __typename: 'InvalidFile', text: 'bad.yaml:3:7: steps[0].duration: invalid' }],
            schedules: [],
          },
        },
      },
    });
    let synced = false;
    render(
      <Wrap
        client={fakeHub(
          {
            TemplatesList: () => ({ templates: managed }),
            GitSyncStatus: () => (synced ? status('0123456789abcdef', true) : status('fedcba9876543210', false)),
            GitSyncNow: () => {
              synced = true;
              return { syncNow: { __typename: 'GitSyncStatus', lastCommit: '0123456789abcdef' } };
            },
          },
          seen,
        )}
      >
        <TemplatesPage />
      </Wrap>,
    );
    const badge = screen.getByText('git');
    expect(badge.getAttribute('title')).toContain('web/kill.yaml');
    const panel = await screen.findByTestId('git-sync');
    expect(panel.textContent).toContain('git@git.example:acme/chaos.git');
    expect(within(panel).getByText('sync failed')).toBeTruthy();
    expect(within(panel).getByRole('alert').textContent).toContain('bad.yaml:3:7');
    expect(panel.textContent).toContain('1 created, 1 unchanged, 1 invalid files');
    expect(panel.textContent).toContain('The templates are those of commit 0123456789');
    fireEvent.click(within(panel).getByRole('button', { name: 'Sync now' }));
    await waitFor(() => expect(within(screen.getByTestId('git-sync')).getByText('in sync')).toBeTruthy());
    expect(seen.find((s) => s.name === 'GitSyncNow')?.variables).toEqual({ project: 'default' });
  });

  it('shows no sync panel for a project without a repository', async () => {
    render(
      <Wrap
        client={fakeHub({
          TemplatesList: () => ({ templates }),
          GitSyncStatus: () => ({ gitSync: { __typename: 'GitSyncStatus', repository: null, lastCommit: null, last: null } }),
        })}
      >
        <TemplatesPage />
      </Wrap>,
    );
    await screen.findAllByRole('row');
    expect(screen.queryByTestId('git-sync')).toBeNull();
    expect(screen.queryByText('git')).toBeNull();
  });
});
