// Where the cursor is in a YAML document, in the schema's terms: the path of keys and list items
// from the root, whether a key or a value is being typed, and the scalar values of the mappings
// on the way (a step's `fault` decides what its `target` holds). Read from the lines' indentation
// and, on the cursor's line, its flow collections (`target: {namespace: shop, |}`), so a document
// half typed (a key with no colon yet) still has a place. What is offered there is
// completion.ts's business.
import type { PathStep } from './schema';

export interface YamlContext {
  /** A key of a mapping is being typed, or the value of one (or an item of a flow list). */
  position: 'key' | 'value';
  /**
   * For a key: the path to the mapping it goes in. For a value: the path to the value, ending
   * with its key (or an item, in a flow list).
   */
  path: PathStep[];
  /**
   * One more than `path`: `mappings[i]` is the mapping the first `i` steps reach (its keys with
   * their scalar values, '' for others), undefined where that node is not a mapping.
   */
  mappings: (Record<string, string> | undefined)[];
  /** Where the word being typed starts, and what it is so far. */
  from: number;
  text: string;
  /** Inside a flow collection on the line (`{…}`, `[…]`). */
  flow: boolean;
}

interface Line {
  blank: boolean;
  indent: number;
  /** Columns of the `- ` that start list items on this line. */
  dashes: number[];
  /** Column where the content after the indentation and dashes starts. */
  content: number;
  key?: string;
  /** The value after the key: a scalar unquoted, '' for none or anything else. */
  value?: string;
}

