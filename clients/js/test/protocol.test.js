// The wire examples of docs/protocol.md that a client produces or must read.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { frameBytes, lengthPrefix } from '../src/crypto.js';
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
