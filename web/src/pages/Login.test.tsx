import { afterEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { AuthProvider } from '../auth';
import { LoginPage } from './Login';

type Handler = (url: string, init?: RequestInit) => Response;

function mockFetch(handler: Handler) {
  const calls: { url: string; init?: RequestInit }[] = [];
  vi.stubGlobal('fetch', async (url: string, init?: RequestInit) => {
    calls.push({ url, init });
    return handler(url, init);
  });
  return calls;
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

afterEach(() => {
  vi.unstubAllGlobals();
  window.history.replaceState(null, '', '/');
});

describe('LoginPage', () => {
  it('offers one button per SSO provider', async () => {
    mockFetch((url) =>
      url === '/auth/providers'
        ? json([
            { name: 'entra', displayName: 'Microsoft Entra ID', loginUrl: '/auth/oidc/entra/login' },
            { name: 'okta', displayName: 'Okta', loginUrl: '/auth/oidc/okta/login' },
          ])
        : json({ session: null }),
    );
    render(
      <AuthProvider>
        <LoginPage />
      </AuthProvider>,
    );
    const entra = await screen.findByRole('link', { name: 'Sign in with Microsoft Entra ID' });
    expect(entra.getAttribute('href')).toBe('/auth/oidc/entra/login');
    expect(screen.getByRole('link', { name: 'Sign in with Okta' })).toBeTruthy();
  });

  it("shows the hub's refusal and sends what was typed", async () => {
    const calls = mockFetch((url) => {
      if (url === '/auth/providers') return json([]);
      if (url === '/auth/login') return json({ error: 'wrong email or password', code: 'UNAUTHENTICATED' }, 401);
      return json({ session: null });
    });
    render(
      <AuthProvider>
        <LoginPage />
      </AuthProvider>,
    );
    fireEvent.change(screen.getByLabelText('Email'), { target: { value: 'sre@example.com' } });
    fireEvent.change(screen.getByLabelText('Password'), { target: { value: 'hunter2hunter2' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect((await screen.findByRole('alert')).textContent).toBe('wrong email or password');
    const login = calls.find((c) => c.url === '/auth/login')!;
    expect(JSON.parse(String(login.init?.body))).toEqual({ email: 'sre@example.com', password: 'hunter2hunter2' });
  });

  it('says when to try again after too many attempts', async () => {
    mockFetch((url) => {
      if (url === '/auth/login') return new Response('{}', { status: 429, headers: { 'retry-after': '42' } });
      return url === '/auth/providers' ? json([]) : json({ session: null });
    });
    render(
      <AuthProvider>
        <LoginPage />
      </AuthProvider>,
    );
    fireEvent.change(screen.getByLabelText('Email'), { target: { value: 'a@b.c' } });
    fireEvent.change(screen.getByLabelText('Password'), { target: { value: 'x' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    await waitFor(() => expect(screen.getByRole('alert').textContent).toBe('Too many attempts: try again in 42 s.'));
  });

  it('shows an SSO refusal passed back in the URL', async () => {
    window.history.replaceState(null, '', '/login?error=the%20provider%20refused%20the%20login');
    mockFetch((url) => (url === '/auth/providers' ? json([]) : json({ session: null })));
    render(
      <AuthProvider>
        <LoginPage />
      </AuthProvider>,
    );
    expect(screen.getByRole('alert').textContent).toBe('the provider refused the login');
    await waitFor(() => expect(screen.queryByText(/Single sign-on is unavailable/)).toBeNull());
  });
});
