// Type-checked only (test/types.test.mjs runs tsc on it): index.d.ts against the SDK's own
// OAuthClientProvider type; never executed.
import { auth, type OAuthClientProvider } from '@modelcontextprotocol/client';
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
await store.promote('https://mcp.example.com', 'c', new URL('https://as.example.com/a'), {
  issuer: 'https://as.example.com',
  requireIssuer: true,
  discovery: JSON.stringify({ authorizationServerUrl: 'https://as.example.com' }),
});
await store.promote('https://mcp.example.com', 'c', 'https://as.example.com/a', 'https://as.example.com');
const kept: string | undefined = (await store.consume('s')).discovery;
const checked: string | undefined = flow.iss;
console.log(kept, checked);
// Every code the binding emits is in the type: a comparison with one it lacked did not compile.
try { await Store.openDefault(); } catch (e) {
  if (e instanceof StoreError && (e.code === 'NOT_A_STORE' || e.code === 'MIGRATION_NEEDED' || e.code === 'PERMISSION_DENIED'
    || e.code === 'UNAVAILABLE' || e.code === 'COMMIT_OUTCOME_UNKNOWN')) console.log(e.code);
}
