// The test vectors of docs/encryption.md §7, reproduced exactly, and the failure rules of §4-§6.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { base64Decode, base64Encode } from '../src/base64.js';
import {
  clientSide,
  decodeSessionKey,
  deriveKeys,
  frameBytes,
  INFO_CLIENT_TO_SERVER,
  INFO_SERVER_TO_CLIENT,
  nonceFor,
  Opener,
  parseHandshake,
  Sealer,
  serverSide,
} from '../src/crypto.js';
import { MovanError } from '../src/errors.js';
import { nodeHkdf, nodeOpenBody, nodeSealBody } from './helpers/fake-server.js';

const hex = (/** @type {Uint8Array} */ b) => Buffer.from(b).toString('hex');
const unhex = (/** @type {string} */ s) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const utf8 = (/** @type {string} */ s) => new TextEncoder().encode(s);

// docs/encryption.md §7, copied verbatim (long hex values joined).
const V = {
  sessionKey: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
  sessionKeyB64: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=',
  salt: '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
  saltB64: 'ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=',
  keyC2S: '5b393e88c29a8a9102db92cb04256cdfcae6d236b5ab8e3b1fad88ee5e8905f4',
  keyS2C: '023469d9001d483c6dec77b8552ac4589ecd23cc8dcb51b268603c8aa0ac0661',
  handshakeBody:
    '{"proto":"handshake","data":{"salt":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=","cipher":"chacha20poly1305"}}',
  handshakeWire: `000000707b2270726f746f223a2268616e647368616b65222c2264617461223a7b2273616c74223a22494345694979516c4a69636f4b
      536f724c4330754c7a41784d6a4d304e5459334f446b364f7a7739506a383d222c22636970686572223a226368616368613230706f6c
      7931333035227d7d`,
  frames: [
    {
      dir: 'c2s',
      counter: 0n,
      nonce: '000000000000000000000000',
      plaintext: '{"proto":"ping"}',
      plaintextHex: '7b2270726f746f223a2270696e67227d',
      aad: '00000020',
      ciphertext: '60f2853c33db399a7936a7131f58bfff',
      tag: 'c6cb621b9c537eab25494152c9bca55f',
      wire: '0000002060f2853c33db399a7936a7131f58bfffc6cb621b9c537eab25494152c9bca55f',
    },
    {
      dir: 'c2s',
      counter: 1n,
      nonce: '000000000000000000000001',
      plaintext: '{"proto":"sync_action"}',
      plaintextHex: '7b2270726f746f223a2273796e635f616374696f6e227d',
      aad: '00000027',
      ciphertext: '32e1bf3ff93d035c70b19859293d4df353058845adc21e',
      tag: '6afff8c643365715977426da55c5b03a',
      wire: '0000002732e1bf3ff93d035c70b19859293d4df353058845adc21e6afff8c643365715977426da55c5b03a',
    },
    {
      dir: 's2c',
      counter: 0n,
      nonce: '000000000000000000000000',
      plaintext: '{"proto":"sync_frame","data":{"frame_count":0,"actions":[]}}',
      plaintextHex: `7b2270726f746f223a2273796e635f6672616d65222c2264617461223a7b226672616d655f636f756e74223a302c2261637469
           6f6e73223a5b5d7d7d`,
      aad: '0000004c',
      ciphertext: `5132b3dfc1a3634630f0a0f97e30e52b7392cdc3abcb8bce3779561292ad82783767c2355da8b5b6629d9daaf44ad71bb2444b28
           04a4ebc6f9abb4b6`,
      tag: 'fbcf74c7ab4f70e37944f5717a7d2d64',
      wire: `0000004c5132b3dfc1a3634630f0a0f97e30e52b7392cdc3abcb8bce3779561292ad82783767c2355da8b5b6629d9daaf44ad71b
           b2444b2804a4ebc6f9abb4b6fbcf74c7ab4f70e37944f5717a7d2d64`,
    },
  ],
};
const clean = (/** @type {string} */ s) => s.replace(/\s+/g, '');

/** @param {() => unknown} fn */
function assertCryptoError(fn) {
  assert.throws(fn, (e) => e instanceof MovanError && e.code === 'crypto');
}

