import { act, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DelegatesPage, PAGE_SIZE } from './Delegates';
import { mockClient, Wrap } from './admin/testing';

const DELEGATES = [
  {
    __typename: 'Delegate',
    id: 'd1',
    name: 'web-1',
    labels: { env: 'prod', team: 'web' },
    version: '0.1.0',
    capabilities: { faults: ['process-kill'], probes: ['http'] },
    connected: true,
    lastHeartbeat: new Date().toISOString(),
    replica: 'hub-a',
    activeRuns: 2,
    cursor: 'd1:web-1',
  },
  {
    __typename: 'Delegate',
    id: 'd2',
    name: 'db-1',
    labels: {},
    version: '0.1.0',
    capabilities: {},
    connected: false,
    lastHeartbeat: null,
    replica: null,
    activeRuns: 0,
    cursor: 'd2:db-1',
  },
];

const TOKENS = [
  {
    __typename: 'DelegateToken',
    id: 't1',
    name: 'fleet',
    reusable: true,
    uses: 3,
    createdBy: 'user:o@x.io',
    createdAt: '2024-05-01T00:00:00Z',
    expiresAt: '2999-01-01T00:00:00Z',
    usedAt: null,
    revokedAt: null,
  },
];

const SUMMARY = { __typename: 'DelegateSummary', total: 2, connected: 1 };

function setup(role: 'OWNER' | 'EDITOR' | 'VIEWER') {
  const m = mockClient({
    DelegatesList: () => ({ data: { delegates: DELEGATES, delegateSummary: SUMMARY } }),
    DelegateTokensList: () => ({ data: { delegateTokens: TOKENS } }),
    DelegateTokensCreate: () => ({ data: { createDelegateToken: 'fl_reg_SECRET' } }),
  });
  render(
    <Wrap client={m.client} role={role}>
      <DelegatesPage />
    </Wrap>,
  );
  return m;
}

afterEach(() => vi.useRealTimers());

