// A minimal step for each fault kind, written from the schema: the keys the kind requires and,
// inside them, each definition's required fields (the first of a `oneOf`'s choices), with
// placeholders to change (`namespace: default`). And where such a step goes in a template: at the
// end of `steps`. The editor's "Add step" menu uses both; completion.ts offers the same fields.
import { deref, faultKinds, fieldSchema, definitionOf, valuesOf, type SchemaNode, type TemplateSchema } from './schema';

/** Placeholders for fields the schema only types: by `Definition.field`, else by field name. */
const PLACEHOLDERS: Record<string, unknown> = {
  duration: '30s',
  namespace: 'default',
  name: 'my-app',
  labelSelector: 'app=my-app',
  'NodeTarget.labelSelector': 'pool=my-pool',
  pidFile: '/run/my-service.pid',
  interface: 'eth0',
  path: '/var/tmp',
  listen: '127.0.0.1:18080',
  upstream: '127.0.0.1:8080',
  'HttpProxyTarget.upstream': 'http://127.0.0.1:8080',
  percent: 10,
  latency: '100ms',
  'Latency.latency': 100,
  fillPercent: 80,
  // A documentation address (TEST-NET-1): nothing real is cut off until it is changed.
  'PartitionParams.destinations': ['192.0.2.10'],
};

/**
 * Fields written beyond the required ones, by definition: what the hub checks and the schema
 * cannot say (a pod or node target names a selector or the objects, a partition what it cuts
 * off), the friendlier of a
 * target's choices, a small blast radius (one pod, one node) for a first run, and a toxic that
 * does something.
 */
const SUGGESTED: Record<string, string[]> = {
  ProcessTarget: ['pidFile'],
  PodTarget: ['labelSelector', 'count'],
  PodScopeTarget: ['labelSelector', 'count'],
  NodeTarget: ['labelSelector', 'count'],
  PartitionParams: ['destinations'],
  Latency: ['latency'],
};

/** What the hub asks of one kind alone, beyond its definitions: a pod-process-kill names the process. */
const KIND_TARGETS: Record<string, Record<string, unknown>> = {
  'pod-process-kill': { process: 'my-process' },
};

const typesOf = (n: SchemaNode) => (Array.isArray(n.type) ? n.type : n.type ? [n.type] : []);

function example(root: TemplateSchema, raw: SchemaNode | undefined, field: string, owner: string, depth: number): unknown {
  const placeholder = PLACEHOLDERS[`${owner}.${field}`] ?? PLACEHOLDERS[field];
  if (placeholder !== undefined) return placeholder;
  const n = deref(root, raw);
  if (!n || depth > 8) return null;
  if (n.const !== undefined) return n.const;
  if (n.examples?.length) return n.examples[0];
  const types = typesOf(n);
  if (n.properties || types.includes('object')) return exampleObject(root, n, definitionOf(raw) ?? '', depth);
  if (types.includes('array')) return [example(root, n.items, '', '', depth + 1)];
  if (types.includes('integer') || types.includes('number')) return n.minimum ?? (n.exclusiveMinimum ?? 0) + 1;
  if (types.includes('boolean')) return false;
  return valuesOf(root, n)[0]?.value ?? 'CHANGE-ME';
}

function exampleObject(root: TemplateSchema, n: SchemaNode, name: string, depth: number): Record<string, unknown> {
  const keys = [...(n.required ?? []), ...(SUGGESTED[name] ?? [])];
  const choices = (n.oneOf ?? []).filter((o) => o.required?.length);
  let props = n.properties ?? {};
  if (choices.length && !choices.some((o) => o.required!.every((k) => keys.includes(k)))) {
    keys.push(...choices[0].required!);
    // A choice may bring its own fields (a toxic's `type` and `attributes`).
    props = { ...props, ...choices[0].properties };
  }
  const out: Record<string, unknown> = {};
  for (const k of new Set(keys)) out[k] = example(root, props[k], k, name, depth + 1);
  return out;
}

/** The minimal step of `kind`: `fault` and what the kind requires, with placeholders. */
export function exampleStep(root: TemplateSchema, kind: string): Record<string, unknown> {
  const k = faultKinds(root).find((x) => x.kind === kind);
  if (!k) throw new Error(`no fault kind ${kind} in the schema`);
  const step: Record<string, unknown> = { fault: kind };
  for (const key of k.required) step[key] = example(root, fieldSchema(root, root.definitions.Step, key, { fault: kind }), key, 'Step', 0);
  const extra = KIND_TARGETS[kind];
  if (extra && step.target && typeof step.target === 'object') Object.assign(step.target as object, extra);
  return step;
}

