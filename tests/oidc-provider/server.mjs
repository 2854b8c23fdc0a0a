// A real OpenID Connect provider (panva/oidc-provider) for the hub's SSO tests. Test-only: fixed
// accounts, no passwords, consent granted automatically.
//
//   node server.mjs [--port N] [--id-token-ttl SECONDS]
//   OIDC_PORT, OIDC_ID_TOKEN_TTL and OIDC_CLIENTS (JSON) work as well.
//
// OIDC_CLIENTS (or --clients JSON): [{"client_id": "...", "client_secret": "...",
// "redirect_uris": ["http://127.0.0.1:1/cb"]}, ...]
//
// Port 0 picks a free port; the issuer is http://127.0.0.1:<port>, printed as `oidc ready <issuer>`
// on stdout once the provider listens.
//
// Logging in without a browser:
//   GET  /auth?...                    -> 303 /interaction/<uid>
//   GET  /interaction/<uid>           -> 200, JSON {uid, prompt} (what a login page would show)
//   POST /interaction/<uid>/login     body `login=alice` (form-encoded) -> 303 back to /auth/<uid>
//   ... the provider then redirects to the client's redirect_uri with code and state; consent is
//   granted automatically (`loadExistingGrant`).
//
// Test hooks:
//   POST /test/rotate-keys            replaces the signing key (new `kid`), as a provider rotating
//                                     its keys does; answers {"kid": "..."}
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'id-token-ttl': { type: 'string' },
    clients: { type: 'string' },
  },
});

const port = Number(args.port ?? process.env.OIDC_PORT ?? 0);
const idTokenTtl = Number(args['id-token-ttl'] ?? process.env.OIDC_ID_TOKEN_TTL ?? 3600);
const clients = JSON.parse(args.clients ?? process.env.OIDC_CLIENTS ?? '[]').map((c) => ({
  client_id: c.client_id,
  client_secret: c.client_secret,
  redirect_uris: c.redirect_uris,
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
}));

// The test accounts. `groups` and `roles` look like Azure Entra ID's claims of the same names.
const ACCOUNTS = {
  alice: { email: 'alice@example.test', name: 'Alice Example', groups: ['grp-editors'], roles: [] },
  bob: { email: 'bob@example.test', name: 'Bob Example', groups: ['grp-viewers'], roles: ['Faultline.Admin'] },
  carol: { email: 'carol@example.test', name: 'Carol Example', groups: [], roles: [] },
};

let keyCount = 0;
function newSigningKey() {
  keyCount += 1;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: `test-key-${keyCount}`, alg: 'RS256', use: 'sig' };
}

function makeProvider(issuer, signingKey) {
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [signingKey] },
    cookies: { keys: ['oidc-test-provider-cookie-key'] },
    // The hub must send PKCE (S256); refusing requests without it makes the tests prove it does.
    pkce: { required: () => true },
    // Scope claims go into the ID token itself, as with Entra ID (`groups`, `roles`).
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'groups', 'roles'],
    },
    ttl: {
      IdToken: () => idTokenTtl,
      AccessToken: () => 3600,
      AuthorizationCode: () => 60,
      Grant: () => 3600,
      Interaction: () => 600,
      Session: () => 3600,
    },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, email_verified: true, ...account };
        },
      };
    },
    // Consent is granted automatically for every scope the client asked for.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        const existing = await ctx.oidc.provider.Grant.find(grantId);
        if (existing) return existing;
      }
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
      await grant.save();
      return grant;
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  return provider;
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 64 * 1024) reject(new Error('body too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

function json(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

let provider;
let callback;

async function handle(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const login = url.pathname.match(/^\/interaction\/([^/]+)\/login$/);
  const interaction = url.pathname.match(/^\/interaction\/([^/]+)$/);
  if (req.method === 'POST' && url.pathname === '/test/rotate-keys') {
    const key = newSigningKey();
    provider = makeProvider(provider.issuer, key);
    callback = provider.callback();
    return json(res, 200, { kid: key.kid });
  }
  if (req.method === 'GET' && interaction) {
    const details = await provider.interactionDetails(req, res);
    return json(res, 200, { uid: details.uid, prompt: details.prompt.name });
  }
  if (req.method === 'POST' && login) {
    const details = await provider.interactionDetails(req, res);
    const form = await readForm(req);
    const accountId = form.get('login');
    if (details.prompt.name !== 'login' || !ACCOUNTS[accountId]) {
      return json(res, 400, { error: `unknown account ${accountId} or prompt ${details.prompt.name}` });
    }
    return provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
  }
  return callback(req, res);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error(err);
    if (!res.headersSent) json(res, 500, { error: String(err.message ?? err) });
  });
});

server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = makeProvider(issuer, newSigningKey());
  callback = provider.callback();
  console.log(`oidc ready ${issuer}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
