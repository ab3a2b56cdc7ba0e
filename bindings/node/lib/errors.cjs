'use strict';
// Errors with a stable `code`. The addon rejects with a JSON payload; `translate` turns it into
// a StoreError. Messages come from the Rust core and never carry a state, verifier, code or
// token; anything else the addon throws is replaced, never passed on with its text.

const native = require('./native.cjs');

/**
 * The stable codes. Match on these, never on messages. Built from the addon's one list
 * (`errorCodes()`, bindings/node/src/error.rs), which index.d.ts is written from too.
 */
const ErrorCode = Object.freeze(Object.fromEntries(native.errorCodes().map((code) => [code, code])));

/** An error of this package: `code` is one of ErrorCode; details (port, count, field) beside it. */
class StoreError extends Error {
  constructor(code, message, details = {}, options) {
    super(message, options);
    this.name = code === ErrorCode.ABORTED ? 'AbortError' : 'StoreError';
    this.code = code;
    for (const [k, v] of Object.entries(details)) {
      if (k !== 'name' && k !== 'stack' && v !== undefined) this[k] = v;
    }
  }
}

// N-API's own argument checks (a number where a string belongs, ...).
const ARGUMENT_STATUSES = new Set([
  'InvalidArg',
  'ObjectExpected',
  'StringExpected',
  'NameExpected',
  'FunctionExpected',
  'NumberExpected',
  'BooleanExpected',
  'ArrayExpected',
  'BigintExpected',
]);

function translate(err) {
  if (err instanceof StoreError) return err;
  const msg = err && typeof err.message === 'string' ? err.message : '';
  // The payload's keys come in alphabetical order (`afterLostHolder` before `code`).
  if (msg.startsWith('{"')) {
    try {
      const { code, message, ...details } = JSON.parse(msg);
      if (Object.hasOwn(ErrorCode, code) && typeof message === 'string') return new StoreError(code, message, details);
    } catch {
      // not ours after all
    }
  }
  // N-API's own messages print the value they refused (a state, a code): never pass one on.
  // The package checks every argument's type before the call, so these are a safety net.
  if (err && ARGUMENT_STATUSES.has(err.code)) {
    return new StoreError(ErrorCode.INVALID_INPUT, 'invalid argument: a value of the wrong type', {
      field: 'argument',
    });
  }
  return new StoreError(ErrorCode.INTERNAL, 'the native call failed without a reason of this package', {
    status: typeof err?.code === 'string' && /^[A-Za-z]{1,40}$/.test(err.code) ? err.code : undefined,
  });
}

/** Runs a native call; a sync throw or a rejection comes back as a StoreError rejection. */
async function call(fn) {
  try {
    return await fn();
  } catch (e) {
    throw translate(e);
  }
}

function abortError(signal) {
  return new StoreError(ErrorCode.ABORTED, 'the wait was aborted before a callback arrived', {}, {
    cause: signal && signal.reason,
  });
}

module.exports = { ErrorCode, StoreError, call, translate, abortError };
