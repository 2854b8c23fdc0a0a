// @vitest-environment node
/// <reference types="node" />
// deploy/grafana/faultline.json is exactly what Grafana's Foundation SDK builds from
// dashboard.ts, and its layout and queries hold together. `UPDATE_DASHBOARD=1` rewrites the file.
// (The e2e test tests/tests/e2e/observability.rs runs every query against a real Prometheus.)
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildDashboard, dashboardJson } from './dashboard';

const file = fileURLToPath(new URL('../../../deploy/grafana/faultline.json', import.meta.url));

type Grid = { x: number; y: number; w: number; h: number };
type AnyPanel = { id: number; type: string; title: string; gridPos: Grid; targets?: { refId: string; expr: string; datasource?: { uid?: string } }[] };

describe('the Grafana dashboard', () => {
  it('is committed exactly as the Foundation SDK builds it', () => {
    if (process.env.UPDATE_DASHBOARD) writeFileSync(file, dashboardJson());
    expect(readFileSync(file, 'utf8')).toBe(dashboardJson());
  });

  it('has a schema version, unique panel ids and panels that fit the 24-column grid without overlapping', () => {
    const d = buildDashboard();
    expect(d.schemaVersion).toBeGreaterThanOrEqual(39);
    const panels = (d.panels ?? []) as AnyPanel[];
    expect(panels.length).toBe(20);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const p of panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      for (const q of panels) {
        if (p === q) continue;
        const apart =
          p.gridPos.x + p.gridPos.w <= q.gridPos.x ||
          q.gridPos.x + q.gridPos.w <= p.gridPos.x ||
          p.gridPos.y + p.gridPos.h <= q.gridPos.y ||
          q.gridPos.y + q.gridPos.h <= p.gridPos.y;
        expect(apart, `${p.title} overlaps ${q.title}`).toBe(true);
      }
    }
  });

  it('queries the chosen Prometheus with distinct refIds, and every panel a faultline_ series', () => {
    const panels = (buildDashboard().panels ?? []) as AnyPanel[];
    for (const p of panels.filter((p) => p.type !== 'row')) {
      const targets = p.targets ?? [];
      expect(targets.length, p.title).toBeGreaterThan(0);
      expect(new Set(targets.map((t) => t.refId)).size, p.title).toBe(targets.length);
      for (const t of targets) {
        expect(t.datasource?.uid, p.title).toBe('${datasource}');
        expect(t.expr, p.title).toMatch(/faultline_[a-z_]+/);
      }
    }
  });

  it('offers the chaos windows as annotations: pushed by the hub and from faultline_fault_active', () => {
    const list = buildDashboard().annotations.list ?? [];
    const pushed = list.find((a) => a.target && 'tags' in a.target);
    expect(pushed?.target).toMatchObject({ type: 'tags', tags: ['faultline'] });
    expect(list.find((a) => a.expr?.includes('faultline_fault_active'))).toBeDefined();
    const vars = (buildDashboard().templating.list ?? []).map((v) => v.name);
    expect(vars).toEqual(['datasource', 'project']);
  });
});
