// The frame of every project page: project switcher, navigation, the halt state and the
// owner-only "Halt all" button, the signed-in user.
import { useState, type ReactNode } from 'react';
import { useMutation, useQuery } from 'urql';
import { Link, useLocation } from 'wouter';
import { useAuth } from './auth';
import { graphql } from './gql';
import { useProject } from './project';
import { Confirm, ErrorBox } from './ui';

const HaltDoc = graphql(`
  query Halt($project: String!) {
    halt(project: $project) {
      halted
      haltedAt
      haltedBy
      reason
    }
  }
`);

const HaltAllDoc = graphql(`
  mutation HaltAll($project: String!, $reason: String!) {
    haltAll(project: $project, reason: $reason) {
      halted
      abortedRuns
      delegates
    }
  }
`);

const LiftHaltDoc = graphql(`
  mutation LiftHalt($project: String!) {
    liftHalt(project: $project) {
      halted
    }
  }
`);

const NAV: { path: string; label: string }[] = [
  { path: '/runs', label: 'Runs' },
  { path: '/schedules', label: 'Schedules' },
  { path: '/templates', label: 'Templates' },
  { path: '/trends', label: 'Trends' },
  { path: '/delegates', label: 'Delegates' },
  { path: '/webhooks', label: 'Webhooks' },
  { path: '/access', label: 'Members & tokens' },
  { path: '/audit', label: 'Audit log' },
];

export function Layout({ projects, actor, children }: { projects: string[]; actor: string; children: ReactNode }) {
  const project = useProject();
  const [location, navigate] = useLocation();
  const { logout } = useAuth();
  const visible = NAV.filter(
    (n) =>
      project.can('OWNER') ||
      (n.path !== '/access' && n.path !== '/audit' && (n.path !== '/webhooks' || project.can('EDITOR'))),
  );
  const options = projects.includes(project.name) ? projects : [project.name, ...projects];
  return (
    <div className="app">
      <header className="topbar">
        <Link href="/runs" className="brand">
          <img src="/favicon.svg" alt="" width={22} height={22} /> Faultline
        </Link>
        <label className="project-switch">
          <span className="sr-only">Project</span>
          <select
            aria-label="Project"
            value={project.name}
            onChange={(e) => navigate(`~/p/${encodeURIComponent(e.target.value)}/runs`)}
          >
            {options.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </label>
        <nav className="nav">
          {visible.map((n) => (
            <Link key={n.path} href={n.path} className={location.startsWith(n.path) ? 'active' : ''}>
              {n.label}
            </Link>
          ))}
        </nav>
        <div className="spacer" />
        {project.can('OWNER') && <HaltButton />}
        <span className="who" title={`${actor} · ${project.role.toLowerCase()} in ${project.name}`}>
          {actor.replace(/^user:/, '')} <span className="muted">({project.role.toLowerCase()})</span>
        </span>
        <button type="button" className="link" onClick={() => void logout()}>
          Sign out
        </button>
      </header>
      <HaltBanner />
      <main className="content">{children}</main>
    </div>
  );
}

function HaltBanner() {
  const project = useProject();
  const [{ data }, refetch] = useQuery({ query: HaltDoc, variables: { project: project.name } });
  const [lift, liftHalt] = useMutation(LiftHaltDoc);
  const h = data?.halt;
  if (!h?.halted) return null;
  return (
    <div className="halt-banner" role="alert" data-testid="halt-banner">
      <strong>Project halted</strong>: no run can start. {h.reason && <>Reason: “{h.reason}”. </>}
      {h.haltedBy && <>By {h.haltedBy}. </>}
      {project.can('OWNER') && (
        <button
          type="button"
          disabled={lift.fetching}
          onClick={() => void liftHalt({ project: project.name }).then(() => refetch({ requestPolicy: 'network-only' }))}
        >
          Lift halt
        </button>
      )}
      <ErrorBox error={lift.error} />
    </div>
  );
}

function HaltButton() {
  const project = useProject();
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState('');
  const [done, setDone] = useState<string | null>(null);
  const [state, haltAll] = useMutation(HaltAllDoc);
  return (
    <>
      <button type="button" className="danger" onClick={() => setOpen(true)} data-testid="halt-all">
        Halt all
      </button>
      {done && (
        <span className="muted" role="status">
          {done}
        </span>
      )}
      {open && (
        <Confirm
          title={`Halt every run in ${project.name}?`}
          confirmLabel="Halt all runs"
          danger
          busy={state.fetching}
          onCancel={() => setOpen(false)}
          onConfirm={() => {
            void haltAll(
              { project: project.name, reason: reason.trim() || 'halted from the dashboard' },
              { additionalTypenames: ['Halt', 'Run'] },
            ).then((r) => {
              if (!r.error && r.data) {
                const h = r.data.haltAll;
                setDone(`Halted: ${h.abortedRuns} runs aborted, ${h.delegates} delegates told to revert.`);
                setOpen(false);
              }
            });
          }}
        >
          <p>
            Every unfinished run of this project is aborted, every delegate reverts every fault at once, and no new
            run starts until an owner lifts the halt.
          </p>
          <label>
            Reason
            <input value={reason} onChange={(e) => setReason(e.target.value)} placeholder="e.g. customer impact" autoFocus />
          </label>
          <ErrorBox error={state.error} />
        </Confirm>
      )}
    </>
  );
}
