// Projects (instance administrators): the projects there are, and creating one.
import { useState, type FormEvent } from 'react';
import { useMutation, useQuery } from 'urql';
import { Link } from 'wouter';
import { graphql } from '../../gql';
import { ErrorBox, Loading } from '../../ui';
import { FormProblems } from './common';

const AccessProjectsDoc = graphql(`
  query AccessProjects {
    projects {
      id
      name
      createdAt
    }
  }
`);

const AccessCreateProjectDoc = graphql(`
  mutation AccessCreateProject($name: String!) {
    createProject(name: $name) {
      id
      name
      createdAt
    }
  }
`);

/** The hub's rule for project names, with a message naming the field. */
export function projectNameProblem(name: string): string | null {
  if (!name) return 'Project: enter a name';
  if (name.length > 63 || !/^[a-z0-9][a-z0-9-]*$/.test(name))
    return "Project: use 1 to 63 of a-z, 0-9 and '-', not starting with '-'";
  return null;
}

export function Projects() {
  const [{ data, fetching, error }, refetch] = useQuery({ query: AccessProjectsDoc });
  const [name, setName] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [made, setMade] = useState<string | null>(null);
  const [state, create] = useMutation(AccessCreateProjectDoc);

  function submit(e: FormEvent) {
    e.preventDefault();
    const n = name.trim();
    const p = projectNameProblem(n);
    setProblem(p);
    setMade(null);
    if (p) return;
    void create({ name: n }, { additionalTypenames: ['Project'] }).then((r) => {
      if (r.data) {
        setMade(r.data.createProject.name);
        setName('');
        refetch({ requestPolicy: 'network-only' });
      }
    });
  }

  return (
    <section className="panel" aria-labelledby="projects-h">
      <div className="panel-head">
        <h2 id="projects-h">Projects</h2>
        <span className="muted">Instance administrators only. You become the new project's first owner.</span>
      </div>
      {error && <ErrorBox error={error} retry={() => refetch({ requestPolicy: 'network-only' })} />}
      {!data && fetching ? (
        <Loading what="projects" />
      ) : data ? (
        <div className="row">
          {data.projects.map((p) => (
            <Link key={p.id} href={`~/p/${encodeURIComponent(p.name)}/runs`} className="label-chip">
              {p.name}
            </Link>
          ))}
        </div>
      ) : null}
      <form className="admin-form" onSubmit={submit} aria-label="Create project" noValidate>
        {/* Not labelled "… name": the API token form's Name stays the page's last "Name". */}
        <label>
          New project
          <input type="text" value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. payments" />
        </label>
        <button type="submit" disabled={state.fetching}>
          {state.fetching ? 'Creating…' : 'Create project'}
        </button>
        {made && (
          <span role="status">
            Created <Link href={`~/p/${encodeURIComponent(made)}/runs`}>{made}</Link>.
          </span>
        )}
        <FormProblems problem={problem} error={state.error} />
      </form>
    </section>
  );
}
