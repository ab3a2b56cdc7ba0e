// The tests' loopback authorization server: oidc-provider with PKCE S256 required, one public
// native client whose loopback redirect URIs match on any port, and login + consent completed
// automatically (no user). Listens on 127.0.0.1 only.
import http from 'node:http';
import Provider from 'oidc-provider';

export const CLIENT_ID = 'mcp-test-client';
export const ACCOUNT = 'test-user';

/** Starts the server; resolves with its issuer URL and a close(). */
export async function startAuthServer() {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
      },
    ],
    pkce: { required: () => true },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    cookies: { keys: ['test-only-cookie-signing-key'] },
    features: {
      devInteractions: { enabled: false },
      // RFC 8707: @ai-sdk/mcp always names the MCP server as the resource; any loopback
      // resource of this test server is accepted, with an opaque token for it.
      resourceIndicators: {
        enabled: true,
        useGrantedResource: () => true,
        getResourceServerInfo: async (_ctx, resource) => {
          if (new URL(resource).hostname !== '127.0.0.1') throw new Error('not a test resource');
          return { scope: 'openid', accessTokenFormat: 'opaque', audience: resource };
        },
      },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  });
  // oidc-provider warns about its development defaults (keys, cookies) on every start.
  provider.on('server_error', (_ctx, err) => console.error('authorization server error:', err.message));
  const handle = provider.callback();
  server.on('request', (req, res) => {
    if (req.url.startsWith('/interaction/')) {
      autoInteract(provider, req, res).catch((err) => {
        res.statusCode = 500;
        res.end(String(err && err.message));
      });
    } else {
      handle(req, res);
    }
  });
  return {
    issuer,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

/** Logs the test account in, then grants what the client asked for. */
export async function autoInteract(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  let result;
  if (prompt.name === 'login') {
    result = { login: { accountId: ACCOUNT } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}
