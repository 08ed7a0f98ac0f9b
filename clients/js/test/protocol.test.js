// The wire examples of docs/protocol.md that a client produces or must read.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { deriveKeys, frameBytes, lengthPrefix, Sealer } from '../src/crypto.js';
import { encodeEnvelope } from '../src/sync.js';

const hex = (/** @type {Uint8Array} */ b) => Buffer.from(b).toString('hex');
const utf8 = (/** @type {string} */ s) => new TextEncoder().encode(s);

test('§2: the worked ping frame (44-byte body)', () => {
  const body = encodeEnvelope('1001', { proto: 'ping', timestamp: null });
  assert.equal(body, '{"uid":"1001","extra_data":{"proto":"ping"}}');
  const expected = `00 00 00 2c 7b 22 75 69 64 22 3a 22 31 30 30 31
    22 2c 22 65 78 74 72 61 5f 64 61 74 61 22 3a 7b
    22 70 72 6f 74 6f 22 3a 22 70 69 6e 67 22 7d 7d`.replace(/\s+/g, '');
  assert.equal(hex(frameBytes(utf8(body))), expected);
});

test('§2: the empty sync_frame has a 60-byte body, prefix 00 00 00 3c', () => {
  const body = utf8('{"proto":"sync_frame","data":{"frame_count":1,"actions":[]}}');
  assert.equal(body.length, 60);
  assert.equal(hex(lengthPrefix(body.length)), '0000003c');
});

// The keys of docs/encryption.md §7 (session key 00..1f, salt 20..3f).
const KEYS = deriveKeys('AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=', 'ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=');

test('§2: the ping, sealed (client→server counter 0): 16 bytes longer, prefix 00 00 00 3c', () => {
  const body = utf8('{"uid":"1001","extra_data":{"proto":"ping"}}');
  const expected = `00 00 00 3c 60 f2 80 27 38 8d 6c 9a 72 24 e7 4b
    53 13 bf e7 e2 3d 35 05 c5 6b 19 bc 87 f9 40 17
    cd c5 e0 00 af 47 22 89 0e e9 69 54 ad a4 e6 42
    71 0c e1 1b bd 47 d7 40 f5 1e 78 99 d8 11 6c 7c`.replace(/\s+/g, '');
  assert.equal(hex(new Sealer(KEYS.clientToServer).seal(body)), expected);
});

test('§2: the empty sync_frame, sealed (server→client counter 0): 76-byte body, prefix 00 00 00 4c', () => {
  const body = utf8('{"proto":"sync_frame","data":{"frame_count":1,"actions":[]}}');
  const expected = `00 00 00 4c 51 32 b3 df c1 a3 63 46 30 f0 a0 f9
    7e 30 e5 2b 73 92 cd c3 ab cb 8b ce 37 79 56 12
    92 ad 82 78 37 67 c2 35 5d a8 b5 b6 62 9d 9d aa
    f5 4a d7 1b b2 44 4b 28 04 a4 eb c6 f9 ab b4 b6
    37 60 d7 bd 7a 38 ad a3 3e 36 02 80 19 71 5d 05`.replace(/\s+/g, '');
  assert.equal(hex(new Sealer(KEYS.serverToClient).seal(body)), expected);
});

test('§4: envelopes as the examples show them', () => {
  assert.equal(
    encodeEnvelope('1001', { proto: 'room_enter', timestamp: 1700000000.0, data: { room_id: 'lobby-7' } }, 'eyJ...'),
    '{"uid":"1001","token":"eyJ...","extra_data":{"proto":"room_enter","timestamp":1700000000,"data":{"room_id":"lobby-7"}}}',
  );
  assert.equal(
    encodeEnvelope('1001', { proto: 'sync_action', timestamp: 1700000000.12, action_data: { move: [1, 0] } }),
    '{"uid":"1001","extra_data":{"proto":"sync_action","timestamp":1700000000.12,"action_data":{"move":[1,0]}}}',
  );
  assert.equal(
    encodeEnvelope('1001', { proto: 'sync_request_reload_frames', data: { start_frame: 120 } }),
    '{"uid":"1001","extra_data":{"proto":"sync_request_reload_frames","data":{"start_frame":120}}}',
  );
  assert.equal(encodeEnvelope('1001', { proto: 'room_leave' }), '{"uid":"1001","extra_data":{"proto":"room_leave"}}');
});
