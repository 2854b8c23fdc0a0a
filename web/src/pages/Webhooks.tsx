// Webhooks (editors read, owners manage): where the project's news goes — its list, the create
// form with the secret shown once, Test and Delete, and one webhook's deliveries with every
// attempt and a Resend button. See docs/notifications.md.
import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, type CombinedError } from 'urql';
import { graphql } from '../gql';
import type { WebhookEvent, WebhookFormat, WebhooksQuery } from '../gql/graphql';
import { useProject } from '../project';
import { Confirm, Empty, ErrorBox, Loading, ShownOnce } from '../ui';
import { FormProblems, When } from './admin/common';
import { EVENTS, FORMATS, attemptOk, attemptText, deliveryBadge, eventsText, webhookProblem } from './webhooks/webhooks';
import './admin/admin.css';

const WebhooksDoc = graphql(`
  query Webhooks($project: String!) {
    webhooks(project: $project) {
      id
      url
      events
      format
      description
      enabled
      createdBy
      createdAt
    }
  }
`);

const CreateWebhookDoc = graphql(`
  mutation CreateWebhook(
    $project: String!
    $url: String!
    $events: [WebhookEvent!]!
    $format: WebhookFormat!
    $secret: String
    $description: String!
  ) {
    createWebhook(project: $project, url: $url, events: $events, format: $format, secret: $secret, description: $description) {
      secret
      webhook {
        id
        url
      }
    }
  }
`);

const TestWebhookDoc = graphql(`
  mutation TestWebhook($id: ID!) {
    testWebhook(id: $id) {
      id
      state
    }
  }
`);

const DeleteWebhookDoc = graphql(`
  mutation DeleteWebhook($id: ID!) {
    deleteWebhook(id: $id)
  }
`);

const DeliveriesDoc = graphql(`
  query WebhookDeliveries($id: ID!) {
    webhookDeliveries(webhookId: $id, first: 50) {
      id
      eventType
      eventAt
      state
      attemptCount
      nextAttemptAt
      lastError
      attempts {
        n
        at
        status
        latencyMs
        response
        error
      }
    }
  }
`);

const ResendDoc = graphql(`
  mutation ResendDelivery($id: ID!) {
    resendDelivery(id: $id) {
      id
      state
    }
  }
`);

type Webhook = WebhooksQuery['webhooks'][number];

export function WebhooksPage() {
  const project = useProject();
  if (!project.can('EDITOR')) {
    return (
      <div className="page admin-page">
        <h1>Webhooks</h1>
        <div className="empty" role="note">
          Only editors and owners of {project.name} can see its webhooks.
        </div>
      </div>
    );
  }
  return <Webhooks />;
}

