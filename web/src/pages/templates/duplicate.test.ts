import { describe, expect, it } from 'vitest';
import { copyName, renameTemplate } from './duplicate';

describe('duplicate', () => {
  it('names the copy NAME-copy, then NAME-copy-2 when taken', () => {
    expect(copyName('web')).toBe('web-copy');
    expect(copyName('web', ['web-copy'])).toBe('web-copy-2');
    expect(copyName('web', ['web-copy', 'web-copy-2'])).toBe('web-copy-3');
  });

  it('renames metadata.name in a block, keeping comments, labels and layout', () => {
    const yaml = [
      'apiVersion: faultline.dev/v1',
      'kind: Experiment',
      'metadata:',
      '  labels:',
      '    name: not-this-one',
      '  name: "web"   # the service',
      '  description: pauses web',
      'steps:',
      '  - name: not-this-either',
    ].join('\n');
    expect(renameTemplate(yaml, 'web-copy')).toBe(yaml.replace('"web"   # the service', 'web-copy   # the service'));
  });

  it('renames it in a flow mapping', () => {
    expect(renameTemplate('metadata: {name: web, labels: {a: b}}\nkind: Experiment', 'web-copy')).toBe(
      'metadata: {name: web-copy, labels: {a: b}}\nkind: Experiment',
    );
  });

  it('gives null when there is no metadata.name', () => {
    expect(renameTemplate('kind: Experiment\n', 'x')).toBeNull();
    expect(renameTemplate('metadata:\n  description: d\nname: top\n', 'x')).toBeNull();
  });
});