describe('DelegatesPage', () => {
  it('lists delegates with their labels and whether they are connected', () => {
    setup('OWNER');
    const web = screen.getByRole('row', { name: /web-1/ });
    expect(within(web).getByText('env=prod')).toBeTruthy();
    expect(within(web).getByText('team=web')).toBeTruthy();
    expect(within(web).getByText('connected').dataset.connected).toBe('true');
    expect(within(web).getByText('2 running')).toBeTruthy();
    const db = screen.getByRole('row', { name: /db-1/ });
    expect(within(db).getByText('offline').dataset.connected).toBe('false');
    expect(within(db).getByText('never')).toBeTruthy();
    expect(screen.getByRole('status').textContent).toContain('1 of 2 connected');
  });

  it('gives owners Revoke and the registration tokens', () => {
    const { calls } = setup('OWNER');
    expect(screen.getByRole('button', { name: 'Revoke web-1' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Create registration token' })).toBeTruthy();
    expect(screen.getByRole('row', { name: /fleet/ })).toBeTruthy();
    expect(calls.some((c) => c.name === 'DelegateTokensList')).toBe(true);
  });

  it.each(['VIEWER', 'EDITOR'] as const)('shows a %s no write action and does not ask for tokens', (role) => {
    const { calls } = setup(role);
    expect(screen.getByRole('row', { name: /web-1/ })).toBeTruthy();
    expect(screen.queryByRole('button', { name: /Revoke/ })).toBeNull();
    expect(screen.queryByRole('button', { name: /Create/ })).toBeNull();
    expect(screen.queryByText('Registration tokens')).toBeNull();
    expect(calls.some((c) => c.name === 'DelegateTokensList')).toBe(false);
  });

  it('shows a new token once with the command that starts a delegate with it', async () => {
    const { calls } = setup('OWNER');
    fireEvent.change(screen.getByLabelText('Name'), { target: { value: 'edge' } });
    fireEvent.change(screen.getByLabelText('Expires in'), { target: { value: '7d' } });
    fireEvent.click(screen.getByLabelText(/Reusable/));
    fireEvent.click(screen.getByRole('button', { name: 'Create registration token' }));
    expect(calls.find((c) => c.name === 'DelegateTokensCreate')?.variables).toEqual({
      project: 'default',
      name: 'edge',
      reusable: true,
      expiresIn: '7d',
    });
    expect((await screen.findByTestId('secret')).textContent).toBe('fl_reg_SECRET');
    const cmd = screen.getByTestId('delegate-command').textContent!;
    expect(cmd).toContain(`--hub ${window.location.origin}`);
    expect(cmd).toContain('--token fl_reg_SECRET');
    expect(cmd).toContain('--name edge');
    // the labels field tailors the command
    fireEvent.change(screen.getByLabelText('Labels'), { target: { value: 'env=staging,zone=b' } });
    expect(screen.getByTestId('delegate-command').textContent).toContain('--label env=staging \\\n  --label zone=b');
    fireEvent.change(screen.getByLabelText('Labels'), { target: { value: 'zone' } });
    expect(screen.getByRole('alert').textContent).toBe('Labels: “zone” is not key=value');
  });

  it('refuses a token name the hub would refuse, naming the field', () => {
    const { calls } = setup('OWNER');
    fireEvent.change(screen.getByLabelText('Name'), { target: { value: 'x'.repeat(101) } });
    fireEvent.click(screen.getByRole('button', { name: 'Create registration token' }));
    expect(screen.getByRole('alert').textContent).toBe('Name: at most 100 characters');
    expect(calls.some((c) => c.name === 'DelegateTokensCreate')).toBe(false);
  });

  it('revokes a delegate only after confirming', () => {
    const { calls } = setup('OWNER');
    fireEvent.click(screen.getByRole('button', { name: 'Revoke web-1' }));
    const dialog = screen.getByRole('dialog', { name: 'Revoke delegate web-1?' });
    expect(dialog.textContent).toContain('2 active run(s)');
    expect(calls.some((c) => c.name === 'DelegatesRevoke')).toBe(false);
    fireEvent.click(within(dialog).getByRole('button', { name: 'Revoke delegate' }));
    expect(calls.find((c) => c.name === 'DelegatesRevoke')?.variables).toEqual({ id: 'd1' });
  });

  it('pages through a large fleet with cursors and searches by name', () => {
    const page = (from: number) =>
      Array.from({ length: PAGE_SIZE }, (_, i) => ({ ...DELEGATES[1], id: `p${from + i}`, name: `host-${from + i}`, cursor: `p${from + i}:host-${from + i}` }));
    const m = mockClient({
      DelegatesList: (v) => ({
        data: {
          delegates: v.search ? [DELEGATES[0]] : page(v.after ? PAGE_SIZE : 0),
          delegateSummary: { ...SUMMARY, total: 250, connected: 240 },
        },
      }),
    });
    render(
      <Wrap client={m.client} role="VIEWER">
        <DelegatesPage />
      </Wrap>,
    );
    expect(screen.getByRole('status').textContent).toContain('240 of 250 connected');
    expect(m.calls[0].variables).toMatchObject({ first: PAGE_SIZE, after: null, search: null });
    expect(screen.getAllByTestId('delegate-row')).toHaveLength(PAGE_SIZE);
    fireEvent.click(screen.getByRole('button', { name: 'Next page' }));
    expect(m.calls[m.calls.length - 1].variables).toMatchObject({ after: `p${PAGE_SIZE - 1}:host-${PAGE_SIZE - 1}` });
    expect(screen.getByRole('row', { name: new RegExp(`host-${PAGE_SIZE}\\b`) })).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Previous page' }));
    expect(m.calls[m.calls.length - 1].variables).toMatchObject({ after: null });
    fireEvent.change(screen.getByLabelText('Search delegates'), { target: { value: ' web ' } });
    expect(m.calls[m.calls.length - 1].variables).toMatchObject({ search: 'web', after: null });
    expect(screen.getAllByTestId('delegate-row')).toHaveLength(1);
  });

  it('refreshes the list every 5 s', () => {
    vi.useFakeTimers();
    const { calls } = setup('VIEWER');
    const before = calls.filter((c) => c.name === 'DelegatesList').length;
    act(() => {
      vi.advanceTimersByTime(5000);
    });
    expect(calls.filter((c) => c.name === 'DelegatesList').length).toBeGreaterThan(before);
  });
});
