// The Grafana dashboard shipped as deploy/grafana/faultline.json, built with Grafana's own
// Foundation SDK (@grafana/grafana-foundation-sdk): its builders and types are generated from
// Grafana's dashboard schema, so a field the schema does not know, or a value of the wrong type,
// fails `tsc`. dashboard.test.ts checks that the committed JSON is exactly this build
// (`UPDATE_DASHBOARD=1 npm test -- grafana` rewrites it). Not part of the web app's bundle.
//
// The series are the hub's and the delegate's (docs/observability.md). Hub-wide series are the
// same on every replica: panels take the max across replicas before summing.
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';

const datasource: common.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };
const grafanaDatasource: common.DataSourceRef = { type: 'grafana', uid: '-- Grafana --' };
const project = 'project=~"$project"';

/** One PromQL query of a panel. */
function query(refId: string, expr: string, legend: string): prometheus.DataqueryBuilder {
  return new prometheus.DataqueryBuilder().refId(refId).datasource(datasource).expr(expr).legendFormat(legend);
}

/** p`q` of a histogram's rate, grouped by `by` (always with `le`). */
function quantile(q: number, metric: string, by: string[], window = '$__rate_interval', selector = ''): string {
  const group = ['le', ...by].join(', ');
  return `histogram_quantile(${q}, sum by (${group}) (rate(${metric}_bucket${selector}[${window}])))`;
}

/**
 * The built-in Grafana datasource's query for annotations by tag. The schema types an
 * annotation's `target` as a datasource query; the SDK's AnnotationTarget is this one's shape.
 */
function tagsTarget(tags: string[]): cog.Builder<cog.Dataquery> {
  const target = new dashboard.AnnotationTargetBuilder().type('tags').tags(tags).matchAny(true).limit(500);
  return { build: () => ({ ...target.build(), _implementsDataqueryVariant() {} }) };
}

type Size = { x: number; y: number; w: number; h: number };

function series(id: number, title: string, description: string, at: Size, ...targets: prometheus.DataqueryBuilder[]): timeseries.PanelBuilder {
  const panel = new timeseries.PanelBuilder()
    .id(id)
    .title(title)
    .datasource(datasource)
    .gridPos(at)
    .legend(new common.VizLegendOptionsBuilder().displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom).showLegend(true))
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending));
  if (description) panel.description(description);
  for (const t of targets) panel.withTarget(t);
  return panel;
}

/** A stacked area: parts of one whole (verdicts, kinds, results). */
function stacked(panel: timeseries.PanelBuilder): timeseries.PanelBuilder {
  return panel.stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal)).fillOpacity(30);
}

function row(id: number, title: string, y: number): dashboard.RowBuilder {
  return new dashboard.RowBuilder(title).id(id).collapsed(false).gridPos({ x: 0, y, w: 24, h: 1 });
}

