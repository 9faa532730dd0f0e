// hot-message.js: many users reacting to one message at once.
//
// What it measures:
//   - POST /messages/{id}/reactions latency and errors when every write
//     lands on the same message (scenario `reactors`, REACT_RATE posts a
//     second, each from a distinct user, so each creates a reaction: 201);
//   - GET /messages/{id} latency of that hot message while it changes, read
//     as a chat client reads it, with the reader's user_id (scenario
//     `readers`, READ_RATE reads a second): half of the readers are users
//     who reacted, half users who did not, and each read checks that the
//     message carries that reader's own_reactions; a reactor also reads
//     its own new reaction back right after posting it (READ_OWN of the
//     posts), which must show it at once;
//   - projection lag (scenario `projection_lag`, LAG_RATE probes a second):
//     the time from a 201 reaction response until GET /messages/{id} shows
//     it, in the Trend `projection_lag`; a probe not seen within
//     LAG_TIMEOUT_MS counts as a failure in the Rate `projection_converged`.
//
// Each lag probe posts a reaction of a type used by no other request
// (lag-<vu>-<iteration>), so "GET /messages/{id} includes it" is exact even
// among thousands of concurrent reactions: reaction_counts[type] is 1. The
// probe then deletes its reaction again, so that the reaction_counts map of
// the hot message does not grow with one type per probe.
//
// teardown() waits until the projected reaction_count stops changing, counts
// the live reactions of the message by paging GET /messages/{id}/reactions
// (the write side), checks that both agree and logs them. The number of
// reactions the reactors created is the `reactions_created` counter of the
// summary (VU state does not reach teardown); with no other client writing
// to the message it equals the final reaction_count.
//
// Run (the API and a worker must be running, e.g. `make run`):
//
//   k6 run -e BASE_URL=http://localhost:8080 loadtest/hot-message.js
//   k6 run -e REACT_RATE=300 -e DURATION=3m loadtest/hot-message.js
//
// Environment (all optional): BASE_URL, AUTH_SECRET, DURATION, REACT_RATE, READ_RATE, READ_OWN,
// LAG_RATE, LAG_TIMEOUT_MS, POLL_MS, SETTLE_TIMEOUT_MS, TEARDOWN_TIMEOUT and
// the thresholds REACT_P95, REACT_P99, READ_P95, READ_P99, LAG_P95 (ms).
// See loadtest/README.md.

import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Counter, Rate, Trend } from 'k6/metrics';
import {
  MAX_PAGE_SIZE, REACTION_TYPES, SUMMARY_TREND_STATS, arrival, chance, createMessage, deleteReaction, envFloat,
  envInt, envString, getMessage, latency, listReactions, postReaction, randInt, randItem, requireService,
} from './lib.js';

// ---------------------------------------------------------------------------
// Configuration

const DURATION = envString('DURATION', '1m');
const REACT_RATE = envFloat('REACT_RATE', 50); // reaction posts per second
const READ_RATE = envFloat('READ_RATE', 20); // reads of the hot message per second
const READ_OWN = envFloat('READ_OWN', 0.1); // share of posts read back at once by their reactor
const LAG_RATE = envFloat('LAG_RATE', 1); // projection-lag probes per second
const LAG_TIMEOUT_MS = envInt('LAG_TIMEOUT_MS', 10000); // a probe gives up after this long
const POLL_MS = envInt('POLL_MS', 50); // pause between two polls of a probe
const SETTLE_TIMEOUT_MS = envInt('SETTLE_TIMEOUT_MS', 30000); // teardown's wait for the projection
const TEARDOWN_MAX_PAGES = envInt('TEARDOWN_MAX_PAGES', 2000); // pages of 100 reactions counted

const scenarios = {
  reactors: arrival('react', REACT_RATE, DURATION),
  readers: arrival('read', READ_RATE, DURATION),
  // A probe lasts up to LAG_TIMEOUT_MS, so enough VUs for that many in flight.
  projection_lag: arrival('probeLag', LAG_RATE, DURATION, {
    iterSeconds: 1,
    maxIterSeconds: LAG_TIMEOUT_MS / 1000 + 2,
  }),
};

export const options = {
  scenarios: scenarios,
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    'http_req_duration{scenario:reactors,name:POST /messages/{id}/reactions}': latency(envInt('REACT_P95', 150), envInt('REACT_P99', 400)),
    'http_req_duration{scenario:readers}': latency(envInt('READ_P95', 100), envInt('READ_P99', 250)),
    projection_lag: [`p(95)<${envInt('LAG_P95', 1000)}`],
    projection_converged: ['rate>0.99'],
  },
  summaryTrendStats: SUMMARY_TREND_STATS,
  // teardown() polls the projection and pages through every reaction.
  teardownTimeout: envString('TEARDOWN_TIMEOUT', '3m'),
};

// Reactions created by the reactors (201 responses), for the summary.
const reactionsCreated = new Counter('reactions_created');
// Time from a probe's 201 until GET /messages/{id} showed it (ms).
const projectionLag = new Trend('projection_lag', true);
// Whether a probe was seen within LAG_TIMEOUT_MS.
const projectionConverged = new Rate('projection_converged');

