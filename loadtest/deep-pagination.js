// deep-pagination.js: reading far back in a long message list.
//
// What it measures, on a list of at least SEED messages:
//   deep_pages  GET /messages?limit=PAGE_LIMIT&page=N, N random in
//               1..maxPage, where maxPage is the deepest page the API allows
//               ((N-1)*limit may skip at most 10,000 messages) that is full:
//               the cost of offset pagination as it gets deep. Every page
//               must be full, and carry next_cursor when more messages follow.
//   cursor_walk GET /messages?limit=WALK_LIMIT, then WALK_PAGES-1 pages by
//               next_cursor: keyset pagination from the top. Every page must
//               have the expected size, ids must not repeat within a walk and
//               must decrease strictly (newest first).
//   tail_walk   TAIL_WALKS walks of the whole list by cursor, pages of
//               TAIL_LIMIT, to its end: the last page must have no
//               next_cursor (the key is absent) and not be empty, and the walk
//               must have seen every message counted in setup(). Stops with
//               a warning, without failing, after TAIL_MAX_PAGES pages.
//
// setup() seeds SEED messages (default 10,000) with http.batch, SEED_BATCH
// POSTs at a time, then counts the list (up to 10,001, by bisecting
// page=N&limit=1) to size the page range. Seeding 10,000 messages takes a
// while, so setupTimeout is raised (SETUP_TIMEOUT, default 10m). On a database
// that already holds enough messages, SEED=0 skips the seeding. The walks
// assume no other client deletes messages during the run (the API has no
// delete, so this holds).
//
// Run (the API must be running, e.g. `make run`):
//
//   k6 run -e BASE_URL=http://localhost:8080 loadtest/deep-pagination.js
//   k6 run -e SEED=0 -e DEEP_RATE=50 -e DURATION=3m loadtest/deep-pagination.js
//
// Environment (all optional): BASE_URL, SEED, SEED_BATCH, SETUP_TIMEOUT,
// DURATION, DEEP_RATE, WALK_RATE, PAGE_LIMIT, WALK_LIMIT, WALK_PAGES,
// TAIL_LIMIT, TAIL_WALKS, TAIL_MAX_PAGES and the thresholds DEEP_P95,
// DEEP_P99, CURSOR_P95, CURSOR_P99 (ms). See loadtest/README.md.

import { check } from 'k6';
import {
  MAX_PAGE_OFFSET, MAX_PAGE_SIZE, SUMMARY_TREND_STATS, arrival, createMessages, envFloat, envInt,
  envString, latency, listMessages, randInt, randString, requireService,
} from './lib.js';

// ---------------------------------------------------------------------------
// Configuration

const SEED = envInt('SEED', 10000); // messages setup() creates
const SEED_BATCH = envInt('SEED_BATCH', 50); // POSTs per http.batch call, and how many run at once
const DURATION = envString('DURATION', '1m');
const DEEP_RATE = envFloat('DEEP_RATE', 20); // page-number reads per second
const WALK_RATE = envFloat('WALK_RATE', 2); // cursor walks started per second
const PAGE_LIMIT = envInt('PAGE_LIMIT', 10);
const WALK_LIMIT = envInt('WALK_LIMIT', 50);
const WALK_PAGES = envInt('WALK_PAGES', 20);
const TAIL_LIMIT = envInt('TAIL_LIMIT', MAX_PAGE_SIZE);
const TAIL_WALKS = envInt('TAIL_WALKS', 2);
const TAIL_MAX_PAGES = envInt('TAIL_MAX_PAGES', 500);

for (const [name, v] of [['PAGE_LIMIT', PAGE_LIMIT], ['WALK_LIMIT', WALK_LIMIT], ['TAIL_LIMIT', TAIL_LIMIT]]) {
  if (v < 1 || v > MAX_PAGE_SIZE) {
    throw new Error(`${name} must be from 1 to ${MAX_PAGE_SIZE}, not ${v}`);
  }
}

const DEEP = latency(envInt('DEEP_P95', 250), envInt('DEEP_P99', 500));
const CURSOR = latency(envInt('CURSOR_P95', 100), envInt('CURSOR_P99', 250));