export function buildDashboard(): dashboard.Dashboard {
  const builder = new dashboard.DashboardBuilder('Faultline')
    .uid('faultline')
    .description("Faultline's hub and delegates: resilience scores, runs, chaos windows, probes, the delegate fleet. docs/observability.md.")
    .tags(['faultline', 'chaos'])
    .timezone('browser')
    .editable()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .refresh('30s')
    .time({ from: 'now-6h', to: 'now' })
    .version(1)
    .withVariable(new dashboard.DatasourceVariableBuilder('datasource').label('Prometheus').type('prometheus'))
    .withVariable(
      new dashboard.QueryVariableBuilder('project')
        .label('Project')
        .datasource(datasource)
        .query('label_values(faultline_runs_started_total, project)')
        .definition('label_values(faultline_runs_started_total, project)')
        .includeAll(true)
        .multi(true)
        .allValue('.*')
        .current({ text: 'All', value: '$__all' })
        .refresh(dashboard.VariableRefresh.OnTimeRangeChanged),
    )
    .annotation(
      new dashboard.AnnotationQueryBuilder()
        .name('Faultline runs and faults (pushed by the hub)')
        .datasource(grafanaDatasource)
        .enable(true)
        .iconColor('red')
        .target(tagsTarget(['faultline'])),
    )
    .annotation(
      new dashboard.AnnotationQueryBuilder()
        .name('Chaos windows (faultline_fault_active)')
        .datasource(datasource)
        .enable(false)
        .iconColor('orange')
        .expr(`max by (kind, project) (faultline_fault_active{${project}}) > 0`)
        .step('15s')
        .titleFormat('{{kind}}')
        .tagKeys('project,kind')
        .useValueForTime(false),
    );

  builder
    .withRow(row(1, 'Resilience', 0))
    .withPanel(
      series(
        2,
        'Resilience score by template',
        'The last resilience score (0-100) of each template; a drop after a change means the service got less resilient.',
        { x: 0, y: 1, w: 12, h: 8 },
        query('A', `max by (project, template) (faultline_resilience_score{${project}})`, '{{template}}'),
      )
        .unit('none')
        .min(0)
        .max(100),
    )
    .withPanel(
      stacked(
        series(
          3,
          'Runs by verdict',
          'Runs finished per interval, by verdict (passed, failed, aborted, error). Hub-wide series: the same on every replica, so max across replicas first.',
          { x: 12, y: 1, w: 12, h: 8 },
          query('A', `sum by (verdict) (max by (project, verdict) (increase(faultline_runs_finished_total{${project}}[$__rate_interval])))`, '{{verdict}}'),
        ),
      ),
    )
    .withPanel(
      series(
        4,
        'Run duration p50 / p95',
        'How long finished runs took, start to end (over the last hour).',
        { x: 0, y: 9, w: 12, h: 8 },
        query('A', runDuration(0.5), 'p50'),
        query('B', runDuration(0.95), 'p95'),
      ).unit('s'),
    )
    .withPanel(
      stacked(
        series(
          5,
          'Faults active (chaos windows)',
          'Faults applied and not yet undone, by kind: the windows in which your other graphs should be read.',
          { x: 12, y: 9, w: 12, h: 8 },
          query('A', `sum by (kind) (max by (kind, project) (faultline_fault_active{${project}}))`, '{{kind}}'),
        ),
      ),
    )
    .withRow(row(6, 'Probes during chaos', 17))
    .withPanel(
      series(
        7,
        'Probe latency p95 by kind (delegates)',
        'What the probes measured, as seen by the delegates, with the number of active faults on the same axis to read the chaos windows.',
        { x: 0, y: 18, w: 12, h: 8 },
        query('A', quantile(0.95, 'faultline_delegate_probe_duration_seconds', ['kind']), 'p95 {{kind}}'),
        query('B', `sum(max by (kind, project) (faultline_fault_active{${project}})) > 0`, 'faults active'),
      ).unit('s'),
    )
    .withPanel(
      stacked(
        series(
          8,
          'Probe checks by result',
          'Probe checks stored per second, by result (summed over hub replicas).',
          { x: 12, y: 18, w: 12, h: 8 },
          query('A', 'sum by (result) (rate(faultline_probe_checks_total[$__rate_interval]))', '{{result}}'),
        ).unit('ops'),
      ),
    )
    .withRow(row(9, 'Delegate fleet', 26))
    .withPanel(
      new stat.PanelBuilder()
        .id(10)
        .title('Delegates connected')
        .description('Delegates connected to any hub replica.')
        .datasource(datasource)
        .gridPos({ x: 0, y: 27, w: 6, h: 8 })
        .withTarget(query('A', `sum(max by (project) (faultline_delegates_connected{${project}}))`, 'connected'))
        .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']))
        .graphMode(common.BigValueGraphMode.Area),
    )
    .withPanel(
      series(
        11,
        'Delegate streams per replica',
        'Delegate streams held by each hub replica: they move to another replica when one stops.',
        { x: 6, y: 27, w: 9, h: 8 },
        query('A', 'sum by (instance) (faultline_delegate_streams)', '{{instance}}'),
      ),
    )
    .withPanel(
      series(
        12,
        "Delegates' unacknowledged events",
        'Events a delegate has stored and the hub has not acknowledged yet (a delegate away from the hub buffers them on disk).',
        { x: 15, y: 27, w: 9, h: 8 },
        query('A', 'sum by (instance) (faultline_delegate_events_buffered)', '{{instance}}'),
        query('B', 'count(faultline_delegate_hub_connected == 0)', 'delegates without the hub'),
      ),
    )
    .withPanel(
      series(
        13,
        'Fault apply / revert p95 (delegates)',
        'How long the delegates took to apply and to undo each kind of fault.',
        { x: 0, y: 35, w: 12, h: 8 },
        query('A', quantile(0.95, 'faultline_delegate_fault_apply_duration_seconds', ['kind']), 'apply {{kind}}'),
        query('B', quantile(0.95, 'faultline_delegate_fault_revert_duration_seconds', ['kind']), 'revert {{kind}}'),
      ).unit('s'),
    )
    .withPanel(
      series(
        14,
        'Delegate proxies',
        "Traffic through the delegates' fault proxies (tcp, http): bytes and new connections per second.",
        { x: 12, y: 35, w: 12, h: 8 },
        query('A', 'sum by (proxy) (rate(faultline_delegate_proxy_bytes_total[$__rate_interval]))', 'bytes/s {{proxy}}'),
        query('B', 'sum by (proxy) (rate(faultline_delegate_proxy_connections_total[$__rate_interval]))', 'connections/s {{proxy}}'),
      ),
    )
    .withRow(row(15, 'Hub', 43))
    .withPanel(
      series(
        16,
        'GraphQL p95 by operation',
        'GraphQL request latency by root field of the schema (summed over hub replicas).',
        { x: 0, y: 44, w: 12, h: 8 },
        query('A', quantile(0.95, 'faultline_graphql_request_duration_seconds', ['operation']), '{{operation}}'),
      ).unit('s'),
    )
    .withPanel(
      series(
        17,
        'GraphQL errors by code',
        'GraphQL requests answered with an error, by its code.',
        { x: 12, y: 44, w: 12, h: 8 },
        query('A', 'sum by (status) (rate(faultline_graphql_request_duration_seconds_count{status!="ok"}[$__rate_interval]))', '{{status}}'),
      ).unit('reqps'),
    )
    .withPanel(
      series(
        18,
        'Event ingest',
        'Events stored per second from the delegates, and the p99 time to store one batch.',
        { x: 0, y: 52, w: 12, h: 8 },
        query('A', 'sum(rate(faultline_events_ingested_total[$__rate_interval]))', 'events/s'),
        query('B', quantile(0.99, 'faultline_ingest_batch_duration_seconds', []), 'batch p99 (s)'),
      ),
    )
    .withPanel(
      series(
        19,
        'Schedules and webhooks',
        'Schedule fires and webhook deliveries per interval, by outcome.',
        { x: 12, y: 52, w: 12, h: 8 },
        query('A', 'sum by (outcome) (increase(faultline_schedule_fires_total[$__rate_interval]))', 'fire {{outcome}}'),
        query('B', 'sum by (outcome) (increase(faultline_webhook_deliveries_total[$__rate_interval]))', 'webhook {{outcome}}'),
      ),
    )
    .withPanel(
      stacked(
        series(
          20,
          'Postgres pool',
          "Each hub replica's Postgres connections, in use and idle.",
          { x: 0, y: 60, w: 12, h: 8 },
          query('A', 'sum by (instance, state) (faultline_db_pool_connections)', '{{instance}} {{state}}'),
        ),
      ),
    );
  return builder.build();
}

/** Run duration quantile over the last hour; hub-wide, so max across replicas first. */
function runDuration(q: number): string {
  return `histogram_quantile(${q}, sum by (le) (max by (le, project) (rate(faultline_run_duration_seconds_bucket{${project}}[1h]))))`;
}

/** The dashboard as the committed file holds it: two-space JSON and a final newline. */
export function dashboardJson(): string {
  return JSON.stringify(buildDashboard(), null, 2) + '\n';
}
