// Types of the oauth-state-store Node.js package (both entry points export the same objects).

/**
 * The stable error codes. Match on `error.code`, never on the message. Written from the
 * addon's list (bindings/node/src/error.rs) by `npm run codes`; a test keeps them equal.
 */
export declare const ErrorCode: {
  readonly UNKNOWN_STATE: 'UNKNOWN_STATE';
  readonly EXPIRED: 'EXPIRED';
  readonly ALREADY_CONSUMED: 'ALREADY_CONSUMED';
  readonly ALREADY_COMPLETED: 'ALREADY_COMPLETED';
  readonly FLOW_ENDED: 'FLOW_ENDED';
  readonly SERVER_MISMATCH: 'SERVER_MISMATCH';
  readonly AUTHORIZATION_FAILED: 'AUTHORIZATION_FAILED';
  readonly UNKNOWN_CHALLENGE: 'UNKNOWN_CHALLENGE';
  readonly CHALLENGE_ALREADY_BOUND: 'CHALLENGE_ALREADY_BOUND';
  readonly DUPLICATE_CHALLENGE: 'DUPLICATE_CHALLENGE';
  readonly AMBIGUOUS_PENDING_VERIFIER: 'AMBIGUOUS_PENDING_VERIFIER';
  readonly NO_PENDING_VERIFIER: 'NO_PENDING_VERIFIER';
  readonly DUPLICATE_STATE: 'DUPLICATE_STATE';
  readonly INVALID_INPUT: 'INVALID_INPUT';
  readonly MISSING_PARAMETER: 'MISSING_PARAMETER';
  readonly INSECURE_FILE: 'INSECURE_FILE';
  readonly DATABASE_MISSING: 'DATABASE_MISSING';
  readonly DATABASE_TOO_NEW: 'DATABASE_TOO_NEW';
  readonly MIGRATION_NEEDED: 'MIGRATION_NEEDED';
  readonly NOT_A_STORE: 'NOT_A_STORE';
  readonly PERMISSION_DENIED: 'PERMISSION_DENIED';
  readonly BUSY: 'BUSY';
  readonly STORAGE_FULL: 'STORAGE_FULL';
  readonly READ_ONLY: 'READ_ONLY';
  readonly CORRUPT: 'CORRUPT';
  readonly UNAVAILABLE: 'UNAVAILABLE';
  readonly TLS: 'TLS';
  readonly COMMIT_OUTCOME_UNKNOWN: 'COMMIT_OUTCOME_UNKNOWN';
  readonly PORT_IN_USE: 'PORT_IN_USE';
  readonly PORT_NOT_YET_FREE: 'PORT_NOT_YET_FREE';
  readonly CALLBACK_TIMEOUT: 'CALLBACK_TIMEOUT';
  readonly LISTENER: 'LISTENER';
  readonly NO_TOKENS: 'NO_TOKENS';
  readonly TOKENS_REVOKED: 'TOKENS_REVOKED';
  readonly NO_REFRESH_TOKEN: 'NO_REFRESH_TOKEN';
  readonly REFRESH_WAIT_TIMEOUT: 'REFRESH_WAIT_TIMEOUT';
  readonly STORAGE: 'STORAGE';
  readonly ABORTED: 'ABORTED';
  readonly ERROR: 'ERROR';
  readonly INTERNAL: 'INTERNAL';
};
export type ErrorCodeName = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * Every rejection of this package. The message never contains a state, verifier, code or token,
 * nor any argument's value: a wrongly typed argument is INVALID_INPUT naming the field and the
 * value's type only.
 */
export declare class StoreError extends Error {
  readonly code: ErrorCodeName;
  /** PORT_IN_USE / PORT_NOT_YET_FREE / LISTENER: the port. */
  readonly port?: number;
  /** PORT_IN_USE: `"same-store"`, `"other-store"` or `"other"`. */
  readonly holder?: string;
  /** AMBIGUOUS_PENDING_VERIFIER: how many flows are in progress. */
  readonly count?: number;
  /** INVALID_INPUT / SERVER_MISMATCH: which field. */
  readonly field?: string;
  /** MISSING_PARAMETER: which URL parameter. */
  readonly parameter?: string;
  /** AUTHORIZATION_FAILED: the RFC 6749 error and its description. */
  readonly error?: string;
  readonly errorDescription?: string | null;
  /** BUSY: the busy timeout in force. */
  readonly timeoutMs?: number;
  /** PORT_NOT_YET_FREE: how long until the port is free again. */
  readonly freeInMs?: number;
  /** TOKENS_REVOKED: the OAuth error the server answered, such as `invalid_grant`. */
  readonly reason?: string;
  /** TOKENS_REVOKED: the refresh took over from a process that stopped while refreshing. */
  readonly afterLostHolder?: boolean;
  /** REFRESH_WAIT_TIMEOUT: how long this call waited for another process's refresh. */
  readonly waitedMs?: number;
}