function Webhooks() {
  const project = useProject();
  const owner = project.can('OWNER');
  const [{ data, fetching, error }, refetch] = useQuery({ query: WebhooksDoc, variables: { project: project.name } });
  const reload = () => refetch({ requestPolicy: 'network-only' });
  const [created, setCreated] = useState<{ url: string; secret: string } | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<Webhook | null>(null);
  const [deleteState, del] = useMutation(DeleteWebhookDoc);
  const [confirmError, setConfirmError] = useState<CombinedError | null>(null);
  const [testState, test] = useMutation(TestWebhookDoc);
  const [tested, setTested] = useState<string | null>(null);
  const hooks = data?.webhooks ?? [];
  const shown = hooks.find((h) => h.id === open);

  return (
    <div className="page admin-page">
      <h1>Webhooks</h1>
      <section className="panel" aria-labelledby="webhooks-h">
        <div className="panel-head">
          <h2 id="webhooks-h">Webhooks of {project.name}</h2>
          <span className="muted">Runs, guardrails, schedules, delegates and halts, told to Slack, Teams or your service.</span>
        </div>
        {error && <ErrorBox error={error} retry={reload} />}
        {testState.error && <ErrorBox error={testState.error} />}
        {!data && fetching ? (
          <Loading what="webhooks" />
        ) : data && hooks.length === 0 ? (
          <Empty>No webhook yet.</Empty>
        ) : data ? (
          <table aria-label="Webhooks">
            <thead>
              <tr>
                <th>Target</th>
                <th>Format</th>
                <th>Events</th>
                <th>Created</th>
                <th className="actions">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {hooks.map((h) => (
                <tr key={h.id} data-testid="webhook-row" className={h.enabled ? '' : 'revoked'}>
                  <td>
                    <code>{h.url}</code>
                    {h.description && <div className="muted">{h.description}</div>}
                    {!h.enabled && <span className="badge badge-warn">disabled</span>}
                  </td>
                  <td>{FORMATS.find((f) => f.value === h.format)?.label ?? h.format}</td>
                  <td>{eventsText(h.events)}</td>
                  <td className="nowrap">
                    <When at={h.createdAt} /> <span className="muted">by {h.createdBy.replace(/^user:/, '')}</span>
                  </td>
                  <td className="actions">
                    <button type="button" onClick={() => setOpen(open === h.id ? null : h.id)} aria-expanded={open === h.id}>
                      Deliveries
                    </button>{' '}
                    {owner && (
                      <>
                        <button
                          type="button"
                          disabled={testState.fetching}
                          aria-label={`Test webhook ${h.url}`}
                          onClick={() => {
                            void test({ id: h.id }).then((r) => {
                              if (r.data) {
                                setTested(h.id);
                                setOpen(h.id);
                              }
                            });
                          }}
                        >
                          Test
                        </button>{' '}
                        <button
                          type="button"
                          aria-label={`Delete webhook ${h.url}`}
                          onClick={() => {
                            setConfirmError(null);
                            setDeleting(h);
                          }}
                        >
                          Delete
                        </button>
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
        {tested && (
          <p role="status" className="muted">
            Test event queued; it shows in the deliveries below.
          </p>
        )}
        {owner && (
          <CreateWebhookForm
            onCreated={(url, secret) => {
              setCreated({ url, secret });
              reload();
            }}
          />
        )}
        {created && (
          <div className="new-secret" data-testid="new-webhook">
            <h3>New webhook to {created.url}</h3>
            <ShownOnce label="Signing secret" value={created.secret} />
            <p>
              Requests carry <code>X-Faultline-Signature: t=…,v1=…</code>: HMAC-SHA256 of <code>{'{t}.{body}'}</code> with this secret.
              Refuse timestamps older than 5 minutes (docs/notifications.md has code for Python, Node and the shell).
            </p>
            <button type="button" onClick={() => setCreated(null)}>
              Done
            </button>
          </div>
        )}
      </section>
      {shown && <Deliveries webhook={shown} owner={owner} />}
      {deleting && (
        <Confirm
          title={`Delete webhook ${deleting.url}?`}
          confirmLabel="Delete webhook"
          danger
          busy={deleteState.fetching}
          onCancel={() => setDeleting(null)}
          onConfirm={() => {
            void del({ id: deleting.id }).then((r) => {
              if (r.error) return setConfirmError(r.error);
              if (open === deleting.id) setOpen(null);
              setDeleting(null);
              reload();
            });
          }}
        >
          <p>Its pending deliveries are dropped with it, and its delivery history is deleted.</p>
          <ErrorBox error={confirmError} />
        </Confirm>
      )}
    </div>
  );
}

function Deliveries({ webhook, owner }: { webhook: Webhook; owner: boolean }) {
  const [{ data, fetching, error }, refetch] = useQuery({ query: DeliveriesDoc, variables: { id: webhook.id }, requestPolicy: 'network-only' });
  const reload = () => refetch({ requestPolicy: 'network-only' });
  const [resendState, resend] = useMutation(ResendDoc);
  const rows = data?.webhookDeliveries ?? [];
  return (
    <section className="panel" aria-labelledby="deliveries-h">
      <div className="panel-head">
        <h2 id="deliveries-h">Deliveries to {webhook.url}</h2>
        <button type="button" onClick={reload} disabled={fetching}>
          Refresh
        </button>
      </div>
      {error && <ErrorBox error={error} retry={reload} />}
      {resendState.error && <ErrorBox error={resendState.error} />}
      {!data && fetching ? (
        <Loading what="deliveries" />
      ) : data && rows.length === 0 ? (
        <Empty>Nothing sent yet.</Empty>
      ) : data ? (
        <table aria-label="Deliveries">
          <thead>
            <tr>
              <th>Event</th>
              <th>State</th>
              <th>Attempts</th>
              <th className="actions">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((d) => (
              <tr key={d.id} data-testid="delivery-row">
                <td className="nowrap">
                  <code>{d.eventType}</code>
                  <div className="muted">
                    <When at={d.eventAt} />
                  </div>
                </td>
                <td>
                  <span className={`badge ${deliveryBadge(d.state)}`}>{d.state}</span>
                  {d.state === 'pending' && d.nextAttemptAt && (
                    <div className="muted">
                      next <When at={d.nextAttemptAt} />
                    </div>
                  )}
                </td>
                <td>
                  {d.attempts.length === 0 ? (
                    <span className="muted">none yet</span>
                  ) : (
                    <ul className="attempts" aria-label="Attempts">
                      {d.attempts.map((a) => (
                        <li key={a.n} className={attemptOk(a) ? '' : 'field-error'} title={a.response ?? a.error ?? ''}>
                          {attemptText(a)}
                          {a.response && <span className="muted"> · {a.response.slice(0, 80)}</span>}
                        </li>
                      ))}
                    </ul>
                  )}
                </td>
                <td className="actions">
                  {owner && (
                    <button
                      type="button"
                      disabled={resendState.fetching}
                      aria-label={`Resend ${d.eventType}`}
                      onClick={() => {
                        void resend({ id: d.id }).then((r) => r.data && reload());
                      }}
                    >
                      Resend
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

function CreateWebhookForm({ onCreated }: { onCreated(url: string, secret: string): void }) {
  const project = useProject();
  const [url, setUrl] = useState('');
  const [format, setFormat] = useState<WebhookFormat>('JSON');
  const [events, setEvents] = useState<WebhookEvent[]>(['RUN_FINISHED', 'RUN_ERROR', 'GUARDRAIL_TRIPPED']);
  const [secret, setSecret] = useState('');
  const [description, setDescription] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [state, create] = useMutation(CreateWebhookDoc);

  function toggle(e: WebhookEvent) {
    setEvents((cur) => (cur.includes(e) ? cur.filter((x) => x !== e) : [...cur, e]));
  }

  function submit(ev: FormEvent) {
    ev.preventDefault();
    const p = webhookProblem(url, events, secret);
    setProblem(p);
    if (p) return;
    void create({
      project: project.name,
      url: url.trim(),
      events,
      format,
      secret: secret.trim() || null,
      description: description.trim(),
    }).then((r) => {
      if (r.data) {
        onCreated(r.data.createWebhook.webhook.url, r.data.createWebhook.secret ?? '');
        setUrl('');
        setSecret('');
        setDescription('');
      }
    });
  }

  return (
    <form className="admin-form" onSubmit={submit} aria-label="Create webhook" noValidate>
      <label>
        URL
        <input type="text" value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://hooks.slack.com/services/…" />
      </label>
      <label>
        Format
        <select value={format} onChange={(e) => setFormat(e.target.value as WebhookFormat)}>
          {FORMATS.map((f) => (
            <option key={f.value} value={f.value}>
              {f.label}
            </option>
          ))}
        </select>
      </label>
      <label>
        Description (optional)
        <input type="text" value={description} onChange={(e) => setDescription(e.target.value)} placeholder="e.g. #chaos channel" />
      </label>
      <label>
        Secret (optional)
        <input type="text" value={secret} onChange={(e) => setSecret(e.target.value)} placeholder="generated when empty" autoComplete="off" />
      </label>
      <fieldset className="form-wide">
        <legend>Events</legend>
        {EVENTS.map((e) => (
          <label key={e.value} className="check">
            <input type="checkbox" checked={events.includes(e.value)} onChange={() => toggle(e.value)} /> {e.label}
          </label>
        ))}
      </fieldset>
      <button type="submit" className="primary" disabled={state.fetching}>
        {state.fetching ? 'Creating…' : 'Create webhook'}
      </button>
      <FormProblems problem={problem} error={state.error} />
    </form>
  );
}
