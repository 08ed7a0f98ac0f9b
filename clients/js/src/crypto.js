// Movan session encryption (docs/encryption.md): HKDF-SHA256 per-direction keys, ChaCha20-Poly1305 frames with
// counter nonces, the frame's 4-byte big-endian length prefix as associated data. No IO; runs in browsers and Node.

import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';

import { base64Decode } from './base64.js';
import { MovanError } from './errors.js';

/** Length of a session key in bytes. */
export const SESSION_KEY_LEN = 32;
/** Length of the per-connection salt in bytes. */
export const SALT_LEN = 32;
/** Length of the Poly1305 tag that ends every sealed frame body. */
export const TAG_LEN = 16;
/** Length of the TCP length prefix, which is also the associated data. */
export const LENGTH_PREFIX = 4;
/** The cipher name in the server's handshake. */
export const CIPHER = 'chacha20poly1305';
/** HKDF `info` of the client → server key. */
export const INFO_CLIENT_TO_SERVER = 'movan/v1/client-to-server';
/** HKDF `info` of the server → client key. */
export const INFO_SERVER_TO_CLIENT = 'movan/v1/server-to-client';

/** The counter value that is never used: a side that would need it stops (the last usable one is 2^64 − 2). */
const COUNTER_LIMIT = 2n ** 64n - 1n;
const MAX_BODY = 0xffffffff;
const utf8 = new TextEncoder();

/**
 * @param {string} message
 * @returns {MovanError}
 */
function cryptoError(message) {
  return new MovanError(message, { code: 'crypto' });
}

/**
 * Decodes a session key or salt: standard base64 of exactly 32 bytes, or 32 raw bytes.
 *
 * @param {string|Uint8Array} value
 * @param {string} what for error messages
 * @returns {Uint8Array}
 * @throws {MovanError} code `crypto`
 */
function key32(value, what) {
  let bytes;
  if (typeof value === 'string') {
    try {
      bytes = base64Decode(value);
    } catch (e) {
      throw cryptoError(`bad ${what}: ${/** @type {Error} */ (e).message}`);
    }
  } else if (value instanceof Uint8Array) {
    bytes = value;
  } else {
    throw cryptoError(`bad ${what}: expected base64 text or a Uint8Array`);
  }
  if (bytes.length !== 32) throw cryptoError(`bad ${what}: ${bytes.length} bytes, expected 32`);
  return bytes;
}

/**
 * Decodes the login's `session_key` (standard base64 with padding of 32 bytes).
 *
 * @param {string|Uint8Array} sessionKey
 * @returns {Uint8Array} the 32 key bytes
 * @throws {MovanError} code `crypto` when it is not base64 of exactly 32 bytes
 */
export function decodeSessionKey(sessionKey) {
  return key32(sessionKey, 'session key');
}

/**
 * Derives the two direction keys of one connection:
 * `HKDF-SHA256(ikm = session key, salt = connection salt, info = direction label, L = 32)`.
 *
 * @param {string|Uint8Array} sessionKey base64 text (as the login returns it) or 32 bytes
 * @param {string|Uint8Array} salt base64 text (as the handshake carries it) or 32 bytes
 * @returns {{clientToServer: Uint8Array, serverToClient: Uint8Array}}
 * @throws {MovanError} code `crypto` when either is not 32 bytes
 */
export function deriveKeys(sessionKey, salt) {
  const ikm = key32(sessionKey, 'session key');
  const s = key32(salt, 'salt');
  return {
    clientToServer: hkdf(sha256, ikm, s, utf8.encode(INFO_CLIENT_TO_SERVER), 32),
    serverToClient: hkdf(sha256, ikm, s, utf8.encode(INFO_SERVER_TO_CLIENT), 32),
  };
}

/**
 * The 12-byte nonce for `counter`: 4 zero bytes, then the counter as u64 big-endian.
 * @param {bigint} counter
 * @returns {Uint8Array}
 */
export function nonceFor(counter) {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, counter, false);
  return nonce;
}

/**
 * The 4-byte big-endian length prefix of a frame whose body is `len` bytes; for a sealed frame this is the AAD.
 * @param {number} len
 * @returns {Uint8Array}
 */
export function lengthPrefix(len) {
  const prefix = new Uint8Array(4);
  new DataView(prefix.buffer).setUint32(0, len, false);
  return prefix;
}

/**
 * A TCP wire frame: the 4-byte big-endian length, then `body`. (Over WebSocket only the body is sent.)
 * @param {Uint8Array} body
 * @returns {Uint8Array}
 */
export function frameBytes(body) {
  const wire = new Uint8Array(LENGTH_PREFIX + body.length);
  wire.set(lengthPrefix(body.length), 0);
  wire.set(body, LENGTH_PREFIX);
  return wire;
}

/**
 * @param {Uint8Array} key
 * @param {bigint} counter
 */
function checkKeyAndCounter(key, counter) {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw cryptoError('a direction key is 32 bytes');
  if (typeof counter !== 'bigint' || counter < 0n || counter > COUNTER_LIMIT) {
    throw cryptoError('a frame counter is a bigint in 0..2^64-1');
  }
}

/**
 * Seals the frames one side sends: the key of its sending direction and the next frame counter.
 */
export class Sealer {
  /**
   * @param {Uint8Array} key the 32-byte key of the sending direction (from {@link deriveKeys})
   * @param {bigint} [counter] the counter of the next frame (0 for a new connection)
   */
  constructor(key, counter = 0n) {
    checkKeyAndCounter(key, counter);
    /** @private */
    this._key = key;
    /** @private */
    this._counter = counter;
  }

  /** The counter the next sealed frame will use. */
  get counter() {
    return this._counter;
  }

