// "Add step" above the template editor: a fault kind picked from the schema's (grouped by family,
// its first sentence beside it), and its minimal example step put at the end of `steps`,
// selected, for the placeholders to be changed. A native select and a button: keyboard and
// screen readers work as everywhere else.
import { useEffect, useId, useMemo, useState, type RefObject } from 'react';
import { exampleStepYaml, insertStep } from './examples';
import { byFamily } from './families';
import { faultKinds, firstSentence, loadSchema, type TemplateSchema } from './schema';
import type { YamlEditorHandle } from './YamlEditor';

export function AddStepMenu({ editor }: { editor: RefObject<YamlEditorHandle | null> }) {
  const [schema, setSchema] = useState<TemplateSchema | null>(null);
  const [failed, setFailed] = useState(false);
  const [kind, setKind] = useState('');
  const [note, setNote] = useState<string | null>(null);
  const about = useId();

  useEffect(() => {
    let live = true;
    loadSchema().then(
      (s) => live && setSchema(s),
      () => live && setFailed(true),
    );
    return () => {
      live = false;
    };
  }, []);

  const kinds = useMemo(() => (schema ? faultKinds(schema) : []), [schema]);
  const picked = kinds.find((k) => k.kind === kind) ?? kinds[0];

  const add = () => {
    if (!schema || !picked) return;
    const step = exampleStepYaml(schema, picked.kind);
    const done = editor.current?.edit((doc) => insertStep(doc, step)) ?? false;
    setNote(done ? null : 'The steps are written as a flow list ([…]): add the step by hand, or make it a block list first.');
  };

  return (
    <div className="tpl-add-step" role="group" aria-label="Add a step">
      <label className="inline">
        Fault kind
        <select
          value={picked?.kind ?? ''}
          onChange={(e) => {
            setKind(e.target.value);
            setNote(null);
          }}
          disabled={!picked}
          aria-describedby={about}
        >
          {!picked && <option value="">{failed ? 'unavailable' : 'loading…'}</option>}
          {byFamily(kinds).map(([family, ks]) => (
            <optgroup key={family} label={family}>
              {ks.map((k) => (
                <option key={k.kind} value={k.kind}>
                  {k.kind}
                </option>
              ))}
            </optgroup>
          ))}
        </select>
      </label>
      <button type="button" onClick={add} disabled={!picked} title="Append a minimal step of this kind to steps, to adapt">
        Add step
      </button>
      <span id={about} className="muted tpl-add-step-about">
        {picked ? <WithCode text={firstSentence(picked.description)} /> : failed ? 'The fault kinds could not be loaded.' : ''}
      </span>
      {note && (
        <p role="status" className="tpl-add-step-note">
          {note}
        </p>
      )}
    </div>
  );
}

/** A description's backquoted spans as <code>. */
function WithCode({ text }: { text: string }) {
  return text
    .split(/(`[^`]*`)/)
    .map((part, i) => (part.length > 2 && part.startsWith('`') && part.endsWith('`') ? <code key={i}>{part.slice(1, -1)}</code> : part));
}
