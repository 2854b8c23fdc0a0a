// Validates the editor's text with the hub as the user types: debounced, and only the answer
// for the newest text counts (a slow answer for older text never overwrites a newer one).
import { useEffect, useRef, useState } from 'react';
import { useClient, type CombinedError } from 'urql';
import { graphql } from '../../gql';
import type { Problem } from './problems';

export const TemplateValidateDoc = graphql(`
  query TemplateEditorValidate($yaml: String!) {
    validateTemplate(yaml: $yaml) {
      line
      column
      field
      message
      hint
    }
  }
`);

export interface Validation {
  /** The problems of the last text checked (empty: valid); null before the first answer. */
  problems: Problem[] | null;
  /** The text `problems` belong to. */
  checked: string | null;
  /** True while the current text has not been checked yet. */
  pending: boolean;
  error: CombinedError | null;
}

export function useValidation(text: string, delayMs = 400): Validation {
  const client = useClient();
  const [result, setResult] = useState<{ text: string; problems: Problem[] | null; error: CombinedError | null }>({
    text: '',
    problems: null,
    error: null,
  });
  // Bumped for every new text: an answer is used only if its number is still the newest.
  const latest = useRef(0);

  useEffect(() => {
    const mine = ++latest.current;
    const timer = setTimeout(() => {
      void client
        .query(TemplateValidateDoc, { yaml: text }, { requestPolicy: 'network-only' })
        .toPromise()
        .then((r) => {
          if (mine !== latest.current) return;
          if (r.error || !r.data) setResult((old) => ({ text, problems: old.problems, error: r.error ?? null }));
          else setResult({ text, problems: r.data.validateTemplate, error: null });
        });
    }, delayMs);
    return () => clearTimeout(timer);
  }, [text, client, delayMs]);

  // Answers that arrive after unmount are dropped too.
  useEffect(
    () => () => {
      latest.current = -1;
    },
    [],
  );

  return {
    problems: result.problems,
    checked: result.problems ? result.text : null,
    pending: result.text !== text || (result.problems === null && !result.error),
    error: result.error,
  };
}
