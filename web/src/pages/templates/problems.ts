// Where a template problem sits in the text, and how it reads in the list under the editor.
// Pure (no CodeMirror): the editor maps these offsets to lint diagnostics.

/** A problem as `validateTemplate` (or an INVALID_TEMPLATE error's `extensions.errors`) reports it. */
export interface Problem {
  /** 1-based; null when the problem has no place in the text. */
  line?: number | null;
  /** 1-based, in characters (the hub's YAML parser counts code points, not UTF-16 units). */
  column?: number | null;
  field: string;
  message: string;
  hint?: string | null;
}

/**
 * The document offset (UTF-16 units, as JS strings and CodeMirror count) of a 1-based line and
 * column, clamped to the document: a line past the end means the end of the document, a column
 * past the end of its line means the end of that line. No line means the start of the document;
 * no column means the start of the line.
 */
export function problemOffset(text: string, line?: number | null, column?: number | null): number {
  if (line == null || !Number.isFinite(line) || line < 1) return 0;
  let start = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) return text.length;
    start = nl + 1;
  }
  let end = text.indexOf('\n', start);
  if (end < 0) end = text.length;
  if (end > start && text[end - 1] === '\r') end--;
  if (column == null || !Number.isFinite(column) || column <= 1) return start;
  // Walk column-1 characters (code points) along the line.
  let at = start;
  for (let c = 1; c < column && at < end; c++) {
    const code = text.charCodeAt(at);
    at += code >= 0xd800 && code <= 0xdbff && at + 1 < end ? 2 : 1;
  }
  return Math.min(at, end);
}

/**
 * The span to underline for a problem: from its offset to the end of the word there (a key, a
 * value), or the whole first line when it has no place; empty at the end of a line.
 */
export function problemRange(text: string, p: Pick<Problem, 'line' | 'column'>): { from: number; to: number } {
  const from = problemOffset(text, p.line, p.column);
  let lineEnd = text.indexOf('\n', from);
  if (lineEnd < 0) lineEnd = text.length;
  if (p.line == null) return { from, to: lineEnd };
  let to = from;
  while (to < lineEnd && !/[\s:,\]}]/.test(text[to])) to++;
  return { from, to: to > from ? to : from };
}

/** `line 12, column 7: steps[0].params.signal: unknown signal "FOO" (hint: …)`. */
export function formatProblem(p: Problem): string {
  let where = '';
  if (p.line != null) where = p.column != null ? `line ${p.line}, column ${p.column}: ` : `line ${p.line}: `;
  const what = p.field ? `${p.field}: ${p.message}` : p.message;
  return `${where}${what}${p.hint ? ` (hint: ${p.hint})` : ''}`;
}

/**
 * The problems of a refused createTemplate/updateTemplate (code INVALID_TEMPLATE): every one in
 * `extensions.errors`, else the one the extensions name; empty for any other error.
 */
export function problemsOfError(
  err: { graphQLErrors?: { message: string; extensions?: Record<string, unknown> }[] } | null | undefined,
): Problem[] {
  const out: Problem[] = [];
  for (const e of err?.graphQLErrors ?? []) {
    const ext = e.extensions ?? {};
    if (ext.code !== 'INVALID_TEMPLATE') continue;
    const list = Array.isArray(ext.errors) ? (ext.errors as Record<string, unknown>[]) : [ext];
    for (const x of list) {
      out.push({
        line: typeof x.line === 'number' ? x.line : null,
        column: typeof x.column === 'number' ? x.column : null,
        field: typeof x.field === 'string' ? x.field : '',
        message: typeof x.message === 'string' ? x.message : e.message,
        hint: typeof x.hint === 'string' ? x.hint : null,
      });
    }
  }
  return out;
}
