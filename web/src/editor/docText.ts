// A schema description as DOM for completion info and hover tooltips: `code` spans as <code>,
// the rest as text (never as HTML: descriptions are data), and what the place needs.

/** `text` with its backquoted spans as <code> elements, appended to `parent`. */
export function appendDoc(parent: HTMLElement, text: string): void {
  text.split(/(`[^`]*`)/).forEach((part) => {
    if (part.length > 2 && part.startsWith('`') && part.endsWith('`')) {
      const code = document.createElement('code');
      code.textContent = part.slice(1, -1);
      parent.append(code);
    } else if (part) parent.append(part);
  });
}

/** A titled description, with "Needs: …" when the place has required fields. */
export function docElement(title: string, description: string, needs: readonly string[] = []): HTMLElement {
  const box = document.createElement('div');
  box.className = 'cm-schema-doc';
  const head = document.createElement('strong');
  head.textContent = title;
  box.append(head);
  if (description) {
    const p = document.createElement('p');
    appendDoc(p, description);
    box.append(p);
  }
  if (needs.length) {
    const p = document.createElement('p');
    p.className = 'cm-schema-needs';
    p.textContent = `Needs: ${needs.join(', ')}`;
    box.append(p);
  }
  return box;
}
