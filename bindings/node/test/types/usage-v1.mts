// Type-checked only (test/types.test.mjs runs tsc on it): index.d.ts against the SDK's own
// OAuthClientProvider type; never executed.
import { auth, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { Store, attach, withSharedFlows, ErrorCode, StoreError } from 'oauth-state-store';

declare const mine: OAuthClientProvider;
const store = await Store.open('/tmp/x/flows.db', { busyTimeoutMs: 1000 });
const provider = withSharedFlows(mine, { store, serverId: 'https://mcp.example.com', clientId: 'c' });
const r: 'AUTHORIZED' | 'REDIRECT' = await auth(provider, { serverUrl: 'https://mcp.example.com' });
const cb = await provider.forCallback({ state: 's', code: 'c', iss: 'i' });
await auth(cb, { serverUrl: 'https://mcp.example.com', authorizationCode: cb.authorizationCode });
const l = await attach(store, { port: 0 });
const flow = await l.wait('s', { timeoutMs: 10, signal: AbortSignal.timeout(5) });
try { await store.consume(flow.verifier); } catch (e) { if (e instanceof StoreError && e.code === ErrorCode.ALREADY_CONSUMED) console.log(r); }
// Shared tokens: the wrapped provider is still the SDK's provider; its fetch is the SDK's fetch.
import { withSharedTokens, RefreshLease, type TokenSet } from 'oauth-state-store';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
const shared = withSharedTokens(withSharedFlows(mine, { store, serverId: 'https://mcp.example.com' }), {
  store,
  serverId: 'https://mcp.example.com',
  clientId: 'c',
  leaseMs: 30_000,
  owner: 'my-tool',
});
const ok: 'AUTHORIZED' | 'REDIRECT' = await auth(shared, { serverUrl: 'https://mcp.example.com', fetchFn: shared.fetch });
const transport = new StreamableHTTPClientTransport(new URL('https://mcp.example.com'), { authProvider: shared, fetch: shared.fetch });
const set: TokenSet | undefined = await store.tokens('https://mcp.example.com', 'c');
const begun = await store.tryBeginRefresh('https://mcp.example.com', 'c', set?.generation ?? null, { leaseMs: 5000 });
if (begun.kind === 'lease' && begun.lease instanceof RefreshLease) {
  const rt: string | undefined = begun.lease.refreshToken();
  const done = await store.finishRefresh(begun.lease, { access_token: 'a', token_type: 'Bearer', refresh_token: rt, expires_in: 60 });
  console.log(done.outcome === 'saved' || done.outcome === 'superseded', done.set.generation);
} else if (begun.kind === 'newer') {
  console.log(begun.set.toOAuthTokens().access_token);
} else if (begun.kind === 'wait') {
  console.log(begun.leaseLeftMs, begun.seen);
}
const listed = await store.listTokenSets();
console.log(listed[0]?.state === 'revoked' ? listed[0].revokedReason : listed[0]?.leaseOwner);
console.log(ok, transport, (await store.saveTokens('s', 'c', { access_token: 'a', token_type: 'Bearer' })).outcome);
