import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { exampleStepYaml, insertStep, yamlLines } from './examples';
import { deref, faultKinds, type SchemaNode } from './schema';
import { SCHEMA } from './testSchema';

const kinds = faultKinds(SCHEMA);

/** The schema's demands on a mapping: required keys, and exactly one of a `oneOf`'s sets. */
function expectFits(value: unknown, name: string) {
  const def: SchemaNode = SCHEMA.definitions[name];
  expect(value, name).toBeTypeOf('object');
  const keys = Object.keys(value as object);
  for (const k of def.required ?? []) expect(keys, `${name} needs ${k}`).toContain(k);
  const choices = (def.oneOf ?? []).filter((o) => o.required?.length);
  if (choices.length) {
    const met = choices.filter((o) => o.required!.every((k) => keys.includes(k)));
    expect(met.length, `${name}: exactly one of ${JSON.stringify(choices.map((o) => o.required))}`).toBe(1);
  }
  // No key the definition does not have (it allows no others).
  const known = new Set([...Object.keys(def.properties ?? {}), ...choices.flatMap((o) => Object.keys(o.properties ?? {}))]);
  for (const k of keys) expect(known, `${name} has no ${k}`).toContain(k);
}

describe('exampleStepYaml', () => {
  it.each(kinds.map((k) => [k.kind, k] as const))('%s: parses as YAML with every field the schema requires', (_, kind) => {
    const parsed = parse(exampleStepYaml(SCHEMA, kind.kind));
    expect(parsed).toHaveLength(1);
    const step = parsed[0] as Record<string, unknown>;
    expect(step.fault).toBe(kind.kind);
    for (const key of kind.required) expect(Object.keys(step), `${kind.kind} needs ${key}`).toContain(key);
    if (kind.target && 'target' in step) expectFits(step.target, kind.target);
    if (kind.params && 'params' in step) expectFits(step.params, kind.params);
    // Only the step's own keys.
    for (const key of Object.keys(step)) expect(['fault', 'target', 'params', 'duration']).toContain(key);
    if ('duration' in step) expect(step.duration).toMatch(new RegExp(deref(SCHEMA, SCHEMA.definitions.Duration)!.pattern as string));
  });

  it('writes the Kubernetes kinds with placeholders to change', () => {
    expect(exampleStepYaml(SCHEMA, 'pod-delete')).toBe(
      ['- fault: pod-delete', '  target:', '    namespace: default', '    labelSelector: app=my-app', '    count: 1'].join('\n'),
    );
    expect(parse(exampleStepYaml(SCHEMA, 'node-drain'))[0]).toEqual({
      fault: 'node-drain',
      target: { labelSelector: 'pool=my-pool', count: 1 },
      duration: '30s',
    });
    expect(parse(exampleStepYaml(SCHEMA, 'deployment-scale'))[0]).toMatchObject({ target: { namespace: 'default', name: 'my-app' }, params: { replicas: 0 } });
  });

  it('every kind in one template the hub’s tests validate (server/src/template_cli.rs)', async () => {
    const steps = kinds.map((k) => exampleStepYaml(SCHEMA, k.kind).replace(/^/gm, '  ')).join('\n');
    const template = [
      '# Written by web/src/editor/examples.test.ts (`npx vitest run -u` rewrites it): every fault',
      '# kind\'s example step of the editor\'s "Add step" menu. The hub\'s tests check it against the',
      '# parser and the schema, so a step the menu inserts is one the hub takes.',
      'apiVersion: faultline.dev/v1',
      'kind: Experiment',
      'metadata: {name: editor-every-kind}',
      'hypothesis:',
      '  probes:',
      '    - name: up',
      '      http: {url: "http://127.0.0.1:8080/health"}',
      'steps:',
      steps,
      '',
    ].join('\n');
    expect(parse(template).steps).toHaveLength(kinds.length);
    await expect(template).toMatchFileSnapshot('./every-kind.yaml');
  });
});

describe('yamlLines', () => {
  it('quotes what YAML would read as something else', () => {
    expect(yamlLines({ a: '127.0.0.1:80', b: 'true', c: '10', d: 'app=web', e: ['x', 1], f: {} })).toEqual([
      'a: "127.0.0.1:80"',
      'b: "true"',
      'c: "10"',
      'd: app=web',
      'e: [x, 1]',
      'f: {}',
    ]);
    const nested = { toxics: [{ type: 'latency', attributes: { latency: 100 } }] };
    expect(parse(yamlLines(nested).join('\n'))).toEqual(nested);
  });
});

describe('insertStep', () => {
  const STEP = '- fault: node-cordon\n  target:\n    labelSelector: pool=my-pool';
  const apply = (doc: string) => {
    const e = insertStep(doc, STEP)!;
    const out = doc.slice(0, e.from) + e.insert + doc.slice(e.to);
    return { out, selected: out.slice(e.select.from, e.select.to) };
  };

  it('after the last step, at the list’s indentation, before the next top-level key', () => {
    const doc = 'steps:\n    - pause: 1s\n    - fault: x\n      duration: 1s\n\n# after\nabortWhen: []\n';
    const { out, selected } = apply(doc);
    expect(out).toBe(
      'steps:\n    - pause: 1s\n    - fault: x\n      duration: 1s\n    - fault: node-cordon\n      target:\n        labelSelector: pool=my-pool\n\n# after\nabortWhen: []\n',
    );
    expect(selected).toBe('    - fault: node-cordon\n      target:\n        labelSelector: pool=my-pool');
    expect(parse(out).steps).toHaveLength(3);
  });

  it('a list at the key’s column, an empty list, no list', () => {
    expect(apply('steps:\n- pause: 1s\n').out).toBe(`steps:\n- pause: 1s\n${STEP}\n`);
    expect(apply('kind: Experiment\nsteps: [] # none yet\n').out).toBe(`kind: Experiment\nsteps:\n  ${STEP.replace(/\n/g, '\n  ')}\n`);
    expect(apply('kind: Experiment').out).toBe(`kind: Experiment\nsteps:\n  ${STEP.replace(/\n/g, '\n  ')}\n`);
    for (const doc of ['steps:\n- pause: 1s\n', 'kind: Experiment\nsteps: []\n', 'kind: Experiment', '']) {
      expect(parse(apply(doc).out).steps.at(-1)).toEqual({ fault: 'node-cordon', target: { labelSelector: 'pool=my-pool' } });
    }
  });

  it('leaves a flow list alone', () => {
    expect(insertStep('steps: [{pause: 1s}]\n', STEP)).toBeNull();
  });
});