// ---------------------------------------------------------------------------
// Lifecycle

export function setup() {
  requireService();
  const { message } = createMessage('k6 hot message: react to me', 'k6-hot-author');
  if (message === undefined) {
    throw new Error('setup(): could not create the hot message; see the warning above');
  }
  console.log(`setup(): hot message ${message.id}`);
  return { id: message.id };
}

// reactor names the user of a reactor iteration (unique in the test run).
function reactor(iteration) {
  return `u-${iteration}`;
}

// react posts a new reaction from a user id unique to this iteration; now
// and then the reactor reads the message back as itself, as a chat client
// does, and must see its reaction among its own at once.
export function react(data) {
  const user = reactor(exec.scenario.iterationInTest);
  const type = randItem(REACTION_TYPES);
  const { res } = postReaction(data.id, type, user, randInt(1, 50));
  check(res, { 'hot: a new user\'s reaction is created (201)': (r) => r.status === 201 });
  if (res.status !== 201) {
    return;
  }
  reactionsCreated.add(1);
  if (chance(READ_OWN)) {
    const { message } = getMessage(data.id, { userId: user, tags: { op: 'read-own' } });
    check(message, {
      'hot: the reactor reads its reaction back at once': (m) => m !== undefined &&
        m.own_reactions.some((r) => r.type === type),
    });
  }
}

// read reads the hot message as a reader: half the time the user of a
// reactor iteration so far (REACT_RATE a second since the start), who
// reacted unless that post failed, half a user who never did. lib.js
// checks the view and the reader's own_reactions.
export function read(data) {
  const posted = Math.floor(REACT_RATE * exec.instance.currentTestRunDuration / 1000);
  const user = chance(0.5) && posted > 0 ? reactor(randInt(0, posted - 1)) : `reader-${randInt(1, 100000)}`;
  getMessage(data.id, { userId: user });
}

// probeLag measures how long a reaction takes to show in GET /messages/{id}.
export function probeLag(data) {
  const type = `lag-${exec.vu.idInTest}-${exec.scenario.iterationInTest}`; // at most 30 characters
  const user = `lag-probe-${exec.vu.idInTest}`;
  const { res } = postReaction(data.id, type, user, 1);
  if (res.status !== 201) {
    return; // already counted by http_req_failed and the checks
  }
  const posted = Date.now();
  const deadline = posted + LAG_TIMEOUT_MS;
  let seen = false;
  for (;;) {
    const { message } = getMessage(data.id, { checks: false });
    if (message !== undefined && message.reaction_counts && message.reaction_counts[type] >= 1) {
      seen = true;
      break;
    }
    if (Date.now() >= deadline) {
      break;
    }
    sleep(POLL_MS / 1000);
  }
  // The lag includes up to one poll interval and one GET: an upper bound.
  const lag = Date.now() - posted;
  projectionConverged.add(seen);
  if (seen) {
    projectionLag.add(lag);
  } else {
    console.warn(`projection_lag: reaction ${type} not visible after ${lag} ms`);
  }
  deleteReaction(data.id, type, user, { allowNotFound: false });
}

// teardown waits for the projection to settle and reports the final count.
export function teardown(data) {
  // The live reactions, from the write side: every VU has stopped.
  let live = 0;
  let complete = false;
  let cursor;
  for (let i = 0; i < TEARDOWN_MAX_PAGES; i++) {
    const { page } = listReactions(data.id, { limit: MAX_PAGE_SIZE, cursor: cursor });
    if (page === undefined) {
      break;
    }
    live += page.reactions.length;
    if (page.next_cursor === undefined) {
      complete = true;
      break;
    }
    cursor = page.next_cursor;
  }

  // Poll until the projected count stays the same for 3 reads in a row
  // (and equals the live count, when that is known), or the timeout.
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  let view;
  let last;
  let stable = 0;
  for (;;) {
    view = getMessage(data.id, { checks: false }).message;
    const count = view === undefined ? undefined : view.reaction_count;
    stable = count !== undefined && count === last ? stable + 1 : 0;
    last = count;
    if (stable >= 2 && (!complete || count === live)) {
      break;
    }
    if (Date.now() >= deadline) {
      console.warn(`teardown(): reaction_count (${last}) did not settle` +
        `${complete ? ` at the ${live} live reactions` : ''} within ${SETTLE_TIMEOUT_MS} ms`);
      break;
    }
    sleep(0.5);
  }

  if (view === undefined) {
    console.error(`teardown(): could not read hot message ${data.id}`);
    return;
  }
  console.log(`teardown(): hot message ${data.id}: final reaction_count=${view.reaction_count}, ` +
    `reaction_counts=${JSON.stringify(view.reaction_counts)}, ` +
    `live reactions listed=${complete ? live : `more than ${live} (TEARDOWN_MAX_PAGES reached)`}; ` +
    'compare with reactions_created in the summary');
  if (complete) {
    check(view, {
      'teardown: projected reaction_count equals the live reactions': (v) => v.reaction_count === live,
    });
  }
}
