// What the README's TypeScript snippets import from './my-app.mjs': the parts of an app that
// are the app's own (its OAuthClientProvider, its server, its callback route), made real for
// test/readme.test.mjs against the test authorization server. The provider "opens the
// browser" with the scripted browser: the redirect goes to the loopback listener when one
// serves the callback port, and to receiveCallback() otherwise. The process exits non-zero
// unless a snippet got the provider its tokens (or saved them in the store, through
// withSharedTokens).
import { login } from '../support/browser.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`my-app.mjs: ${name} is not set (test/readme.test.mjs sets it)`);
  return value;
};

export const serverUrl = env('OSS_README_ISSUER');
export const clientId = env('OSS_README_CLIENT_ID');
export const callbackPort = Number(env('OSS_README_PORT'));
const redirectUrl = `http://127.0.0.1:${callbackPort}/callback`;

let callbackUrl;
let tokens;

export const myProvider = {
  lastAuthorizationUrl: '',
  get redirectUrl() {
    return redirectUrl;
  },
  get clientMetadata() {
    return {
      client_name: 'README snippet',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      scope: 'openid',
    };
  },
  clientInfo: { client_id: clientId },
  clientInformation() {
    return this.clientInfo;
  },
  saveClientInformation(info) {
    this.clientInfo = info;
  },
  tokens: () => tokens,
  saveTokens: (t) => {
    tokens = t;
  },
  async redirectToAuthorization(url) {
    this.lastAuthorizationUrl = url.toString();
    // The browser, in the background as a real one is: the app goes on while the user logs in.
    callbackUrl = login(url, redirectUrl).then(async ({ callbackUrl: landed }) => {
      try {
        await fetch(landed); // a loopback listener on the port takes it
      } catch {
        // nothing listens: the app's own route receives it (receiveCallback)
      }
      return new URL(landed);
    });
  },
  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'tokens') tokens = undefined;
  },
};

/** The callback URL the app's route received. */
export async function receiveCallback() {
  if (!callbackUrl) throw new Error('my-app.mjs: no login was started');
  return callbackUrl;
}

let checked = false;
process.on('beforeExit', async () => {
  if (checked) return;
  checked = true;
  if (tokens?.access_token) return;
  // withSharedTokens keeps the tokens in the store instead of the provider.
  const { Store } = await import('oauth-state-store');
  const store = await Store.openDefault({ createIfMissing: false }).catch(() => undefined);
  const set = await store?.tokens(serverUrl, clientId).catch(() => undefined);
  if (!set?.accessToken) {
    console.error('my-app.mjs: the snippet ended without an access token');
    process.exitCode = 1;
  }
});
