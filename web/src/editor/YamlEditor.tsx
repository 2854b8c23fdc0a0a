// A CodeMirror 6 YAML editor as a React component: line numbers, history, the default keymap,
// YAML highlighting and the template's problems as lint diagnostics. Only the template editor
// page imports it, so CodeMirror stays in the lazily loaded editor chunk.
import { useEffect, useRef } from 'react';
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { yaml } from '@codemirror/lang-yaml';
import { bracketMatching, defaultHighlightStyle, indentOnInput, syntaxHighlighting } from '@codemirror/language';
import { lintGutter, setDiagnostics, type Diagnostic } from '@codemirror/lint';
import { Compartment, EditorState } from '@codemirror/state';
import {
  drawSelection,
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
} from '@codemirror/view';
import { formatProblem, problemRange, type Problem } from '../pages/templates/problems';
import { listDedent } from './listDedent';

export interface YamlEditorProps {
  value: string;
  onChange?(text: string): void;
  readOnly?: boolean;
  /** Problems of the current text; shown as diagnostics whenever this array changes. */
  problems?: readonly Problem[];
  label?: string;
}

/** Problems as lint diagnostics over `text` (a problem without a place covers the first line). */
export function toDiagnostics(text: string, problems: readonly Problem[]): Diagnostic[] {
  return problems.map((p) => {
    const { from, to } = problemRange(text, p);
    return { from, to, severity: 'error', source: p.field || undefined, message: formatProblem({ ...p, line: null }) };
  });
}

export function YamlEditor({ value, onChange, readOnly = false, problems, label = 'Template YAML' }: YamlEditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const editable = useRef(new Compartment());
  // The latest callback, read by the one update listener the view is made with.
  const changed = useRef(onChange);
  changed.current = onChange;

  useEffect(() => {
    const v = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: value,
        extensions: [
          lineNumbers(),
          highlightActiveLineGutter(),
          highlightActiveLine(),
          history(),
          drawSelection(),
          indentOnInput(),
          bracketMatching(),
          syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
          yaml(),
          listDedent,
          lintGutter(),
          keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
          EditorView.contentAttributes.of({ 'aria-label': label }),
          editable.current.of(editability(readOnly)),
          EditorView.updateListener.of((u) => {
            if (u.docChanged) changed.current?.(u.state.doc.toString());
          }),
        ],
      }),
    });
    view.current = v;
    return () => {
      v.destroy();
      view.current = null;
    };
    // Made once; value, readOnly and problems reach it through the effects below.
  }, []);

  // A value set from outside (e.g. an old version loaded into the editor) replaces the text.
  useEffect(() => {
    const v = view.current;
    if (v && v.state.doc.toString() !== value) {
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: value } });
    }
  }, [value]);

  useEffect(() => {
    view.current?.dispatch({ effects: editable.current.reconfigure(editability(readOnly)) });
  }, [readOnly]);

  useEffect(() => {
    const v = view.current;
    if (!v || !problems) return;
    v.dispatch(setDiagnostics(v.state, toDiagnostics(v.state.doc.toString(), problems)));
  }, [problems]);

  return <div className="yaml-editor" ref={host} data-readonly={readOnly || undefined} />;
}

function editability(readOnly: boolean) {
  return [EditorState.readOnly.of(readOnly), EditorView.editable.of(!readOnly)];
}
