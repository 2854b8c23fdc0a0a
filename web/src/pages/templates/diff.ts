// Unified diff text (as `Template.diff` returns it) split into lines with a kind each.

export type DiffKind = 'file' | 'hunk' | 'add' | 'del' | 'ctx' | 'meta';

export interface DiffLine {
  kind: DiffKind;
  text: string;
}

export function parseDiff(diff: string): DiffLine[] {
  const lines = diff.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  let inHunk = false;
  return lines.map((text) => {
    let kind: DiffKind = 'ctx';
    // `---`/`+++` are file headers only before the first hunk: inside one, `--- x` is a
    // removed line that read `-- x`.
    if (!inHunk && (text.startsWith('+++ ') || text.startsWith('--- '))) kind = 'file';
    else if (text.startsWith('@@')) {
      kind = 'hunk';
      inHunk = true;
    } else if (text.startsWith('\\')) kind = 'meta';
    else if (text.startsWith('+')) kind = 'add';
    else if (text.startsWith('-')) kind = 'del';
    return { kind, text };
  });
}
