// TODO(dashboard): template editor (lazy-loaded: CodeMirror lives in its own chunk).
export default function TemplateEditorPage({ id }: { id?: string }) {
  return <div className="page"><h1>{id ? `Template ${id}` : 'New template'}</h1></div>;
}
