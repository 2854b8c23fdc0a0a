import { render, waitFor } from '@testing-library/react';
import { createRef } from 'react';
import { beforeAll, describe, expect, it } from 'vitest';
import { acceptCompletion, completionStatus, currentCompletions, startCompletion } from '@codemirror/autocomplete';
import { EditorSelection } from '@codemirror/state';
import { EditorView } from '@codemirror/view';
import { YamlEditor, type YamlEditorHandle } from './YamlEditor';

beforeAll(() => {
  // jsdom lays nothing out, and CodeMirror measures text ranges.
  const empty = () => ({ length: 0, item: () => null, [Symbol.iterator]: [][Symbol.iterator] }) as unknown as DOMRectList;
  Range.prototype.getClientRects ??= empty;
  Range.prototype.getBoundingClientRect ??= () => new DOMRect();
});

function mount(value: string, readOnly = false) {
  const changes: string[] = [];
  const ref = createRef<YamlEditorHandle>();
  render(<YamlEditor ref={ref} value={value} readOnly={readOnly} onChange={(t) => changes.push(t)} />);
  const view = EditorView.findFromDOM(document.querySelector('.cm-editor') as HTMLElement)!;
  return { view, ref, changes };
}

describe('YamlEditor', () => {
  it('completes a fault kind from the schema and inserts it', async () => {
    const doc = 'steps:\n  - fault: node-dr';
    const { view, changes } = mount(doc);
    view.dispatch({ selection: EditorSelection.cursor(doc.length) });
    startCompletion(view);
    await waitFor(() => expect(currentCompletions(view.state).map((c) => c.label)).toEqual(['node-drain']));
    expect(completionStatus(view.state)).toBe('active');
    // CodeMirror ignores an accept in the first moments (interactionDelay, 75 ms).
    await new Promise((r) => setTimeout(r, 100));
    expect(acceptCompletion(view)).toBe(true);
    expect(view.state.doc.toString()).toBe('steps:\n  - fault: node-drain');
    expect(changes.at(-1)).toBe('steps:\n  - fault: node-drain');
  });

  it('offers nothing where the text is read-only', async () => {
    const doc = 'steps:\n  - fault: ';
    const { view } = mount(doc, true);
    view.dispatch({ selection: EditorSelection.cursor(doc.length) });
    expect(startCompletion(view)).toBe(false);
    expect(completionStatus(view.state)).toBeNull();
  });

  it('edit(): one change, selected, reported', () => {
    const { view, ref, changes } = mount('a: 1\n');
    const ok = ref.current!.edit((d) => ({ from: d.length, to: d.length, insert: 'b: 2\n', select: { from: d.length, to: d.length + 4 } }));
    expect(ok).toBe(true);
    expect(view.state.doc.toString()).toBe('a: 1\nb: 2\n');
    expect(view.state.sliceDoc(view.state.selection.main.from, view.state.selection.main.to)).toBe('b: 2');
    expect(changes).toEqual(['a: 1\nb: 2\n']);
    expect(ref.current!.edit(() => null)).toBe(false);
  });
});
