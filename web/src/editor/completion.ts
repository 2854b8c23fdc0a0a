// Completion in the template editor, from the template's JSON Schema: after `fault:` every kind
// (grouped by family, with its description and what it needs), the keys of the mapping at the
// cursor (a step's `target` and `params` by its kind, a probe's, the top level's; required
// first) and the values a field takes (a signal, a probe's mode, true/false).
import type { Completion, CompletionContext, CompletionResult } from '@codemirror/autocomplete';
import { docElement } from './docText';
import { FAMILIES, familyOf } from './families';
import {
  deref,
  faultKinds,
  fieldsOf,
  firstSentence,
  isStep,
  kindRequirements,
  loadSchema,
  requirements,
  schemaAt,
  valuesOf,
  type SchemaNode,
  type TemplateSchema,
} from './schema';
import { yamlContextAt, type YamlContext } from './yamlContext';

/** Descriptions write code in backquotes; a one-line detail shows plain text. */
const plain = (text: string) => text.replace(/`/g, '');

/** A mapping or a list: in block style its value starts on the next line. */
function takesBlock(root: TemplateSchema, node: SchemaNode | undefined): boolean {
  const n = deref(root, node);
  const types = Array.isArray(n?.type) ? n.type : [n?.type];
  return !!n && (!!n.properties || types.includes('object') || types.includes('array'));
}

function keyOptions(root: TemplateSchema, c: YamlContext): Completion[] {
  const here = c.mappings[c.path.length] ?? {};
  return fieldsOf(root, schemaAt(root, c.path, c.mappings), here)
    .filter((f) => !(f.key in here))
    .map((f) => {
      const needs = requirements(root, f.schema);
      return {
        label: f.key,
        type: 'property',
        detail: f.required ? 'required' : undefined,
        info: () => docElement(f.key, f.description, needs),
        apply: !c.flow && takesBlock(root, f.schema) ? `${f.key}:` : `${f.key}: `,
        boost: f.required ? 1 : 0,
      };
    });
}

function valueOptions(root: TemplateSchema, c: YamlContext): Completion[] {
  const last = c.path.at(-1);
  const parent = deref(root, schemaAt(root, c.path.slice(0, -1), c.mappings));
  if (last && 'key' in last && last.key === 'fault' && isStep(root, parent)) {
    return faultKinds(root).map((k) => ({
      label: k.kind,
      type: 'enum',
      detail: plain(firstSentence(k.description)),
      info: () => docElement(k.kind, k.description, kindRequirements(root, k)),
      section: { name: familyOf(k), rank: FAMILIES.indexOf(familyOf(k)) },
    }));
  }
  return valuesOf(root, schemaAt(root, c.path, c.mappings)).map((v) => ({
    label: v.value,
    type: v.value === 'true' || v.value === 'false' ? 'keyword' : 'enum',
    detail: plain(firstSentence(v.description)) || undefined,
    info: v.description ? () => docElement(v.value, v.description) : undefined,
  }));
}

/**
 * What to offer at `pos` in `doc`. Keys only once a letter is typed (or on Ctrl-Space), so Enter
 * at the end of a line still starts a new line; values as soon as the colon is there.
 */
export function completionsAt(root: TemplateSchema, doc: string, pos: number, explicit: boolean): CompletionResult | null {
  const c = yamlContextAt(doc, pos);
  if (!c || !/^[\w.-]*$/.test(c.text)) return null;
  if (c.position === 'key' && !c.text && !explicit) return null;
  const options = c.position === 'key' ? keyOptions(root, c) : valueOptions(root, c);
  if (!options.length) return null;
  // Right after `key:` the value needs its space.
  const spaced = c.position === 'value' && doc[c.from - 1] === ':';
  return {
    from: c.from,
    options: spaced ? options.map((o) => ({ ...o, apply: ` ${o.label}` })) : options,
    validFor: /^[\w.-]*$/,
  };
}

/** The completion source: the schema loads with the first request. */
export async function templateCompletions(context: CompletionContext): Promise<CompletionResult | null> {
  const root = await loadSchema();
  return completionsAt(root, context.state.doc.toString(), context.pos, context.explicit);
}
