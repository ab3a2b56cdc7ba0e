'use strict';
// Errors with a stable `code`. The addon rejects with a JSON payload; `translate` turns it into
// a StoreError. Messages come from the Rust core and never carry a state, verifier, code or token.

/** The stable codes. Match on these, never on messages. */
const ErrorCode = Object.freeze({
  UNKNOWN_STATE: 'UNKNOWN_STATE',
  EXPIRED: 'EXPIRED',
  ALREADY_CONSUMED: 'ALREADY_CONSUMED',
  ALREADY_COMPLETED: 'ALREADY_COMPLETED',
  // A flow ended for a reason (server mismatch, error callback), not a replay. Reported once
  // the core has this variant; until then such flows report SERVER_MISMATCH or
  // AUTHORIZATION_FAILED.
  FLOW_ENDED: 'FLOW_ENDED',
  SERVER_MISMATCH: 'SERVER_MISMATCH',
  AUTHORIZATION_FAILED: 'AUTHORIZATION_FAILED',
  UNKNOWN_CHALLENGE: 'UNKNOWN_CHALLENGE',
  CHALLENGE_ALREADY_BOUND: 'CHALLENGE_ALREADY_BOUND',
  DUPLICATE_CHALLENGE: 'DUPLICATE_CHALLENGE',
  AMBIGUOUS_PENDING_VERIFIER: 'AMBIGUOUS_PENDING_VERIFIER',
  NO_PENDING_VERIFIER: 'NO_PENDING_VERIFIER',
  DUPLICATE_STATE: 'DUPLICATE_STATE',
  INVALID_INPUT: 'INVALID_INPUT',
  MISSING_PARAMETER: 'MISSING_PARAMETER',
  INSECURE_FILE: 'INSECURE_FILE',
  DATABASE_MISSING: 'DATABASE_MISSING',
  DATABASE_TOO_NEW: 'DATABASE_TOO_NEW',
  BUSY: 'BUSY',
  STORAGE_FULL: 'STORAGE_FULL',
  READ_ONLY: 'READ_ONLY',
  CORRUPT: 'CORRUPT',
  PORT_IN_USE: 'PORT_IN_USE',
  CALLBACK_TIMEOUT: 'CALLBACK_TIMEOUT',
  LISTENER: 'LISTENER',
  STORAGE: 'STORAGE',
  ABORTED: 'ABORTED',
  ERROR: 'ERROR',
  INTERNAL: 'INTERNAL',
});

/** An error of this package: `code` is one of ErrorCode; details (port, count, field) beside it. */
class StoreError extends Error {
  constructor(code, message, details = {}, options) {
    super(message, options);
    this.name = code === ErrorCode.ABORTED ? 'AbortError' : 'StoreError';
    this.code = code;
    for (const [k, v] of Object.entries(details)) {
      if (k !== 'name' && k !== 'stack') this[k] = v;
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
  if (msg.startsWith('{"code"')) {
    try {
      const { code, message, ...details } = JSON.parse(msg);
      return new StoreError(code, message, details);
    } catch {
      // not ours after all
    }
  }
  if (err && ARGUMENT_STATUSES.has(err.code)) {
    return new StoreError(ErrorCode.INVALID_INPUT, `invalid argument: ${msg}`);
  }
  return err;
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
