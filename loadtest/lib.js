// Shared helpers for the k6 scripts in this directory (mixed.js,
// hot-message.js, deep-pagination.js). Imported with a relative path:
//
//   import { BASE_URL, createMessage } from './lib.js';
//
// No remote modules: random helpers are written on Math.random(), so the
// scripts also run on machines without access to jslib.k6.io.

import http from 'k6/http';
import { check } from 'k6';
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';

// ---------------------------------------------------------------------------
// Configuration from the environment (k6 run -e NAME=value ...)

// envString returns __ENV[name], or def when it is unset or empty.
export function envString(name, def) {
  const v = __ENV[name];
  return v === undefined || v === '' ? def : String(v);
}

// envInt returns __ENV[name] as an integer, or def when it is unset.
export function envInt(name, def) {
  const v = envString(name, undefined);
  if (v === undefined) {
    return def;
  }
  const n = parseInt(v, 10);
  if (isNaN(n)) {
    throw new Error(`${name} must be an integer, not "${v}"`);
  }
  return n;
}

// envFloat returns __ENV[name] as a number, or def when it is unset.
export function envFloat(name, def) {
  const v = envString(name, undefined);
  if (v === undefined) {
    return def;
  }
  const n = parseFloat(v);
  if (isNaN(n)) {
    throw new Error(`${name} must be a number, not "${v}"`);
  }
  return n;
}

// BASE_URL is the API's address, without a trailing slash.
export const BASE_URL = envString('BASE_URL', 'http://localhost:8080').replace(/\/+$/, '');

// The API refuses a body whose Content-Type is not JSON (415).
export const JSON_HEADERS = { 'Content-Type': 'application/json' };

// Limits of the API (see message.go).
export const DEFAULT_PAGE_SIZE = 10;
export const MAX_PAGE_SIZE = 100;
export const MAX_PAGE_OFFSET = 10000; // page=N may skip at most this many messages
export const INLINE_REACTIONS = 10; // a message view carries at most this many reactions

// The reaction types the scripts post.
export const REACTION_TYPES = ['like', 'love', 'laugh', 'clap'];

// Trend stats in the end-of-test summary; p(99) is not there by default.
export const SUMMARY_TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'];

// ---------------------------------------------------------------------------
// Random helpers

// randInt returns an integer in [min, max], both included.
export function randInt(min, max) {
  return min + Math.floor(Math.random() * (max - min + 1));
}

// randItem returns a random element of a non-empty array.
export function randItem(items) {
  return items[Math.floor(Math.random() * items.length)];
}

