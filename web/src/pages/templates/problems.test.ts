import { describe, expect, it } from 'vitest';
import { formatProblem, problemOffset, problemRange, problemsOfError } from './problems';

const doc = 'apiVersion: x\nkind: Experiment\nsteps:\n  - fault: nope\n';

describe('problemOffset', () => {
  it('maps a 1-based line and column to an offset', () => {
    expect(problemOffset(doc, 1, 1)).toBe(0);
    expect(problemOffset(doc, 2, 1)).toBe(14);
    expect(problemOffset(doc, 2, 7)).toBe(20);
    expect(doc.slice(problemOffset(doc, 4, 12))).toBe('nope\n');
  });
  it('puts a problem without a line at the start of the document', () => {
    expect(problemOffset(doc, null, 5)).toBe(0);
    expect(problemOffset(doc, undefined, undefined)).toBe(0);
    expect(problemOffset(doc, 0, 3)).toBe(0);
  });
  it('puts a problem without a column at the start of its line', () => {
    expect(problemOffset(doc, 3, null)).toBe(doc.indexOf('steps'));
  });
  it('clamps a column past the end of its line to the line end', () => {
    expect(problemOffset(doc, 1, 99)).toBe('apiVersion: x'.length);
    expect(problemOffset('a\r\nb', 1, 9)).toBe(1);
  });
  it('clamps a line past the end of the document to its end', () => {
    expect(problemOffset(doc, 40, 1)).toBe(doc.length);
    expect(problemOffset('no newline', 2, 1)).toBe('no newline'.length);
    expect(problemOffset('', 3, 3)).toBe(0);
  });
  it('counts columns in characters, not UTF-16 units', () => {
    const t = 'x: "😀é" bad';
    // column 9 is the `b`: x : space " 😀 é " space b (the emoji is 2 UTF-16 units)
    expect(t.slice(problemOffset(t, 1, 9))).toBe('bad');
  });
});

describe('problemRange', () => {
  it('underlines the word at the problem', () => {
    const r = problemRange(doc, { line: 4, column: 12 });
    expect(doc.slice(r.from, r.to)).toBe('nope');
    const k = problemRange(doc, { line: 2, column: 1 });
    expect(doc.slice(k.from, k.to)).toBe('kind');
  });
  it('is empty at the end of a line and covers the first line without a place', () => {
    const r = problemRange(doc, { line: 3, column: 7 });
    expect(r.to).toBe(r.from);
    const whole = problemRange(doc, { line: null, column: null });
    expect(doc.slice(whole.from, whole.to)).toBe('apiVersion: x');
  });
});

describe('formatProblem', () => {
  it('reads line, column, field, message and hint', () => {
    expect(
      formatProblem({ line: 12, column: 7, field: 'steps[0].params.signal', message: 'unknown signal "FOO"', hint: 'use KILL' }),
    ).toBe('line 12, column 7: steps[0].params.signal: unknown signal "FOO" (hint: use KILL)');
  });
  it('leaves out what is missing', () => {
    expect(formatProblem({ line: null, column: null, field: '', message: 'too big', hint: null })).toBe('too big');
    expect(formatProblem({ line: 3, column: null, field: 'kind', message: 'bad' })).toBe('line 3: kind: bad');
  });
});

describe('problemsOfError', () => {
  it('reads every problem of an INVALID_TEMPLATE error', () => {
    const err = {
      graphQLErrors: [
        {
          message: 'invalid template: …',
          extensions: {
            code: 'INVALID_TEMPLATE',
            line: 2,
            errors: [
              { line: 2, column: 3, field: 'a', message: 'one', hint: 'h' },
              { field: 'b', message: 'two' },
            ],
          },
        },
      ],
    };
    expect(problemsOfError(err)).toEqual([
      { line: 2, column: 3, field: 'a', message: 'one', hint: 'h' },
      { line: null, column: null, field: 'b', message: 'two', hint: null },
    ]);
  });
  it('falls back to the located extensions and ignores other errors', () => {
    const err = {
      graphQLErrors: [
        { message: 'exists', extensions: { code: 'CONFLICT' } },
        { message: 'invalid template: bad', extensions: { code: 'INVALID_TEMPLATE', line: 4, column: 1, field: 'kind' } },
      ],
    };
    expect(problemsOfError(err)).toEqual([{ line: 4, column: 1, field: 'kind', message: 'invalid template: bad', hint: null }]);
    expect(problemsOfError(null)).toEqual([]);
  });
});
