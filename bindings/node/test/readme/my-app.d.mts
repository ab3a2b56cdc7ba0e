// Types of my-app.mjs: a provider that fits the OAuthClientProvider of both MCP SDKs.
import type { OAuthClientProvider as V1Provider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientProvider as V2Provider } from '@modelcontextprotocol/client';

export declare const serverUrl: string;
export declare const clientId: string;
/** The app's callback port setting. */
export declare const callbackPort: number;
/** The app's provider; it keeps the URL it last sent the browser to. */
export declare const myProvider: V1Provider & V2Provider & { readonly lastAuthorizationUrl: string };
/** The callback URL the app's own route received. */
export declare function receiveCallback(): Promise<URL>;
