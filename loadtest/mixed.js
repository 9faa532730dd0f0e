// mixed.js: a realistic chat mix against the message API.
//
// What it measures: latency and errors of every endpoint under a steady,
// open-model load (constant-arrival-rate: the rate holds even when the
// service slows down), one scenario per kind of traffic, so each has its own
// latency thresholds:
//
//   first_page       GET /messages                        (the cached latest page)
//   later_pages      GET /messages?page=2..5               (also cached)
//   cursor_walk      GET /messages, then ?cursor=... for WALK_PAGES pages
//   get_message      GET /messages/{id}
//   jump             GET /messages?around={id}: the page centred on a message
//                    of the pool, then one page newer by prev_cursor
//
// The traffic spreads over CHANNELS channels: the default one, which
// /messages lists, and room-1, room-2, ..., read and posted to as
// /channels/{channel_id}/messages. Each page read, walk and post picks a
// channel at random; a jump reads the channel of its message.
//
// Every read is made as a chat client makes it: as a reader of the pool
// (user_id, and with AUTH_SECRET the reader's own token), so every
// message carries the reader's own_reactions, which are checked.
//   post_message     POST /messages, or /channels/{channel_id}/messages
//   post_reaction    POST /messages/{id}/reactions: random type, user and score
//                    1..50; REPOST_RATIO of them post again a reaction this VU
//                    created before (same message, user and type), which
//                    updates its score (200)
//   delete_reaction  GET /messages/{id}/reactions to pick one, then DELETE it;
//                    404 (already gone, or nothing to pick) is a valid outcome
//   unique_reaction  POST /messages/{id}/reactions with enforce_unique, from
//                    users of their own: the user's other types on the
//                    message go, so a read of their reactions shows one
//
// setup() checks that the API answers, then creates POOL messages, spread
// over the channels, that the reads and reactions target; their ids and
// channels are passed to every VU.
//
// Run (the API and a worker must be running, e.g. `make run`):
//
//   k6 run -e BASE_URL=http://localhost:8080 loadtest/mixed.js
//   k6 run -e READ_RATE=400 -e WRITE_RATE=80 -e DURATION=5m loadtest/mixed.js
//
// Environment (all optional): BASE_URL, AUTH_SECRET, DURATION, READ_RATE,
// WRITE_RATE, the per-scenario *_RATE overrides, POOL, USERS, CHANNELS,
// WALK_PAGES, REPOST_RATIO and the latency thresholds *_P95 / *_P99 (ms). See
// loadtest/README.md.

import { check } from 'k6';
import { Counter } from 'k6/metrics';
import {
  REACTION_TYPES, SUMMARY_TREND_STATS, arrival, chance, createMessage, createMessages, deleteReaction,
  DEFAULT_CHANNEL, envFloat, envInt, envString, getMessage, latency, listMessages, listReactions, messagesRoute,
  poolUser, postReaction, randInt, randItem, randomText, requireService,
} from './lib.js';

// ---------------------------------------------------------------------------
// Configuration

const DURATION = envString('DURATION', '1m');
const READ_RATE = envFloat('READ_RATE', 100); // read iterations per second, all read scenarios
const WRITE_RATE = envFloat('WRITE_RATE', 20); // write iterations per second, all write scenarios
const POOL = envInt('POOL', 200); // messages created by setup()
const USERS = envInt('USERS', 500); // size of the user id pool
const WALK_PAGES = envInt('WALK_PAGES', 4); // pages per cursor walk
const REPOST_RATIO = envFloat('REPOST_RATIO', 0.2); // share of reaction posts that re-post
const CHANNELS = Math.max(1, envInt('CHANNELS', 4)); // the default channel and CHANNELS-1 others

// CHANNEL_IDS are the channels of the traffic.
const CHANNEL_IDS = [DEFAULT_CHANNEL];
for (let i = 1; i < CHANNELS; i++) {
  CHANNEL_IDS.push(`room-${i}`);
}

// Iterations per second of each scenario: a share of READ_RATE or
// WRITE_RATE unless set on its own. 0 turns a scenario off.
const RATES = {
  first_page: envFloat('FIRST_PAGE_RATE', READ_RATE * 0.43),
  later_pages: envFloat('LATER_PAGES_RATE', READ_RATE * 0.15),
  cursor_walk: envFloat('CURSOR_WALK_RATE', READ_RATE * 0.05),
  get_message: envFloat('GET_MESSAGE_RATE', READ_RATE * 0.35),
  jump: envFloat('JUMP_RATE', READ_RATE * 0.02),
  post_message: envFloat('POST_MESSAGE_RATE', WRITE_RATE * 0.25),
  post_reaction: envFloat('POST_REACTION_RATE', WRITE_RATE * 0.60),
  unique_reaction: envFloat('UNIQUE_REACTION_RATE', WRITE_RATE * 0.05),
  delete_reaction: envFloat('DELETE_REACTION_RATE', WRITE_RATE * 0.10),
};

