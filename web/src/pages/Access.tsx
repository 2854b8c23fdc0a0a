// Members & tokens (owners): who may do what in the project, and the API tokens CI uses.
// Instance administrators also get a panel to create projects.
import { useProject } from '../project';
import { ApiTokens } from './admin/ApiTokens';
import { OwnersOnly } from './admin/common';
import { Members } from './admin/Members';
import { Projects } from './admin/Projects';
import './admin/admin.css';

export function AccessPage() {
  const project = useProject();
  return (
    <div className="page admin-page">
      <h1>Members &amp; tokens</h1>
      {project.can('OWNER') ? (
        <>
          <Members />
          <ApiTokens />
          {project.admin && <Projects />}
        </>
      ) : (
        <OwnersOnly project={project.name} what="its members and API tokens" />
      )}
    </div>
  );
}