describe('docs/encryption.md §7 test vectors', () => {
  test('session key and salt decode from their base64', () => {
    assert.equal(hex(decodeSessionKey(V.sessionKeyB64)), V.sessionKey);
    assert.equal(hex(base64Decode(V.saltB64)), V.salt);
    assert.equal(base64Encode(unhex(V.sessionKey)), V.sessionKeyB64);
    assert.equal(base64Encode(unhex(V.salt)), V.saltB64);
  });

  test('HKDF info labels are the documented bytes', () => {
    assert.equal(hex(utf8(INFO_CLIENT_TO_SERVER)), '6d6f76616e2f76312f636c69656e742d746f2d736572766572');
    assert.equal(hex(utf8(INFO_SERVER_TO_CLIENT)), '6d6f76616e2f76312f7365727665722d746f2d636c69656e74');
  });

  test('derived direction keys', () => {
    for (const [key, salt] of [
      [V.sessionKeyB64, V.saltB64],
      [unhex(V.sessionKey), unhex(V.salt)],
    ]) {
      const keys = deriveKeys(key, salt);
      assert.equal(hex(keys.clientToServer), V.keyC2S);
      assert.equal(hex(keys.serverToClient), V.keyS2C);
    }
  });

  test('the HMAC shortcut of §3 gives the same keys (node:crypto)', async () => {
    const { createHmac } = await import('node:crypto');
    const prk = createHmac('sha256', unhex(V.salt)).update(unhex(V.sessionKey)).digest();
    const k = createHmac('sha256', prk).update(Buffer.concat([Buffer.from(INFO_CLIENT_TO_SERVER), Buffer.from([1])]));
    assert.equal(k.digest('hex'), V.keyC2S);
    assert.equal(hex(nodeHkdf(unhex(V.sessionKey), unhex(V.salt), INFO_SERVER_TO_CLIENT)), V.keyS2C);
  });

  test('handshake frame: body, TCP wire and parse', () => {
    assert.equal(utf8(V.handshakeBody).length, 112);
    assert.equal(hex(frameBytes(utf8(V.handshakeBody))), clean(V.handshakeWire));
    const hs = parseHandshake(JSON.parse(V.handshakeBody).data);
    assert.equal(hs.cipher, 'chacha20poly1305');
    assert.equal(hex(/** @type {any} */ (hs).salt), V.salt);
  });

  test('nonces', () => {
    for (const f of V.frames) assert.equal(hex(nonceFor(f.counter)), f.nonce);
    assert.equal(hex(nonceFor(2n ** 64n - 2n)), '00000000fffffffffffffffe');
  });

  test('sealed frames 1-3: exact wire bytes (TCP) and body bytes (WebSocket)', () => {
    const { sealer } = clientSide(V.sessionKeyB64, V.saltB64);
    const server = serverSide(V.sessionKeyB64, V.saltB64);
    for (const f of V.frames) {
      const plaintext = utf8(f.plaintext);
      assert.equal(hex(plaintext), clean(f.plaintextHex));
      const s = f.dir === 'c2s' ? sealer : server.sealer;
      assert.equal(s.counter, f.counter);
      const body = s.sealBody(plaintext);
      const wire = clean(f.wire);
      // Over WebSocket one message is the TCP frame minus its 4-byte prefix; the AAD is still that prefix.
      assert.equal(hex(body), clean(f.ciphertext) + f.tag);
      assert.equal(wire.slice(0, 8), f.aad);
      assert.equal(wire.slice(8), hex(body));
    }
    // The same through seal() (whole TCP frames) on fresh sealers.
    const keys = deriveKeys(V.sessionKeyB64, V.saltB64);
    const c2s = new Sealer(keys.clientToServer);
    const s2c = new Sealer(keys.serverToClient);
    for (const f of V.frames) {
      const wire = (f.dir === 'c2s' ? c2s : s2c).seal(utf8(f.plaintext));
      assert.equal(hex(wire), clean(f.wire));
    }
  });

  test('the vectors open: client opens frame 3, server opens frames 1-2', () => {
    const { opener } = clientSide(V.sessionKeyB64, V.saltB64);
    const server = serverSide(V.sessionKeyB64, V.saltB64);
    for (const f of V.frames) {
      const o = f.dir === 'c2s' ? server.opener : opener;
      const plain = o.open(unhex(f.wire));
      assert.equal(new TextDecoder().decode(plain), f.plaintext);
    }
    assert.equal(server.opener.counter, 2n);
    assert.equal(opener.counter, 1n);
  });

  test('node:crypto (OpenSSL) agrees with the vectors', () => {
    const f = V.frames[2];
    const body = nodeSealBody(Buffer.from(unhex(V.keyS2C)), 0n, Buffer.from(f.plaintext));
    assert.equal(hex(body), clean(f.ciphertext) + f.tag);
    assert.equal(nodeOpenBody(Buffer.from(unhex(V.keyS2C)), 0n, body).toString(), f.plaintext);
  });
});

