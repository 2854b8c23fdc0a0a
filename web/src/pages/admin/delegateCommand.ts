// How to start a delegate with a new registration token: the command line and the systemd
// environment file (deploy/systemd/faultline-delegate.env.example), built from the form.

/** Where the packaged unit and its env file keep their settings. */
export const DEFAULT_HUB_CA = '/etc/faultline/hub-ca.pem';
export const DEFAULT_STATE_DIR = '/var/lib/faultline-delegate';

export interface DelegateCommandInput {
  /** The hub's address as the delegate dials it (the dashboard's own origin). */
  hub: string;
  token: string;
  /** Empty: the delegate registers under its host name. */
  name: string;
  labels: [string, string][];
  /** PEM of the CA that signed the hub's certificate; empty: the public roots. */
  hubCa: string;
  stateDir: string;
}

/** A delegate name as the hub accepts it: 1-63 of letters, digits, '-', '_', '.'. */
export function validDelegateName(name: string): boolean {
  return /^[A-Za-z0-9._-]{1,63}$/.test(name);
}

/** Quotes a word for a POSIX shell, only when it needs it. */
export function shellQuote(s: string): string {
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Parses "env=prod, team=web" into pairs. Errors name the field and the bad entry.
 */
export function parseLabels(text: string): { labels: [string, string][]; error?: string } {
  const labels: [string, string][] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (!item) continue;
    const eq = item.indexOf('=');
    const key = eq > 0 ? item.slice(0, eq).trim() : '';
    if (!key || /[\s=]/.test(key)) return { labels, error: `Labels: “${item}” is not key=value` };
    const value = item.slice(eq + 1).trim();
    if (/[\s,]/.test(value)) return { labels, error: `Labels: the value of “${key}” has a space` };
    labels.push([key, value]);
  }
  return { labels };
}

function hubCaFor(i: DelegateCommandInput): string {
  // A plain-text hub has no certificate to check.
  return i.hub.startsWith('https://') ? i.hubCa.trim() : '';
}

/** The command line, one flag per line (shell continuation), ready to paste. */
export function delegateCommand(i: DelegateCommandInput): string {
  const args: string[] = ['faultline-delegate', `--hub ${shellQuote(i.hub)}`];
  const ca = hubCaFor(i);
  if (ca) args.push(`--hub-ca ${shellQuote(ca)}`);
  args.push(`--token ${shellQuote(i.token)}`);
  if (i.name.trim()) args.push(`--name ${shellQuote(i.name.trim())}`);
  for (const [k, v] of i.labels) args.push(`--label ${shellQuote(`${k}=${v}`)}`);
  args.push(`--state-dir ${shellQuote(i.stateDir.trim() || DEFAULT_STATE_DIR)}`);
  return args.join(' \\\n  ');
}

/** /etc/faultline/faultline-delegate.env for the packaged systemd unit. */
export function delegateEnvFile(i: DelegateCommandInput): string {
  const lines = [`FAULTLINE_DELEGATE_HUB=${i.hub}`];
  const ca = hubCaFor(i);
  if (ca) lines.push(`FAULTLINE_DELEGATE_HUB_CA=${ca}`);
  lines.push(`FAULTLINE_DELEGATE_TOKEN=${i.token}`);
  if (i.name.trim()) lines.push(`FAULTLINE_DELEGATE_NAME=${i.name.trim()}`);
  if (i.labels.length) lines.push(`FAULTLINE_DELEGATE_LABEL=${i.labels.map(([k, v]) => `${k}=${v}`).join(',')}`);
  lines.push(`FAULTLINE_DELEGATE_STATE_DIR=${i.stateDir.trim() || DEFAULT_STATE_DIR}`);
  return lines.join('\n') + '\n';
}
