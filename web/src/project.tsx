// The project the pages work in (from the URL, /p/<name>/...) and the caller's role in it.
import { createContext, useContext, type ReactNode } from 'react';
import type { Role } from './gql/graphql';

const RANK: Record<Role, number> = { VIEWER: 0, EDITOR: 1, OWNER: 2 };

export interface ProjectState {
  name: string;
  /** The caller's role; administrators act as owners everywhere. */
  role: Role;
  admin: boolean;
  /** Whether the caller has at least `need` here. */
  can(need: Role): boolean;
}

const Ctx = createContext<ProjectState | null>(null);

export function roleAtLeast(have: Role, need: Role): boolean {
  return RANK[have] >= RANK[need];
}

export function ProjectProvider({
  name,
  role,
  admin,
  children,
}: {
  name: string;
  role: Role;
  admin: boolean;
  children: ReactNode;
}) {
  const effective: Role = admin ? 'OWNER' : role;
  const value: ProjectState = { name, role: effective, admin, can: (need) => roleAtLeast(effective, need) };
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useProject(): ProjectState {
  const c = useContext(Ctx);
  if (!c) throw new Error('useProject outside <ProjectProvider>');
  return c;
}
