// Filtering the template list: a search box (free words and `key=value` label terms, all must
// match) and label chips picked from the table.

export interface Listed {
  name: string;
  description: string;
  /** `metadata.labels`: string values in practice, anything JSON in the API. */
  labels: unknown;
}

/** The labels as sorted `[key, value]` string pairs (non-objects have none). */
export function labelPairs(labels: unknown): [string, string][] {
  if (!labels || typeof labels !== 'object' || Array.isArray(labels)) return [];
  return Object.entries(labels as Record<string, unknown>)
    .map(([k, v]): [string, string] => [k, typeof v === 'string' ? v : JSON.stringify(v)])
    .sort((a, b) => a[0].localeCompare(b[0]));
}

/**
 * Whether a template matches the search text and every picked label (`key=value`, exact).
 * Search terms are whitespace-separated; a term with `=` matches a label whose key is the part
 * before it (case-insensitive) and whose value contains the part after it, so `tier=` matches
 * any `tier` label while typing; other terms match the name, the description or a label.
 */
export function matches(t: Listed, search: string, picked: readonly string[] = []): boolean {
  const pairs = labelPairs(t.labels);
  for (const want of picked) {
    if (!pairs.some(([k, v]) => `${k}=${v}` === want)) return false;
  }
  const terms = search.toLowerCase().split(/\s+/).filter(Boolean);
  for (const term of terms) {
    const eq = term.indexOf('=');
    if (eq > 0) {
      const key = term.slice(0, eq);
      const value = term.slice(eq + 1);
      if (!pairs.some(([k, v]) => k.toLowerCase() === key && v.toLowerCase().includes(value))) return false;
    } else {
      const hay = [t.name, t.description, ...pairs.map(([k, v]) => `${k}=${v}`)].join('\n').toLowerCase();
      if (!hay.includes(term)) return false;
    }
  }
  return true;
}

export function filterTemplates<T extends Listed>(list: readonly T[], search: string, picked: readonly string[] = []): T[] {
  return list.filter((t) => matches(t, search, picked));
}
