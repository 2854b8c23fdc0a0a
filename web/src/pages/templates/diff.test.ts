import { describe, expect, it } from 'vitest';
import { parseDiff } from './diff';

describe('parseDiff', () => {
  it('classifies headers, hunks, additions, removals and context', () => {
    const d = '--- version 1\n+++ version 2\n@@ -1,3 +1,3 @@\n a: 1\n-b: 2\n+b: 3\n--- c\n\\ No newline at end of file\n';
    expect(parseDiff(d).map((l) => l.kind)).toEqual(['file', 'file', 'hunk', 'ctx', 'del', 'add', 'del', 'meta']);
  });
  it('is empty for no difference', () => {
    expect(parseDiff('')).toEqual([]);
  });
});
