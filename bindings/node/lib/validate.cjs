'use strict';
// The JavaScript types of every argument, checked before the addon sees it. N-API's own
// conversion errors print the value they refused ("Failed to convert JavaScript value
// `Object ["<state>","<state>"]` ..."), which may be a state or a code: a wrongly typed
// argument is refused here instead, as INVALID_INPUT naming the field and describing the value
// by its type alone. An options object with a field it does not know is refused too (a
// misspelt `timeoutMs` would otherwise silently be the default).
const { StoreError, ErrorCode } = require('./errors.cjs');

/** What a value is, in words that never contain the value. */
function kind(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (Buffer.isBuffer(value)) return 'a Buffer';
  if (ArrayBuffer.isView(value)) return 'a typed array';
  if (value instanceof String) return 'a String object';
  const type = typeof value;
  if (type === 'object') return 'an object';
  if (type === 'undefined') return 'undefined';
  return `a ${type}`;
}

function invalid(field, expected, value) {
  return new StoreError(ErrorCode.INVALID_INPUT, `invalid ${field}: must be ${expected}, got ${kind(value)}`, { field });
}

function string(field, value) {
  if (typeof value !== 'string') throw invalid(field, 'a string', value);
  return value;
}

/** A string, or null/undefined for "none". */
function optionalString(field, value) {
  if (value === undefined || value === null) return undefined;
  return string(field, value);
}

function optionalBoolean(field, value) {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw invalid(field, 'true or false', value);
  return value;
}

/** An integer from `min` to `max`, or undefined. */
function optionalInteger(field, value, min, max) {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(field, `an integer from ${min} to ${max}`, typeof value === 'number' ? 0 : value);
  }
  return value;
}

/** A number >= 0 (Infinity allowed), or undefined. */
function optionalDuration(field, value) {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw invalid(field, 'a number of milliseconds >= 0', typeof value === 'number' ? 0 : value);
  }
  return value;
}

/** One of `choices` (strings), or undefined. */
function optionalChoice(field, value, choices) {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !choices.includes(value)) {
    throw invalid(field, choices.map((c) => JSON.stringify(c)).join(' or '), typeof value === 'string' ? '' : value);
  }
  return value;
}

/**
 * An options object: a plain object (or undefined / null for none) whose fields are all in
 * `fields`; returns it (or `{}`). With `strict` false, fields it does not know are ignored
 * (a callback's query may carry more parameters than the call reads).
 */
function options(field, value, fields, strict = true) {
  if (value === undefined || value === null) return {};
  const proto = typeof value === 'object' ? Object.getPrototypeOf(value) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw invalid(field, 'an options object (a plain object)', value);
  }
  if (strict) {
    for (const key of Object.keys(value)) {
      if (!fields.includes(key)) {
        // Named when it looks like a misspelt option name (a short identifier); anything else
        // could be a value used as a key, such as a state (43 characters).
        const name = /^[A-Za-z_][A-Za-z0-9_]{0,31}$/.test(key) ? key : 'an unknown option';
        throw new StoreError(ErrorCode.INVALID_INPUT, `invalid ${field}: ${name} is not an option (${fields.join(', ')})`, {
          field: name,
        });
      }
    }
  }
  return value;
}

function optionalSignal(field, value) {
  if (value === undefined || value === null) return undefined;
  if (!(value instanceof AbortSignal)) throw invalid(field, 'an AbortSignal', value);
  return value;
}

module.exports = {
  kind,
  invalid,
  string,
  optionalString,
  optionalBoolean,
  optionalInteger,
  optionalDuration,
  optionalChoice,
  options,
  optionalSignal,
};
