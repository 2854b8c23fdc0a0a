// Small pieces the admin pages share: times that may lie in the future, label chips, a
// copyable block, the "owners only" notice, a form's problems.
import { useEffect, useState } from 'react';
import type { CombinedError } from 'urql';
import { ErrorBox } from '../../ui';
import { formatWhen, labelPairs } from './time';

/** An instant, relative to now (past or future), exact on hover; refreshes itself. */
export function When({ at, none = '–' }: { at: string | null | undefined; none?: string }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 15_000);
    return () => clearInterval(t);
  }, []);
  if (!at) return <span className="muted">{none}</span>;
  return (
    <time dateTime={at} title={new Date(at).toLocaleString()}>
      {formatWhen(at, now)}
    </time>
  );
}

export function Labels({ labels }: { labels: unknown }) {
  const pairs = labelPairs(labels);
  if (!pairs.length) return <span className="muted">none</span>;
  return (
    <>
      {pairs.map(([k, v]) => (
        <span key={k} className="label-chip">
          {k}={v}
        </span>
      ))}
    </>
  );
}

/** A block of text (a command, a config file) with a copy button. */
export function CopyBlock({ text, testId, label }: { text: string; testId?: string; label: string }) {
  const [copied, setCopied] = useState(false);
  useEffect(() => setCopied(false), [text]);
  return (
    <div className="copy-block">
      <pre data-testid={testId} aria-label={label}>
        {text}
      </pre>
      <button
        type="button"
        className="copy"
        aria-label={`Copy ${label.toLowerCase()}`}
        onClick={() => {
          void navigator.clipboard?.writeText(text).then(() => setCopied(true));
        }}
      >
        {copied ? 'Copied' : 'Copy'}
      </button>
    </div>
  );
}

export function OwnersOnly({ project, what }: { project: string; what: string }) {
  return (
    <div className="empty" role="note">
      Only owners of {project} can see {what}.
    </div>
  );
}

/** A token's state from its dates: what a person needs before revoking or reusing it. */
export function tokenState(
  t: { revokedAt?: string | null; expiresAt?: string | null; usedAt?: string | null; reusable?: boolean },
  now: number = Date.now(),
): 'revoked' | 'expired' | 'used' | 'active' {
  if (t.revokedAt) return 'revoked';
  if (t.expiresAt && Date.parse(t.expiresAt) <= now) return 'expired';
  if (t.reusable === false && t.usedAt) return 'used';
  return 'active';
}

const STATE_BADGE: Record<ReturnType<typeof tokenState>, string> = {
  active: 'badge-ok',
  used: 'badge-wait',
  expired: 'badge-warn',
  revoked: 'badge-bad',
};

export function TokenStateBadge({ state }: { state: ReturnType<typeof tokenState> }) {
  return <span className={`badge ${STATE_BADGE[state]}`}>{state}</span>;
}

/** Under a form, on a line of their own: the local check's message, then the hub's refusal. */
export function FormProblems({ problem, error }: { problem: string | null; error: CombinedError | undefined }) {
  return (
    <>
      {problem && (
        <div className="field-error form-wide" role="alert">
          {problem}
        </div>
      )}
      {error && (
        <div className="form-wide">
          <ErrorBox error={error} />
        </div>
      )}
    </>
  );
}
