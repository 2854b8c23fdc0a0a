import { describe, expect, it } from 'vitest';
import { byFamily, familyOf } from './families';
import { faultKinds, fieldsOf, firstSentence, kindRequirements, loadSchema, schemaAt, valuesOf } from './schema';
import { SCHEMA } from './testSchema';

const step = SCHEMA.definitions.Step;
const kinds = faultKinds(SCHEMA);
const kind = (k: string) => kinds.find((x) => x.kind === k)!;

describe('faultKinds', () => {
  it('lists every kind of the schema, the Kubernetes ones included, with their target and params', () => {
    const consts = step.properties!.fault.oneOf!.map((o) => o.const);
    expect(kinds.map((k) => k.kind)).toEqual(consts);
    expect(kinds.map((k) => k.kind)).toEqual(
      expect.arrayContaining(['process-kill', 'pod-delete', 'container-kill', 'deployment-scale', 'statefulset-scale', 'node-cordon', 'node-drain']),
    );
    expect(kind('pod-delete')).toMatchObject({ target: 'PodTarget', params: 'PodDeleteParams', required: ['target'] });
    expect(kind('node-drain')).toMatchObject({ target: 'NodeTarget', params: 'NodeDrainParams', required: ['target', 'duration'] });
    expect(kind('node-cordon').params).toBeUndefined();
    expect(kind('cpu-stress').target).toBeUndefined();
    expect(kind('container-kill').description).toMatch(/^Restart a container/);
  });

  it('says what a kind needs, down to its target’s fields', () => {
    expect(kindRequirements(SCHEMA, kind('deployment-scale'))).toEqual(['target (namespace; name)', 'params (replicas)', 'duration']);
    expect(kindRequirements(SCHEMA, kind('process-kill'))).toEqual(['target (one of pid, pidFile, name, command)']);
  });

  it('the schema loads lazily as the same object', async () => {
    const loaded = await loadSchema();
    expect(faultKinds(loaded)).toEqual(kinds);
    expect(await loadSchema()).toBe(loaded);
  });
});

describe('fieldsOf', () => {
  it('a step’s target and params follow its fault; the other step types drop out', () => {
    const fields = fieldsOf(SCHEMA, step, { fault: 'pod-delete' });
    const keys = fields.map((f) => f.key);
    expect(keys).toEqual(expect.arrayContaining(['fault', 'target', 'params', 'duration', 'name']));
    expect(keys).not.toContain('pause');
    expect(keys).not.toContain('parallel');
    expect(fields.find((f) => f.key === 'target')).toMatchObject({ required: true, description: expect.stringContaining('Which pods') });
    expect(fieldsOf(SCHEMA, step, { fault: 'cpu-stress' }).map((f) => f.key)).not.toContain('target');
    expect(fieldsOf(SCHEMA, step, { fault: 'node-cordon' }).map((f) => f.key)).not.toContain('params');
    // No fault yet: every step type's key.
    expect(fieldsOf(SCHEMA, step).map((f) => f.key)).toEqual(expect.arrayContaining(['fault', 'pause', 'parallel', 'action']));
  });

  it('walks a path to a kind’s target', () => {
    const path = [{ key: 'steps' }, { item: true as const }, { key: 'target' }];
    const target = schemaAt(SCHEMA, path, [{}, undefined, { fault: 'statefulset-scale' }]);
    expect(fieldsOf(SCHEMA, target).filter((f) => f.required).map((f) => f.key)).toEqual(['name', 'namespace']);
  });
});

describe('valuesOf', () => {
  it('offers a signal’s names, not the other spellings the hub accepts', () => {
    const signal = fieldsOf(SCHEMA, SCHEMA.definitions.KillParams).find((f) => f.key === 'signal')!.schema;
    const values = valuesOf(SCHEMA, signal);
    expect(values.map((v) => v.value)).toEqual(['KILL', 'TERM', 'INT', 'HUP', 'QUIT', 'USR1', 'USR2']);
    expect(values[1].description).toMatch(/^SIGTERM/);
  });

  it('true and false for a boolean', () => {
    const force = fieldsOf(SCHEMA, SCHEMA.definitions.NodeDrainParams).find((f) => f.key === 'force')!.schema;
    expect(valuesOf(SCHEMA, force).map((v) => v.value)).toEqual(['true', 'false']);
  });
});

describe('families', () => {
  it('puts every kind in a named family (a new kind of target needs a line in families.ts)', () => {
    expect(kinds.filter((k) => familyOf(k) === 'Other').map((k) => k.kind)).toEqual([]);
    const groups = Object.fromEntries(byFamily(kinds).map(([f, ks]) => [f, ks.map((k) => k.kind)]));
    expect(groups.Kubernetes).toEqual(['pod-delete', 'deployment-scale', 'statefulset-scale', 'node-cordon', 'node-drain', 'container-kill']);
    expect(groups.Resources).toEqual(['cpu-stress', 'memory-stress', 'io-stress', 'disk-fill']);
    expect(groups['HTTP / proxy']).toEqual(['http-fault', 'tcp-proxy']);
    expect(groups['Inside pods']).toContain('pod-network-loss');
    expect(groups['Inside pods']).toContain('pod-process-kill');
  });
});

describe('firstSentence', () => {
  it('cuts at the first stop', () => {
    expect(firstSentence('Scale a Deployment to `params.replicas`; the rest.')).toBe('Scale a Deployment to `params.replicas`');
    expect(firstSentence('One. Two.')).toBe('One.');
    expect(firstSentence('no stop')).toBe('no stop');
    // Not inside code or parentheses, not after e.g.
    expect(firstSentence('Mark them (`spec.unschedulable: true`; really) for `a. b`. Then.')).toBe('Mark them (`spec.unschedulable: true`; really) for `a. b`.');
    expect(firstSentence('A name, e.g. `web`. More.')).toBe('A name, e.g. `web`.');
  });
});
