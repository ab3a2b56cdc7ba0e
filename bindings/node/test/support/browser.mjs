// A scripted browser: plain HTTP, following redirects with a cookie jar, stopping at the
// redirect back to the client (or following it too, when asked). Bounded: at most 20 hops.
import http from 'node:http';

/** One GET (no redirect followed): `{ status, headers, body }`. */
export function get(url, cookies = new Map()) {
  return new Promise((resolve, reject) => {
    const jar = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const req = http.get(url, { headers: jar ? { cookie: jar } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`browser: ${url} timed out`)));
    req.on('error', reject);
  });
}

/**
 * Follows `authorizationUrl` until the redirect to `redirectUri`'s origin and path. Resolves
 * with the callback URL and its parameters; with `{ deliver: true }` it also requests the
 * callback URL and returns that response.
 */
export async function login(authorizationUrl, redirectUri, { deliver = false } = {}) {
  const cookies = new Map();
  const target = new URL(redirectUri);
  let url = new URL(authorizationUrl);
  for (let hop = 0; hop < 20; hop += 1) {
    if (url.origin === target.origin && url.pathname === target.pathname) {
      const params = Object.fromEntries(url.searchParams);
      if (!deliver) return { callbackUrl: url.toString(), params };
      const answer = await get(url, new Map());
      return { callbackUrl: url.toString(), params, answer };
    }
    if (url.hostname !== '127.0.0.1') throw new Error(`browser: refusing to leave 127.0.0.1 (${url.host})`);
    const res = await get(url, cookies);
    for (const line of [].concat(res.headers['set-cookie'] ?? [])) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') cookies.delete(name);
      else cookies.set(name, value);
    }
    if (res.status < 300 || res.status >= 400 || !res.headers.location) {
      throw new Error(`browser: ${url.pathname} answered ${res.status} without a redirect: ${res.body.slice(0, 300)}`);
    }
    url = new URL(res.headers.location, url);
  }
  throw new Error('browser: too many redirects');
}
