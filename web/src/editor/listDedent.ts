// YAML list items in the editor. Enter after a field of a list item (`    duration: 3s` under
// `  - fault: …`) keeps the item's field indentation, so the next field lines up; typing `- `
// there starts a new item of the list instead: the line moves back to the list's dash. This is
// how VS Code's YAML support behaves once its formatter has run, and what a person means: a
// `- ` at a mapping's own indentation would otherwise be a sequence under the last field.
import { EditorSelection } from '@codemirror/state';
import { EditorView } from '@codemirror/view';

const leading = (l: string) => l.length - l.trimStart().length;

/**
 * The indentation a `- ` typed on line `lineNo` (0-based) at indentation `indent` should have:
 * the dash's column of the list item whose fields sit at `indent`, else null (leave it).
 */
export function listItemIndent(lines: readonly string[], lineNo: number, indent: number): number | null {
  let first = true;
  for (let i = lineNo - 1; i >= 0; i--) {
    const l = lines[i];
    if (/^\s*(#.*)?$/.test(l)) continue; // blank lines and comments say nothing
    const own = leading(l);
    // Right under a key with no value (`targets:`), a `- ` at the key's column is its value.
    if (first && own === indent && /:\s*(#.*)?$/.test(l)) return null;
    first = false;
    if (own > indent) continue; // deeper: inside a field's value
    const item = /^(\s*)-(\s+)\S/.exec(l);
    if (own === indent) {
      // A field of the same mapping, or a sibling item already at this column: keep looking
      // up for the item that owns the mapping (a sibling item means `- ` is right as it is).
      if (item) return null;
      continue;
    }
    // The first line less indented: the mapping's owner.
    if (item && item[1].length + 1 + item[2].length === indent) return item[1].length;
    return null;
  }
  return null;
}

/** The input handler: a space typed after a lone `-` at a list item's field indentation. */
export function dedentListDash(view: EditorView, from: number, to: number, text: string): boolean {
  if (text !== ' ' || from !== to) return false;
  const line = view.state.doc.lineAt(from);
  const before = line.text.slice(0, from - line.from);
  const after = line.text.slice(from - line.from);
  const m = /^( *)-$/.exec(before);
  if (!m || after.trim() !== '') return false;
  const lines: string[] = [];
  for (let n = 1; n < line.number; n++) lines.push(view.state.doc.line(n).text);
  const to_ = listItemIndent(lines, line.number - 1, m[1].length);
  if (to_ === null || to_ === m[1].length) return false;
  const insert = `${' '.repeat(to_)}- `;
  view.dispatch({
    changes: { from: line.from, to: from, insert },
    selection: EditorSelection.cursor(line.from + insert.length),
    userEvent: 'input.type',
  });
  return true;
}

export const listDedent = EditorView.inputHandler.of(dedentListDash);