const scenarios = {};
const thresholds = {
  http_req_failed: ['rate<0.01'],
  checks: ['rate>0.99'],
};
if (DEEP_RATE > 0) {
  scenarios.deep_pages = arrival('deepPage', DEEP_RATE, DURATION);
  thresholds['http_req_duration{scenario:deep_pages}'] = DEEP;
}
if (WALK_RATE > 0) {
  scenarios.cursor_walk = arrival('cursorWalk', WALK_RATE, DURATION,
    { iterSeconds: 0.05 * WALK_PAGES, maxIterSeconds: 0.5 * WALK_PAGES });
  thresholds['http_req_duration{scenario:cursor_walk}'] = CURSOR;
}
if (TAIL_WALKS > 0) {
  scenarios.tail_walk = {
    executor: 'per-vu-iterations',
    exec: 'tailWalk',
    vus: 1,
    iterations: TAIL_WALKS,
    maxDuration: envString('TAIL_MAX_DURATION', '10m'),
  };
  thresholds['http_req_duration{scenario:tail_walk}'] = CURSOR;
}

export const options = {
  scenarios: scenarios,
  thresholds: thresholds,
  summaryTrendStats: SUMMARY_TREND_STATS,
  // Seeding 10,000 messages can outlast the default 60s.
  setupTimeout: envString('SETUP_TIMEOUT', '10m'),
  // http.batch runs at most `batch` requests at once, and at most
  // `batchPerHost` to one host (defaults 20 and 6).
  batch: SEED_BATCH,
  batchPerHost: SEED_BATCH,
};

// ---------------------------------------------------------------------------
// Setup

// hasMessageAt reports whether the list holds at least n messages, by
// reading page n of size 1 (which skips n-1 messages; n <= 10,001).
function hasMessageAt(n) {
  const { page } = listMessages({ limit: 1, page: n }, { name: 'GET /messages?page=N (count)', checks: false });
  if (page === undefined) {
    throw new Error(`setup(): GET /messages?limit=1&page=${n} failed`);
  }
  return page.messages.length === 1;
}

