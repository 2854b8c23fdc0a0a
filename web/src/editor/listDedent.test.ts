import { describe, expect, it } from 'vitest';
import { insertNewlineAndIndent } from '@codemirror/commands';
import { yaml } from '@codemirror/lang-yaml';
import { EditorSelection, EditorState } from '@codemirror/state';
import { EditorView } from '@codemirror/view';
import { dedentListDash, listItemIndent } from './listDedent';

const STEPS = ['steps:', '  - fault: process-pause', '    target: {pidFile: /run/web.pid}', '    duration: 3s'];

describe('listItemIndent', () => {
  it('moves a dash at an item field indentation back to the list', () => {
    expect(listItemIndent(STEPS, 4, 4)).toBe(2);
    // Blank lines and comments between do not matter.
    expect(listItemIndent([...STEPS, '', '    # next'], 6, 4)).toBe(2);
  });

  it('leaves dashes that already start an item or a nested list', () => {
    expect(listItemIndent(STEPS, 4, 2)).toBeNull(); // at the list's own column
    const nested = ['hypothesis:', '  probes:', '    - name: web'];
    expect(listItemIndent(nested, 3, 4)).toBeNull(); // a sibling item
    expect(listItemIndent(['hypothesis:', '  probes:'], 2, 4)).toBeNull(); // first item under a key
    // A key with no value at the field's column: the dash is that key's list (compact style).
    expect(listItemIndent([...STEPS, '    targets:'], 5, 4)).toBeNull();
  });
});

/** An editor with the doc, the cursor at its end, as the template editor sets it up. */
function editor(doc: string) {
  const view = new EditorView({
    state: EditorState.create({ doc, extensions: [yaml()], selection: EditorSelection.cursor(doc.length) }),
  });
  return view;
}

/** Types `text` the way the browser does: each character through the input handler. */
function type(view: EditorView, text: string) {
  for (const ch of text) {
    const { from, to } = view.state.selection.main;
    if (!dedentListDash(view, from, to, ch)) {
      view.dispatch({ changes: { from, to, insert: ch }, selection: EditorSelection.cursor(from + ch.length) });
    }
  }
}

describe('typing in the editor', () => {
  it('Enter after a step field keeps the field indentation; "- " then starts the next step', () => {
    const view = editor(STEPS.join('\n'));
    insertNewlineAndIndent(view);
    const lastLine = () => view.state.doc.line(view.state.doc.lines).text;
    expect(lastLine()).toBe('    '); // the next field lines up under duration
    type(view, 'kind: x');
    expect(lastLine()).toBe('    kind: x');
    view.dispatch({ changes: { from: view.state.doc.line(view.state.doc.lines).from, to: view.state.doc.length, insert: '    ' } });
    type(view, '- fault: x');
    expect(view.state.doc.toString()).toBe([...STEPS, '  - fault: x'].join('\n'));
    view.destroy();
  });

  it('leaves a dash inside text alone', () => {
    const view = editor([...STEPS, '    name: a-'].join('\n'));
    type(view, ' b');
    expect(view.state.doc.line(view.state.doc.lines).text).toBe('    name: a- b');
    view.destroy();
  });
});
