import { fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { WebhooksPage } from './Webhooks';
import { mockClient, Wrap, type Answer } from './admin/testing';

const HOOKS = [
  {
    __typename: 'Webhook',
    id: 'w1',
    url: 'https://hooks.slack.com/services/…',
    events: ['RUN_FINISHED', 'RUN_ERROR'],
    format: 'SLACK',
    description: '#chaos',
    enabled: true,
    createdBy: 'user:o@x.io',
    createdAt: '2024-05-01T00:00:00Z',
  },
];

const DELIVERIES = [
  {
    __typename: 'WebhookDelivery',
    id: 'd1',
    eventType: 'run.finished',
    eventAt: '2024-05-01T00:00:00Z',
    state: 'delivered',
    attemptCount: 3,
    nextAttemptAt: null,
    lastError: null,
    attempts: [
      { __typename: 'WebhookAttempt', n: 1, at: '2024-05-01T00:00:00Z', status: 500, latencyMs: 4, response: 'boom', error: null },
      { __typename: 'WebhookAttempt', n: 2, at: '2024-05-01T00:00:30Z', status: null, latencyMs: 2, response: null, error: 'connection failed' },
      { __typename: 'WebhookAttempt', n: 3, at: '2024-05-01T00:02:00Z', status: 200, latencyMs: 9, response: 'ok', error: null },
    ],
  },
];

function setup(role: 'OWNER' | 'EDITOR' | 'VIEWER', extra: Record<string, Answer> = {}) {
  const m = mockClient({
    Webhooks: () => ({ data: { webhooks: HOOKS } }),
    WebhookDeliveries: () => ({ data: { webhookDeliveries: DELIVERIES } }),
    ...extra,
  });
  render(
    <Wrap client={m.client} role={role}>
      <WebhooksPage />
    </Wrap>,
  );
  return m;
}

describe('WebhooksPage', () => {
  it('lists webhooks with redacted URL, format and events', () => {
    setup('OWNER');
    const row = screen.getByTestId('webhook-row');
    expect(within(row).getByText('https://hooks.slack.com/services/…')).toBeTruthy();
    expect(within(row).getByText('Slack')).toBeTruthy();
    expect(within(row).getByText('Run finished, Run error')).toBeTruthy();
    expect(within(row).getByText('#chaos')).toBeTruthy();
  });

  it('creates a webhook and shows its secret once', async () => {
    const m = setup('OWNER', {
      CreateWebhook: () => ({ data: { createWebhook: { __typename: 'WebhookWithSecret', secret: 'whsec_abc', webhook: { __typename: 'Webhook', id: 'w2', url: 'https://x.io/…' } } } }),
    });
    const form = screen.getByRole('form', { name: 'Create webhook' });
    fireEvent.click(within(form).getByRole('button', { name: 'Create webhook' }));
    expect(within(form).getByRole('alert').textContent).toMatch(/^URL:/);
    fireEvent.change(within(form).getByLabelText('URL'), { target: { value: 'https://x.io/hook/abc' } });
    fireEvent.change(within(form).getByLabelText('Format'), { target: { value: 'TEAMS' } });
    fireEvent.click(within(form).getByLabelText('Run started'));
    fireEvent.click(within(form).getByLabelText('Guardrail tripped'));
    fireEvent.click(within(form).getByRole('button', { name: 'Create webhook' }));
    await waitFor(() => expect(screen.getByTestId('new-webhook')).toBeTruthy());
    expect(screen.getByTestId('secret').textContent).toBe('whsec_abc');
    const call = m.calls.find((c) => c.name === 'CreateWebhook')!;
    expect(call.variables).toEqual({
      project: 'default',
      url: 'https://x.io/hook/abc',
      events: ['RUN_FINISHED', 'RUN_ERROR', 'RUN_STARTED'],
      format: 'TEAMS',
      secret: null,
      description: '',
    });
    fireEvent.click(screen.getByRole('button', { name: 'Done' }));
    expect(screen.queryByTestId('secret')).toBeNull();
  });

  it('tests a webhook and shows its deliveries with every attempt and a Resend button', async () => {
    const m = setup('OWNER', {
      TestWebhook: () => ({ data: { testWebhook: { __typename: 'WebhookDelivery', id: 'd9', state: 'pending' } } }),
      ResendDelivery: () => ({ data: { resendDelivery: { __typename: 'WebhookDelivery', id: 'd2', state: 'pending' } } }),
    });
    fireEvent.click(screen.getByRole('button', { name: 'Test webhook https://hooks.slack.com/services/…' }));
    await waitFor(() => expect(screen.getByTestId('delivery-row')).toBeTruthy());
    expect(m.calls.find((c) => c.name === 'TestWebhook')!.variables).toEqual({ id: 'w1' });
    const row = screen.getByTestId('delivery-row');
    expect(within(row).getByText('run.finished')).toBeTruthy();
    expect(within(row).getByText('delivered')).toBeTruthy();
    const attempts = within(row).getAllByRole('listitem').map((li) => li.textContent);
    expect(attempts).toEqual(['#1 HTTP 500 · 4 ms · boom', '#2 connection failed · 2 ms', '#3 HTTP 200 · 9 ms · ok']);
    fireEvent.click(within(row).getByRole('button', { name: 'Resend run.finished' }));
    await waitFor(() => expect(m.calls.some((c) => c.name === 'ResendDelivery' && c.variables.id === 'd1')).toBe(true));
  });

  it('asks before deleting', async () => {
    const m = setup('OWNER', { DeleteWebhook: () => ({ data: { deleteWebhook: true } }) });
    fireEvent.click(screen.getByRole('button', { name: 'Delete webhook https://hooks.slack.com/services/…' }));
    const dialog = screen.getByRole('dialog');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Delete webhook' }));
    await waitFor(() => expect(m.calls.some((c) => c.name === 'DeleteWebhook' && c.variables.id === 'w1')).toBe(true));
  });

  it('lets editors read but not manage', async () => {
    setup('EDITOR');
    expect(screen.getByTestId('webhook-row')).toBeTruthy();
    expect(screen.queryByRole('form', { name: 'Create webhook' })).toBeNull();
    expect(screen.queryByRole('button', { name: /^Test webhook/ })).toBeNull();
    expect(screen.queryByRole('button', { name: /^Delete webhook/ })).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Deliveries' }));
    await waitFor(() => expect(screen.getByTestId('delivery-row')).toBeTruthy());
    expect(screen.queryByRole('button', { name: /^Resend/ })).toBeNull();
  });

  it('tells viewers they cannot see webhooks', () => {
    const m = setup('VIEWER');
    expect(screen.getByRole('note').textContent).toMatch(/Only editors and owners/);
    expect(m.calls).toEqual([]);
  });
});
