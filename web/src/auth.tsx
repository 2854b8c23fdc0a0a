// The session: who is signed in (GET /auth/session), signing in (POST /auth/login, which sets the
// HttpOnly session cookie) and out. The token itself never reaches JavaScript storage.
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';

export interface Session {
  actor: string;
  admin: boolean;
  kind: 'user' | 'token';
}

export interface Provider {
  name: string;
  displayName: string;
  loginUrl: string;
}

interface AuthState {
  session: Session | null;
  loading: boolean;
  error: string | null;
  login(email: string, password: string): Promise<string | null>;
  logout(): Promise<void>;
  refresh(): Promise<void>;
}

const Ctx = createContext<AuthState | null>(null);

export function useAuth(): AuthState {
  const c = useContext(Ctx);
  if (!c) throw new Error('useAuth outside <AuthProvider>');
  return c;
}

async function errorOf(r: Response): Promise<string> {
  try {
    const body = (await r.json()) as { error?: string };
    if (body.error) return body.error;
  } catch {
    /* not JSON */
  }
  return `${r.status} ${r.statusText}`;
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  const refresh = useCallback(async () => {
    try {
      // /auth/session answers 200 either way, so a signed-out visit logs no error.
      const r = await fetch('/auth/session', { credentials: 'same-origin' });
      if (r.ok) {
        const body = (await r.json()) as { session: Session | null };
        setSession(body.session);
        setError(null);
      } else {
        setError(await errorOf(r));
      }
    } catch (e) {
      setError(`Cannot reach the hub: ${(e as Error).message}`);
    } finally {
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  const login = useCallback(
    async (email: string, password: string) => {
      const r = await fetch('/auth/login', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password }),
      });
      if (!r.ok) {
        if (r.status === 429) {
          const after = r.headers.get('retry-after');
          return `Too many attempts${after ? `: try again in ${after} s` : ''}.`;
        }
        return await errorOf(r);
      }
      await refresh();
      return null;
    },
    [refresh],
  );

  const logout = useCallback(async () => {
    await fetch('/auth/logout', { method: 'POST', credentials: 'same-origin' });
    setSession(null);
  }, []);

  return <Ctx.Provider value={{ session, loading, error, login, logout, refresh }}>{children}</Ctx.Provider>;
}

export async function fetchProviders(): Promise<Provider[]> {
  const r = await fetch('/auth/providers', { credentials: 'same-origin' });
  if (!r.ok) throw new Error(await errorOf(r));
  return (await r.json()) as Provider[];
}