export type Status = 'unbound' | 'pending' | 'completed' | 'failed' | 'consumed';

export interface OpenOptions {
  /** How long a flow lives (default 600). */
  ttlSeconds?: number;
  /** How long a write waits for another process's lock (default 5000). */
  busyTimeoutMs?: number;
  poolSize?: number;
  /** `"normal"` (default; survives any process crash) or `"full"` (also power loss). */
  durability?: 'normal' | 'full';
  /**
   * How a write waits for another process's lock: `"backoff"` (default, SQLite's schedule) or
   * `"aging"` (short tries after 10 ms: a far shorter worst wait under heavy contention, a
   * longer typical one).
   */
  lockWait?: 'backoff' | 'aging';
  /** Skip the owner and mode checks (containers, tests). Symlinks stay refused. */
  relaxedFileChecks?: boolean;
  /** Default true. */
  createIfMissing?: boolean;
  readOnly?: boolean;
}

export interface FlowInfo {
  serverId: string;
  clientId?: string;
  status: Status;
  redirectUri?: string;
  issuer?: string;
  resource?: string;
  scope?: string;
  /** Unix milliseconds. */
  createdAt: number;
  /** Unix milliseconds. */
  expiresAt: number;
}

export interface BeginOptions {
  serverId: string;
  clientId?: string;
  redirectUri?: string;
  issuer?: string;
  resource?: string;
  scope?: string;
  ttlSeconds?: number;
}

/**
 * A begun flow. `state` reads the secret; util.inspect, console.log and JSON.stringify show
 * `[redacted]` in its place.
 */
export interface Flow {
  readonly state: string;
  readonly codeChallenge: string;
  readonly info: FlowInfo;
}

/**
 * A consumed flow. `verifier` and `code` read the secrets; util.inspect, console.log and
 * JSON.stringify show `[redacted]` in their place.
 */
export interface ConsumedFlow {
  /** The PKCE code_verifier; no longer in the file. */
  readonly verifier: string;
  /** The code, when a callback listener recorded it. */
  readonly code?: string;
  readonly info: FlowInfo;
  readonly consumedAt: number;
  /** The discovery state recorded at promote (`PromoteOptions.discovery`); no longer in the file. */
  readonly discovery?: string;
  /**
   * From `LoopbackCallback.wait` only: the issuer the listener checked the callback's `iss`
   * against (the flow was promoted with `requireIssuer`), for the SDK's RFC 9207 check.
   */
  readonly iss?: string;
}

/** What `promote` records on the flow besides the authorization URL's fields. */
export interface PromoteOptions {
  /** The authorization server's issuer (RFC 9207): a callback from another one is refused. */
  issuer?: string;
  /**
   * The callback must carry `iss` equal to `issuer` (the server advertises
   * `authorization_response_iss_parameter_supported`); needs `issuer`.
   */
  requireIssuer?: boolean;
  /** The SDK's discovery state as text (at most 64 KiB); `consume` hands it back once. */
  discovery?: string;
}

export interface StatusCounts {
  unbound: number;
  pending: number;
  completed: number;
  failed: number;
  consumed: number;
}

export interface Stats {
  counts: StatusCounts;
  expired: number;
  oldestExpiry?: number;
  newestExpiry?: number;
}

export interface SweepReport {
  removed: StatusCounts;
  batches: number;
  longestBatchMs: number;
}

