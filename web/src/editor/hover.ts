// Hovering a key or a value in the template editor shows what the schema says of it: a fault
// kind's description and what it needs, a key's description (a step's `target` by its kind,
// with the target's required fields), an enum value's meaning.
import { hoverTooltip } from '@codemirror/view';
import { docElement } from './docText';
import { deref, faultKinds, fieldsOf, isStep, kindRequirements, loadSchema, requirements, schemaAt, valuesOf, type TemplateSchema } from './schema';
import { yamlContextAt } from './yamlContext';

export interface HoverDoc {
  from: number;
  to: number;
  title: string;
  description: string;
  needs: string[];
}

const WORD = /[\w.-]/;

/** What the schema says of the word at `pos` in `doc`, or null. */
export function describeAt(root: TemplateSchema, doc: string, pos: number): HoverDoc | null {
  let from = pos;
  let to = pos;
  while (from > 0 && WORD.test(doc[from - 1])) from--;
  while (to < doc.length && WORD.test(doc[to])) to++;
  if (from === to) return null;
  const word = doc.slice(from, to);
  const c = yamlContextAt(doc, to);
  if (!c || c.from !== from || c.text !== word) return null;

  if (c.position === 'key') {
    const f = fieldsOf(root, schemaAt(root, c.path, c.mappings), c.mappings[c.path.length]).find((x) => x.key === word);
    if (!f) return null;
    return { from, to, title: f.required ? `${word} (required)` : word, description: f.description, needs: requirements(root, f.schema) };
  }
  const last = c.path.at(-1);
  const key = last && 'key' in last ? last.key : undefined;
  if (key === 'fault' && isStep(root, deref(root, schemaAt(root, c.path.slice(0, -1), c.mappings)))) {
    const k = faultKinds(root).find((x) => x.kind === word);
    return k ? { from, to, title: k.kind, description: k.description, needs: kindRequirements(root, k) } : null;
  }
  const v = valuesOf(root, schemaAt(root, c.path, c.mappings)).find((x) => x.value === word);
  if (!v?.description) return null;
  return { from, to, title: key ? `${key}: ${word}` : word, description: v.description, needs: [] };
}

/** The hover extension; the schema loads with the first hover. */
export const templateHover = hoverTooltip(async (view, pos) => {
  const root = await loadSchema();
  const d = describeAt(root, view.state.doc.toString(), pos);
  if (!d) return null;
  return { pos: d.from, end: d.to, above: true, create: () => ({ dom: docElement(d.title, d.description, d.needs) }) };
});
