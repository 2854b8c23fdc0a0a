// Turns what the hub answers into one line a person can act on.
import type { CombinedError } from 'urql';

export interface Located {
  line?: number;
  column?: number;
  field?: string;
  message: string;
  hint?: string;
}

/** The message of a GraphQL or network error, with the hub's error code when there is one. */
export function describe(err: CombinedError | Error | string | null | undefined): string {
  if (!err) return '';
  if (typeof err === 'string') return err;
  if ('graphQLErrors' in err && err.graphQLErrors?.length) {
    return err.graphQLErrors
      .map((e) => {
        const code = e.extensions?.code as string | undefined;
        return code ? `${e.message} (${code})` : e.message;
      })
      .join('; ');
  }
  if ('networkError' in err && err.networkError) return `Cannot reach the hub: ${err.networkError.message}`;
  return err.message;
}

/** The hub's error code (`extensions.code`) of the first GraphQL error, if any. */
export function code(err: CombinedError | null | undefined): string | undefined {
  return err?.graphQLErrors?.[0]?.extensions?.code as string | undefined;
}
