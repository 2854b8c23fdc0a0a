// "Duplicate" on a template: its YAML with a new `metadata.name`, edited as text so that every
// comment and the layout stay as they were.

/** `NAME-copy`, or `NAME-copy-2`, … when that name is taken. */
export function copyName(name: string, taken: readonly string[] = []): string {
  const base = `${name}-copy`;
  if (!taken.includes(base)) return base;
  for (let i = 2; ; i++) if (!taken.includes(`${base}-${i}`)) return `${base}-${i}`;
}

/**
 * The YAML with `metadata.name` set to `name`: in a block (`metadata:` then an indented
 * `name: …`) or a flow mapping (`metadata: {name: …, …}`). Null when there is no such field
 * (the editor then keeps the text and the hub's validation names what is missing).
 */
export function renameTemplate(yaml: string, name: string): string | null {
  const lines = yaml.split('\n');
  const meta = lines.findIndex((l) => /^metadata\s*:/.test(l));
  if (meta < 0) return null;
  const flow = /^(metadata\s*:\s*\{.*?\bname\s*:\s*)("[^"]*"|'[^']*'|[^,}]*?)(\s*[,}].*)$/.exec(lines[meta]);
  if (flow) {
    lines[meta] = `${flow[1]}${name}${flow[3]}`;
    return lines.join('\n');
  }
  let indent: number | null = null;
  for (let i = meta + 1; i < lines.length; i++) {
    const l = lines[i];
    if (/^\s*(#.*)?$/.test(l)) continue;
    const own = l.length - l.trimStart().length;
    if (own === 0) break; // the next top-level key: metadata has no name
    indent ??= own;
    if (own !== indent) continue; // deeper: labels, annotations
    const m = /^(\s*name\s*:\s*)("[^"]*"|'[^']*'|[^#]*?)(\s*(#.*)?)$/.exec(l);
    if (m) {
      lines[i] = `${m[1]}${name}${m[3]}`;
      return lines.join('\n');
    }
  }
  return null;
}
