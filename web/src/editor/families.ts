// Fault kinds grouped for people: by what their target is (the schema's definition), so a new
// kind acting on a known kind of target lands in its family with no change here. A kind with a
// new kind of target shows under "Other" until it gets a line (a test says so).
import type { FaultKind } from './schema';

export const FAMILIES = ['Process', 'Resources', 'Network', 'HTTP / proxy', 'Kubernetes', 'Inside pods', 'Other'] as const;
export type Family = (typeof FAMILIES)[number];

const BY_TARGET: Record<string, Family> = {
  ProcessTarget: 'Process',
  PathTarget: 'Resources',
  NetworkTarget: 'Network',
  HttpProxyTarget: 'HTTP / proxy',
  ProxyTarget: 'HTTP / proxy',
  PodTarget: 'Kubernetes',
  WorkloadTarget: 'Kubernetes',
  NodeTarget: 'Kubernetes',
  PodScopeTarget: 'Inside pods',
};

/** A kind's family; no target means the delegate's own host (cpu-stress, memory-stress). */
export function familyOf(kind: FaultKind): Family {
  return kind.target ? (BY_TARGET[kind.target] ?? 'Other') : 'Resources';
}

/** The kinds by family, in FAMILIES order, each family's kinds in the schema's order. */
export function byFamily(kinds: readonly FaultKind[]): [Family, FaultKind[]][] {
  return FAMILIES.map((f): [Family, FaultKind[]] => [f, kinds.filter((k) => familyOf(k) === f)]).filter(([, ks]) => ks.length > 0);
}
