// AccountClient against a mock fetch: request shapes (docs/protocol.md §3) and error mapping.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { AccountClient, parseRetryAfter } from '../src/account.js';
import { MovanError } from '../src/errors.js';

const SESSION = {
  uid: '1001',
  token: 'eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMDAxIn0.c2ln',
  refresh_token: 'q3Vb0mJ8yZtX7bq9nS1kR2fH5wLcE4aUo6iD8pTgYvM',
  expires_in: 3600,
  sync_addr: '127.0.0.1:2025',
  session_key: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=',
};

/**
 * A fetch that records requests and answers with `respond(req)` → `[status, body, headers?]`.
 * @param {(req: {method: string, url: string, headers: Record<string, string>, body: any}) => [number, any, Record<string, string>?]} respond
 */
function mockFetch(respond) {
  /** @type {any[]} */
  const seen = [];
  /** @type {typeof globalThis.fetch} */
  const fakeFetch = async (url, init = {}) => {
    const req = {
      method: init.method ?? 'GET',
      url: String(url),
      headers: /** @type {Record<string, string>} */ (init.headers ?? {}),
      body: init.body === undefined ? undefined : JSON.parse(String(init.body)),
    };
    seen.push(req);
    const [status, body, headers] = respond(req);
    const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    return new Response(status === 204 ? null : text, { status, headers: headers ?? {} });
  };
  return { fetch: fakeFetch, seen };
}

test('login: POST JSON to /v1/login, session returned as is', async () => {
  const { fetch, seen } = mockFetch(() => [200, { ...SESSION, ws_url: 'ws://127.0.0.1:2028/ws' }]);
  const account = new AccountClient('http://127.0.0.1:2026/', { fetch });
  assert.equal(account.baseUrl, 'http://127.0.0.1:2026');
  const session = await account.login('alice', 'correct horse');
  assert.deepEqual(session, { ...SESSION, ws_url: 'ws://127.0.0.1:2028/ws' });
  assert.equal(seen.length, 1);
  assert.equal(seen[0].method, 'POST');
  assert.equal(seen[0].url, 'http://127.0.0.1:2026/v1/login');
  assert.equal(seen[0].headers['Content-Type'], 'application/json');
  assert.deepEqual(seen[0].body, { username: 'alice', password: 'correct horse' });
});

test('register returns the uid; refresh sends the refresh token', async () => {
  const { fetch, seen } = mockFetch((req) =>
    req.url.endsWith('/v1/register') ? [201, { uid: '1001' }] : [200, { ...SESSION, token: 't2' }],
  );
  const account = new AccountClient('http://a', { fetch });
  assert.equal(await account.register('alice', 'correct horse'), '1001');
  const s = await account.refresh('r1');
  assert.equal(s.token, 't2');
  assert.deepEqual(seen[1].body, { refresh_token: 'r1' });
  assert.equal(seen[1].url, 'http://a/v1/refresh');
});

test('registerOrLogin: a 409 means the account exists, then logs in', async () => {
  const { fetch, seen } = mockFetch((req) =>
    req.url.endsWith('/v1/register')
      ? [409, { code: 'username_taken', message: 'username is taken' }]
      : [200, SESSION],
  );
  const account = new AccountClient('http://a', { fetch });
  assert.deepEqual(await account.registerOrLogin('alice', 'correct horse'), SESSION);
  assert.deepEqual(
    seen.map((r) => r.url),
    ['http://a/v1/register', 'http://a/v1/login'],
  );
});

test('registerOrLogin: other register errors are thrown', async () => {
  const { fetch } = mockFetch(() => [400, { code: 'invalid_password', message: 'password too short' }]);
  await assert.rejects(new AccountClient('http://a', { fetch }).registerOrLogin('alice', 'x'), {
    name: 'MovanError',
    status: 400,
    code: 'invalid_password',
    message: 'password too short',
  });
});