/** The shared flow file. Every method runs in the Rust core, off the event loop. */
export declare class Store {
  private constructor();
  /**
   * Opens the store file at `path` (creating it 0600 if missing), or, given a `postgres://` or
   * `postgresql://` URL, the store in that PostgreSQL database (for several hosts).
   */
  static open(path: string, options?: OpenOptions): Promise<Store>;
  /**
   * The store at the command line's default path: `$OAUTH_STATE_DB`, else
   * `$XDG_STATE_HOME/oauth-state-store/flows.db`, else `~/.local/state/oauth-state-store/flows.db`;
   * a missing directory is created 0700 (not with `readOnly` or `createIfMissing: false`).
   */
  static openDefault(options?: OpenOptions): Promise<Store>;
  readonly storeId: string;
  /** The file's absolute path; `undefined` for a store on PostgreSQL. */
  readonly path: string | undefined;
  begin(options: BeginOptions): Promise<Flow>;
  /** The SDK path: returns the S256 challenge. */
  saveCodeVerifier(serverId: string, clientId: string | null | undefined, verifier: string): Promise<string>;
  /**
   * Binds the saved verifier to the URL's state, recording `options` on the flow (a string is
   * the issuer alone).
   */
  promote(
    serverId: string,
    clientId: string | null | undefined,
    authorizationUrl: string | URL,
    options?: PromoteOptions | string | null,
  ): Promise<FlowInfo>;
  check(state: string): Promise<FlowInfo>;
  consume(state: string): Promise<ConsumedFlow>;
  consumeFor(state: string, serverId: string): Promise<ConsumedFlow>;
  /**
   * A finish without the state: consumes the one flow of this server and client in progress
   * (pending, or completed by a listener), exactly once across processes. None is
   * NO_PENDING_VERIFIER; several are AMBIGUOUS_PENDING_VERIFIER and nothing is consumed.
   */
  consumePending(serverId: string, clientId?: string | null): Promise<ConsumedFlow>;
  /** The discovery state of the flow `consumePending` would take now; nothing is consumed. */
  pendingDiscovery(serverId: string, clientId?: string | null): Promise<string | undefined>;
  complete(state: string, code: string): Promise<FlowInfo>;
  reject(state: string, error: string, description?: string | null): Promise<FlowInfo>;
  pendingVerifier(serverId: string, clientId?: string | null): Promise<string>;
  invalidate(serverId: string, clientId: string | null | undefined, scope?: 'unbound' | 'live' | 'all'): Promise<number>;
  sweep(): Promise<SweepReport>;
  stats(): Promise<Stats>;

  /** Saves a token response as the set of this server and client (a new generation, unless the same tokens are stored). */
  saveTokens(serverId: string, clientId: string, tokens: OAuthTokenResponse): Promise<SavedTokens>;
  /** The live token set of this server and client; undefined when none is stored or it was revoked. */
  tokens(serverId: string, clientId: string): Promise<TokenSet | undefined>;
  /** Deletes the token sets of a server (of one client, when given); resolves with how many. */
  forgetTokens(serverId: string, clientId?: string | null): Promise<number>;
  /** Every token set (of one server, when given), described without any token. */
  listTokenSets(serverId?: string | null): Promise<TokenSetInfo[]>;
  /**
   * Begins a refresh against the generation the caller saw (null: whatever is stored), without
   * waiting. NO_TOKENS, TOKENS_REVOKED or NO_REFRESH_TOKEN: sign in again.
   */
  tryBeginRefresh(
    serverId: string,
    clientId: string,
    seen: number | null | undefined,
    options?: RefreshLeaseOptions,
  ): Promise<TryBegun>;
  /** Saves the response over the leased generation if it is still stored (compare-and-swap). Ends the lease. */
  finishRefresh(lease: RefreshLease, tokens: OAuthTokenResponse): Promise<FinishedRefresh>;
  /** The server refused the lease's refresh token (`invalid_grant`, ...): revokes the set only if its generation is still stored. Ends the lease. */
  rejectRefresh(lease: RefreshLease, error: string): Promise<RejectedTokens>;
  /** A refused refresh token without a lease: revokes the set only if `generation` is still stored. */
  rejectTokens(serverId: string, clientId: string, generation: number, error: string): Promise<RejectedTokens>;
  /** Gives the lease back without saving (a network error, a 5xx, a timeout). Ends the lease. */
  releaseRefresh(lease: RefreshLease): Promise<void>;
}