// countMessages returns how many messages the list holds, up to
// MAX_PAGE_OFFSET+1 (the deepest that page=N can reach), by bisection.
function countMessages() {
  let lo = 0; // the list has at least lo messages
  let hi = MAX_PAGE_OFFSET + 1;
  if (hasMessageAt(hi)) {
    return hi;
  }
  hi--; // invariant: it has fewer than hi+1
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (hasMessageAt(mid)) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

export function setup() {
  requireService();
  const run = randString(6);
  let seeded = 0;
  const started = Date.now();
  while (seeded < SEED) {
    const items = [];
    for (let i = 0; i < Math.min(SEED_BATCH, SEED - seeded); i++) {
      const n = seeded + i + 1;
      items.push({ text: `k6 deep pagination seed ${run} #${n}`, user_id: `k6-seed-${n % 100}` });
    }
    const created = createMessages(items, { tags: { phase: 'setup' } }).length;
    if (created < items.length / 2) {
      throw new Error(`setup(): only ${created} of ${items.length} messages of a batch were created; ` +
        'see the warnings above');
    }
    const tenthsBefore = Math.floor((seeded * 10) / SEED);
    seeded += items.length;
    if (Math.floor((seeded * 10) / SEED) > tenthsBefore && seeded < SEED) {
      console.log(`setup(): seeded ${seeded}/${SEED} messages`);
    }
  }
  if (SEED > 0) {
    console.log(`setup(): seeded ${SEED} messages in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }

  // `known` messages exist for sure: exactly that many when it is below
  // 10,001, otherwise at least that many.
  const known = countMessages();
  const maxPage = Math.min(Math.floor(MAX_PAGE_OFFSET / PAGE_LIMIT) + 1, Math.floor(known / PAGE_LIMIT));
  if (maxPage < 1) {
    throw new Error(`setup(): the list holds ${known} messages, fewer than one page of ${PAGE_LIMIT}; ` +
      'set SEED to seed more');
  }
  console.log(`setup(): the list holds ${known >= MAX_PAGE_OFFSET + 1 ? 'at least ' : ''}${known} messages; ` +
    `deep pages read page=1..${maxPage} of ${PAGE_LIMIT}`);
  return { known: known, maxPage: maxPage };
}

// ---------------------------------------------------------------------------
// Scenarios

// deepPage reads a random page by number, mostly deep ones: the page range
// is uniform and most of it is deep.
export function deepPage(data) {
  const n = randInt(1, data.maxPage);
  const { page } = listMessages({ limit: PAGE_LIMIT, page: n }, { name: 'GET /messages?page=N' });
  if (page === undefined) {
    return;
  }
  const more = n * PAGE_LIMIT < data.known; // messages follow this page
  check(page, {
    'deep page: full page': (p) => p.messages.length === PAGE_LIMIT,
    'deep page: next_cursor when more follow': (p) => !more || p.next_cursor !== undefined,
    'deep page: ids strictly decreasing': (p) => decreasing(p.messages),
  });
}

// cursorWalk reads WALK_PAGES pages from the top by next_cursor.
export function cursorWalk(data) {
  const walk = newWalk();
  let cursor;
  for (let i = 0; i < WALK_PAGES; i++) {
    const { page } = cursor === undefined
      ? listMessages({ limit: WALK_LIMIT })
      : listMessages({ limit: WALK_LIMIT, cursor: cursor }, { name: 'GET /messages?cursor' });
    if (page === undefined) {
      return;
    }
    const before = walk.count;
    walk.add(page.messages);
    // Expected size: full while the known messages last (more may exist).
    const full = before + WALK_LIMIT <= data.known;
    check(page, {
      'cursor walk: page has the expected size': (p) =>
        full ? p.messages.length === WALK_LIMIT : p.messages.length <= WALK_LIMIT,
      'cursor walk: next_cursor when more follow': (p) =>
        before + WALK_LIMIT >= data.known || p.next_cursor !== undefined,
    });
    if (page.next_cursor === undefined) {
      break;
    }
    cursor = page.next_cursor;
  }
  walk.check('cursor walk');
}

// tailWalk reads the whole list by cursor and checks its end.
export function tailWalk(data) {
  const walk = newWalk();
  let cursor;
  let last;
  for (let i = 0; i < TAIL_MAX_PAGES; i++) {
    const { page } = cursor === undefined
      ? listMessages({ limit: TAIL_LIMIT })
      : listMessages({ limit: TAIL_LIMIT, cursor: cursor }, { name: 'GET /messages?cursor' });
    if (page === undefined) {
      return;
    }
    walk.add(page.messages);
    if (!page.next_cursor) {
      last = page;
      break;
    }
    cursor = page.next_cursor;
  }
  walk.check('tail walk');
  if (last === undefined) {
    console.warn(`tail walk: no end after ${TAIL_MAX_PAGES} pages (${walk.count} messages); ` +
      'end-of-list checks skipped; raise TAIL_MAX_PAGES to reach it');
    return;
  }
  check(last, {
    'tail walk: no next_cursor key on the last page': (p) => !('next_cursor' in p),
    'tail walk: the last page is not empty': (p) => p.messages.length > 0 || walk.count === 0,
    'tail walk: saw every message counted in setup': () => walk.count >= data.known,
  });
}

// ---------------------------------------------------------------------------
// Helpers

// decreasing reports whether the ids of messages decrease strictly. Ids are
// UUIDv7 in lower-case hex, so string order is creation order.
function decreasing(messages) {
  for (let i = 1; i < messages.length; i++) {
    if (!(messages[i].id < messages[i - 1].id)) {
      return false;
    }
  }
  return true;
}

// newWalk tracks the ids a walk has seen: duplicates and order.
function newWalk() {
  const seen = {};
  let previous;
  const walk = {
    count: 0,
    duplicates: 0,
    misordered: 0,
    add(messages) {
      for (const m of messages) {
        if (seen[m.id]) {
          walk.duplicates++;
        }
        seen[m.id] = true;
        if (previous !== undefined && !(m.id < previous)) {
          walk.misordered++;
        }
        previous = m.id;
        walk.count++;
      }
    },
    check(what) {
      check(walk, {
        [`${what}: no duplicate ids`]: (w) => w.duplicates === 0,
        [`${what}: ids strictly decreasing`]: (w) => w.misordered === 0,
      });
    },
  };
  return walk;
}
