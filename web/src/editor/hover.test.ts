import { describe, expect, it } from 'vitest';
import { describeAt } from './hover';
import { SCHEMA } from './testSchema';

/** What hovering the first `word` after `after` in `doc` shows. */
function hover(doc: string, word: string, after = '') {
  const pos = doc.indexOf(word, doc.indexOf(after)) + 1;
  return describeAt(SCHEMA, doc, pos);
}

const DRAIN = ['steps:', '  - fault: node-drain', '    target: {labelSelector: pool=batch, count: 1}', '    params:', '      force: true', '    duration: 5m'].join('\n');

describe('describeAt', () => {
  it('a fault kind: its description and what it needs', () => {
    const d = hover(DRAIN, 'node-drain');
    expect(d).toMatchObject({ title: 'node-drain', needs: ['target', 'duration'] });
    expect(d!.description).toContain('through the Eviction API');
    expect(DRAIN.slice(d!.from, d!.to)).toBe('node-drain');
    const pod = hover('steps:\n  - {fault: pod-delete, target: {namespace: a, names: [b]}}', 'pod-delete');
    expect(pod).toMatchObject({ title: 'pod-delete', needs: ['target (namespace)'] });
  });

  it('a key: its description for this kind, and its required fields', () => {
    const target = hover('steps:\n  - fault: container-kill\n    target:\n      namespace: shop\n', 'target');
    expect(target).toMatchObject({ title: 'target (required)', needs: ['namespace'] });
    expect(target!.description).toContain('Which pods');
    expect(hover(DRAIN, 'labelSelector')!.description).toContain('node-role.kubernetes.io/worker');
    expect(hover(DRAIN, 'force')!.description).toContain('kubectl drain --force');
    expect(hover(DRAIN, 'duration')).toMatchObject({ title: 'duration (required)' });
  });

  it('an enum value', () => {
    const d = hover('steps:\n  - fault: process-kill\n    params: {signal: HUP}', 'HUP');
    expect(d).toMatchObject({ title: 'signal: HUP', description: 'SIGHUP: hang-up; many daemons reload on it.' });
  });

  it('nothing for what the schema does not know', () => {
    expect(hover(DRAIN, 'pool=batch')).toBeNull(); // a free value
    expect(hover('steps:\n  - fault: no-such-kind', 'no-such-kind')).toBeNull();
    expect(hover('steps:\n  - fault: x\n    colour: red', 'colour')).toBeNull();
    expect(hover('# fault: pod-delete', 'pod-delete')).toBeNull();
  });
});