describe('sealing and opening', () => {
  const keys = deriveKeys(V.sessionKeyB64, V.saltB64);

  test('seal → open roundtrip over many frames and sizes', () => {
    const sealer = new Sealer(keys.clientToServer);
    const opener = new Opener(keys.clientToServer);
    for (let i = 0; i < 200; i++) {
      const plain = utf8(JSON.stringify({ i, pad: 'x'.repeat(i * 7) }));
      const body = sealer.sealBody(plain);
      assert.equal(body.length, plain.length + 16);
      assert.deepEqual(opener.openBody(body), plain);
    }
    assert.equal(sealer.counter, 200n);
    assert.equal(opener.counter, 200n);
    // The empty plaintext seals to a bare tag.
    const empty = sealer.sealBody(new Uint8Array(0));
    assert.equal(empty.length, 16);
    assert.equal(opener.openBody(empty).length, 0);
  });

  test('any altered byte fails, and the counter does not move', () => {
    const f = V.frames[0];
    const wire = unhex(f.wire);
    for (let i = 0; i < wire.length; i++) {
      const bad = wire.slice();
      bad[i] ^= 0x01;
      const opener = new Opener(keys.clientToServer);
      assertCryptoError(() => opener.open(bad));
      assert.equal(opener.counter, 0n);
      // The genuine frame still opens with the same opener: a failure consumed nothing.
      assert.equal(new TextDecoder().decode(opener.open(wire)), f.plaintext);
    }
  });

  test('a body whose AAD would be another length fails (truncated or extended)', () => {
    const body = unhex(V.frames[0].wire).subarray(4);
    assertCryptoError(() => new Opener(keys.clientToServer).openBody(body.subarray(0, body.length - 1)));
    assertCryptoError(() => new Opener(keys.clientToServer).openBody(Uint8Array.from([...body, 0])));
  });

  test('replay fails', () => {
    const opener = new Opener(keys.clientToServer);
    const wire = unhex(V.frames[0].wire);
    opener.open(wire);
    assertCryptoError(() => opener.open(wire));
  });

  test('reorder fails, and so does a frame after a dropped one', () => {
    const opener = new Opener(keys.clientToServer);
    assertCryptoError(() => opener.open(unhex(V.frames[1].wire)));
    opener.open(unhex(V.frames[0].wire));
    opener.open(unhex(V.frames[1].wire));

    const sealer = new Sealer(keys.serverToClient);
    const a = sealer.sealBody(utf8('{"proto":"pong"}'));
    const b = sealer.sealBody(utf8('{"proto":"pong"}'));
    const o2 = new Opener(keys.serverToClient);
    void a; // dropped
    assertCryptoError(() => o2.openBody(b));
  });

  test('wrong direction, wrong salt or wrong key fails', () => {
    const wire = unhex(V.frames[0].wire);
    assertCryptoError(() => new Opener(keys.serverToClient).open(wire));
    const otherSalt = deriveKeys(V.sessionKeyB64, new Uint8Array(32));
    assertCryptoError(() => new Opener(otherSalt.clientToServer).open(wire));
    const otherKey = deriveKeys(new Uint8Array(32).fill(7), V.saltB64);
    assertCryptoError(() => new Opener(otherKey.clientToServer).open(wire));
  });

  test('bodies shorter than the tag fail', () => {
    for (const n of [0, 1, 15]) assertCryptoError(() => new Opener(keys.clientToServer).openBody(new Uint8Array(n)));
  });

  test('a length prefix that disagrees with the frame fails', () => {
    const wire = unhex(V.frames[0].wire);
    const bad = Uint8Array.from([...wire, 0]);
    assertCryptoError(() => new Opener(keys.clientToServer).open(bad));
  });

  test('counters stop before 2^64 − 1', () => {
    const sealer = new Sealer(keys.clientToServer, 2n ** 64n - 2n);
    const opener = new Opener(keys.clientToServer, 2n ** 64n - 2n);
    const body = sealer.sealBody(utf8('{}'));
    assert.deepEqual(opener.openBody(body), utf8('{}'));
    assertCryptoError(() => sealer.sealBody(utf8('{}')));
    assertCryptoError(() => opener.openBody(body));
    assert.equal(sealer.counter, 2n ** 64n - 1n);
  });
});

describe('keys and handshakes', () => {
  test('session keys: only standard padded base64 of exactly 32 bytes', () => {
    const good = V.sessionKeyB64;
    for (const bad of [
      good.slice(0, -1), // missing padding
      good.replace('=', ''),
      good + '=',
      ` ${good}`,
      good.replace('A', '-'), // URL-safe alphabet
      'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==', // 31 bytes
      'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==', // 34 bytes
      'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=', // non-zero trailing bits
      '',
    ]) {
      assertCryptoError(() => decodeSessionKey(bad));
    }
    assertCryptoError(() => decodeSessionKey(new Uint8Array(31)));
    assertCryptoError(() => decodeSessionKey(/** @type {any} */ (42)));
  });

  test('handshakes: ciphers and salts', () => {
    assert.deepEqual(parseHandshake({ salt: null, cipher: 'none' }), { cipher: 'none' });
    assertCryptoError(() => parseHandshake({ salt: V.saltB64, cipher: 'aes-256-gcm' }));
    assertCryptoError(() => parseHandshake({ salt: V.saltB64 }));
    assertCryptoError(() => parseHandshake({ cipher: 'chacha20poly1305' }));
    assertCryptoError(() => parseHandshake({ cipher: 'chacha20poly1305', salt: 'AAAA' }));
    assertCryptoError(() => parseHandshake(null));
  });
});
