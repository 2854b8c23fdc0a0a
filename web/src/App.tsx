// Routing: the login page until there is a session; then every page lives under
// /p/<project>/ (a nested router, so pages link with paths relative to their project).
import { lazy, Suspense, useMemo } from 'react';
import { Provider as UrqlProvider, useQuery } from 'urql';
import { Redirect, Route, Switch, useParams, useSearch } from 'wouter';
import { AuthProvider, useAuth } from './auth';
import { makeClient } from './client';
import { graphql } from './gql';
import type { MeQuery } from './gql/graphql';
import { Layout } from './Layout';
import { ProjectProvider } from './project';
import { ErrorBox, Loading } from './ui';
import { LoginPage } from './pages/Login';
import { RunsPage } from './pages/Runs';
import { RunPage } from './pages/Run';
import { DelegatesPage } from './pages/Delegates';
import { AccessPage } from './pages/Access';
import { AuditPage } from './pages/Audit';
import { TemplatesPage } from './pages/Templates';
import { SchedulesPage } from './pages/Schedules';
import { NewSchedulePage, SchedulePage } from './pages/Schedule';
import { WebhooksPage } from './pages/Webhooks';

// The editor and the chart are the heavy parts: loaded when their page opens.
const TemplateEditorPage = lazy(() => import('./pages/TemplateEditor'));
const TrendsPage = lazy(() => import('./pages/Trends'));
const ComparePage = lazy(() => import('./pages/Compare'));

const MeDoc = graphql(`
  query Me {
    me {
      actor
      kind
      email
      admin
      projects {
        role
        project {
          name
        }
      }
    }
  }
`);

export function App() {
  return (
    <AuthProvider>
      <Gate />
    </AuthProvider>
  );
}

function Gate() {
  const { session, loading, error, refresh } = useAuth();
  const client = useMemo(() => (session ? makeClient() : null), [session]);
  if (loading) return <Loading what="Faultline" />;
  if (error) return <ErrorBox error={error} retry={() => void refresh()} />;
  if (!session || !client) return <LoginPage />;
  return (
    <UrqlProvider value={client}>
      <Shell />
    </UrqlProvider>
  );
}

function Shell() {
  const [{ data, fetching, error }, reexecute] = useQuery({ query: MeDoc });
  if (fetching && !data) return <Loading what="your projects" />;
  if (error && !data) return <ErrorBox error={error} retry={() => reexecute({ requestPolicy: 'network-only' })} />;
  const me = data!.me;
  const first = me.projects[0]?.project.name;
  return (
    <Switch>
      <Route path="/p/:project" nest>
        <ProjectRoutes me={me} />
      </Route>
      <Route>
        {first ? (
          <Redirect to={`/p/${encodeURIComponent(first)}/runs`} replace />
        ) : (
          <div className="page narrow">
            <h1>No projects</h1>
            <p>
              You ({me.actor}) are not a member of any project yet. Ask a project owner to add you, or an
              administrator to create a project.
            </p>
          </div>
        )}
      </Route>
    </Switch>
  );
}

/** `/templates/new`, or `?copy=<id>` for a duplicate of that template. */
function NewTemplate() {
  const copy = new URLSearchParams(useSearch()).get('copy');
  return <TemplateEditorPage copyOf={copy ?? undefined} />;
}

/** `/schedules/new`, or `?template=<id>` with that template picked. */
function NewSchedule() {
  const template = new URLSearchParams(useSearch()).get('template');
  return <NewSchedulePage templateId={template ?? undefined} />;
}

function ProjectRoutes({ me }: { me: MeQuery['me'] }) {
  const { project } = useParams<{ project: string }>();
  const name = decodeURIComponent(project);
  const membership = me.projects.find((p) => p.project.name === name);
  if (!membership && !me.admin) {
    return (
      <div className="page narrow">
        <h1>Project not found</h1>
        <p>There is no project “{name}”, or you are not a member of it.</p>
        <a href="/">Go to your projects</a>
      </div>
    );
  }
  return (
    <ProjectProvider name={name} role={membership?.role ?? 'OWNER'} admin={me.admin}>
      <Layout projects={me.projects.map((p) => p.project.name)} actor={me.actor}>
        <Suspense fallback={<Loading />}>
          <Switch>
            <Route path="/templates" component={TemplatesPage} />
            <Route path="/templates/new">{() => <NewTemplate />}</Route>
            <Route path="/templates/:id">{(p) => <TemplateEditorPage id={p.id} />}</Route>
            <Route path="/runs" component={RunsPage} />
            <Route path="/runs/compare">{() => <ComparePage />}</Route>
            <Route path="/runs/:id">{(p) => <RunPage id={p.id} />}</Route>
            <Route path="/schedules" component={SchedulesPage} />
            <Route path="/schedules/new">{() => <NewSchedule />}</Route>
            <Route path="/schedules/:id">{(p) => <SchedulePage id={p.id} />}</Route>
            <Route path="/delegates" component={DelegatesPage} />
            <Route path="/webhooks" component={WebhooksPage} />
            <Route path="/trends">{() => <TrendsPage />}</Route>
            <Route path="/access" component={AccessPage} />
            <Route path="/audit" component={AuditPage} />
            <Route>
              <Redirect to="/runs" replace />
            </Route>
          </Switch>
        </Suspense>
      </Layout>
    </ProjectProvider>
  );
}
