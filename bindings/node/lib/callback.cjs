'use strict';
// The loopback callback: any process's listener on the same store file completes any process's
// flow; a process waits for its own flow here.
const native = require('./native.cjs');
const { Store } = require('./store.cjs');
const { call, abortError } = require('./errors.cjs');
const v = require('./validate.cjs');
const { ConsumedFlow } = require('./values.cjs');

const WAIT_FIELDS = ['timeoutMs', 'signal'];
const ATTACH_FIELDS = ['port', 'path', 'idleStopSeconds'];

const TOKEN = Symbol('oauth-state-store.callback');
const MAX_TIMEOUT_MS = 0xffffffff;

class LoopbackCallback {
  #native;

  constructor(token, handle) {
    if (token !== TOKEN) throw new TypeError('use attach(store, { port })');
    this.#native = handle;
  }

  get port() {
    return this.#native.port;
  }

  get redirectUri() {
    return this.#native.redirectUri;
  }

  get holdsPort() {
    return this.#native.holdsPort;
  }

  /**
   * `{ port, freeInMs, message }` while the port is kept only by connections another program
   * left behind (this process takes it as soon as the system frees it); `null` otherwise.
   */
  get portDelay() {
    return this.#native.portDelay ?? null;
  }

  /** What to print next to "open this URL" when the browser cannot reach this machine. */
  get pasteHint() {
    return this.#native.pasteHint;
  }

  /**
   * Waits for the callback of `state` (landing on any process's listener), consumes the flow
   * and resolves with its verifier and code. Runs off the event loop.
   */
  async wait(state, options) {
    state = v.string('state', state);
    const o = v.options('options', options, WAIT_FIELDS);
    const timeoutMs = v.optionalDuration('timeoutMs', o.timeoutMs) ?? 300_000;
    const signal = v.optionalSignal('signal', o.signal);
    if (signal?.aborted) throw abortError(signal);
    const cancel = new native.WaitCancel();
    const onAbort = () => cancel.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const ms = Math.min(Math.floor(timeoutMs), MAX_TIMEOUT_MS);
      const outcome = await call(() => this.#native.wait(state, ms, cancel));
      // A callback consumed in the same instant as the abort is still a finished login.
      if (outcome.flow) return new ConsumedFlow(outcome.flow);
      throw abortError(signal);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

/** Serves (or shares with a same-store listener) the callback port; PORT_IN_USE at once else. */
async function attach(store, options) {
  const handle = await call(() => {
    const o = v.options('options', options, ATTACH_FIELDS);
    return native.LoopbackCallback.attach(Store.handleOf(store), {
      port: v.optionalInteger('port', o.port, 0, 65535),
      path: v.optionalString('path', o.path),
      idleStopSeconds: v.optionalInteger('idleStopSeconds', o.idleStopSeconds, 0, 0xffffffff),
    });
  });
  return new LoopbackCallback(TOKEN, handle);
}

module.exports = { LoopbackCallback, attach };
