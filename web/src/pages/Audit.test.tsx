import { fireEvent, render, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { AuditPage, detailPreview, outcomeBadge } from './Audit';
import { mockClient, Wrap } from './admin/testing';

function entry(id: string, over: Record<string, unknown> = {}) {
  return {
    __typename: 'AuditEntry',
    id,
    at: '2024-05-01T10:00:00Z',
    actor: 'user:o@x.io',
    action: 'run.start',
    target: `run-${id}`,
    address: '10.0.0.1',
    outcome: 'ok',
    detail: {},
    ...over,
  };
}

function setup(path: string, role: 'OWNER' | 'VIEWER' = 'OWNER') {
  const m = mockClient({
    AuditEntries: (v) =>
      v.before
        ? { data: { auditLog: { __typename: 'AuditPage', entries: [entry('1')], next: null } } }
        : {
            data: {
              auditLog: {
                __typename: 'AuditPage',
                entries: [
                  entry('3', { outcome: 'error:FORBIDDEN', detail: { reason: 'not an owner' } }),
                  entry('2', { actor: 'token:ci', action: 'template.update' }),
                ],
                next: '2',
              },
            },
          },
  });
  render(
    <Wrap client={m.client} role={role} path={path}>
      <AuditPage />
    </Wrap>,
  );
  return m;
}

const auditCalls = (calls: { name: string; variables: Record<string, unknown> }[]) =>
  calls.filter((c) => c.name === 'AuditEntries').map((c) => c.variables);

describe('AuditPage', () => {
  it('is for owners only', () => {
    const { calls } = setup('/audit', 'VIEWER');
    expect(screen.getByRole('note').textContent).toContain('Only owners');
    expect(calls).toEqual([]);
  });

  it('reads its filters from the URL', () => {
    const { calls } = setup('/audit?actor=token%3Aci&action=run.&outcome=error');
    expect(auditCalls(calls)[0]).toEqual({
      project: 'default',
      actor: 'token:ci',
      action: 'run.',
      outcome: 'error',
      since: null,
      until: null,
      before: null,
      first: 50,
    });
    expect((screen.getByLabelText('Actor') as HTMLInputElement).value).toBe('token:ci');
    expect((screen.getByLabelText('Outcome') as HTMLSelectElement).value).toBe('error');
  });

  it('shows outcomes as badges and the detail on click', () => {
    setup('/audit');
    expect(screen.getByText('error FORBIDDEN').className).toContain('badge-bad');
    const toggle = screen.getByRole('button', { name: /reason/ });
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    fireEvent.click(toggle);
    expect(toggle.getAttribute('aria-expanded')).toBe('true');
    expect(screen.getByText(/"reason": "not an owner"/)).toBeTruthy();
  });

  it('pages back with next as before', () => {
    const { calls } = setup('/audit');
    fireEvent.click(screen.getByRole('button', { name: 'Older' }));
    expect(auditCalls(calls).at(-1)).toMatchObject({ before: '2' });
    expect(screen.getByText('run-1')).toBeTruthy();
    // the last page has no older one
    expect((screen.getByRole('button', { name: 'Older' }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole('button', { name: 'Newest' }));
    expect(screen.getByText('run-3')).toBeTruthy();
  });

  it('applies a filter typed in, and one clicked on', () => {
    const { calls } = setup('/audit');
    fireEvent.change(screen.getByLabelText('Action'), { target: { value: 'member.' } });
    fireEvent.click(screen.getByRole('button', { name: 'Apply' }));
    expect(auditCalls(calls).at(-1)).toMatchObject({ action: 'member.', before: null });
    fireEvent.click(screen.getByRole('button', { name: 'token:ci' }));
    expect(auditCalls(calls).at(-1)).toMatchObject({ action: 'member.', actor: 'token:ci' });
  });

  it('turns a window into since', () => {
    const { calls } = setup('/audit?window=1h');
    const since = Date.parse(auditCalls(calls)[0].since as string);
    expect(Math.abs(Date.now() - 3_600_000 - since)).toBeLessThan(5000);
  });
});

describe('helpers', () => {
  it('previews detail compactly and hides an empty one', () => {
    expect(detailPreview({})).toBe('');
    expect(detailPreview(null)).toBe('');
    expect(detailPreview({ a: 1 })).toBe('{"a":1}');
    expect(detailPreview({ long: 'x'.repeat(100) }, 20)).toHaveLength(20);
  });

  it('maps outcomes to badges', () => {
    expect(outcomeBadge('ok')).toEqual({ cls: 'badge-ok', text: 'ok' });
    expect(outcomeBadge('error:NOT_FOUND')).toEqual({ cls: 'badge-bad', text: 'error NOT_FOUND' });
  });
});
