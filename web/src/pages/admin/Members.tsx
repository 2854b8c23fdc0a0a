// Project members (owners): change a role, remove someone, add a user by email.
import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, type CombinedError } from 'urql';
import { describe } from '../../errors';
import { graphql } from '../../gql';
import type { AccessMembersQuery, Role } from '../../gql/graphql';
import { useProject } from '../../project';
import { Confirm, Empty, ErrorBox, Loading } from '../../ui';
import { When, FormProblems } from './common';

const AccessMembersDoc = graphql(`
  query AccessMembers($project: String!) {
    members(project: $project) {
      email
      name
      role
      source
      since
    }
  }
`);

// Instance administrators act as owners everywhere without being members: shown to
// administrators (only they may list users) so the table says who really has access.
const AccessAdminsDoc = graphql(`
  query AccessAdmins {
    users {
      id
      email
      name
      admin
      disabled
      createdAt
    }
  }
`);

const AccessSetMemberDoc = graphql(`
  mutation AccessSetMember($project: String!, $email: String!, $role: Role!) {
    setMember(project: $project, email: $email, role: $role) {
      email
      role
    }
  }
`);

const AccessRemoveMemberDoc = graphql(`
  mutation AccessRemoveMember($project: String!, $email: String!) {
    removeMember(project: $project, email: $email)
  }
`);

export const ROLES: { value: Role; label: string; hint: string }[] = [
  { value: 'VIEWER', label: 'Viewer', hint: 'reads everything' },
  { value: 'EDITOR', label: 'Editor', hint: 'also writes templates, starts and aborts runs' },
  { value: 'OWNER', label: 'Owner', hint: 'also manages members, tokens, delegates, halts' },
];

type Member = AccessMembersQuery['members'][number];

/** The problem with an email typed into the add form, naming the field; null when fine. */
export function emailProblem(email: string): string | null {
  const e = email.trim();
  if (!e) return 'Email: enter the email of an existing user';
  if (!/^[^\s@]+@[^\s@]+$/.test(e)) return `Email: “${e}” is not an email address`;
  return null;
}

