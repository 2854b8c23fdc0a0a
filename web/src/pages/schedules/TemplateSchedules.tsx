// The template page's panel of the schedules that run it, each linked, and for editors a
// "Schedule…" button that opens the new-schedule form with this template picked.
import { useQuery } from 'urql';
import { Link, useLocation } from 'wouter';
import { graphql } from '../../gql';
import { useProject } from '../../project';
import { ErrorBox } from '../../ui';
import { When } from '../admin/common';
import './schedules.css';

const TemplateSchedulesDoc = graphql(`
  query TemplateSchedules($project: String!, $templateId: ID!) {
    schedules(project: $project, templateId: $templateId) {
      id
      name
      cron
      timezone
      enabled
      nextFireAt
    }
  }
`);

export function TemplateSchedules({ templateId }: { templateId: string }) {
  const project = useProject();
  const [, navigate] = useLocation();
  const [{ data, error }] = useQuery({ query: TemplateSchedulesDoc, variables: { project: project.name, templateId } });
  const schedules = data?.schedules ?? [];
  return (
    <section className="panel tpl-schedules" aria-label="Schedules of this template">
      <div className="row">
        <h2>Schedules</h2>
        <div className="spacer" />
        {project.can('EDITOR') && (
          <button type="button" onClick={() => navigate(`/schedules/new?template=${encodeURIComponent(templateId)}`)}>
            Schedule…
          </button>
        )}
      </div>
      <ErrorBox error={error} />
      {data && schedules.length === 0 && <p className="muted">No schedule runs this template.</p>}
      {schedules.length > 0 && (
        <table className="compact">
          <tbody>
            {schedules.map((s) => (
              <tr key={s.id} data-testid="template-schedule">
                <td>
                  <Link href={`/schedules/${s.id}`}>{s.name}</Link>
                </td>
                <td>
                  <code>{s.cron}</code> <span className="muted">{s.timezone}</span>
                </td>
                <td>{s.enabled ? <When at={s.nextFireAt} /> : <span className="muted">paused</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