// chance returns true with probability p.
export function chance(p) {
  return Math.random() < p;
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';

// randString returns n random characters of alphabet (default [a-z0-9]).
export function randString(n, alphabet) {
  const a = alphabet || ALNUM;
  let s = '';
  for (let i = 0; i < n; i++) {
    s += a.charAt(Math.floor(Math.random() * a.length));
  }
  return s;
}

// poolUser returns one of size user ids, "<prefix>-1" to "<prefix>-<size>".
// The ids only use characters of [A-Za-z0-9_.@-].
export function poolUser(size, prefix) {
  return `${prefix || 'lt-user'}-${randInt(1, size)}`;
}

const WORDS = [
  'hello', 'team', 'lunch', 'deploy', 'today', 'ok', 'thanks', 'meeting', 'later', 'coffee',
  'ship', 'it', 'great', 'idea', 'review', 'please', 'done', 'why', 'now', 'soon', 'bug',
  'fixed', 'standup', 'in', '5', 'min', 'anyone', 'seen', 'the', 'dashboard', '+1', ':)',
];

// randomText returns chat-like text of minLen to maxLen characters
// (1 <= minLen <= maxLen <= 5000); it never is only white space.
export function randomText(minLen, maxLen) {
  const target = randInt(minLen || 10, maxLen || 200);
  let s = 'k6';
  while (s.length < target) {
    s += ' ' + randItem(WORDS);
  }
  return s.slice(0, target).trim();
}

// ---------------------------------------------------------------------------
// Response helpers

// bodyJson returns the parsed JSON body, or undefined when there is none
// (204, a network error) or it is not JSON. res.json() throws in those cases.
export function bodyJson(res) {
  if (!res || res.body === null || res.body === undefined || res.body === '') {
    return undefined;
  }
  try {
    return res.json();
  } catch (e) {
    return undefined;
  }
}

// header returns the first value of a response header, or undefined.
// Depending on the k6 version a header value is a string or an array of
// strings, and the name's case may differ; this works in every case.
export function header(res, name) {
  const headers = (res && res.headers) || {};
  let v = headers[name];
  if (v === undefined) {
    const wanted = name.toLowerCase();
    for (const k in headers) {
      if (k.toLowerCase() === wanted) {
        v = headers[k];
        break;
      }
    }
  }
  if (v === undefined || v === null) {
    return undefined;
  }
  return [].concat(v)[0];
}

// describe summarises a response for a log line.
export function describe(res) {
  if (!res) {
    return 'no response';
  }
  if (res.error) {
    return `error ${res.error_code || ''} ${res.error}`.trim();
  }
  let s = `${res.status}`;
  const retryAfter = header(res, 'Retry-After');
  if (retryAfter !== undefined) {
    s += ` (Retry-After: ${retryAfter})`;
  }
  if (typeof res.body === 'string' && res.body.length > 0) {
    s += ` ${res.body.slice(0, 300)}`;
  }
  return s;
}

// Failures are logged, but only the first few per VU, so that an outage
// does not flood the console.
const MAX_LOGGED_FAILURES = 5;
let loggedFailures = 0;

// logFailure logs an unexpected response with what was asked.
export function logFailure(what, res) {
  if (loggedFailures >= MAX_LOGGED_FAILURES) {
    return;
  }
  loggedFailures++;
  console.warn(`${what}: unexpected response: ${describe(res)}`);
}

// query builds a query string from the defined values of params.
export function query(params) {
  const parts = [];
  for (const k in params) {
    const v = params[k];
    if (v !== undefined && v !== null) {
      parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
    }
  }
  return parts.length > 0 ? `?${parts.join('&')}` : '';
}

// sumValues adds up the values of an object of numbers.
export function sumValues(obj) {
  let total = 0;
  for (const k in obj) {
    total += obj[k];
  }
  return total;
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isCount(v) {
  return typeof v === 'number' && Math.floor(v) === v && v >= 0;
}

// ---------------------------------------------------------------------------
// Shape checks, shared by every script

// isMessageView reports whether v is a consistent message view: a count for
// every type, a score sum for the same types (each reaction scores at least
// 1), a total that is the sum of the per-type counts, and at most
// INLINE_REACTIONS inline reactions. One view is written as a whole by the
// projection, so these hold even while reactions are being projected.
export function isMessageView(v) {
  if (!isObject(v) || typeof v.id !== 'string' || !isCount(v.reaction_count)) {
    return false;
  }
  if (!isObject(v.reaction_counts) || !isObject(v.reaction_scores) || !Array.isArray(v.reactions)) {
    return false;
  }
  if (v.reactions.length > INLINE_REACTIONS || sumValues(v.reaction_counts) !== v.reaction_count) {
    return false;
  }
  const types = Object.keys(v.reaction_counts);
  if (types.length !== Object.keys(v.reaction_scores).length) {
    return false;
  }
  for (const t of types) {
    if (!isCount(v.reaction_counts[t]) || !(v.reaction_scores[t] >= v.reaction_counts[t])) {
      return false;
    }
  }
  return true;
}

// isPage reports whether p is a list page of at most limit items under key,
// whose next_cursor is either absent or a non-empty string, and present only
// on a full page (the API asks for limit+1 items to decide).
export function isPage(p, key, limit, newer) {
  if (!isObject(p) || !Array.isArray(p[key]) || p[key].length > limit) {
    return false;
  }
  if (p.next_cursor === undefined) {
    return true;
  }
  // A page read toward the present (by a prev_cursor) may be short and
  // still have older messages after it.
  return typeof p.next_cursor === 'string' && p.next_cursor.length > 0 && (newer === true || p[key].length === limit);
}

// ---------------------------------------------------------------------------
// Expected statuses. http_req_failed counts every response that is not
// "expected"; by default 200-399 are. A DELETE of a reaction that another VU
// removed first is a legitimate 404, so deletes pass this callback. It is
// made once here, as the k6 docs advise, not per request.
export const EXPECT_DELETE = http.expectedStatuses(204, 404);

// AUTH_SECRET, when set, is the API's -auth-secret: every request is made
// with a bearer token of the user it acts or reads as, signed here, as a
// chat client in production would send it.
export const AUTH_SECRET = envString('AUTH_SECRET', '');

// Tokens this VU signed, by user; each is valid for an hour and signed
// again when less than ten minutes are left.
const tokens = {};

// tokenFor returns an HS256 token of AUTH_SECRET for user: what
// `api token -sub <user>` prints.
export function tokenFor(user) {
  const now = Math.floor(Date.now() / 1000);
  const held = tokens[user];
  if (held !== undefined && held.exp - now > 600) {
    return held.token;
  }
  const exp = now + 3600;
  const part = (obj) => encoding.b64encode(JSON.stringify(obj), 'rawurl');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub: user, iat: now, exp: exp })}`;
  const token = `${unsigned}.${crypto.hmac('sha256', AUTH_SECRET, unsigned, 'base64rawurl')}`;
  tokens[user] = { token: token, exp: exp };
  return token;
}

// params returns request Params with the name tag (which groups URLs that
// carry ids) and the caller's tags; extra adds headers, a callback, etc.
// With AUTH_SECRET, user (when given) is who the request is made as.
function params(name, tags, extra, user) {
  const p = Object.assign({ tags: Object.assign({ name: name }, tags || {}) }, extra || {});
  if (AUTH_SECRET !== '' && user !== undefined) {
    p.headers = Object.assign({}, p.headers || {}, { Authorization: `Bearer ${tokenFor(user)}` });
  }
  return p;
}

// isOwn reports whether every message of ms carries own_reactions: an
// array of the user's reactions on it, empty when they have none.
export function isOwn(ms, user) {
  return ms.every((m) => Array.isArray(m.own_reactions) &&
    m.own_reactions.every((r) => r.user_id === user && r.message_id === m.id));
}

const JSON_BODY = { headers: JSON_HEADERS };

// The channel /messages lists and posts to.
export const DEFAULT_CHANNEL = 'default';

// messagesRoute returns the path of a channel's messages, and the route
// that names its requests: /messages for the default channel (or none),
// /channels/{channel_id}/messages for any other.
export function messagesRoute(channel) {
  if (channel === undefined || channel === DEFAULT_CHANNEL) {
    return { path: '/messages', route: '/messages' };
  }
  return { path: `/channels/${channel}/messages`, route: '/channels/{channel_id}/messages' };
}

// ---------------------------------------------------------------------------
// API calls. Each one checks the status and the shape of the answer, unless
// opts.checks is false (polling loops), and returns the response with the
// parsed body. opts.tags are added to the request's metrics; the `name` tag
// groups URLs that carry ids.

// createMessage posts a message, to the channel opts.channel (default:
// the default channel), and expects 201 with it, and a Location.
export function createMessage(text, userId, opts) {
  const o = opts || {};
  const { path, route } = messagesRoute(o.channel);
  const res = http.post(`${BASE_URL}${path}`, JSON.stringify({ text: text, user_id: userId }),
    params(`POST ${route}`, o.tags, JSON_BODY, userId));
  const msg = bodyJson(res);
  if (o.checks !== false) {
    const ok = check(res, {
      'POST /messages: status 201': (r) => r.status === 201,
      'POST /messages: returns the new message': () => isMessageView(msg) &&
        msg.text === text && msg.user_id === userId && msg.reaction_count === 0 &&
        msg.channel_id === (o.channel || DEFAULT_CHANNEL),
      'POST /messages: Location is /messages/{id}': (r) =>
        msg !== undefined && header(r, 'Location') === `/messages/${msg.id}`,
    });
    if (!ok) {
      logFailure(`POST ${path}`, res);
    }
  }
  return { res: res, message: res.status === 201 ? msg : undefined };
}

// createMessages posts messages in parallel with http.batch and returns the
// ids of those created. items are {text, user_id, channel?}. How many
// requests run at once is bounded by the batch and batchPerHost options
// (defaults 20 and 6).
export function createMessages(items, opts) {
  const o = opts || {};
  const requests = items.map((it) => {
    const { path, route } = messagesRoute(it.channel);
    return {
      method: 'POST',
      url: `${BASE_URL}${path}`,
      body: JSON.stringify({ text: it.text, user_id: it.user_id }),
      params: params(`POST ${route}`, o.tags, JSON_BODY, it.user_id),
    };
  });
  const responses = http.batch(requests);
  const ids = [];
  for (let i = 0; i < responses.length; i++) {
    const res = responses[i];
    const msg = bodyJson(res);
    const ok = check(res, {
      'POST /messages: status 201': (r) => r.status === 201,
      'POST /messages: returns the new message': () => isMessageView(msg) && msg.text === items[i].text,
    });
    if (ok) {
      ids.push(msg.id);
    } else {
      logFailure('POST /messages (batch)', res);
    }
  }
  return ids;
}

// getMessage reads one message view and expects 200 with a consistent view.
// With opts.userId it reads as that user (user_id, and the user's token
// with AUTH_SECRET), and expects the user's own reactions on it.
export function getMessage(id, opts) {
  const o = opts || {};
  const q = o.userId === undefined ? '' : query({ user_id: o.userId });
  const res = http.get(`${BASE_URL}/messages/${id}${q}`, params('GET /messages/{id}', o.tags, undefined, o.userId));
  const msg = bodyJson(res);
  if (o.checks !== false) {
    const ok = check(res, {
      'GET /messages/{id}: status 200': (r) => r.status === 200,
      'GET /messages/{id}: consistent view of the message': () => isMessageView(msg) && msg.id === id &&
        (o.userId === undefined || isOwn([msg], o.userId)),
    });
    if (!ok) {
      logFailure(`GET /messages/${id}${q}`, res);
    }
  }
  return { res: res, message: res.status === 200 ? msg : undefined };
}

// listMessages reads a page of the messages of the channel opts.channel
// (default: the default channel). q holds limit and either page or
// cursor, and user_id to read as that user (then every message must carry
// the user's own reactions); opts.name overrides the name tag (default
// 'GET /messages', or 'GET /channels/{channel_id}/messages'); opts.newer
// says the cursor is a prev_cursor, which reads toward the present.
export function listMessages(q, opts) {
  const o = opts || {};
  const qq = q || {};
  const limit = qq.limit || DEFAULT_PAGE_SIZE;
  const { path, route } = messagesRoute(o.channel);
  const name = o.name || `GET ${route}`;
  const res = http.get(`${BASE_URL}${path}${query(qq)}`, params(name, o.tags, undefined, qq.user_id));
  const page = bodyJson(res);
  const wellFormed = isPage(page, 'messages', limit, o.newer) && (qq.user_id === undefined || isOwn(page.messages, qq.user_id)) &&
    page.messages.every((m) => m.channel_id === (o.channel || DEFAULT_CHANNEL));
  if (o.checks !== false) {
    const ok = check(res, {
      'GET /messages: status 200': (r) => r.status === 200,
      'GET /messages: well-formed page': () => wellFormed,
    });
    if (!ok) {
      logFailure(`GET ${path}${query(qq)}`, res);
    }
  }
  return { res: res, page: res.status === 200 && wellFormed ? page : undefined };
}

// postReaction posts a reaction (score may be undefined) and expects 201
// (new) or 200 (the same message, user and type again: re-scored).
export function postReaction(messageId, type, userId, score, opts) {
  const o = opts || {};
  const body = { type: type, user_id: userId };
  if (score !== undefined) {
    body.score = score;
  }
  if (o.enforceUnique) {
    body.enforce_unique = true;
  }
  const res = http.post(`${BASE_URL}/messages/${messageId}/reactions`, JSON.stringify(body),
    params('POST /messages/{id}/reactions', o.tags, JSON_BODY, userId));
  const reaction = bodyJson(res);
  if (o.checks !== false) {
    const ok = check(res, {
      'POST reaction: status 201 or 200': (r) => r.status === 201 || r.status === 200,
      'POST reaction: returns the reaction': () => isObject(reaction) &&
        reaction.message_id === messageId && reaction.type === type && reaction.user_id === userId &&
        reaction.score === (score === undefined ? reaction.score : score),
    });
    if (!ok) {
      logFailure(`POST /messages/${messageId}/reactions ${JSON.stringify(body)}`, res);
    }
  }
  const ok2xx = res.status === 201 || res.status === 200;
  return { res: res, reaction: ok2xx ? reaction : undefined };
}

// deleteReaction deletes the reaction of (message, type, user). It expects
// 204, or 404 when it is absent unless opts.allowNotFound is false; 404 then
// does not count in http_req_failed either.
export function deleteReaction(messageId, type, userId, opts) {
  const o = opts || {};
  const allowNotFound = o.allowNotFound !== false;
  const extra = allowNotFound ? { responseCallback: EXPECT_DELETE } : {};
  const url = `${BASE_URL}/messages/${messageId}/reactions/${type}${query({ user_id: userId })}`;
  const res = http.del(url, null, params('DELETE /messages/{id}/reactions/{type}', o.tags, extra, userId));
  if (o.checks !== false) {
    const ok = check(res, allowNotFound
      ? { 'DELETE reaction: status 204 or 404': (r) => r.status === 204 || r.status === 404 }
      : { 'DELETE reaction: status 204': (r) => r.status === 204 });
    if (!ok) {
      logFailure(`DELETE ${url}`, res);
    }
  }
  return res;
}

// listReactions reads a page of a message's live reactions, newest first.
// q may hold limit, cursor, type and user_id.
export function listReactions(messageId, q, opts) {
  const o = opts || {};
  const qq = q || {};
  const limit = qq.limit || DEFAULT_PAGE_SIZE;
  const res = http.get(`${BASE_URL}/messages/${messageId}/reactions${query(qq)}`,
    params('GET /messages/{id}/reactions', o.tags, undefined, qq.user_id));
  const page = bodyJson(res);
  if (o.checks !== false) {
    const ok = check(res, {
      'GET reactions: status 200': (r) => r.status === 200,
      'GET reactions: well-formed page': () => isPage(page, 'reactions', limit),
    });
    if (!ok) {
      logFailure(`GET /messages/${messageId}/reactions${query(qq)}`, res);
    }
  }
  return { res: res, page: res.status === 200 && isPage(page, 'reactions', limit) ? page : undefined };
}

// requireService fails setup() early, with a readable message, when the API
// does not answer GET /messages with 200.
export function requireService() {
  const res = http.get(`${BASE_URL}/messages${query({ limit: 1 })}`, params('GET /messages (preflight)'));
  if (res.status !== 200) {
    throw new Error(`the API at ${BASE_URL} is not ready: GET /messages?limit=1 gave ${describe(res)}; ` +
      'start it (make run or docker compose up) or set -e BASE_URL=...');
  }
}

// ---------------------------------------------------------------------------
// Scenario and threshold builders

// arrival returns a constant-arrival-rate scenario that starts perSecond
// iterations of the exported function exec each second. A fractional rate
// is expressed per minute (the executor's rate is an integer), rounded to
// a whole number of iterations a minute.
// o.iterSeconds is the typical iteration time, which sizes the
// preallocated VUs; o.maxIterSeconds the slowest one kept up with, which
// sizes maxVUs. Iterations that find no free VU are dropped and counted in
// the dropped_iterations metric.
export function arrival(exec, perSecond, duration, o) {
  const opt = o || {};
  const perMinute = Math.max(1, Math.round(perSecond * 60));
  let rate = perMinute;
  let timeUnit = '1m';
  if (perMinute % 60 === 0) {
    rate = perMinute / 60;
    timeUnit = '1s';
  }
  const pre = Math.max(1, Math.ceil(perSecond * (opt.iterSeconds || 0.1)));
  const max = Math.max(pre, opt.minMaxVUs || 10, Math.ceil(perSecond * (opt.maxIterSeconds || 2)));
  const s = {
    executor: 'constant-arrival-rate',
    exec: exec,
    rate: rate,
    timeUnit: timeUnit,
    duration: duration,
    preAllocatedVUs: pre,
    maxVUs: max,
  };
  if (opt.startTime) {
    s.startTime = opt.startTime;
  }
  if (opt.gracefulStop) {
    s.gracefulStop = opt.gracefulStop;
  }
  return s;
}

// latency returns the threshold expressions p(95)<p95 and p(99)<p99 (ms).
export function latency(p95, p99) {
  return [`p(95)<${p95}`, `p(99)<${p99}`];
}
