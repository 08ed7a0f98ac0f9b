// WebSocket close codes in words, for the messages people read ("connection closed: no status (1005)").

/**
 * The standard close codes: RFC 6455 §7.4.1, and 1012–1014 from the IANA WebSocket Close Code Number Registry.
 * 1005, 1006 and 1015 never travel in a close frame; a browser reports them when there was no code to read.
 */
export const CLOSE_CODES = Object.freeze({
  1000: 'normal closure',
  1001: 'going away',
  1002: 'protocol error',
  1003: 'unsupported data',
  1005: 'no status',
  1006: 'abnormal closure, no close frame',
  1007: 'invalid message data',
  1008: 'policy violation',
  1009: 'message too big',
  1010: 'missing extension',
  1011: 'internal server error',
  1012: 'service restart',
  1013: 'try again later',
  1014: 'bad gateway',
  1015: 'TLS handshake failure',
});

/**
 * Sync server error codes that the server sends right before it closes the connection (docs/protocol.md §8,
 * "closes: yes"). Another error may be minutes old when the connection drops, so it says nothing about the close.
 */
export const CLOSING_ERROR_CODES = Object.freeze([
  'frame_too_large',
  'unauthenticated',
  'replaced',
  'kicked',
  'session_revoked',
  'banned',
  'rate_limited',
  'too_many_connections',
  'timeout',
  'shutting_down',
  'unavailable',
]);

/**
 * What a close code means, in a few words.
 * @param {number} code
 * @returns {string}
 */
export function closeCodeWords(code) {
  const known = /** @type {Record<number, string>} */ (CLOSE_CODES)[code];
  if (known) return known;
  if (code >= 3000 && code <= 3999) return 'registered application code';
  if (code >= 4000 && code <= 4999) return 'application code';
  return 'unknown code';
}

/**
 * Describes a closed connection: `connection closed: no status (1005)`, then the close frame's reason if it had one,
 * then the `error` the Movan server sent just before closing (the server puts its reasons there, not in the close
 * frame): `connection closed: no status (1005) after the server's error timeout: ...`.
 *
 * @param {{code: number, reason?: string, lastError?: {code: string, message: string}|null}} info a close event or
 *   a {@link import('./sync.js').CloseInfo}
 * @returns {string}
 */
export function describeClose(info) {
  let text = `connection closed: ${closeCodeWords(info.code)} (${info.code})`;
  if (info.reason) text += `: ${info.reason}`;
  const last = info.lastError;
  if (last && CLOSING_ERROR_CODES.includes(last.code)) {
    text += ` after the server's error ${last.code}${last.message ? `: ${last.message}` : ''}`;
  }
  return text;
}