export function Members() {
  const project = useProject();
  const [{ data, fetching, error }, refetch] = useQuery({ query: AccessMembersDoc, variables: { project: project.name } });
  const reload = () => refetch({ requestPolicy: 'network-only' });
  const [admins] = useQuery({ query: AccessAdminsDoc, pause: !project.admin });
  const [setState, setMember] = useMutation(AccessSetMemberDoc);
  const [removeState, removeMember] = useMutation(AccessRemoveMemberDoc);
  // The refusal of this confirmation only, not of an earlier one.
  const [confirmError, setConfirmError] = useState<CombinedError | null>(null);
  const [removing, setRemoving] = useState<Member | null>(null);
  const [failure, setFailure] = useState<{ what: string; error: CombinedError } | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  function changeRole(m: Member, role: Role) {
    setFailure(null);
    setNotice(null);
    void setMember({ project: project.name, email: m.email, role }).then((r) => {
      if (r.error) setFailure({ what: `Could not make ${m.email} ${role.toLowerCase()}`, error: r.error });
      else setNotice(`${m.email} is now ${role.toLowerCase()}.`);
      reload();
    });
  }

  const members = data?.members ?? [];
  const implicit = (admins.data?.users ?? []).filter((u) => u.admin && !u.disabled && !members.some((m) => m.email === u.email));
  return (
    <section className="panel" aria-labelledby="members-h">
      <div className="panel-head">
        <h2 id="members-h">Members</h2>
        <span className="muted">A project always keeps an owner.</span>
      </div>
      {error && <ErrorBox error={error} retry={reload} />}
      {failure && (
        <div className="error-box" role="alert">
          <span>
            {failure.what}: {describe(failure.error)}
          </span>
        </div>
      )}
      {notice && (
        <div className="muted" role="status">
          {notice}
        </div>
      )}
      {!data && fetching ? (
        <Loading what="members" />
      ) : data && members.length === 0 && implicit.length === 0 ? (
        <Empty>No members: only instance administrators can use {project.name}. Add someone below.</Empty>
      ) : data ? (
        <table aria-label="Members">
          <thead>
            <tr>
              <th>Email</th>
              <th>Name</th>
              <th>Role</th>
              <th>Source</th>
              <th>Since</th>
              <th className="actions">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {members.map((m) => (
              <tr key={m.email} data-testid="member-row">
                <td>{m.email}</td>
                <td>{m.name || <span className="muted">–</span>}</td>
                <td>
                  <select
                    aria-label={`Role of ${m.email}`}
                    value={m.role}
                    disabled={setState.fetching}
                    onChange={(e) => changeRole(m, e.target.value as Role)}
                  >
                    {ROLES.map((r) => (
                      <option key={r.value} value={r.value}>
                        {r.label}
                      </option>
                    ))}
                  </select>
                </td>
                <td>
                  {m.source === 'manual' ? (
                    'manual'
                  ) : (
                    <span title="Given by a single sign-on claim mapping">{m.source}</span>
                  )}
                </td>
                <td className="nowrap">
                  <When at={m.since} />
                </td>
                <td className="actions">
                  <button
                    type="button"
                    onClick={() => {
                      setConfirmError(null);
                      setRemoving(m);
                    }}
                    aria-label={`Remove ${m.email}`}
                  >
                    Remove
                  </button>
                </td>
              </tr>
            ))}
            {implicit.map((u) => (
              <tr key={u.id} className="implicit" data-testid="admin-row" title="Instance administrators act as owners in every project">
                <td>{u.email}</td>
                <td>{u.name || <span className="muted">–</span>}</td>
                <td>Administrator</td>
                <td>instance admin</td>
                <td className="nowrap">
                  <When at={u.createdAt} />
                </td>
                <td className="actions muted">not a member</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <ErrorBox error={admins.error} />
      <AddMemberForm
        onAdded={(email, role) => {
          setFailure(null);
          setNotice(`${email} is now ${role.toLowerCase()}.`);
          reload();
        }}
      />
      {removing && (
        <Confirm
          title={`Remove ${removing.email} from ${project.name}?`}
          confirmLabel="Remove member"
          danger
          busy={removeState.fetching}
          onCancel={() => setRemoving(null)}
          onConfirm={() => {
            const m = removing;
            void removeMember({ project: project.name, email: m.email }).then((r) => {
              if (r.error) return setConfirmError(r.error);
              setRemoving(null);
              setNotice(`${m.email} was removed.`);
              reload();
            });
          }}
        >
          <p>
            They lose their {removing.role.toLowerCase()} role here at once. Their API tokens are not affected.
            {removing.source !== 'manual' && ' Their SSO claim mapping may give the role back at their next sign-in.'}
          </p>
          <ErrorBox error={confirmError} />
        </Confirm>
      )}
    </section>
  );
}

function AddMemberForm({ onAdded }: { onAdded(email: string, role: Role): void }) {
  const project = useProject();
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('VIEWER');
  const [problem, setProblem] = useState<string | null>(null);
  const [state, setMember] = useMutation(AccessSetMemberDoc);

  function submit(e: FormEvent) {
    e.preventDefault();
    const p = emailProblem(email);
    setProblem(p);
    if (p) return;
    const em = email.trim();
    void setMember({ project: project.name, email: em, role }).then((r) => {
      if (!r.error) {
        setEmail('');
        onAdded(em, role);
      }
    });
  }

  return (
    <form className="admin-form" onSubmit={submit} aria-label="Add member" noValidate>
      <label>
        Email
        <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} placeholder="someone@example.com" />
      </label>
      <label>
        Role
        <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
          {ROLES.map((r) => (
            <option key={r.value} value={r.value}>
              {r.label} ({r.hint})
            </option>
          ))}
        </select>
      </label>
      <button type="submit" className="primary" disabled={state.fetching}>
        {state.fetching ? 'Adding…' : 'Add member'}
      </button>
      <FormProblems problem={problem} error={state.error} />
    </form>
  );
}
