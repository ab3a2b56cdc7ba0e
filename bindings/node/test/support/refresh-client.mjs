// One MCP client process for the refresh tests: the SDK's own auth() (v1 or v2) with a provider
// whose tokens live in the shared store (withSharedTokens). With `mode: "shared"` auth() gets
// the wrapper's fetch, which makes the refresh single-flight; with `mode: "alone"` it gets the
// plain fetch, so each process refreshes on its own (the control). JSON commands on stdin, one
// JSON answer a line on stdout; no token ever goes on stdout, only a digest of one.
import crypto from 'node:crypto';
import readline from 'node:readline';
import { Store, withSharedTokens } from 'oauth-state-store';

const config = JSON.parse(process.argv[2]);
const { auth, StreamableHTTPClientTransport } = config.sdk === 'v1'
  ? { ...(await import('@modelcontextprotocol/sdk/client/auth.js')),
    ...(await import('@modelcontextprotocol/sdk/client/streamableHttp.js')) }
  : await import('@modelcontextprotocol/client');

const store = await Store.open(config.db);
const redirects = [];
let verifier;
const user = {
  get redirectUrl() {
    return 'http://127.0.0.1/callback';
  },
  get clientMetadata() {
    return {
      client_name: 'oauth-state-store refresh test',
      redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  },
  clientInformation: () => ({ client_id: config.clientId }),
  saveClientInformation: () => {},
  // Replaced by the store's: never called.
  tokens: () => {
    throw new Error('the provider own tokens() was called');
  },
  saveTokens: () => {
    throw new Error('the provider own saveTokens() was called');
  },
  redirectToAuthorization: (url) => {
    redirects.push(url.toString());
  },
  saveCodeVerifier: (v) => {
    verifier = v;
  },
  codeVerifier: () => verifier,
};
const provider = withSharedTokens(user, { store, serverId: config.serverId, clientId: config.clientId });
const fetchFn = config.mode === 'shared' ? provider.fetch : (input, init) => fetch(input, init);

const digest = (token) => (token ? crypto.createHash('sha256').update(token).digest('hex') : null);

const commands = {
  // What this process saw before the refresh: the stored set, through the provider.
  async load() {
    const tokens = await provider.tokens();
    return { loaded: Boolean(tokens?.access_token) };
  },
  // An MCP request on the SDK's transport: a 401 for the expired token makes the transport
  // call auth() with its fetch, then send the request again.
  async call() {
    const transport = new StreamableHTTPClientTransport(new URL('/mcp', config.serverUrl), {
      authProvider: provider,
      fetch: fetchFn,
    });
    const answered = new Promise((resolve) => {
      transport.onmessage = resolve;
    });
    let result;
    let timer;
    try {
      await transport.start();
      await transport.send({ jsonrpc: '2.0', id: 1, method: 'ping' });
      const message = await Promise.race([answered, new Promise((r) => { timer = setTimeout(r, 30_000, undefined); })]);
      result = message?.id === 1 ? 'answered' : 'no answer';
    } catch (err) {
      result = `threw ${err?.name}: ${err?.message}`;
    } finally {
      clearTimeout(timer);
    }
    await transport.close();
    const tokens = await provider.tokens();
    return { result, access: digest(tokens?.access_token) };
  },
  // What the SDK does after an invalid_grant: gives up the tokens it holds.
  async invalidate() {
    await provider.invalidateCredentials('tokens');
    return { invalidated: true };
  },
  // The SDK's refresh path: auth() with the stored (expired) tokens.
  async refresh() {
    let result;
    try {
      result = await auth(provider, { serverUrl: config.serverUrl, fetchFn });
    } catch (err) {
      result = `threw ${err?.name}: ${err?.message}`;
    }
    const tokens = await provider.tokens();
    return { result, access: digest(tokens?.access_token), redirected: redirects.length };
  },
};

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  const { cmd } = JSON.parse(line);
  let answer;
  try {
    answer = await commands[cmd]();
  } catch (err) {
    answer = { error: err?.code ?? err?.name, message: String(err?.message) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
