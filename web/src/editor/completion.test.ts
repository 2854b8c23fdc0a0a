import { describe, expect, it } from 'vitest';
import { CompletionContext, type Completion } from '@codemirror/autocomplete';
import { EditorState } from '@codemirror/state';
import { completionsAt, templateCompletions } from './completion';
import { faultKinds, firstSentence } from './schema';
import { SCHEMA } from './testSchema';

/** The completion at the `|` in `doc` (the bar removed). */
function complete(doc: string, explicit = false) {
  const pos = doc.indexOf('|');
  const text = doc.slice(0, pos) + doc.slice(pos + 1);
  return completionsAt(SCHEMA, text, pos, explicit);
}

const labels = (r: ReturnType<typeof complete>) => r?.options.map((o) => o.label) ?? [];
const option = (r: ReturnType<typeof complete>, label: string) => r?.options.find((o) => o.label === label);
/** The text of an option's info panel. */
const infoText = (o: Completion | undefined) => {
  const info = o?.info;
  return typeof info === 'function' ? ((info(o!) as HTMLElement).textContent ?? '') : (info ?? '');
};

const KIND_STEP = (kind: string, ...more: string[]) => ['apiVersion: faultline.dev/v1', 'steps:', `  - fault: ${kind}`, ...more].join('\n');

