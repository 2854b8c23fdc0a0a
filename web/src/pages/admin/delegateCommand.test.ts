import { describe, expect, it } from 'vitest';
import { delegateCommand, delegateEnvFile, parseLabels, shellQuote, validDelegateName } from './delegateCommand';

const base = {
  hub: 'https://hub.example:8443',
  token: 'fl_reg_abc',
  name: 'web-1',
  labels: [['env', 'prod']] as [string, string][],
  hubCa: '/etc/faultline/hub-ca.pem',
  stateDir: '/var/lib/faultline-delegate',
};

describe('delegateCommand', () => {
  it('gives every flag the delegate needs, in order', () => {
    expect(delegateCommand(base).replace(/ \\\n {2}/g, ' ')).toBe(
      'faultline-delegate --hub https://hub.example:8443 --hub-ca /etc/faultline/hub-ca.pem --token fl_reg_abc ' +
        '--name web-1 --label env=prod --state-dir /var/lib/faultline-delegate',
    );
  });

  it('repeats --label per label and leaves --name out when empty (the host name)', () => {
    const cmd = delegateCommand({ ...base, name: '  ', labels: [['env', 'prod'], ['team', 'web']] });
    expect(cmd).not.toContain('--name');
    expect(cmd).toContain('--label env=prod \\\n  --label team=web');
  });

  it('drops --hub-ca for a plain-text hub or an empty path', () => {
    expect(delegateCommand({ ...base, hub: 'http://127.0.0.1:8080' })).not.toContain('--hub-ca');
    expect(delegateCommand({ ...base, hubCa: '' })).not.toContain('--hub-ca');
  });

  it('quotes what a shell would split', () => {
    expect(delegateCommand({ ...base, hubCa: "/etc/my ca/it's.pem" })).toContain(`--hub-ca '/etc/my ca/it'\\''s.pem'`);
  });

  it('falls back to the default state directory', () => {
    expect(delegateCommand({ ...base, stateDir: '' })).toMatch(/--state-dir \/var\/lib\/faultline-delegate$/);
  });
});

describe('delegateEnvFile', () => {
  it('writes the variables the systemd unit reads, labels comma-separated', () => {
    const env = delegateEnvFile({ ...base, labels: [['env', 'prod'], ['team', 'web']] });
    expect(env.split('\n')).toEqual([
      'FAULTLINE_DELEGATE_HUB=https://hub.example:8443',
      'FAULTLINE_DELEGATE_HUB_CA=/etc/faultline/hub-ca.pem',
      'FAULTLINE_DELEGATE_TOKEN=fl_reg_abc',
      'FAULTLINE_DELEGATE_NAME=web-1',
      'FAULTLINE_DELEGATE_LABEL=env=prod,team=web',
      'FAULTLINE_DELEGATE_STATE_DIR=/var/lib/faultline-delegate',
      '',
    ]);
  });
});

describe('parseLabels', () => {
  it('reads comma-separated key=value pairs, spaces around them ignored', () => {
    expect(parseLabels(' env=prod , team=web,,')).toEqual({ labels: [['env', 'prod'], ['team', 'web']] });
    expect(parseLabels('')).toEqual({ labels: [] });
    expect(parseLabels('tier=')).toEqual({ labels: [['tier', '']] });
  });

  it('names the field and the bad entry', () => {
    expect(parseLabels('env=prod,oops').error).toBe('Labels: “oops” is not key=value');
    expect(parseLabels('=x').error).toBe('Labels: “=x” is not key=value');
    expect(parseLabels('env=a b').error).toMatch(/^Labels: .*env/);
  });
});

describe('names and quoting', () => {
  it('accepts the delegate names the hub accepts', () => {
    expect(validDelegateName('web-1.prod_a')).toBe(true);
    expect(validDelegateName('web servers')).toBe(false);
    expect(validDelegateName('')).toBe(false);
    expect(validDelegateName('a'.repeat(64))).toBe(false);
  });

  it('quotes only when needed', () => {
    expect(shellQuote('https://h:1/x')).toBe('https://h:1/x');
    expect(shellQuote('')).toBe("''");
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote('$HOME')).toBe("'$HOME'");
  });
});