test('errors: status, code, message; 429 and 503 carry retryAfter', async () => {
  const answers = [
    [401, { code: 'invalid_credentials', message: 'invalid username or password' }],
    [429, { code: 'too_many_attempts', message: 'too many login attempts (account.login_attempts_per_ip)' }, { 'Retry-After': '7' }],
    [503, { code: 'no_sync_server', message: 'no sync server is available' }, { 'Retry-After': '5' }],
    [403, { code: 'banned', message: 'banned' }],
  ];
  let i = 0;
  const { fetch } = mockFetch(() => /** @type {any} */ (answers[i++]));
  const account = new AccountClient('http://a', { fetch });
  await assert.rejects(account.login('alice', 'bad password'), (e) => {
    assert.ok(e instanceof MovanError);
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_credentials');
    assert.equal(e.message, 'invalid username or password');
    assert.equal(e.retryAfter, undefined);
    return true;
  });
  await assert.rejects(account.login('alice', 'x'), { status: 429, code: 'too_many_attempts', retryAfter: 7 });
  await assert.rejects(account.login('alice', 'x'), { status: 503, code: 'no_sync_server', retryAfter: 5 });
  await assert.rejects(account.login('alice', 'x'), { status: 403, code: 'banned' });
});

test('an error body that is not the documented JSON is quoted, code empty', async () => {
  const { fetch } = mockFetch(() => [502, '<html>Bad Gateway</html>']);
  await assert.rejects(new AccountClient('http://a', { fetch }).login('a', 'b'), {
    status: 502,
    code: '',
    message: '<html>Bad Gateway</html>',
  });
});

test('network failures and timeouts', async () => {
  const failing = async () => {
    throw new TypeError('fetch failed');
  };
  await assert.rejects(new AccountClient('http://a', { fetch: failing }).login('a', 'b'), {
    status: 0,
    code: 'network',
  });
  /** @type {typeof fetch} */
  const hanging = (_url, init) =>
    new Promise((_, reject) => init?.signal?.addEventListener('abort', () => reject(new Error('aborted'))));
  await assert.rejects(new AccountClient('http://a', { fetch: hanging, timeoutMs: 20 }).login('a', 'b'), {
    code: 'timeout',
  });
});

test('logout, me and matches send the bearer token', async () => {
  const { fetch, seen } = mockFetch((req) => {
    if (req.url.endsWith('/v1/logout')) return [204, undefined];
    if (req.url.endsWith('/v1/me')) return [200, { uid: '1001', username: 'alice', role: 'player' }];
    return [200, { matches: [], next: null }];
  });
  const account = new AccountClient('http://a', { fetch });
  assert.equal(await account.logout('tok'), undefined);
  assert.deepEqual(await account.me('tok'), { uid: '1001', username: 'alice', role: 'player' });
  assert.deepEqual(await account.matches('tok', { limit: 5, before: 'AAAA' }), { matches: [], next: null });
  for (const r of seen) assert.equal(r.headers.Authorization, 'Bearer tok');
  assert.equal(seen[0].method, 'POST');
  assert.equal(seen[0].body, undefined);
  assert.equal(seen[1].method, 'GET');
  assert.equal(seen[2].url, 'http://a/v1/me/matches?limit=5&before=AAAA');
});

test('replay: the JSON lines of a match, header first, frames as broadcast', async () => {
  const frames = [
    '{"proto":"sync_frame","data":{"frame_count":0,"actions":[]}}',
    '{"proto":"sync_frame","data":{"frame_count":1,"actions":[{"uid":"1001","extra_data":{"timestamp":1.5,"action_data":{"move":[1,0]}}}]}}',
  ];
  const { fetch, seen } = mockFetch((req) => {
    if (req.url.includes('missing')) return [404, { code: 'replay_not_found', message: 'no replay' }];
    return [200, `{"format":"movan-replay","version":1,"frame_count":2}\n${frames.join('\n')}\n`];
  });
  const account = new AccountClient('http://a', { fetch });
  const replay = await account.replay('tok', 'lobby 7-00ff');
  assert.equal(seen[0].url, 'http://a/v1/matches/lobby%207-00ff/replay?format=jsonl');
  assert.equal(seen[0].headers.Authorization, 'Bearer tok');
  assert.deepEqual(replay.header, { format: 'movan-replay', version: 1, frame_count: 2 });
  assert.deepEqual(replay.frames, frames);
  await assert.rejects(account.replay('tok', 'missing'), { status: 404, code: 'replay_not_found' });
});

test('parseRetryAfter: seconds or an HTTP date', () => {
  assert.equal(parseRetryAfter('12'), 12);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter('soon'), undefined);
  const inTen = new Date(Date.now() + 10_000).toUTCString();
  const s = /** @type {number} */ (parseRetryAfter(inTen));
  assert.ok(s >= 8 && s <= 11, String(s));
  assert.equal(parseRetryAfter(new Date(0).toUTCString()), 0);
});
