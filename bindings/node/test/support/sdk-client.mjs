// One MCP client process for the tests: the SDK's auth() (v1 or v2) with a user provider
// that keeps tokens and the client registration in memory, wrapped by withSharedFlows so that
// the flow half lives in the shared store file. It takes JSON commands on stdin, one a line,
// and answers each with one JSON line on stdout. Secrets never go on stdout except the
// authorization URL (which the scripted browser must follow) and a token's length.
import readline from 'node:readline';
import { Store, attach, withSharedFlows } from '../../index.mjs';

const config = JSON.parse(process.argv[2]);
const { auth } = config.sdk === 'v2'
  ? await import('@modelcontextprotocol/client')
  : await import('@modelcontextprotocol/sdk/client/auth.js');

const store = await Store.open(config.db);
let callback;
let redirectUri = config.redirectUri;
let clientInformation = { client_id: config.clientId };
let tokens;
const redirects = [];

const user = {
  get redirectUrl() {
    return redirectUri;
  },
  get clientMetadata() {
    return {
      client_name: 'oauth-state-store test client',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      scope: 'openid',
    };
  },
  clientInformation: () => clientInformation,
  saveClientInformation: (info) => {
    clientInformation = info;
  },
  tokens: () => tokens,
  saveTokens: (t) => {
    tokens = t;
  },
  redirectToAuthorization: (url) => {
    redirects.push(url.toString());
  },
  invalidateCredentials: (scope) => {
    if (scope === 'all' || scope === 'tokens') tokens = undefined;
  },
};
const provider = withSharedFlows(user, { store, serverId: config.serverId, clientId: config.clientId });

function failure(err) {
  return { error: err?.code ?? err?.name ?? 'Error', name: err?.name, message: String(err?.message) };
}

// With `refuseFirstExchange`, the first token request is answered `invalid_grant` without
// reaching the server, as a flaky authorization server would: the SDK then retries auth()
// with the same code and asks codeVerifier() again.
async function finish(view, { refuseFirstExchange = false } = {}) {
  tokens = undefined;
  let exchanges = 0;
  const fetchFn = async (url, init) => {
    if (init?.method === 'POST' && String(init.body).includes('grant_type=authorization_code')) {
      exchanges += 1;
      if (refuseFirstExchange && exchanges === 1) {
        return new Response(JSON.stringify({ error: 'invalid_grant', error_description: 'try again' }), {
          status: 400,
          headers: { 'content-type': 'application/json' },
        });
      }
    }
    return fetch(url, init);
  };
  const result = await auth(view, {
    serverUrl: config.serverUrl,
    authorizationCode: view.authorizationCode,
    iss: view.iss,
    fetchFn,
  });
  return { result, exchanges, tokenLength: tokens?.access_token?.length ?? 0 };
}

const commands = {
  // auth() without a code: the begin leg.
  async begin() {
    tokens = undefined;
    const result = await auth(provider, { serverUrl: config.serverUrl });
    return { result, authorizationUrl: redirects.at(-1) };
  },
  // A callback delivered to this process (state, code, iss from the redirect).
  async finish({ state, code, iss, refuseFirstExchange }) {
    return finish(await provider.forCallback({ state, code, iss }), { refuseFirstExchange });
  },
  async codeVerifier() {
    return { verifierLength: (await provider.codeVerifier()).length };
  },
  async attach({ port }) {
    callback = await attach(store, { port });
    redirectUri = callback.redirectUri;
    return { redirectUri, holdsPort: callback.holdsPort, port: callback.port };
  },
  // Waits for the callback on the shared loopback port, then finishes auth().
  async waitFinish({ state, timeoutMs }) {
    return finish(await provider.waitForCallback(callback, state, { timeoutMs }));
  },
};

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  const { cmd, ...args } = JSON.parse(line);
  let answer;
  try {
    answer = await commands[cmd](args);
  } catch (err) {
    answer = failure(err);
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
