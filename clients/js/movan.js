// Movan client for browsers and Node >= 20.19: the account HTTP API, the sync server over WebSocket with session
// encryption, and a reconnecting game session. See README.md.
//
// In a browser without a bundler, map the two bare imports of src/crypto.js with an import map (README.md):
//   <script type="importmap">{"imports": {"@noble/ciphers/": "/js/vendor/@noble/ciphers/",
//                                          "@noble/hashes/": "/js/vendor/@noble/hashes/"}}</script>

export { AccountClient, parseRetryAfter, REQUEST_TIMEOUT_MS } from './src/account.js';
export { GameSession, DEFAULT_POLICY, KEEPALIVE_MS } from './src/game.js';
export {
  SyncConnection,
  encodeEnvelope,
  unixNow,
  DEFAULT_MAX_FRAME_BYTES,
  HANDSHAKE_TIMEOUT_MS,
  RELOAD_PROTO,
} from './src/sync.js';
export { MovanError, FINAL_CODES, isFinalCode } from './src/errors.js';
export { CLOSE_CODES, CLOSING_ERROR_CODES, closeCodeWords, describeClose } from './src/close.js';
export {
  deriveKeys,
  decodeSessionKey,
  Sealer,
  Opener,
  clientSide,
  serverSide,
  parseHandshake,
  frameBytes,
  lengthPrefix,
  nonceFor,
  CIPHER,
  TAG_LEN,
} from './src/crypto.js';
export { base64Decode, base64Encode } from './src/base64.js';
export { Emitter } from './src/emitter.js';
