// An authorization server that rotates refresh tokens and revokes the whole grant when a
// rotated one is presented again (oidc-provider with rotateRefreshToken), for the refresh
// tests of the Rust crate and of this package. One process per scenario: oidc-provider's
// in-memory adapter is module-wide and holds 1000 entries.
//
//   node rotating-server.mjs [access-token TTL in seconds, default 2] [TTL of the access tokens
//                            a refresh issues, default the same]
//
// It signs a test account in itself (authorization code + PKCE, `offline_access` asked with
// `prompt=consent`, which is when oidc-provider issues a refresh token), then prints one JSON
// line: { issuer, tokenEndpoint, clientId, tokens }. `GET /stats` counts, at the server, the
// token requests by grant type, their successes and errors, the grants revoked, and the
// requests to `/mcp`: a stand-in MCP endpoint that answers a JSON-RPC POST bearing a live
// access token of this server with an empty result, and anything else with 401. The
// process exits when its stdin closes. Listens on 127.0.0.1 only.
import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';
import { autoInteract } from './authserver.mjs';

const CLIENT_ID = 'refresh-test-client';
const REDIRECT = 'http://127.0.0.1/callback';
// oidc-provider rounds issue times down to the second: under 2 s an access token could
// expire as it is issued.
const accessTtl = Math.max(2, Number(process.argv[2] ?? 2));
// A refreshed token that outlives the test's slowest process keeps "the newer set has expired
// too" out of a scenario about one refresh.
const refreshedTtl = Math.max(2, Number(process.argv[3] ?? accessTtl));

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: CLIENT_ID,
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [REDIRECT],
  }],
  scopes: ['openid', 'offline_access'],
  pkce: { required: () => true },
  // Every refresh rotates the refresh token; presenting a rotated one revokes the grant.
  rotateRefreshToken: true,
  // The default 15 s tolerance would accept an expired access token.
  clockTolerance: 0,
  ttl: {
    AccessToken: (ctx) => (ctx?.oidc?.params?.grant_type === 'refresh_token' ? refreshedTtl : accessTtl),
    RefreshToken: 86400,
    Grant: 86400,
    Session: 3600,
    Interaction: 600,
    AuthorizationCode: 60,
    IdToken: 60,
  },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  cookies: { keys: ['test-only-cookie-signing-key'] },
  features: {
    devInteractions: { enabled: false },
    // RFC 8707: rmcp names the MCP server as the resource of every token request, refreshes
    // included; any loopback resource of this test server is accepted.
    resourceIndicators: {
      enabled: true,
      useGrantedResource: () => true,
      getResourceServerInfo: async (_ctx, resource) => {
        if (new URL(resource).hostname !== '127.0.0.1') throw new Error('not a test resource');
        return { scope: 'openid offline_access', accessTokenFormat: 'opaque', audience: resource };
      },
    },
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
});

const stats = { requests: {}, success: {}, errors: {}, revoked: 0, mcp: { ok: 0, unauthorized: 0 } };
const grantType = (ctx) => ctx.oidc?.params?.grant_type ?? 'unknown';
const bump = (map, key) => { map[key] = (map[key] ?? 0) + 1; };
provider.on('grant.success', (ctx) => {
  bump(stats.requests, grantType(ctx));
  bump(stats.success, grantType(ctx));
});
provider.on('grant.error', (ctx, err) => {
  bump(stats.requests, grantType(ctx));
  bump(stats.errors, `${grantType(ctx)}:${err.error}`);
});
provider.on('grant.revoked', () => { stats.revoked += 1; });
provider.on('server_error', (_ctx, err) => console.error('authorization server error:', err.message));

/** The stand-in MCP endpoint: a live access token of this server, or 401. */
async function mcp(req, res) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
  // find() returns nothing for an expired token, or one whose grant was revoked.
  const token = bearer ? await provider.AccessToken.find(bearer[1]) : undefined;
  if (!token) {
    stats.mcp.unauthorized += 1;
    res.statusCode = 401;
    res.setHeader('www-authenticate', 'Bearer error="invalid_token"');
    res.end();
    return;
  }
  stats.mcp.ok += 1;
  const message = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id ?? null, result: {} }));
}

const handle = provider.callback();
server.on('request', (req, res) => {
  if (req.url === '/mcp' && req.method === 'POST') {
    mcp(req, res).catch((err) => {
      res.statusCode = 500;
      res.end(String(err?.message));
    });
  } else if (req.url === '/stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(stats));
  } else if (req.url.startsWith('/interaction/')) {
    autoInteract(provider, req, res).catch((err) => {
      res.statusCode = 500;
      res.end(String(err?.message));
    });
  } else {
    handle(req, res);
  }
});

/** One GET with the cookie jar, without following redirects. */
function get(url, cookies) {
  return new Promise((resolve, reject) => {
    const cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    http.get(url, { headers: cookie ? { cookie } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve(res));
    }).on('error', reject);
  });
}

/** The browser's part and the code exchange: resolves with the token response. */
async function login() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  let url = new URL('/auth', issuer);
  for (const [k, v] of Object.entries({
    client_id: CLIENT_ID, response_type: 'code', redirect_uri: REDIRECT,
    scope: 'openid offline_access', prompt: 'consent', code_challenge: challenge,
    code_challenge_method: 'S256', state: crypto.randomBytes(16).toString('base64url'),
    // The grant's resource: the server's own URL, which rmcp names (a manager built on it).
    resource: `${issuer}/`,
  })) url.searchParams.set(k, v);
  const cookies = new Map();
  for (let hop = 0; hop < 20; hop += 1) {
    if (url.href.startsWith(REDIRECT)) {
      const code = url.searchParams.get('code');
      if (!code) throw new Error(`the login ended without a code: ${url.searchParams.get('error')}`);
      const response = await fetch(new URL('/token', issuer), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code', code, code_verifier: verifier,
          redirect_uri: REDIRECT, client_id: CLIENT_ID,
        }),
      });
      const tokens = await response.json();
      if (!response.ok || !tokens.refresh_token) {
        throw new Error(`the code exchange gave no refresh token: ${tokens.error}`);
      }
      return tokens;
    }
    const res = await get(url, cookies);
    for (const line of [].concat(res.headers['set-cookie'] ?? [])) {
      const [pair] = line.split(';');
      const at = pair.indexOf('=');
      cookies.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
    if (!res.headers.location) throw new Error(`the login stopped at ${url.pathname}: ${res.statusCode}`);
    url = new URL(res.headers.location, url);
  }
  throw new Error('the login redirected too many times');
}

const tokens = await login();
console.log(JSON.stringify({ issuer, tokenEndpoint: `${issuer}/token`, clientId: CLIENT_ID, tokens }));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