const PLAIN = /^[A-Za-z0-9_/][\w./=-]*$/;
const AMBIGUOUS = /^(true|false|null|yes|no|on|off|y|n|~|[-+]?(\d[\d_]*)?\.?\d*(e[-+]?\d+)?|0x[\da-f]+|0o[0-7]+)$/i;

/** A scalar, or a list of them, or an empty mapping, as YAML writes it on one line. */
function inline(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(inline).join(', ')}]`;
  if (v !== null && typeof v === 'object') return '{}';
  if (typeof v === 'string') return PLAIN.test(v) && !AMBIGUOUS.test(v) ? v : JSON.stringify(v);
  return String(v);
}

/** A mapping with keys, or a list holding one: written as block YAML. */
const isBlock = (v: unknown): boolean =>
  Array.isArray(v) ? v.some(isBlock) : v !== null && typeof v === 'object' && Object.keys(v).length > 0;

/** `v` as block YAML lines at `indent` (mappings and lists of them; scalars inline). */
export function yamlLines(v: unknown, indent = 0): string[] {
  const pad = ' '.repeat(indent);
  if (Array.isArray(v)) {
    return v.flatMap((item) => {
      if (!isBlock(item)) return [`${pad}- ${inline(item)}`];
      const [first, ...rest] = yamlLines(item, indent + 2);
      return [`${pad}- ${first.trimStart()}`, ...rest];
    });
  }
  return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) =>
    isBlock(x) ? [`${pad}${k}:`, ...yamlLines(x, indent + 2)] : [`${pad}${k}: ${inline(x)}`],
  );
}

/** The step as a list item (`- fault: …`), at column 0. */
export function exampleStepYaml(root: TemplateSchema, kind: string): string {
  return yamlLines([exampleStep(root, kind)]).join('\n');
}

/** A change to a document, and what to select after it. */
export interface TextEdit {
  from: number;
  to: number;
  insert: string;
  select: { from: number; to: number };
}

const indented = (text: string, n: number) =>
  text
    .split('\n')
    .map((l) => ' '.repeat(n) + l)
    .join('\n');

/**
 * Where `step` (a list item at column 0) goes in `doc`: after the last line of the top-level
 * `steps` list, at its items' indentation; a `steps` key is added when there is none, and
 * `steps: []` becomes a block list. Null for a `steps` written as a non-empty flow list.
 */
export function insertStep(doc: string, step: string): TextEdit | null {
  const lines = doc.split('\n');
  const starts: number[] = [];
  lines.reduce((at, l) => (starts.push(at), at + l.length + 1), 0);
  const row = lines.findIndex((l) => /^steps\s*:/.test(l));
  if (row < 0) {
    const head = `${doc === '' || doc.endsWith('\n') ? '' : '\n'}steps:\n`;
    const body = indented(step, 2);
    const from = doc.length + head.length;
    return { from: doc.length, to: doc.length, insert: `${head}${body}\n`, select: { from, to: from + body.length } };
  }
  const value = lines[row].replace(/^steps\s*:/, '').replace(/(^|\s)#.*$/, '').trim();
  if (value === '[]') {
    const from = starts[row] + lines[row].indexOf(':') + 1;
    const to = starts[row] + lines[row].length;
    const body = indented(step, 2);
    return { from, to, insert: `\n${body}`, select: { from: from + 1, to: from + 1 + body.length } };
  }
  if (value) return null;
  let last = row;
  let itemIndent: number | null = null;
  for (let r = row + 1; r < lines.length; r++) {
    const l = lines[r];
    if (/^\s*(#.*)?$/.test(l)) continue;
    if (!/^\s/.test(l) && !/^-(\s|$)/.test(l)) break; // the next top-level key
    last = r;
    const item = /^(\s*)-(\s|$)/.exec(l);
    if (itemIndent === null && item) itemIndent = item[1].length;
  }
  const body = indented(step, itemIndent ?? 2);
  const from = starts[last] + lines[last].length;
  return { from, to: from, insert: `\n${body}`, select: { from: from + 1, to: from + 1 + body.length } };
}
