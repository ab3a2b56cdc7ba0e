'use strict';
// What begin(), consume() and wait() resolve with. The state, verifier and code are read as
// properties (`flow.state`, `done.verifier`), but every way of printing the object shows
// `[redacted]` in their place: util.inspect and console.log, and JSON.stringify, so that a
// debug log or a JSON log line never carries them. Read them explicitly to send them on.
const util = require('node:util');

const REDACTED = '[redacted]';

/** The discovery state is public metadata, but long: shown by its length, as the core does. */
function described(discovery) {
  return typeof discovery === 'string' ? `[${discovery.length} characters]` : discovery;
}

/**
 * Defines a getter for each secret. Not enumerable: code that walks an object's keys to print
 * it (a logger's own serializer) does not meet it; property access and destructuring read it.
 */
function secrets(target, values) {
  for (const [name, value] of Object.entries(values)) {
    Object.defineProperty(target, name, { get: () => value, enumerable: false, configurable: false });
  }
}

function printable(name, shown, depth, options, inspect) {
  if (depth < 0) return `[${name}]`;
  return `${name} ${inspect(shown, { ...options, depth: options.depth === null ? null : options.depth - 1 })}`;
}

/** A begun flow: `state` for the authorization URL, `codeChallenge`, `info`. */
class Flow {
  constructor(raw) {
    secrets(this, { state: raw.state });
    this.codeChallenge = raw.codeChallenge;
    this.info = raw.info;
    Object.freeze(this);
  }

  /** The redacted view. */
  toJSON() {
    return { state: REDACTED, codeChallenge: this.codeChallenge, info: this.info };
  }

  [util.inspect.custom](depth, options, inspect) {
    return printable('Flow', this.toJSON(), depth, options, inspect);
  }

  toString() {
    return '[object Flow]';
  }
}

/** A consumed flow: `verifier` and `code` for the token request, and the rest. */
class ConsumedFlow {
  constructor(raw) {
    secrets(this, { verifier: raw.verifier, code: raw.code ?? undefined });
    this.info = raw.info;
    this.consumedAt = raw.consumedAt;
    this.discovery = raw.discovery ?? undefined;
    this.iss = raw.iss ?? undefined;
    Object.freeze(this);
  }

  /** The redacted view. */
  toJSON() {
    return {
      verifier: REDACTED,
      code: this.code === undefined ? undefined : REDACTED,
      info: this.info,
      consumedAt: this.consumedAt,
      discovery: described(this.discovery),
      iss: this.iss,
    };
  }

  [util.inspect.custom](depth, options, inspect) {
    return printable('ConsumedFlow', this.toJSON(), depth, options, inspect);
  }

  toString() {
    return '[object ConsumedFlow]';
  }
}

module.exports = { Flow, ConsumedFlow, REDACTED, printable };
