import { describe, expect, it } from 'vitest';
import { yamlContextAt } from './yamlContext';

/** The context at the `|` in `doc` (the bar removed). */
function at(doc: string) {
  const pos = doc.indexOf('|');
  const text = doc.slice(0, pos) + doc.slice(pos + 1);
  const c = yamlContextAt(text, pos);
  return c && { ...c, typed: text.slice(c.from, pos) };
}

const STEP = ['apiVersion: faultline.dev/v1', 'steps:', '  - fault: pod-delete', '    target:'];

describe('yamlContextAt', () => {
  it('finds a key being typed in a step’s target, with the step’s fault on the way', () => {
    const c = at([...STEP, '      namespace: shop', '      lab|'].join('\n'));
    expect(c).toMatchObject({ position: 'key', text: 'lab', typed: 'lab', flow: false });
    expect(c!.path).toEqual([{ key: 'steps' }, { item: true }, { key: 'target' }]);
    expect(c!.mappings[2]).toEqual({ fault: 'pod-delete', target: '' });
    expect(c!.mappings[3]).toEqual({ namespace: 'shop' });
  });

  it('sees keys written below the cursor too', () => {
    const c = at(['steps:', '  - target:', '      |', '    fault: node-drain', '    duration: 1m'].join('\n'));
    expect(c!.path).toEqual([{ key: 'steps' }, { item: true }, { key: 'target' }]);
    expect(c!.mappings[2]).toEqual({ target: '', fault: 'node-drain', duration: '1m' });
  });

  it('finds the value of a key, after the colon', () => {
    expect(at([...STEP.slice(0, 2), '  - fault: |'].join('\n'))).toMatchObject({
      position: 'value',
      path: [{ key: 'steps' }, { item: true }, { key: 'fault' }],
      text: '',
    });
    const c = at([...STEP, '      namespace: shop', '    params:', '      signal: TE|'].join('\n'));
    expect(c).toMatchObject({ position: 'value', text: 'TE', typed: 'TE' });
    expect(c!.path).toEqual([{ key: 'steps' }, { item: true }, { key: 'params' }, { key: 'signal' }]);
  });

  it('a new list item: `- ` starts a mapping that is the item', () => {
    const c = at(['steps:', '  - fault: process-kill', '    target: {pid: 42}', '  - fa|'].join('\n'));
    expect(c).toMatchObject({ position: 'key', text: 'fa', path: [{ key: 'steps' }, { item: true }] });
    expect(c!.mappings[2]).toEqual({}); // the earlier item's keys are not this one's
  });

  it('a list at its key’s own column (compact style)', () => {
    const c = at(['steps:', '- fault: node-cordon', '  tar|'].join('\n'));
    expect(c).toMatchObject({ position: 'key', path: [{ key: 'steps' }, { item: true }] });
    expect(c!.mappings[2]).toEqual({ fault: 'node-cordon' });
    expect(at(['steps:', '- fault: x', 'hypo|'].join('\n'))).toMatchObject({ path: [], mappings: [{ steps: '' }] });
  });

  it('a parallel group’s faults are items of its list', () => {
    const c = at(['steps:', '  - parallel:', '      - fault: container-kill', '        target:', '          |'].join('\n'));
    expect(c!.path).toEqual([{ key: 'steps' }, { item: true }, { key: 'parallel' }, { item: true }, { key: 'target' }]);
    expect(c!.mappings[4]).toEqual({ fault: 'container-kill', target: '' });
  });

  it('inside flow mappings on the line', () => {
    const c = at([...STEP.slice(0, 3), '    target: {namespace: shop, lab|}'].join('\n'));
    expect(c).toMatchObject({ position: 'key', text: 'lab', flow: true });
    expect(c!.path).toEqual([{ key: 'steps' }, { item: true }, { key: 'target' }]);
    expect(c!.mappings[3]).toEqual({ namespace: 'shop' });

    const v = at([...STEP.slice(0, 3), '    params: {signal: |, container: app}'].join('\n'));
    expect(v).toMatchObject({ position: 'value', text: '', path: [{ key: 'steps' }, { item: true }, { key: 'params' }, { key: 'signal' }] });

    // A whole step as a flow mapping, nested: the fault is a sibling on the same line.
    const n = at(['steps:', '  - {fault: node-drain, params: {grace|}, duration: 1m}'].join('\n'));
    expect(n!.path).toEqual([{ key: 'steps' }, { item: true }, { key: 'params' }]);
    expect(n!.mappings[2]).toEqual({ fault: 'node-drain', params: '', duration: '1m' });
    expect(n!.text).toBe('grace');

    const l = at(['steps:', '  - fault: pod-delete', '    target: {names: [web-0, w|]}'].join('\n'));
    expect(l).toMatchObject({ position: 'value', text: 'w', path: [{ key: 'steps' }, { item: true }, { key: 'target' }, { key: 'names' }, { item: true }] });
  });

  it('top level and probes', () => {
    expect(at('apiVersion: faultline.dev/v1\nhyp|')).toMatchObject({ position: 'key', path: [], text: 'hyp' });
    const c = at(['hypothesis:', '  probes:', '    - name: web', '      mo|'].join('\n'));
    expect(c!.path).toEqual([{ key: 'hypothesis' }, { key: 'probes' }, { item: true }]);
    expect(c!.mappings[3]).toEqual({ name: 'web' });
  });

  it('nothing in comments and quoted strings', () => {
    expect(at('steps:\n  # a comment |')).toBeNull();
    expect(at('metadata:\n  description: "half |')).toBeNull();
    // An apostrophe inside a plain scalar is not a quote.
    expect(at("metadata:\n  description: it's |")).toMatchObject({ position: 'value', text: "it's " });
  });
});