// Latency thresholds in ms: the cached first page tightest, other reads
// next, writes loosest.
const FIRST_PAGE = latency(envInt('FIRST_PAGE_P95', 50), envInt('FIRST_PAGE_P99', 100));
const READS = latency(envInt('READ_P95', 100), envInt('READ_P99', 250));
const WRITES = latency(envInt('WRITE_P95', 150), envInt('WRITE_P99', 400));

// scenario name -> [exported function, latency thresholds, arrival options]
const SCENARIOS = {
  first_page: ['firstPage', FIRST_PAGE, {}],
  later_pages: ['laterPages', READS, {}],
  cursor_walk: ['cursorWalk', READS, { iterSeconds: 0.05 * WALK_PAGES, maxIterSeconds: 2 * WALK_PAGES }],
  get_message: ['readMessage', READS, {}],
  jump: ['jump', READS, { iterSeconds: 0.1, maxIterSeconds: 4 }],
  post_message: ['postMessage', WRITES, {}],
  post_reaction: ['react', WRITES, {}],
  delete_reaction: ['unreact', WRITES, { iterSeconds: 0.2, maxIterSeconds: 4 }],
  unique_reaction: ['reactUniquely', WRITES, { iterSeconds: 0.2, maxIterSeconds: 4 }],
};

const scenarios = {};
const thresholds = {
  http_req_failed: ['rate<0.01'],
  checks: ['rate>0.99'],
};
for (const name in SCENARIOS) {
  const [exec, limits, opts] = SCENARIOS[name];
  if (RATES[name] > 0) {
    scenarios[name] = arrival(exec, RATES[name], DURATION, opts);
    // The scenario tag is set on every metric a scenario emits.
    thresholds[`http_req_duration{scenario:${name}}`] = limits;
  }
}

export const options = {
  scenarios: scenarios,
  thresholds: thresholds,
  summaryTrendStats: SUMMARY_TREND_STATS,
};

// Counters shown in the summary: how many reaction posts created a reaction
// (201) and how many updated an existing one (200).
const reactionsCreated = new Counter('reactions_created');
const reactionsUpdated = new Counter('reactions_updated');

// ---------------------------------------------------------------------------
// Lifecycle

export function setup() {
  requireService();
  const ids = [];
  const channelOf = {};
  // A batch a channel, in turn.
  for (let batch = 0; ids.length < POOL; batch++) {
    const ch = CHANNEL_IDS[batch % CHANNELS];
    const items = [];
    for (let i = 0; i < Math.min(20, POOL - ids.length); i++) {
      items.push({ text: randomText(10, 200), user_id: poolUser(USERS), channel: ch });
    }
    const created = createMessages(items, { tags: { phase: 'setup' } });
    if (created.length === 0) {
      throw new Error('setup(): no message could be created; see the warnings above');
    }
    for (const id of created) {
      channelOf[id] = ch;
    }
    ids.push(...created);
  }
  console.log(`setup(): created ${ids.length} messages in ${CHANNELS} channels`);
  return { ids: ids, channelOf: channelOf };
}

// channel picks the channel of a read or a post.
function channel() {
  return randItem(CHANNEL_IDS);
}

// named returns the name tag of a read of channel with a suffix, such as
// '?page=N', so that the requests of each route are reported together.
function named(ch, suffix) {
  return `GET ${messagesRoute(ch).route}${suffix}`;
}

// ---------------------------------------------------------------------------
// Reads

// reader is the user a read is made as: one of the pool.
function reader() {
  return poolUser(USERS);
}

// firstPage reads the latest page, as every client opening the chat does.
export function firstPage() {
  listMessages({ user_id: reader() }, { channel: channel() });
}

// laterPages reads one of pages 2 to 5 of 10 (the rest of the cached range).
export function laterPages() {
  const ch = channel();
  listMessages({ page: randInt(2, 5), user_id: reader() }, { channel: ch, name: named(ch, '?page=N') });
}