/**
 * A token response as a token endpoint answers it (and the MCP SDKs keep it). Members beyond
 * these (an `id_token`, vendor fields) are kept as a secret and handed back by `toOAuthTokens()`.
 */
export interface OAuthTokenResponse {
  access_token: string;
  token_type: string;
  refresh_token?: string;
  /** Seconds. */
  expires_in?: number;
  scope?: string;
  issuer?: string;
  [member: string]: unknown;
}

/**
 * A stored token set. `accessToken`, `refreshToken` and `extra` read the secrets;
 * util.inspect, console.log and JSON.stringify show `[redacted]` in their place.
 */
export interface TokenSet {
  readonly serverId: string;
  readonly clientId: string;
  /** One more with every save that changes the tokens, every refresh and every revocation. */
  readonly generation: number;
  readonly accessToken: string;
  readonly refreshToken?: string;
  readonly tokenType: string;
  readonly scope?: string;
  readonly issuer?: string;
  /** The response's other members, as JSON text. */
  readonly extra?: string;
  /** Unix milliseconds (the store's clock). */
  readonly receivedAt: number;
  /** Unix milliseconds; undefined when the server gave no `expires_in`. */
  readonly expiresAt?: number;
  /** What the access token had left when the set was read. */
  readonly expiresInMs?: number;
  /** A plain OAuth token response (what the SDKs' `tokens()` returns); `expires_in` is what is left. */
  toOAuthTokens(): OAuthTokenResponse;
}

/** A token set described without any token (`listTokenSets`). */
export interface TokenSetInfo {
  serverId: string;
  clientId: string;
  generation: number;
  /** When it was saved (or revoked), Unix milliseconds. */
  receivedAt: number;
  state: 'live' | 'revoked';
  /** Live: when the access token expires, Unix milliseconds. */
  expiresAt?: number;
  /** Live: whether it holds a refresh token. */
  hasRefreshToken?: boolean;
  /** Revoked: when, Unix milliseconds. */
  revokedAt?: number;
  /** Revoked: the server's OAuth error. */
  revokedReason?: string;
  tokenType?: string;
  scope?: string;
  issuer?: string;
  /** Who holds the lease now (`pid N`, with its label), and until when. */
  leaseOwner?: string;
  leaseExpiresAt?: number;
}

export interface SavedTokens {
  /** `stale`: the refresh token is one the stored set replaced; nothing was written. */
  outcome: 'stored' | 'unchanged' | 'stale';
  generation: number;
}

export interface RefreshLeaseOptions {
  /** How long the lease lasts (1000 to 600000, default 30000). */
  leaseMs?: number;
  /** A label shown with the process id while this process holds the lease. */
  owner?: string;
}

/** The right and the duty to refresh one generation; ended once by finish, reject or release. */
export declare class RefreshLease {
  private constructor();
  readonly serverId: string;
  readonly clientId: string;
  readonly generation: number;
  /** Another process held the lease and let it expire (it stopped while refreshing). */
  readonly tookOver: boolean;
  /** The refresh token to send: the one stored with the leased generation. Undefined once ended. */
  refreshToken(): string | undefined;
  /** Milliseconds left until the request must have ended. */
  deadlineInMs(): number;
}

export type TryBegun =
  | { kind: 'newer'; set: TokenSet }
  | { kind: 'lease'; lease: RefreshLease }
  | { kind: 'wait'; leaseLeftMs: number; seen?: number };

export interface FinishedRefresh {
  /** `superseded`: a newer set was saved meanwhile and the response was dropped. */
  outcome: 'saved' | 'superseded';
  set: TokenSet;
}

export interface RejectedTokens {
  /** `stale`: a newer set is stored and was left alone (`set`). */
  outcome: 'revoked' | 'stale' | 'gone';
  set?: TokenSet;
}

/** A fresh state from the core's generator (32 random bytes, base64url). */
export declare function generateState(): string;

export interface AttachOptions {
  /** 0 or absent: a free port. Set a fixed one to share it between processes. */
  port?: number;
  /** Default `/callback`. */
  path?: string;
  idleStopSeconds?: number;
}