describe('completion of fault kinds', () => {
  it('after `fault: ` offers every kind with its one-line description, grouped by family', () => {
    const r = complete('steps:\n  - fault: |');
    expect(labels(r)).toEqual(faultKinds(SCHEMA).map((k) => k.kind));
    const drain = option(r, 'node-drain');
    // The first sentence, its code marks dropped.
    expect(drain?.detail).toBe('Cordon the target nodes, then evict their pods through the Eviction API for duration, as kubectl drain does: PodDisruptionBudgets are honoured (a 429 is retried until the step ends), DaemonSet and mirror pods stay.');
    const kill = option(r, 'container-kill');
    expect(kill?.detail).toBe(firstSentence(faultKinds(SCHEMA).find((k) => k.kind === 'container-kill')!.description).replace(/`/g, ''));
    expect(kill?.detail).toMatch(/^Restart a container of the target pods by signalling its main process \(kill 1 run/);
    // Grouped by family, in the menu's order.
    const section = (label: string) => option(r, label)?.section as { name: string; rank: number };
    expect(section('node-drain').name).toBe('Kubernetes');
    expect(section('process-kill').name).toBe('Process');
    expect(section('process-kill').rank).toBeLessThan(section('network-loss').rank);
    expect(section('network-loss').rank).toBeLessThan(section('node-drain').rank);
    // The info has the whole description and what the kind needs.
    expect(infoText(kill)).toContain('the step watches for restartWait');
    expect(infoText(option(r, 'deployment-scale'))).toContain('Needs: target (namespace; name), params (replicas), duration');
    expect(r?.from).toBe('steps:\n  - fault: '.length);
  });

  it('narrows as a kind is typed, and right after the colon inserts the space', () => {
    const r = complete('steps:\n  - fault: node-d|');
    expect(r?.from).toBe('steps:\n  - fault: '.length);
    expect(r?.validFor).toBeInstanceOf(RegExp);
    expect((r?.validFor as RegExp).test('node-dr')).toBe(true);
    const tight = complete('steps:\n  - fault:|');
    expect(option(tight, 'pod-delete')?.apply).toBe(' pod-delete');
  });

  it('in a parallel group and a flow mapping too', () => {
    expect(labels(complete('steps:\n  - parallel:\n      - fault: |'))).toContain('node-cordon');
    expect(labels(complete('steps:\n  - {fault: |}'))).toContain('statefulset-scale');
  });

  it('not for a `fault` that is not a step’s', () => {
    expect(labels(complete('metadata:\n  fault: |'))).toEqual([]);
  });
});

describe('completion of keys', () => {
  it('a pod-delete target’s keys, namespace required, with descriptions', () => {
    const r = complete(KIND_STEP('pod-delete', '    target:', '      |'), true);
    expect(labels(r)).toEqual(expect.arrayContaining(['namespace', 'labelSelector', 'fieldSelector', 'names', 'count', 'percentage']));
    expect(option(r, 'namespace')).toMatchObject({ detail: 'required', apply: 'namespace: ', boost: 1 });
    expect(option(r, 'labelSelector')?.detail).toBeUndefined();
    expect(infoText(option(r, 'labelSelector'))).toContain('as kubectl -l takes it');
  });

  it('leaves out keys already there, also in a flow mapping', () => {
    const r = complete(KIND_STEP('pod-delete', '    target: {namespace: shop, l|}'));
    expect(labels(r)).toContain('labelSelector');
    expect(labels(r)).not.toContain('namespace');
  });

  it('node-drain params: its own keys, not another kind’s', () => {
    const r = complete(KIND_STEP('node-drain', '    params:', '      |'), true);
    expect(labels(r).sort()).toEqual(['deleteEmptyDirData', 'force', 'gracePeriod', 'retryInterval']);
    expect(infoText(option(r, 'deleteEmptyDirData'))).toContain('--delete-emptydir-data');
    // The same place under a pod-delete step: its params.
    expect(labels(complete(KIND_STEP('pod-delete', '    params:', '      |'), true)).sort()).toEqual(['force', 'gracePeriod', 'interval']);
  });

  it('a step’s keys follow its kind', () => {
    const cordon = labels(complete(KIND_STEP('node-cordon', '    |'), true));
    expect(cordon).toEqual(expect.arrayContaining(['target', 'duration', 'name', 'weight']));
    expect(cordon).not.toContain('params'); // node-cordon takes none
    expect(cordon).not.toContain('fault');
    expect(cordon).not.toContain('pause');
    // A mapping's value goes on the next lines; a scalar's after the space.
    expect(option(complete(KIND_STEP('node-cordon', '    t|')), 'target')?.apply).toBe('target:');
    expect(option(complete(KIND_STEP('node-cordon', '    d|')), 'duration')?.apply).toBe('duration: ');
    expect(option(complete('steps:\n  - {fault: node-cordon, t|}'), 'target')?.apply).toBe('target: ');
    expect(labels(complete('steps:\n  - |', true))).toEqual(expect.arrayContaining(['fault', 'pause', 'parallel', 'action']));
  });

  it('only once a letter is typed, unless asked (Enter at a line’s end stays a new line)', () => {
    expect(complete(KIND_STEP('pod-delete', '    target:', '      |'))).toBeNull();
    expect(labels(complete(KIND_STEP('pod-delete', '    target:', '      la|')))).toContain('labelSelector');
  });

  it('top-level and probe keys', () => {
    expect(labels(complete('apiVersion: faultline.dev/v1\n|', true))).toEqual(
      expect.arrayContaining(['kind', 'metadata', 'hypothesis', 'steps', 'target', 'abortWhen', 'rollbacks']),
    );
    expect(labels(complete('apiVersion: faultline.dev/v1\n|', true))).not.toContain('apiVersion');
    const probe = complete('hypothesis:\n  probes:\n    - name: web\n      |', true);
    expect(labels(probe)).toEqual(expect.arrayContaining(['http', 'tcp', 'k8s', 'mode', 'interval']));
    expect(labels(probe)).not.toContain('name');
  });
});

describe('completion of values', () => {
  it('a signal’s names', () => {
    const r = complete(KIND_STEP('process-kill', '    target: {pidFile: /run/x.pid}', '    params:', '      signal: |'));
    expect(labels(r)).toEqual(['KILL', 'TERM', 'INT', 'HUP', 'QUIT', 'USR1', 'USR2']);
    expect(option(r, 'TERM')?.detail).toBe('SIGTERM: asks the process to shut down cleanly.');
    expect(labels(complete(KIND_STEP('container-kill', '    params: {signal: |}')))).toContain('INT');
  });

  it('constants, enums and booleans elsewhere', () => {
    expect(labels(complete('apiVersion: |'))).toEqual(['faultline.dev/v1']);
    expect(labels(complete('hypothesis:\n  probes:\n    - name: a\n      mode: |'))).toEqual(['sot', 'eot', 'edge', 'continuous', 'onChaos']);
    expect(labels(complete(KIND_STEP('node-drain', '    params: {force: |}')))).toEqual(['true', 'false']);
    expect(complete(KIND_STEP('pod-delete', '    target: {namespace: |}'))).toBeNull(); // free text
  });
});

describe('templateCompletions', () => {
  it('answers a CodeMirror completion request, loading the schema', async () => {
    const doc = 'steps:\n  - fault: node-';
    const state = EditorState.create({ doc });
    const r = await templateCompletions(new CompletionContext(state, doc.length, false));
    expect(r?.from).toBe('steps:\n  - fault: '.length);
    expect(r?.options.map((o) => o.label)).toEqual(expect.arrayContaining(['node-drain', 'node-cordon', 'container-kill']));
  });
});
