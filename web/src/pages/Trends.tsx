// Resilience score trends: per template and for the whole project, from finished runs (PASSED and
// FAILED: aborted and errored runs say nothing about resilience). Lazy-loaded with its chart.
import { useMemo } from 'react';
import { useQuery } from 'urql';
import { Link, useLocation, useSearch } from 'wouter';
import { graphql } from '../gql';
import { useProject } from '../project';
import { Ago, Empty, ErrorBox, Loading } from '../ui';
import { TrendChart } from './runs/TrendChart';
import { chartData, computeTrends, type TemplateTrend } from './runs/trends';
import { formatScore } from './runs/time';
import './runs/runs.css';

const TrendsRunsDoc = graphql(`
  query TrendsRuns($project: String!, $templateId: ID) {
    runs(project: $project, limit: 1000, status: [PASSED, FAILED], templateId: $templateId) {
      id
      resilienceScore
      endedAt
      template {
        id
        name
      }
    }
  }
`);

const TrendsTemplatesDoc = graphql(`
  query TrendsTemplates($project: String!) {
    templates(project: $project) {
      id
      name
    }
  }
`);

export default function TrendsPage() {
  const project = useProject();
  const search = useSearch();
  const [, navigate] = useLocation();
  const selected = new URLSearchParams(search).get('template') || null;

  const [all, refetch] = useQuery({ query: TrendsRunsDoc, variables: { project: project.name } });
  // A chosen template gets its own query: its history may reach further back than the project's
  // newest 1,000 runs.
  const [one] = useQuery({
    query: TrendsRunsDoc,
    variables: { project: project.name, templateId: selected },
    pause: !selected,
  });
  const [templates] = useQuery({ query: TrendsTemplatesDoc, variables: { project: project.name } });

  const trends = useMemo(() => computeTrends(all.data?.runs ?? []), [all.data]);
  const selectedTrend = useMemo(
    () => (selected && one.data ? computeTrends(one.data.runs).templates.find((t) => t.id === selected) : undefined),
    [selected, one.data],
  );
  const chart = useMemo(() => {
    const lines = selected ? (selectedTrend ? [selectedTrend] : []) : trends.templates;
    return chartData(lines, trends.project);
  }, [selected, selectedTrend, trends]);

  const choose = (id: string) => navigate(id ? `/trends?template=${encodeURIComponent(id)}` : '/trends', { replace: true });
  const options = templates.data?.templates ?? trends.templates.map((t) => ({ id: t.id, name: t.name }));

  return (
    <div className="page trends-page">
      <div className="row">
        <h1>Resilience trends</h1>
        <div className="spacer" />
        <label className="inline">
          Template&nbsp;
          <select aria-label="Template" value={selected ?? ''} onChange={(e) => choose(e.target.value)}>
            <option value="">All templates</option>
            {selected && !options.some((t) => t.id === selected) && <option value={selected}>unknown template</option>}
            {options.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </label>
      </div>
      <p className="muted">
        Resilience score of finished runs (passed or failed) by the time they ended: one line per template, and the
        project&apos;s daily mean (dashed).
      </p>
      {all.error && <ErrorBox error={all.error} retry={() => refetch({ requestPolicy: 'network-only' })} />}
      <ErrorBox error={one.error ?? templates.error} />
      {all.fetching && !all.data && <Loading what="finished runs" />}
      {all.data &&
        (trends.templates.length === 0 ? (
          <Empty>No finished runs yet: scores appear here once runs pass or fail.</Empty>
        ) : selected && one.fetching && !one.data ? (
          <Loading what="the template's runs" />
        ) : selected && !selectedTrend ? (
          <Empty>This template has no finished runs yet.</Empty>
        ) : (
          <TrendChart chart={chart} />
        ))}
      {all.data && trends.templates.length > 0 && (
        <TrendTable templates={selectedTrend ? mergeSelected(trends.templates, selectedTrend) : trends.templates} selected={selected} onSelect={choose} />
      )}
    </div>
  );
}

/** The table shows the chosen template's full history when its own query has it. */
function mergeSelected(list: TemplateTrend[], chosen: TemplateTrend): TemplateTrend[] {
  return list.some((t) => t.id === chosen.id) ? list.map((t) => (t.id === chosen.id ? chosen : t)) : [...list, chosen];
}

function TrendTable({ templates, selected, onSelect }: { templates: TemplateTrend[]; selected: string | null; onSelect(id: string): void }) {
  return (
    <table aria-label="Scores per template" data-testid="trend-table">
      <thead>
        <tr>
          <th>Template</th>
          <th className="num">Latest</th>
          <th className="num">Mean</th>
          <th className="num">Min</th>
          <th className="num">Runs</th>
          <th>Last ended</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {templates.map((t) => (
          <tr key={t.id} className={t.id === selected ? 'selected' : undefined} data-template={t.id}>
            <td>
              <Link href={`/templates/${t.id}`}>{t.name}</Link>
            </td>
            <td className="num">{formatScore(t.latest)}</td>
            <td className="num">{formatScore(t.mean)}</td>
            <td className="num">{formatScore(t.min)}</td>
            <td className="num">{t.count}</td>
            <td>
              <Ago at={new Date(t.lastAt).toISOString()} />
            </td>
            <td>
              {t.id === selected ? (
                <button type="button" className="link" onClick={() => onSelect('')}>
                  Show all
                </button>
              ) : (
                <button type="button" className="link" onClick={() => onSelect(t.id)} aria-label={`Chart ${t.name} only`}>
                  Chart only this
                </button>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