  /**
   * Seals `plaintext` into a sealed frame BODY: ciphertext then the 16-byte tag, with the AAD being the 4-byte
   * big-endian length prefix the frame has on TCP (`plaintext.length + 16`). This is what one WebSocket message
   * carries. On failure nothing changes and the counter does not move.
   *
   * @param {Uint8Array} plaintext the UTF-8 JSON body
   * @returns {Uint8Array} ciphertext || tag
   * @throws {MovanError} code `crypto` when the counter is exhausted or the body does not fit a u32 length
   */
  sealBody(plaintext) {
    const len = plaintext.length + TAG_LEN;
    if (len > MAX_BODY) throw cryptoError(`plaintext of ${plaintext.length} bytes is too large to seal`);
    if (this._counter >= COUNTER_LIMIT) throw cryptoError('frame counter exhausted');
    const body = chacha20poly1305(this._key, nonceFor(this._counter), lengthPrefix(len)).encrypt(plaintext);
    this._counter += 1n;
    return body;
  }

  /**
   * Seals `plaintext` into a whole TCP wire frame: length prefix, ciphertext, tag (docs/encryption.md §5).
   * @param {Uint8Array} plaintext
   * @returns {Uint8Array}
   */
  seal(plaintext) {
    return frameBytes(this.sealBody(plaintext));
  }
}

/**
 * Opens the frames one side receives: the key of its receiving direction and the counter it expects next.
 */
export class Opener {
  /**
   * @param {Uint8Array} key the 32-byte key of the receiving direction (from {@link deriveKeys})
   * @param {bigint} [counter] the counter of the next frame (0 for a new connection)
   */
  constructor(key, counter = 0n) {
    checkKeyAndCounter(key, counter);
    /** @private */
    this._key = key;
    /** @private */
    this._counter = counter;
  }

  /** The counter the next frame must have been sealed with. */
  get counter() {
    return this._counter;
  }

  /**
   * Opens a sealed frame BODY (ciphertext || tag, as one WebSocket message carries it): the AAD is rebuilt as the
   * 4-byte big-endian `body.length`. The counter advances only when the frame opens. Every failure is fatal for the
   * connection: close it.
   *
   * @param {Uint8Array} body
   * @returns {Uint8Array} the plaintext
   * @throws {MovanError} code `crypto`: shorter than a tag, bad tag (tampered, replayed, reordered, after a dropped
   *   frame, or another key), or the counter is exhausted
   */
  openBody(body) {
    if (body.length < TAG_LEN) {
      throw cryptoError(`sealed frame of ${body.length} bytes is shorter than the ${TAG_LEN}-byte tag`);
    }
    if (body.length > MAX_BODY) throw cryptoError(`sealed frame of ${body.length} bytes is too large`);
    if (this._counter >= COUNTER_LIMIT) throw cryptoError('frame counter exhausted');
    let plain;
    try {
      plain = chacha20poly1305(this._key, nonceFor(this._counter), lengthPrefix(body.length)).decrypt(body);
    } catch {
      throw cryptoError(`frame ${this._counter} failed authentication`);
    }
    this._counter += 1n;
    return plain;
  }

  /**
   * Opens a whole TCP wire frame (length prefix included); the prefix must match the body's length.
   * @param {Uint8Array} wire
   * @returns {Uint8Array} the plaintext
   */
  open(wire) {
    if (wire.length < LENGTH_PREFIX) throw cryptoError('frame shorter than its length prefix');
    const len = new DataView(wire.buffer, wire.byteOffset, wire.byteLength).getUint32(0, false);
    if (len !== wire.length - LENGTH_PREFIX) {
      throw cryptoError(`length prefix says ${len} bytes but the frame body has ${wire.length - LENGTH_PREFIX}`);
    }
    return this.openBody(wire.subarray(LENGTH_PREFIX));
  }
}

/**
 * The client's side of a connection: it seals with the client → server key and opens with the server → client key.
 * @param {string|Uint8Array} sessionKey
 * @param {string|Uint8Array} salt
 * @returns {{sealer: Sealer, opener: Opener}}
 */
export function clientSide(sessionKey, salt) {
  const keys = deriveKeys(sessionKey, salt);
  return { sealer: new Sealer(keys.clientToServer), opener: new Opener(keys.serverToClient) };
}

/**
 * The server's side of a connection (for tests and fake servers): seals server → client, opens client → server.
 * @param {string|Uint8Array} sessionKey
 * @param {string|Uint8Array} salt
 * @returns {{sealer: Sealer, opener: Opener}}
 */
export function serverSide(sessionKey, salt) {
  const keys = deriveKeys(sessionKey, salt);
  return { sealer: new Sealer(keys.serverToClient), opener: new Opener(keys.clientToServer) };
}

/**
 * @typedef {{cipher: 'none'} | {cipher: 'chacha20poly1305', salt: Uint8Array}} Handshake
 */

/**
 * Reads the `data` of the server's plaintext `handshake` message (docs/protocol.md §5.0).
 *
 * @param {unknown} data the message's `data`
 * @returns {Handshake}
 * @throws {MovanError} code `crypto` for an unknown cipher or a salt that is not base64 of 32 bytes
 */
export function parseHandshake(data) {
  if (data === null || typeof data !== 'object') throw cryptoError('malformed handshake: no data');
  const { cipher, salt } = /** @type {{cipher?: unknown, salt?: unknown}} */ (data);
  if (cipher === 'none') return { cipher: 'none' };
  if (cipher !== CIPHER) throw cryptoError(`handshake names an unsupported cipher: ${JSON.stringify(cipher)}`);
  if (typeof salt !== 'string') throw cryptoError('malformed handshake: the salt is missing');
  return { cipher: CIPHER, salt: key32(salt, 'handshake salt') };
}