// cursorWalk scrolls back: the first page, then WALK_PAGES-1 pages by
// next_cursor. Ids are unique within the walk and strictly decreasing
// (UUIDv7, newest first), even while messages are being posted.
export function cursorWalk() {
  const user = reader();
  const ch = channel();
  const seen = {};
  let duplicates = 0;
  let misordered = 0;
  let previous;
  let cursor;
  for (let i = 0; i < WALK_PAGES; i++) {
    const { page } = cursor === undefined
      ? listMessages({ user_id: user }, { channel: ch })
      : listMessages({ cursor: cursor, user_id: user }, { channel: ch, name: named(ch, '?cursor') });
    if (page === undefined) {
      return;
    }
    for (const m of page.messages) {
      if (seen[m.id]) {
        duplicates++;
      }
      seen[m.id] = true;
      if (previous !== undefined && !(m.id < previous)) {
        misordered++;
      }
      previous = m.id;
    }
    if (page.next_cursor === undefined) {
      break;
    }
    cursor = page.next_cursor;
  }
  check(duplicates, { 'cursor walk: no duplicate ids': (n) => n === 0 });
  check(misordered, { 'cursor walk: ids strictly decreasing': (n) => n === 0 });
}

// readMessage reads one message of the pool with its reaction summary.
export function readMessage(data) {
  getMessage(randItem(data.ids), { userId: reader() });
}

// jump opens the page around a message of the pool, as a client following
// a link into history does, then scrolls one page towards the present.
export function jump(data) {
  const user = reader();
  const id = randItem(data.ids);
  const ch = data.channelOf[id];
  const { page } = listMessages({ around: id, user_id: user }, { channel: ch, name: named(ch, '?around') });
  if (page === undefined) {
    return;
  }
  check(page.messages, { 'around: the page holds the message': (ms) => ms.some((m) => m.id === id) });
  if (page.prev_cursor !== undefined) {
    const newer = listMessages({ cursor: page.prev_cursor, user_id: user },
      { channel: ch, newer: true, name: named(ch, '?cursor (newer)') }).page;
    if (newer !== undefined && newer.messages.length > 0) {
      check(newer.messages, {
        'newer page: only messages newer than the jump': (ms) => ms.every((m) => m.id > page.messages[0].id),
      });
    }
  }
}

// ---------------------------------------------------------------------------
// Writes

// postMessage posts a new message from a user of the pool.
export function postMessage() {
  createMessage(randomText(5, 300), poolUser(USERS), { channel: channel() });
}

// Reactions this VU created, to post again later: a VU keeps its module
// state across iterations, and no other VU sees it.
const MAX_REMEMBERED = 200;
const mine = [];

// react posts a reaction: usually a random (message, user, type), which is
// almost always new (201), sometimes one this VU created before (200,
// updating its score, or 201 if a delete removed it meanwhile).
export function react(data) {
  const repost = mine.length > 0 && chance(REPOST_RATIO);
  const target = repost
    ? randItem(mine)
    : { id: randItem(data.ids), type: randItem(REACTION_TYPES), user: poolUser(USERS) };
  const { res } = postReaction(target.id, target.type, target.user, randInt(1, 50),
    { tags: { op: repost ? 'repost' : 'post' } });
  if (res.status === 201) {
    reactionsCreated.add(1);
    if (mine.length < MAX_REMEMBERED) {
      mine.push(target);
    } else {
      mine[randInt(0, MAX_REMEMBERED - 1)] = target;
    }
  } else if (res.status === 200) {
    reactionsUpdated.add(1);
  }
}

// reactUniquely posts a reaction with enforce_unique from a user of a pool
// of its own (so no other scenario adds types behind its back), then reads
// that user's reactions on the message: one, of the type just posted.
export function reactUniquely(data) {
  const id = randItem(data.ids);
  const user = poolUser(Math.max(1, Math.floor(USERS / 10)), 'uq');
  const type = randItem(REACTION_TYPES);
  const { reaction } = postReaction(id, type, user, randInt(1, 50), { enforceUnique: true, tags: { op: 'unique' } });
  if (reaction === undefined) {
    return;
  }
  const { page } = listReactions(id, { user_id: user, limit: 10 });
  if (page !== undefined) {
    // Another iteration of the same user may have won the race since: one
    // reaction still, of either type.
    check(page.reactions, { 'enforce_unique: the user has one reaction on the message': (rs) => rs.length === 1 });
  }
}

// unreact removes a reaction: it lists the latest reactions of a random
// message and deletes one of them (204). When the message has none it
// deletes a random (type, user) instead, and another VU may have deleted the
// chosen one first: both give 404, which is expected and not a failure.
export function unreact(data) {
  const id = randItem(data.ids);
  const { page } = listReactions(id, { limit: 20 });
  if (page !== undefined && page.reactions.length > 0) {
    const r = randItem(page.reactions);
    deleteReaction(id, r.type, r.user_id);
  } else {
    deleteReaction(id, randItem(REACTION_TYPES), poolUser(USERS));
  }
}
