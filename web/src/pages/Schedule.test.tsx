import { fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { GraphQLError } from 'graphql';
import { memoryLocation } from 'wouter/memory-location';
import { describe, expect, it } from 'vitest';
import { NewSchedulePage, SchedulePage } from './Schedule';
import { browserZone, formatInZone } from './schedules/cron';
import { fakeHub, Wrap, type Handlers } from './templates/testClient';

const ZONE = browserZone() === 'Asia/Tokyo' ? 'America/New_York' : 'Asia/Tokyo';
const at = (ms: number) => new Date(Date.now() + ms).toISOString();
const NEXT = [1, 2, 3, 4, 5].map((h) => at(h * 3_600_000));
const RUN1 = 'aaaaaaaa-1111-4111-8111-111111111111';
const RUN2 = 'bbbbbbbb-2222-4222-8222-222222222222';

const schedule = {
  id: 's1',
  name: 'nightly-kill',
  cron: '0 2 * * *',
  timezone: ZONE,
  description: 'At 02:00',
  delegate: 'env=web',
  version: null,
  concurrency: 'FORBID',
  jitterMs: 30_000,
  enabled: true,
  nextFireAt: NEXT[0],
  nextFires: NEXT,
  createdBy: 'user:ana@example.com',
  createdAt: at(-7 * 86_400_000),
  updatedAt: at(-7 * 86_400_000),
  template: { id: 't1', name: 'web-survives-kill', version: 3 },
  fires: [
    { dueAt: at(-60_000), lastDueAt: null, missedCount: 1, firedAt: at(-59_000), outcome: 'STARTED', reason: null, runId: RUN2, run: { id: RUN2, status: 'RUNNING', dryRun: false } },
    { dueAt: at(-120_000), lastDueAt: null, missedCount: 1, firedAt: at(-119_000), outcome: 'SKIPPED', reason: `run ${RUN1.slice(0, 8)} is unfinished`, runId: null, run: null },
    { dueAt: at(-3_600_000), lastDueAt: at(-600_000), missedCount: 4, firedAt: at(-500_000), outcome: 'MISSED', reason: 'no hub was running', runId: null, run: null },
    { dueAt: at(-7_200_000), lastDueAt: null, missedCount: 1, firedAt: at(-7_199_000), outcome: 'FAILED', reason: 'no delegate matches env=web', runId: RUN1, run: { id: RUN1, status: 'ERROR', dryRun: false } },
  ],
};

const templates = [
  { id: 't1', name: 'web-survives-kill', version: 3 },
  { id: 't2', name: 'db-loss', version: 1 },
];

function cronPreview(v: Record<string, unknown>) {
  if (v.timezone === 'Mars/Olympus') {
    return new GraphQLError('timezone: unknown time zone "Mars/Olympus"', { extensions: { code: 'BAD_USER_INPUT', field: 'timezone' } });
  }
  if (String(v.cron).trim().split(/\s+/).length < 5) {
    return new GraphQLError('cron: 3 fields: give 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)', {
      extensions: { code: 'BAD_USER_INPUT', field: 'cron' },
    });
  }
  return { cronPreview: { description: `words for ${v.cron}`, timezone: v.timezone, nextFires: NEXT.slice(0, v.n as number) } };
}

function hub(extra: Handlers = {}): Handlers {
  return {
    ScheduleView: () => ({ schedule }),
    ScheduleFormTemplates: () => ({ templates }),
    CronPreview: cronPreview,
    ScheduleCreate: () => ({ createSchedule: { id: 's9', name: 'x' } }),
    ScheduleUpdate: (v) => ({ updateSchedule: { ...schedule, ...v, jitterMs: 0 } }),
    ...extra,
  };
}

describe('SchedulePage', () => {
  it('shows the settings, the next fires in both zones, and the history linking runs', async () => {
    render(
      <Wrap client={fakeHub(hub())} role="VIEWER">
        <SchedulePage id="s1" />
      </Wrap>,
    );
    expect(await screen.findByRole('heading', { name: 'nightly-kill' })).toBeTruthy();
    expect(screen.getByRole('link', { name: 'web-survives-kill' }).getAttribute('href')).toBe('/templates/t1');
    expect(screen.getByText('latest (now v3)')).toBeTruthy();
    expect(screen.getByText('env=web')).toBeTruthy();
    expect(screen.getByText('up to 30s')).toBeTruthy();
    const next = screen.getAllByTestId('next-fire');
    expect(next).toHaveLength(5);
    expect(next[0].querySelector(`[data-zone="${browserZone()}"]`)?.textContent).toBe(formatInZone(NEXT[0], browserZone()));
    expect(next[0].querySelector(`[data-zone="${ZONE}"]`)?.textContent).toContain(formatInZone(NEXT[0], ZONE));

    const rows = screen.getAllByTestId('fire-row');
    expect(rows.map((r) => r.getAttribute('data-outcome'))).toEqual(['STARTED', 'SKIPPED', 'MISSED', 'FAILED']);
    const [started, skipped, missed, failed] = rows.map((r) => within(r));
    expect(started.getByRole('link', { name: `Run ${RUN2}` }).getAttribute('href')).toBe(`/runs/${RUN2}`);
    expect(started.getByText('RUNNING')).toBeTruthy();
    expect(skipped.queryByRole('link')).toBeNull();
    expect(skipped.getByText(/is unfinished/)).toBeTruthy();
    expect(missed.getByTestId('missed-count').textContent).toContain('4 missed');
    expect(missed.getByText('no hub was running')).toBeTruthy();
    expect(failed.getByRole('link', { name: `Run ${RUN1}` }).getAttribute('href')).toBe(`/runs/${RUN1}`);
    expect(failed.getByText('no delegate matches env=web')).toBeTruthy();
    expect(screen.getByRole('link', { name: 'All its runs' }).getAttribute('href')).toBe('/runs?schedule=s1');
    // A viewer changes nothing.
    expect(screen.queryByRole('button', { name: /Edit|Pause|Resume|Delete/ })).toBeNull();
  });

  it('lets an editor change the settings through the form', async () => {
    const seen: { name: string; variables: Record<string, unknown> }[] = [];
    render(
      <Wrap client={fakeHub(hub(), seen)} role="EDITOR">
        <SchedulePage id="s1" />
      </Wrap>,
    );
    fireEvent.click(await screen.findByRole('button', { name: 'Edit' }));
    expect(screen.getByRole('button', { name: 'Pause nightly-kill' })).toBeTruthy();
    const form = screen.getByRole('form', { name: 'Schedule settings' });
    expect((within(form).getByLabelText('Cron') as HTMLInputElement).value).toBe('0 2 * * *');
    expect((within(form).getByLabelText('Jitter') as HTMLInputElement).value).toBe('30s');
    fireEvent.change(within(form).getByLabelText('Cron'), { target: { value: '*/15 * * * *' } });
    fireEvent.change(within(form).getByLabelText('Jitter'), { target: { value: '' } });
    fireEvent.change(within(form).getByLabelText('Delegate'), { target: { value: '' } });
    fireEvent.change(within(form).getByLabelText('Version'), { target: { value: '2' } });
    fireEvent.click(within(form).getByLabelText(/Allow/));
    fireEvent.click(within(form).getByRole('button', { name: 'Save' }));
    await waitFor(() =>
      expect(seen.find((s) => s.name === 'ScheduleUpdate')?.variables).toEqual({
        id: 's1',
        name: 'nightly-kill',
        cron: '*/15 * * * *',
        timezone: ZONE,
        delegate: null,
        version: 2,
        concurrency: 'ALLOW',
        jitter: '0s',
      }),
    );
    await waitFor(() => expect(screen.queryByRole('form', { name: 'Schedule settings' })).toBeNull());
  });

  it('says so when the schedule does not exist', async () => {
    render(
      <Wrap
        client={fakeHub(
          hub({ ScheduleView: () => new GraphQLError('schedule s404 not found', { extensions: { code: 'NOT_FOUND' } }) }),
        )}
      >
        <SchedulePage id="s404" />
      </Wrap>,
    );
    expect(await screen.findByTestId('not-found')).toBeTruthy();
  });
});

describe('NewSchedulePage', () => {
  it('starts from the given template and the browser zone; the cron helper shows the words and the next 5 fires', async () => {
    render(
      <Wrap client={fakeHub(hub())} role="EDITOR">
        <NewSchedulePage templateId="t1" />
      </Wrap>,
    );
    await screen.findByRole('option', { name: 'web-survives-kill' });
    expect((screen.getByLabelText('Template') as HTMLSelectElement).value).toBe('t1');
    expect((screen.getByLabelText('Time zone') as HTMLInputElement).value).toBe(browserZone());
    // The version choices follow the template's versions.
    expect(within(screen.getByLabelText('Version')).getAllByRole('option').map((o) => o.textContent)).toEqual([
      'Latest at each fire',
      'v3 (pinned)',
      'v2 (pinned)',
      'v1 (pinned)',
    ]);
    fireEvent.click(screen.getByRole('button', { name: 'Weekdays at 09:00' }));
    expect((screen.getByLabelText('Cron') as HTMLInputElement).value).toBe('0 9 * * 1-5');
    expect(await screen.findByText('words for 0 9 * * 1-5')).toBeTruthy();
    expect(screen.getAllByTestId('next-fire')).toHaveLength(5);
    expect(screen.getAllByTestId('next-fire')[0].textContent).toContain(formatInZone(NEXT[0], browserZone()));
    expect(screen.getByRole('button', { name: 'Weekdays at 09:00' }).getAttribute('aria-pressed')).toBe('true');
  });

  it('shows the hub’s message naming the field for a bad expression or zone', async () => {
    render(
      <Wrap client={fakeHub(hub())} role="EDITOR">
        <NewSchedulePage templateId="t1" />
      </Wrap>,
    );
    fireEvent.change(screen.getByLabelText('Cron'), { target: { value: '* * *' } });
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('cron: 3 fields');
    expect(screen.getByLabelText('Cron').getAttribute('aria-invalid')).toBe('true');
    expect(screen.queryAllByTestId('next-fire')).toHaveLength(0);

    fireEvent.change(screen.getByLabelText('Cron'), { target: { value: '0 * * * *' } });
    fireEvent.change(screen.getByLabelText('Time zone'), { target: { value: 'Mars/Olympus' } });
    await waitFor(() => expect(screen.getByRole('alert').textContent).toContain('timezone: unknown time zone'));
    expect(screen.getByLabelText('Time zone').getAttribute('aria-invalid')).toBe('true');
    expect(screen.getByLabelText('Cron').getAttribute('aria-invalid')).toBeNull();
  });

  it('creates the schedule and opens it; the hub’s refusal is shown inline', async () => {
    const seen: { name: string; variables: Record<string, unknown> }[] = [];
    const location = memoryLocation({ path: '/schedules/new', record: true });
    let refuse = true;
    const client = fakeHub(
      hub({
        ScheduleCreate: () =>
          refuse
            ? new GraphQLError('jitter: at most 24h', { extensions: { code: 'BAD_USER_INPUT', field: 'jitter' } })
            : { createSchedule: { id: 's9', name: 'every-2s' } },
      }),
      seen,
    );
    render(
      <Wrap client={client} role="EDITOR" location={location}>
        <NewSchedulePage />
      </Wrap>,
    );
    await screen.findByRole('option', { name: 'db-loss' });
    expect(screen.getByRole('button', { name: 'Create schedule' }).hasAttribute('disabled')).toBe(true);
    fireEvent.change(screen.getByLabelText('Template'), { target: { value: 't2' } });
    fireEvent.change(screen.getByLabelText('Name'), { target: { value: 'every-2s' } });
    fireEvent.change(screen.getByLabelText('Cron'), { target: { value: '*/2 * * * * *' } });
    fireEvent.change(screen.getByLabelText('Time zone'), { target: { value: 'UTC' } });
    fireEvent.change(screen.getByLabelText('Delegate'), { target: { value: 'edge-1' } });
    fireEvent.change(screen.getByLabelText('Jitter'), { target: { value: '25h' } });
    fireEvent.click(screen.getByLabelText(/Queue/));
    fireEvent.click(screen.getByLabelText(/Enabled/));
    fireEvent.click(screen.getByRole('button', { name: 'Create schedule' }));
    await waitFor(() => expect(screen.getByLabelText('Jitter').getAttribute('aria-invalid')).toBe('true'));
    expect(screen.getAllByRole('alert').some((a) => a.textContent?.includes('jitter: at most 24h'))).toBe(true);
    expect(seen.find((s) => s.name === 'ScheduleCreate')?.variables).toEqual({
      templateId: 't2',
      name: 'every-2s',
      cron: '*/2 * * * * *',
      timezone: 'UTC',
      delegate: 'edge-1',
      version: null,
      concurrency: 'QUEUE',
      jitter: '25h',
      enabled: false,
    });
    refuse = false;
    fireEvent.change(screen.getByLabelText('Jitter'), { target: { value: '' } });
    fireEvent.click(screen.getByRole('button', { name: 'Create schedule' }));
    await waitFor(() => expect(location.history!.at(-1)).toBe('/schedules/s9'));
    expect(seen.filter((s) => s.name === 'ScheduleCreate').at(-1)?.variables).toMatchObject({ jitter: null });
  });

  it('tells a viewer that only editors create schedules', () => {
    render(
      <Wrap client={fakeHub(hub())} role="VIEWER">
        <NewSchedulePage templateId="t1" />
      </Wrap>,
    );
    expect(screen.getByText(/only editors and owners create schedules/)).toBeTruthy();
    expect(screen.queryByRole('form')).toBeNull();
  });
});