export interface WaitOptions {
  /** Milliseconds, default 300000. Any other field is INVALID_INPUT naming it. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export declare class LoopbackCallback {
  private constructor();
  readonly port: number;
  readonly redirectUri: string;
  /** What to print next to "open this URL" when the browser cannot reach this machine. */
  readonly pasteHint: string;
  readonly holdsPort: boolean;
  /**
   * While the port is kept only by connections another program left behind (free in about
   * `freeInMs`; this process takes it then): the port and one line to show the user; `null`
   * otherwise.
   */
  readonly portDelay: { readonly port: number; readonly freeInMs: number; readonly message: string } | null;
  /**
   * Resolves with the consumed flow once its callback landed on any process's listener; its
   * `iss` is the checked issuer when the flow requires one.
   */
  wait(state: string, options?: WaitOptions): Promise<ConsumedFlow>;
}

/** Serves the port, or shares it with a listener on the same store; PORT_IN_USE at once otherwise. */
export declare function attach(store: Store, options?: AttachOptions): Promise<LoopbackCallback>;

/** What the wrapper needs to know of the SDK's provider (v1 and v2 share this shape). */
export interface OAuthClientProviderLike {
  redirectToAuthorization(authorizationUrl: URL): void | Promise<void>;
  invalidateCredentials?(scope: any): void | Promise<void>;
}

export interface SharedFlowsOptions {
  store: Store;
  /** The MCP server this provider logs in to (the rows' server_id). */
  serverId: string;
  /** The OAuth client id, when known; the authorization URL's client_id must match it. */
  clientId?: string;
}

/** The provider the SDK gets: the user's, with the flow half kept in the store. */
export type SharedFlowsProvider<P> = P & {
  state(): Promise<string>;
  saveCodeVerifier(codeVerifier: string): Promise<void>;
  codeVerifier(): Promise<string>;
  saveDiscoveryState(state: unknown): Promise<void>;
  discoveryState(): Promise<any>;
  invalidateCredentials(scope: string): Promise<void>;
  /**
   * Consumes the flow of a callback once and returns the provider to finish auth() with; this
   * provider then finishes that flow too (`transport.finishAuth(code)` on the app's transport).
   */
  forCallback(params: { state: string; code?: string; iss?: string }): Promise<CallbackProvider<P>>;
  /** Waits for the flow's callback on a loopback listener (any process's), then as forCallback. */
  waitForCallback(callback: LoopbackCallback, state: string, options?: WaitOptions): Promise<CallbackProvider<P>>;
};

/** A provider for one callback: codeVerifier() serves that flow's verifier on every call. */
export type CallbackProvider<P> = Omit<SharedFlowsProvider<P>, 'forCallback' | 'waitForCallback'> & {
  readonly authorizationCode?: string;
  readonly iss?: string;
};

export declare function withSharedFlows<P extends OAuthClientProviderLike>(
  provider: P,
  options: SharedFlowsOptions,
): SharedFlowsProvider<P>;

/** A fetch function (the global `fetch`'s shape, as the SDKs take it). */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface SharedTokensOptions {
  store: Store;
  /** The MCP server the tokens are for (the token set's server id). */
  serverId: string;
  /** The OAuth client id; default: `provider.clientInformation().client_id`. */
  clientId?: string;
  /** The fetch the wrapper's `fetch` sends with (default: the global fetch). */
  fetch?: FetchLike;
  /** How long a refresh may hold the lease (1000 to 600000, default 30000). */
  leaseMs?: number;
  /** How long a refresh waits in all for other processes' refreshes (default 60000). */
  waitMs?: number;
  /** A label shown with the process id while this process holds the lease. */
  owner?: string;
}

/**
 * The provider the SDK gets: the user's, with `tokens()`, `saveTokens()` and
 * `invalidateCredentials()` backed by the store, and `fetch` to give the SDK's transport (its
 * `fetch` option) or `auth()` (`fetchFn`): through it, the SDK's refresh request is sent once
 * for every process sharing the store.
 */
export type SharedTokensProvider<P> = P & {
  tokens(): Promise<OAuthTokenResponse | undefined>;
  saveTokens(tokens: OAuthTokenResponse): Promise<void>;
  invalidateCredentials(scope: string, context?: unknown): Promise<void>;
  readonly fetch: FetchLike;
};

export declare function withSharedTokens<P extends object>(
  provider: P,
  options: SharedTokensOptions,
): SharedTokensProvider<P>;