const KEY = /^("(?:[^"\\]|\\.)*"|'[^']*'|[^\s#'"{}[\],][^:#]*?)\s*:(?=\s|$)\s*(.*)$/;

function unquote(s: string): string {
  const t = s.trim();
  if (t.length >= 2 && ((t[0] === '"' && t.at(-1) === '"') || (t[0] === "'" && t.at(-1) === "'"))) return t.slice(1, -1);
  return t;
}

/** A scalar as its mapping records it: '' for a flow collection, a block scalar or nothing. */
function scalar(raw: string): string {
  const v = raw.replace(/(^|\s)#.*$/, '').trim();
  return /^[{[|>&*!]/.test(v) ? '' : unquote(v);
}

function parseLine(text: string): Line {
  if (/^\s*(#.*)?$/.test(text)) return { blank: true, indent: 0, dashes: [], content: 0 };
  const indent = text.length - text.trimStart().length;
  const dashes: number[] = [];
  let i = indent;
  while (text[i] === '-' && (i + 1 === text.length || text[i + 1] === ' ')) {
    dashes.push(i);
    i++;
    while (text[i] === ' ') i++;
  }
  const m = KEY.exec(text.slice(i));
  return { blank: false, indent, dashes, content: i, key: m ? unquote(m[1]) : undefined, value: m ? scalar(m[2]) : undefined };
}

/** A path with the mappings along it; `mappings.length === path.length + 1`. */
interface Built {
  path: PathStep[];
  mappings: (Record<string, string> | undefined)[];
}

const extend = (b: Built, step: PathStep, mapping: Record<string, string> | undefined): Built => ({
  path: [...b.path, step],
  mappings: [...b.mappings, mapping],
});

/** The document's lines, parsed once, walked by indentation. */
class BlockLines {
  private readonly parsed: Line[];
  constructor(lines: readonly string[]) {
    this.parsed = lines.map(parseLine);
  }

  /** The keys of the block mapping at column `col` that line `row` is in, and its first line. */
  private collect(row: number, col: number): { keys: Record<string, string>; start: number } {
    const keys: Record<string, string> = {};
    const record = (l: Line) => {
      if (l.key !== undefined && !(l.key in keys)) keys[l.key] = l.value ?? '';
    };
    let start = row;
    for (let r = row; r >= 0; r--) {
      const l = this.parsed[r];
      if (l.blank) continue;
      if (l.dashes.length && l.content === col) {
        // The item this mapping is: its first line.
        record(l);
        start = r;
        break;
      }
      if (l.indent < col) break; // the owner
      if (l.indent === col && !l.dashes.length) {
        record(l);
        start = r;
      }
      // Deeper, or a list at this column (`key:` then `- item`): inside a value.
    }
    for (let r = row + 1; r < this.parsed.length; r++) {
      const l = this.parsed[r];
      if (l.blank) continue;
      if (l.indent < col) break;
      if (l.indent === col && !l.dashes.length) record(l);
    }
    return { keys, start };
  }

  /** The path to the block mapping at column `col` that line `row` is (or would be) in. */
  mappingPath(row: number, col: number, depth = 0): Built | null {
    if (depth > 64) return null;
    const { keys, start } = this.collect(row, col);
    const first = this.parsed[start];
    if (!first.blank && first.dashes.length && first.content === col) {
      const seq = this.sequencePath(start, first.dashes.at(-1)!, depth + 1);
      return seq && extend(seq, { item: true }, keys);
    }
    for (let r = start - 1; r >= 0; r--) {
      const l = this.parsed[r];
      if (l.blank || l.indent >= col) continue;
      // A line less indented: the key this mapping is the value of.
      if (l.key === undefined || l.value) return null;
      const owner = this.mappingPath(r, l.content, depth + 1);
      return owner && extend(owner, { key: l.key }, keys);
    }
    return { path: [], mappings: [keys] };
  }

  /** The path to the block list whose item starts with the dash at `dash` on line `row`. */
  sequencePath(row: number, dash: number, depth = 0): Built | null {
    if (depth > 64) return null;
    const here = this.parsed[row];
    const outer = here.dashes.filter((d) => d < dash).at(-1);
    if (outer !== undefined) {
      // `- - x`: this list is an item of the outer one.
      const seq = this.sequencePath(row, outer, depth + 1);
      return seq && extend(seq, { item: true }, undefined);
    }
    for (let r = row - 1; r >= 0; r--) {
      const l = this.parsed[r];
      if (l.blank || l.indent > dash) continue;
      if (l.indent === dash && l.dashes[0] === dash) continue; // an earlier item
      // `key:` less indented, or at the dash's column (YAML lets a list sit there).
      if (l.key === undefined || l.value) return null;
      const owner = this.mappingPath(r, l.content, depth + 1);
      return owner && extend(owner, { key: l.key }, undefined);
    }
    return null;
  }
}

interface Open {
  char: '{' | '[';
  /** Column of the bracket. */
  col: number;
  /** The key whose value this collection is, inside a flow mapping. */
  key?: string;
  /** For a mapping: its keys with scalar values, over the whole line. */
  pairs: Record<string, string>;
}

interface Flow {
  /** The flow collections open at the cursor, outermost first. */
  open: Open[];
  /** Start of the current entry of the innermost collection. */
  entry: number;
  /** The cursor is in a quoted string or a comment. */
  inert: boolean;
}

/** The flow collections of a line and where the cursor at column `at` is among them. */
function scanFlow(text: string, at: number): Flow {
  const stack: Open[] = [];
  // Where the entry holding each open collection began, to go back to when it closes.
  const outerEntries: number[] = [];
  let entry = 0;
  let quote: string | null = null;
  let snapshot: Flow | null = null;
  const pairOf = (o: Open | undefined, from: number, to: number) => {
    if (o?.char !== '{') return;
    const m = KEY.exec(text.slice(from, to).trim());
    if (m) o.pairs[unquote(m[1])] = scalar(m[2]);
  };
  for (let i = 0; i <= text.length; i++) {
    if (i === at) snapshot = { open: [...stack], entry, inert: quote !== null };
    if (i === text.length) break;
    const c = text[i];
    if (quote) {
      if (c === quote && text[i - 1] !== '\\') quote = null;
      continue;
    }
    // A quote starts a quoted scalar only where a scalar starts (`it's` is plain text).
    if ((c === '"' || c === "'") && /(^|[:{[,-])\s*$/.test(text.slice(0, i))) quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]))) {
      snapshot ??= { open: [...stack], entry, inert: true };
      break;
    } else if (c === '{' || c === '[') {
      const head = KEY.exec(`${text.slice(entry, i).trim()} `);
      stack.push({ char: c, col: i, key: head ? unquote(head[1]) : undefined, pairs: {} });
      outerEntries.push(entry);
      entry = i + 1;
    } else if (c === ',' && stack.length) {
      pairOf(stack.at(-1), entry, i);
      entry = i + 1;
    } else if ((c === '}' || c === ']') && stack.length) {
      pairOf(stack.pop(), entry, i);
      entry = outerEntries.pop()!;
    }
  }
  return snapshot ?? { open: [], entry, inert: quote !== null };
}

/**
 * The context at `pos` in `doc`, or null where nothing can be said (a comment, a quoted string,
 * a line that is not YAML the editor understands).
 */
export function yamlContextAt(doc: string, pos: number): YamlContext | null {
  const lineStart = doc.lastIndexOf('\n', pos - 1) + 1;
  const lines = doc.split('\n');
  const row = doc.slice(0, lineStart).split('\n').length - 1;
  const text = lines[row];
  const col = pos - lineStart;
  const flow = scanFlow(text, col);
  if (flow.inert) return null;
  const blocks = new BlockLines(lines);

  if (flow.open.length) {
    const head = parseLine(text.slice(0, flow.open[0].col));
    let built: Built | null;
    if (head.key !== undefined) {
      const m = blocks.mappingPath(row, head.content);
      built = m && extend(m, { key: head.key }, undefined);
    } else if (head.dashes.length && head.content === flow.open[0].col) {
      const s = blocks.sequencePath(row, head.dashes.at(-1)!);
      built = s && extend(s, { item: true }, undefined);
    } else return null;
    if (!built) return null;
    // The node the outermost collection is: a mapping of its pairs, or a list.
    built.mappings[built.mappings.length - 1] = flow.open[0].char === '{' ? flow.open[0].pairs : undefined;
    for (const o of flow.open.slice(1)) {
      const step: PathStep = o.key !== undefined ? { key: o.key } : { item: true };
      built = extend(built, step, o.char === '{' ? o.pairs : undefined);
    }
    const entryText = text.slice(flow.entry, col);
    const lead = entryText.length - entryText.trimStart().length;
    const inner = flow.open.at(-1)!;
    if (inner.char === '[') {
      return { position: 'value', ...extend(built, { item: true }, undefined), from: lineStart + flow.entry + lead, text: entryText.trimStart(), flow: true };
    }
    const kv = /^([^:]*?)\s*:\s*/.exec(entryText.trimStart());
    if (kv) {
      const start = flow.entry + lead + kv[0].length;
      return { position: 'value', ...extend(built, { key: unquote(kv[1]) }, undefined), from: lineStart + start, text: text.slice(start, col), flow: true };
    }
    return { position: 'key', ...built, from: lineStart + flow.entry + lead, text: entryText.trimStart(), flow: true };
  }

  const before = parseLine(text.slice(0, col));
  if (before.blank) {
    // An empty line (or only spaces): a key of the mapping at the cursor's column.
    const built = blocks.mappingPath(row, col);
    return built && { position: 'key', ...built, from: pos, text: '', flow: false };
  }
  const typed = text.slice(before.content, col);
  const kv = KEY.exec(typed);
  if (kv) {
    const built = blocks.mappingPath(row, before.content);
    const start = col - kv[2].length;
    return built && { position: 'value', ...extend(built, { key: unquote(kv[1]) }, undefined), from: lineStart + start, text: kv[2], flow: false };
  }
  if (/[:\s]/.test(typed)) return null; // a value with spaces, or something else
  const built = blocks.mappingPath(row, before.content);
  return built && { position: 'key', ...built, from: lineStart + before.content, text: typed, flow: false };
}
