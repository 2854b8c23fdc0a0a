// Small shared pieces: loading and error states, status badges, times, a confirmation dialog,
// a secret shown once.
import { useEffect, useState, type ReactNode } from 'react';
import type { CombinedError } from 'urql';
import { Link } from 'wouter';
import { code, describe } from './errors';

export function Loading({ what }: { what?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> Loading{what ? ` ${what}` : ''}…
    </div>
  );
}

export function ErrorBox({ error, retry }: { error: CombinedError | Error | string | null | undefined; retry?: () => void }) {
  if (!error) return null;
  return (
    <div className="error-box" role="alert">
      <span>{describe(error)}</span>
      {retry && (
        <button type="button" className="link" onClick={retry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

const STATUS_CLASS: Record<string, string> = {
  PENDING: 'wait',
  DISPATCHED: 'wait',
  RUNNING: 'live',
  ABORTING: 'warn',
  PASSED: 'ok',
  FAILED: 'bad',
  ABORTED: 'warn',
  ERROR: 'bad',
};

/**
 * A run's status. A dry run applies nothing, so it never "passes": it is PLANNED (every fault
 * resolved) or FAILED (some could not be), marked as a dry run wherever it is shown.
 */
export function StatusBadge({ status, dryRun = false }: { status: string; dryRun?: boolean }) {
  const shown = dryRun && status === 'PASSED' ? 'PLANNED' : status;
  const badge = (
    <span
      className={`badge badge-${STATUS_CLASS[status] ?? 'wait'}`}
      data-status={status}
      title={dryRun && status === 'PASSED' ? 'Dry run: every fault resolved, nothing applied' : undefined}
    >
      {shown}
    </span>
  );
  if (!dryRun) return badge;
  return (
    <>
      {badge}
      <span className="dry-chip" data-testid="dry-run" title="Dry run: faults resolved, nothing applied">
        dry run
      </span>
    </>
  );
}

/** Whether an error says the thing asked for is not there (or its id cannot name anything). */
export function isNotFound(err: CombinedError | null | undefined): boolean {
  const c = code(err);
  return c === 'NOT_FOUND' || c === 'BAD_USER_INPUT';
}

/** "Run 1234abcd not found", with a way back: for a missing run or template. */
export function NotFound({ what, id, back, backLabel }: { what: string; id: string; back: string; backLabel: string }) {
  return (
    <div className="page narrow" data-testid="not-found">
      <h1>
        {what} <span className="mono">{id.length > 12 ? id.slice(0, 8) : id}</span> not found
      </h1>
      <p className="muted">
        There is no {what.toLowerCase()} with this id in this project, or you cannot see it.
      </p>
      <Link href={back}>{backLabel}</Link>
    </div>
  );
}

/** Whether a run status is final. */
export function finished(status: string): boolean {
  return ['PASSED', 'FAILED', 'ABORTED', 'ERROR'].includes(status);
}

/** "3 s", "4 min 12 s", "2 h 5 min". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min`;
}

/** "12 s ago", "3 min ago", or the date for anything older than a day. */
export function formatAgo(iso: string, now: number = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '–';
  const d = now - t;
  if (d < 0) return 'in the future';
  if (d < 60_000) return `${Math.floor(d / 1000)} s ago`;
  if (d < 3_600_000) return `${Math.floor(d / 60_000)} min ago`;
  if (d < 86_400_000) return `${Math.floor(d / 3_600_000)} h ago`;
  return new Date(t).toLocaleString();
}

/** A timestamp shown relative to now, exact on hover; refreshes itself. */
export function Ago({ at }: { at: string | null | undefined }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 5000);
    return () => clearInterval(t);
  }, []);
  if (!at) return <span className="muted">–</span>;
  return (
    <time dateTime={at} title={new Date(at).toLocaleString()}>
      {formatAgo(at, now)}
    </time>
  );
}

/** Asks before something that cannot be undone. */
export function Confirm({
  title,
  children,
  confirmLabel,
  danger,
  busy,
  onConfirm,
  onCancel,
}: {
  title: string;
  children?: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  busy?: boolean;
  onConfirm(): void;
  onCancel(): void;
}) {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && onCancel();
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [onCancel]);
  return (
    <div className="modal-backdrop" onClick={onCancel}>
      <div className="modal" role="dialog" aria-modal="true" aria-label={title} onClick={(e) => e.stopPropagation()}>
        <h2>{title}</h2>
        {children}
        <div className="modal-actions">
          <button type="button" onClick={onCancel} disabled={busy}>
            Cancel
          </button>
          <button type="button" className={danger ? 'danger' : 'primary'} onClick={onConfirm} disabled={busy}>
            {busy ? 'Working…' : confirmLabel}
          </button>
        </div>
      </div>
    </div>
  );
}

/** A secret the hub shows only once, with a copy button. */
export function ShownOnce({ label, value }: { label: string; value: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div className="shown-once">
      <div className="muted">{label} (shown only now: copy it)</div>
      <div className="row">
        <code className="secret" data-testid="secret">
          {value}
        </code>
        <button
          type="button"
          onClick={() => {
            void navigator.clipboard?.writeText(value).then(() => setCopied(true));
          }}
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
      </div>
    </div>
  );
}
