// Sign in: the local user form, and one button per SSO provider the hub is configured with.
// An SSO refusal comes back as /login?error=... and is shown here.
import { useEffect, useState, type FormEvent } from 'react';
import { fetchProviders, useAuth, type Provider } from '../auth';

export function LoginPage() {
  const { login } = useAuth();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(() => new URLSearchParams(window.location.search).get('error'));
  const [providers, setProviders] = useState<Provider[] | null>(null);
  const [providerError, setProviderError] = useState<string | null>(null);

  useEffect(() => {
    fetchProviders()
      .then(setProviders)
      .catch((e: Error) => setProviderError(e.message));
  }, []);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!email.trim() || !password) {
      setError('Enter your email and password.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const err = await login(email.trim(), password);
      if (err) setError(err);
      else if (window.location.pathname === '/login') window.history.replaceState(null, '', '/');
    } catch (err) {
      setError(`Cannot reach the hub: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="login">
      <form className="card" onSubmit={(e) => void submit(e)} aria-label="Sign in">
        <h1>
          <img src="/favicon.svg" alt="" width={28} height={28} /> Faultline
        </h1>
        <label>
          Email
          <input type="email" autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} autoFocus />
        </label>
        <label>
          Password
          <input
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        {error && (
          <div className="error-box" role="alert">
            {error}
          </div>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {providers && providers.length > 0 && (
          <div className="sso">
            <div className="or">or</div>
            {providers.map((p) => (
              <a key={p.name} className="button" href={p.loginUrl}>
                Sign in with {p.displayName}
              </a>
            ))}
          </div>
        )}
        {providerError && <div className="muted">Single sign-on is unavailable: {providerError}</div>}
      </form>
    </div>
  );
}
