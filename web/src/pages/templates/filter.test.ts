import { describe, expect, it } from 'vitest';
import { filterTemplates, labelPairs, matches } from './filter';

const list = [
  { name: 'web-survives-kill', description: 'the web server comes back', labels: { tier: 'demo', team: 'web' } },
  { name: 'db-failover', description: 'Postgres fails over', labels: { tier: 'prod' } },
  { name: 'cache-latency', description: 'slow redis', labels: {} },
];
const names = (s: string, picked: string[] = []) => filterTemplates(list, s, picked).map((t) => t.name);

describe('labelPairs', () => {
  it('sorts pairs and tolerates odd JSON', () => {
    expect(labelPairs({ b: '2', a: '1' })).toEqual([
      ['a', '1'],
      ['b', '2'],
    ]);
    expect(labelPairs({ n: 3 })).toEqual([['n', '3']]);
    expect(labelPairs(null)).toEqual([]);
    expect(labelPairs(['x'])).toEqual([]);
  });
});

describe('filterTemplates', () => {
  it('keeps everything for an empty search', () => {
    expect(names('  ')).toHaveLength(3);
  });
  it('matches free text in name, description and labels, case-insensitively', () => {
    expect(names('KILL')).toEqual(['web-survives-kill']);
    expect(names('postgres')).toEqual(['db-failover']);
    expect(names('prod')).toEqual(['db-failover']);
  });
  it('needs every term', () => {
    expect(names('web back')).toEqual(['web-survives-kill']);
    expect(names('web postgres')).toEqual([]);
  });
  it('matches key=value terms against labels only', () => {
    expect(names('tier=prod')).toEqual(['db-failover']);
    expect(names('tier=')).toEqual(['web-survives-kill', 'db-failover']);
    expect(names('team=we')).toEqual(['web-survives-kill']);
    expect(names('name=web')).toEqual([]);
  });
  it('requires every picked label exactly', () => {
    expect(names('', ['tier=demo'])).toEqual(['web-survives-kill']);
    expect(names('', ['tier=dem'])).toEqual([]);
    expect(names('', ['tier=demo', 'team=web'])).toEqual(['web-survives-kill']);
    expect(names('db', ['tier=demo'])).toEqual([]);
  });
  it('matches one template at a time', () => {
    expect(matches(list[2], 'redis')).toBe(true);
    expect(matches(list[2], 'tier=')).toBe(false);
  });
});
