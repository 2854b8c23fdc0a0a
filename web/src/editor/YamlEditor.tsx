// A CodeMirror 6 YAML editor as a React component: line numbers, history, the default keymap,
// YAML highlighting, the template's problems as lint diagnostics, and what the template's schema
// knows (completion while editable, hover docs). Only the template editor page imports it, so
// CodeMirror stays in the lazily loaded editor chunk.
import { useEffect, useImperativeHandle, useRef, type Ref } from 'react';
import { autocompletion } from '@codemirror/autocomplete';
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { yaml } from '@codemirror/lang-yaml';
import { bracketMatching, defaultHighlightStyle, indentOnInput, syntaxHighlighting } from '@codemirror/language';
import { lintGutter, setDiagnostics, type Diagnostic } from '@codemirror/lint';
import { Compartment, EditorSelection, EditorState } from '@codemirror/state';
import {
  drawSelection,
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
} from '@codemirror/view';
import { formatProblem, problemRange, type Problem } from '../pages/templates/problems';
import { templateCompletions } from './completion';
import type { TextEdit } from './examples';
import { templateHover } from './hover';
import { listDedent } from './listDedent';

/** What the page may do to the text besides replacing it. */
export interface YamlEditorHandle {
  /**
   * Applies the edit `make` returns for the current text as one undoable change, selects its
   * `select` range, scrolls to it and focuses the editor. False when `make` returned null.
   */
  edit(make: (doc: string) => TextEdit | null): boolean;
}

export interface YamlEditorProps {
  value: string;
  onChange?(text: string): void;
  readOnly?: boolean;
  /** Problems of the current text; shown as diagnostics whenever this array changes. */
  problems?: readonly Problem[];
  label?: string;
  ref?: Ref<YamlEditorHandle>;
}

/** Problems as lint diagnostics over `text` (a problem without a place covers the first line). */
export function toDiagnostics(text: string, problems: readonly Problem[]): Diagnostic[] {
  return problems.map((p) => {
    const { from, to } = problemRange(text, p);
    return { from, to, severity: 'error', source: p.field || undefined, message: formatProblem({ ...p, line: null }) };
  });
}

export function YamlEditor({ value, onChange, readOnly = false, problems, label = 'Template YAML', ref }: YamlEditorProps) {
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
          templateHover,
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

  useImperativeHandle(
    ref,
    () => ({
      edit(make) {
        const v = view.current;
        const e = v && make(v.state.doc.toString());
        if (!v || !e) return false;
        v.dispatch({
          changes: { from: e.from, to: e.to, insert: e.insert },
          selection: EditorSelection.range(e.select.from, e.select.to),
          scrollIntoView: true,
          userEvent: 'input',
        });
        v.focus();
        return true;
      },
    }),
    [],
  );

  useEffect(() => {
    const v = view.current;
    if (!v || !problems) return;
    v.dispatch(setDiagnostics(v.state, toDiagnostics(v.state.doc.toString(), problems)));
  }, [problems]);

  return <div className="yaml-editor" ref={host} data-readonly={readOnly || undefined} />;
}

/** Read-only or not; completion only where the text can change. */
function editability(readOnly: boolean) {
  return [
    EditorState.readOnly.of(readOnly),
    EditorView.editable.of(!readOnly),
    readOnly ? [] : autocompletion({ override: [templateCompletions] }),
  ];
}
