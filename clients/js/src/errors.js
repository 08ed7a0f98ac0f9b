// The one error type of the client.

/**
 * Why a client call failed.
 *
 * - Account server errors: `status` is the HTTP status, `code` the body's `code` (e.g. `invalid_credentials`, or
 *   `''` when the body was not the documented JSON), `retryAfter` the `Retry-After` seconds of a 429 or 503.
 * - Sync server errors (an `error` message): `status` is 0, `code` is the protocol code (e.g. `room_full`,
 *   `token_expired`), `proto` the failed request's proto or `null`.
 * - Client-side failures: `status` 0 and one of these codes: `network` (the HTTP request or the WebSocket could not
 *   be made), `closed` (the connection closed first), `timeout`, `crypto` (the encrypted session failed: fatal),
 *   `protocol` (the server broke the protocol), `too_large` (a message above the server's frame limit).
 */
export class MovanError extends Error {
  /**
   * @param {string} message human-readable reason
   * @param {{status?: number, code?: string, proto?: string|null, retryAfter?: number, cause?: unknown}} [opts]
   */
  constructor(message, opts = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MovanError';
    /** @type {number} HTTP status, or 0 when not an HTTP error */
    this.status = opts.status ?? 0;
    /** @type {string} machine-readable code */
    this.code = opts.code ?? '';
    /** @type {string|null} the failed request's proto (sync server errors) */
    this.proto = opts.proto ?? null;
    /** @type {number|undefined} seconds to wait before retrying (HTTP 429/503 with `Retry-After`) */
    this.retryAfter = opts.retryAfter;
  }
}

/**
 * Sync server error codes after which the server closes the connection on purpose: reconnecting would be refused or
 * would undo the user's intent (docs/protocol.md §10).
 */
export const FINAL_CODES = Object.freeze([
  'replaced',
  'kicked',
  'session_revoked',
  'banned',
  'shutting_down',
  'unauthenticated',
  'bad_token',
  'token_expired',
  'uid_mismatch',
]);

/**
 * @param {string|null|undefined} code
 * @returns {boolean} whether a sync server error with this code forbids reconnecting
 */
export function isFinalCode(code) {
  return code != null && FINAL_CODES.includes(code);
}
