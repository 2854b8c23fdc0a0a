import { fireEvent, render, screen, within } from '@testing-library/react';
import { CombinedError } from 'urql';
import { describe, expect, it } from 'vitest';
import { AccessPage } from './Access';
import { mockClient, Wrap, type Answer } from './admin/testing';
import { apiTokenExample, apiTokenProblem } from './admin/ApiTokens';
import { emailProblem } from './admin/Members';
import { projectNameProblem } from './admin/Projects';

const MEMBERS = [
  { __typename: 'Member', email: 'o@x.io', name: 'Olga', role: 'OWNER', source: 'manual', since: '2024-05-01T00:00:00Z' },
  { __typename: 'Member', email: 'v@x.io', name: '', role: 'VIEWER', source: 'sso:okta', since: '2024-05-02T00:00:00Z' },
];
const TOKENS = [
  {
    __typename: 'ApiToken',
    id: 'a1',
    name: 'ci',
    role: 'editor',
    createdBy: 'user:o@x.io',
    createdAt: '2024-05-01T00:00:00Z',
    expiresAt: null,
    lastUsedAt: null,
    revokedAt: null,
  },
  {
    __typename: 'ApiToken',
    id: 'a2',
    name: 'old',
    role: 'viewer',
    createdBy: 'user:o@x.io',
    createdAt: '2024-04-01T00:00:00Z',
    expiresAt: null,
    lastUsedAt: '2024-04-02T00:00:00Z',
    revokedAt: '2024-04-03T00:00:00Z',
  },
];

function setup(role: 'OWNER' | 'EDITOR' | 'VIEWER', extra: Record<string, Answer> = {}, admin = false) {
  const m = mockClient({
    AccessMembers: () => ({ data: { members: MEMBERS } }),
    AccessApiTokens: () => ({ data: { apiTokens: TOKENS } }),
    AccessAdmins: () => ({
      data: {
        users: [
          { __typename: 'User', id: 'u1', email: 'root@x.io', name: 'Root', admin: true, disabled: false, createdAt: '2024-01-01T00:00:00Z' },
          { __typename: 'User', id: 'u2', email: 'o@x.io', name: 'Olga', admin: true, disabled: false, createdAt: '2024-01-01T00:00:00Z' },
          { __typename: 'User', id: 'u3', email: 'v@x.io', name: '', admin: false, disabled: false, createdAt: '2024-01-01T00:00:00Z' },
        ],
      },
    }),
    AccessProjects: () => ({ data: { projects: [{ __typename: 'Project', id: 'p1', name: 'default', createdAt: '2024-01-01T00:00:00Z' }] } }),
    ...extra,
  });
  render(
    <Wrap client={m.client} role={role} admin={admin}>
      <AccessPage />
    </Wrap>,
  );
  return m;
}

