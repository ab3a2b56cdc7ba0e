// One MCP client process for the tests: the SDK's auth() (v1 or v2) with a user provider
// that keeps tokens and the client registration in memory, wrapped by withSharedFlows so that
// the flow half lives in the shared store file. It takes JSON commands on stdin, one a line,
// and answers each with one JSON line on stdout. Secrets never go on stdout except the
// authorization URL (which the scripted browser must follow) and a token's length.
import fs from 'node:fs';
import readline from 'node:readline';
import { Store, attach, withSharedFlows } from 'oauth-state-store';

const config = JSON.parse(process.argv[2]);
// The SDK (v1, v2 or @ai-sdk/mcp) and its usual way to finish a login with the code alone.
const sdk = {
  async v1() {
    const { auth } = await import('@modelcontextprotocol/sdk/client/auth.js');
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    return {
      auth,
      transport: (authProvider, fetchFn) =>
        new StreamableHTTPClientTransport(new URL(config.serverUrl), { authProvider, fetch: fetchFn }),
      finishAuth: (transport, code) => transport.finishAuth(code),
    };
  },
  async v2() {
    const { auth, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
    return {
      auth,
      transport: (authProvider, fetchFn) =>
        new StreamableHTTPClientTransport(new URL(config.serverUrl), { authProvider, fetch: fetchFn }),
      // v2's callback form: the redirect's query, of which it reads code and iss.
      finishAuth: (transport, code, iss) => transport.finishAuth(new URLSearchParams(iss ? { code, iss } : { code })),
    };
  },
  async ai() {
    const { auth } = await import('@ai-sdk/mcp');
    // @ai-sdk/mcp has no finishAuth on its transports: the app calls auth() with the code.
    return {
      auth,
      transport: (authProvider, fetchFn) => ({ authProvider, fetchFn }),
      finishAuth: async ({ authProvider, fetchFn }, code, iss) => {
        const result = await auth(authProvider, {
          serverUrl: config.serverUrl,
          authorizationCode: code,
          callbackIssuer: iss,
          fetchFn,
        });
        if (result !== 'AUTHORIZED') throw new Error(`auth() returned ${result}`);
      },
    };
  },
};
const { auth, transport: makeTransport, finishAuth } = await sdk[config.sdk]();

const store = await Store.open(config.db);
let callback;
let redirectUri = config.redirectUri;
// The client registration is the app's to keep and share between its processes (a file
// here, as an app keeps it): @ai-sdk/mcp stamps the authorization server it pinned on it.
const clientFile = config.clientFile;
let clientInformation = { client_id: config.clientId };
const readClient = () => {
  if (clientFile && fs.existsSync(clientFile)) clientInformation = JSON.parse(fs.readFileSync(clientFile, 'utf8'));
  return clientInformation;
};
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
  clientInformation: () => readClient(),
  saveClientInformation: (info) => {
    clientInformation = info;
    if (clientFile) fs.writeFileSync(clientFile, JSON.stringify(info));
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

// The app's own transport, built once on the provider from withSharedFlows, with a fetch that
// can refuse the first token request (see finish()).
const exchange = { count: 0, refuseNext: false };
const countingFetch = async (url, init) => {
  if (init?.method === 'POST' && String(init.body).includes('grant_type=authorization_code')) {
    exchange.count += 1;
    if (exchange.refuseNext) {
      exchange.refuseNext = false;
      return new Response(JSON.stringify({ error: 'invalid_grant', error_description: 'try again' }), {
        status: 400,
        headers: { 'content-type': 'application/json' },
      });
    }
  }
  return fetch(url, init);
};
const transport = makeTransport(provider, countingFetch);

/** The SDK's usual way: the code (and iss) alone, on the app's own transport. */
async function finishUsual(code, iss, refuseFirstExchange) {
  tokens = undefined;
  exchange.count = 0;
  exchange.refuseNext = Boolean(refuseFirstExchange);
  await finishAuth(transport, code, iss);
  return { result: 'AUTHORIZED', exchanges: exchange.count, tokenLength: tokens?.access_token?.length ?? 0 };
}

const commands = {
  // transport.finishAuth(code) (v1), finishAuth(callbackParams) (v2), auth({ authorizationCode })
  // (@ai-sdk/mcp): no state in hand.
  async finishUsual({ code, iss, refuseFirstExchange }) {
    return finishUsual(code, iss, refuseFirstExchange);
  },
  // Waits on the shared loopback port, then finishes on the app's own transport.
  async waitFinishUsual({ state, timeoutMs }) {
    const done = await provider.waitForCallback(callback, state, { timeoutMs });
    return finishUsual(done.authorizationCode, done.iss, false);
  },
  async stats() {
    return store.stats();
  },
  // The runtime this process runs on: a child of a Bun test run must be Bun too.
  async runtime() {
    return { bun: process.versions.bun ?? null, node: process.versions.node };
  },
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
