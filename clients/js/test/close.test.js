// WebSocket close codes in words (src/close.js).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { CLOSE_CODES, CLOSING_ERROR_CODES, closeCodeWords, describeClose } from '../src/close.js';
import * as movan from '../movan.js';

describe('close codes', () => {
  test('every standard code from RFC 6455 and the IANA registry has words', () => {
    const standard = [1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 1015];
    assert.deepEqual(Object.keys(CLOSE_CODES).map(Number), standard);
    for (const code of standard) assert.match(closeCodeWords(code), /^[a-zA-Z]/, `code ${code}`);
    assert.equal(closeCodeWords(1000), 'normal closure');
    assert.equal(closeCodeWords(1005), 'no status');
    assert.equal(closeCodeWords(1006), 'abnormal closure, no close frame');
  });

  test('codes outside the table say which range they are in', () => {
    assert.equal(closeCodeWords(1004), 'unknown code'); // reserved
    assert.equal(closeCodeWords(3003), 'registered application code');
    assert.equal(closeCodeWords(4000), 'application code');
    assert.equal(closeCodeWords(0), 'unknown code');
  });

  test('describeClose: the words, the code, the close reason', () => {
    assert.equal(describeClose({ code: 1005 }), 'connection closed: no status (1005)');
    assert.equal(describeClose({ code: 1006, reason: '' }), 'connection closed: abnormal closure, no close frame (1006)');
    assert.equal(describeClose({ code: 1001, reason: 'restart' }), 'connection closed: going away (1001): restart');
  });

  test("describeClose: the server's error before the close, when it is one that closes", () => {
    const timeout = { code: 'timeout', message: 'no message for 60 s (sync.idle_timeout_secs)', proto: null };
    assert.equal(
      describeClose({ code: 1005, reason: '', lastError: timeout }),
      "connection closed: no status (1005) after the server's error timeout: no message for 60 s (sync.idle_timeout_secs)",
    );
    assert.equal(
      describeClose({ code: 1005, lastError: { code: 'rate_limited', message: '' } }),
      "connection closed: no status (1005) after the server's error rate_limited",
    );
    // An old error that does not close the connection says nothing about this close.
    const full = { code: 'room_full', message: 'room r1 is full', proto: 'room_enter' };
    assert.equal(describeClose({ code: 1006, lastError: full }), 'connection closed: abnormal closure, no close frame (1006)');
    assert.ok(!CLOSING_ERROR_CODES.includes('room_full'));
  });

  test('exported from movan.js', () => {
    assert.equal(movan.describeClose, describeClose);
    assert.equal(movan.closeCodeWords, closeCodeWords);
    assert.equal(movan.CLOSE_CODES, CLOSE_CODES);
    assert.equal(movan.CLOSING_ERROR_CODES, CLOSING_ERROR_CODES);
  });
});