describe('AccessPage', () => {
  it.each(['VIEWER', 'EDITOR'] as const)('asks nothing of the hub for a %s', (role) => {
    const { calls } = setup(role);
    expect(screen.getByRole('note').textContent).toContain('Only owners of default');
    expect(screen.queryByRole('button', { name: /Create|Add|Remove|Revoke/ })).toBeNull();
    expect(calls).toEqual([]);
  });

  it('lists members and tokens for an owner; revoked tokens have no Revoke', () => {
    const { calls } = setup('OWNER');
    expect(calls.some((c) => c.name === 'AccessAdmins')).toBe(false);
    const v = screen.getByRole('row', { name: /v@x.io/ });
    expect((within(v).getByLabelText('Role of v@x.io') as HTMLSelectElement).value).toBe('VIEWER');
    expect(within(v).getByText('sso:okta')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Revoke API token ci' })).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Revoke API token old' })).toBeNull();
    expect(within(screen.getByRole('row', { name: /old/ })).getByText('revoked')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Create API token' })).toBeTruthy();
    // the projects panel and the users list are for instance administrators only
    expect(screen.queryByRole('button', { name: 'Create project' })).toBeNull();
    expect(screen.queryByTestId('admin-row')).toBeNull();
  });

  it('changes a role with setMember and shows the hub refusing it', async () => {
    const { calls } = setup('OWNER', {
      AccessSetMember: () => ({
        error: new CombinedError({
          graphQLErrors: [{ message: 'a project keeps at least one owner', extensions: { code: 'CONFLICT' } }],
        }),
      }),
    });
    fireEvent.change(screen.getByLabelText('Role of o@x.io'), { target: { value: 'EDITOR' } });
    expect(calls.find((c) => c.name === 'AccessSetMember')?.variables).toEqual({ project: 'default', email: 'o@x.io', role: 'EDITOR' });
    expect((await screen.findByRole('alert')).textContent).toBe(
      'Could not make o@x.io editor: a project keeps at least one owner (CONFLICT)',
    );
  });

  it('shows a refused removal in its dialog, and not in the next one', async () => {
    setup('OWNER', {
      AccessRemoveMember: () => ({
        error: new CombinedError({ graphQLErrors: [{ message: 'a project keeps at least one owner', extensions: { code: 'CONFLICT' } }] }),
      }),
    });
    fireEvent.click(screen.getByRole('button', { name: 'Remove o@x.io' }));
    fireEvent.click(screen.getByRole('button', { name: 'Remove member' }));
    const dialog = screen.getByRole('dialog', { name: 'Remove o@x.io from default?' });
    expect((await within(dialog).findByRole('alert')).textContent).toContain('(CONFLICT)');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    fireEvent.click(screen.getByRole('button', { name: 'Remove v@x.io' }));
    const next = screen.getByRole('dialog', { name: 'Remove v@x.io from default?' });
    expect(next.textContent).toContain('SSO claim mapping');
    expect(within(next).queryByRole('alert')).toBeNull();
  });

  it('checks the add-member email before asking the hub', () => {
    const { calls } = setup('OWNER');
    fireEvent.click(screen.getByRole('button', { name: 'Add member' }));
    expect(screen.getByRole('alert').textContent).toMatch(/^Email:/);
    expect(calls.some((c) => c.name === 'AccessSetMember')).toBe(false);
  });

  it('shows a new API token once with an example request', async () => {
    const { calls } = setup('OWNER', {
      AccessCreateApiToken: () => ({
        data: {
          createApiToken: {
            __typename: 'NewApiToken',
            secret: 'fl_api_SECRET',
            token: { __typename: 'ApiToken', id: 'a3', name: 'deploy', role: 'owner' },
          },
        },
      }),
    });
    const form = screen.getByRole('form', { name: 'Create API token' });
    fireEvent.change(within(form).getByLabelText('Name'), { target: { value: 'deploy' } });
    fireEvent.change(within(form).getByLabelText('Role'), { target: { value: 'OWNER' } });
    fireEvent.click(screen.getByRole('button', { name: 'Create API token' }));
    expect(calls.find((c) => c.name === 'AccessCreateApiToken')?.variables).toEqual({
      project: 'default',
      name: 'deploy',
      role: 'OWNER',
      expiresAt: null,
    });
    expect((await screen.findByTestId('secret')).textContent).toBe('fl_api_SECRET');
    expect(screen.getByTestId('api-token-example').textContent).toContain('Authorization: Bearer fl_api_SECRET');
  });

  it('gives instance administrators the projects panel, and lists administrators who are not members', () => {
    setup('OWNER', {}, true);
    expect(screen.getByRole('button', { name: 'Create project' })).toBeTruthy();
    const rows = screen.getAllByTestId('admin-row');
    // o@x.io is an administrator and a member: listed once, as a member
    expect(rows.map((r) => r.querySelector('td')!.textContent)).toEqual(['root@x.io']);
    expect(screen.getAllByTestId('member-row')).toHaveLength(2);
  });
});

describe('form checks', () => {
  it('name the field', () => {
    expect(emailProblem('')).toMatch(/^Email:/);
    expect(emailProblem('not-an-email')).toMatch(/^Email:/);
    expect(emailProblem(' a@b.io ')).toBeNull();
    expect(apiTokenProblem('', '')).toMatch(/^Name:/);
    expect(apiTokenProblem('ci', '2000-01-01')).toBe('Expires on: must be in the future');
    expect(apiTokenProblem('ci', '2999-01-01')).toBeNull();
    expect(projectNameProblem('Payments')).toMatch(/^Project:/);
    expect(projectNameProblem('-x')).toMatch(/^Project:/);
    expect(projectNameProblem('payments-2')).toBeNull();
  });

  it('builds a curl request with the secret and the project', () => {
    const ex = apiTokenExample('https://hub:8443', 'pay', 's3cret');
    expect(ex).toContain(`-H 'Authorization: Bearer s3cret'`);
    expect(ex).toContain('runs(project: \\"pay\\"');
    expect(ex.trim().endsWith('https://hub:8443/graphql')).toBe(true);
  });
});
