// live-events.js: clients holding live-event streams while reactions flow.
//
// What it measures:
//   listeners  SSE_CLIENTS virtual users, each holding GET /events open for
//              STREAM_SECONDS at a time (the `duration` parameter ends the
//              stream, since k6 reads a response only once it ends), then
//              opening the next. Each stream must start with `ready`, carry
//              events in id order with each message's counts.version never
//              going back, and no `reset`; it is counted in the Rate
//              `sse_stream_ok`. The events of each stream are counted in
//              `sse_events` and `sse_reaction_events`.
//   reactors   REACT_RATE reaction posts a second on MESSAGES messages
//              (random type, user and score; one in ten deletes instead),
//              whose events the streams carry.
//
// Delivery lag, from a change's commit to its write to a client, cannot be
// timed per event by stock k6, which hands a script the response only when
// it ends. The API measures it for every event it writes, in the histogram
// messageapi_sse_delivery_lag_seconds on its admin address: setup() and
// teardown() read that histogram from ADMIN_URL (default
// http://localhost:6060; a list separated by commas for several API
// processes), and teardown() logs the p50, p95 and p99 of this run's
// events, interpolated within the buckets, and records them in the gauges
// sse_lag_p50_ms, sse_lag_p95_ms and sse_lag_p99_ms. Without a reachable
// admin address it says so and records nothing.
//
// Run (the API and a worker must be running, e.g. `make run`):
//
//   k6 run -e BASE_URL=http://localhost:8080 loadtest/live-events.js
//   k6 run -e SSE_CLIENTS=200 -e REACT_RATE=200 -e DURATION=2m loadtest/live-events.js
//
// Environment (all optional): BASE_URL, ADMIN_URL, DURATION, SSE_CLIENTS,
// STREAM_SECONDS, REACT_RATE, MESSAGES, REACT_P95, REACT_P99. See
// loadtest/README.md.

import http from 'k6/http';
import { check } from 'k6';
import { Counter, Gauge, Rate } from 'k6/metrics';
import {
  BASE_URL, REACTION_TYPES, SUMMARY_TREND_STATS, arrival, chance, createMessages, deleteReaction, envFloat,
  envInt, envString, latency, poolUser, postReaction, query, randInt, randItem, requireService,
} from './lib.js';

// ---------------------------------------------------------------------------
// Configuration

const DURATION = envString('DURATION', '1m');
const SSE_CLIENTS = envInt('SSE_CLIENTS', 50); // streams held at once
const STREAM_SECONDS = envInt('STREAM_SECONDS', 15); // how long one stream lasts
const REACT_RATE = envFloat('REACT_RATE', 50); // reaction writes per second
const MESSAGES = envInt('MESSAGES', 20); // messages the reactions go to (at most 100)
const ADMIN_URLS = envString('ADMIN_URL', 'http://localhost:6060').split(',').map((u) => u.trim().replace(/\/+$/, ''));
const LAG_METRIC = 'messageapi_sse_delivery_lag_seconds_bucket';

export const options = {
  scenarios: {
    listeners: {
      executor: 'constant-vus',
      exec: 'listen',
      vus: SSE_CLIENTS,
      duration: DURATION,
      // A stream in flight when the duration ends is let finish.
      gracefulStop: `${STREAM_SECONDS + 10}s`,
    },
    reactors: arrival('react', REACT_RATE, DURATION),
  },
  thresholds: {
    'http_req_failed{scenario:reactors}': ['rate<0.01'],
    'http_req_duration{scenario:reactors}': latency(envInt('REACT_P95', 150), envInt('REACT_P99', 400)),
    sse_stream_ok: ['rate>0.99'],
    sse_reaction_events: ['count>0'],
    checks: ['rate>0.99'],
  },
  summaryTrendStats: SUMMARY_TREND_STATS,
};

const streamOK = new Rate('sse_stream_ok');
const eventsSeen = new Counter('sse_events');
const reactionEvents = new Counter('sse_reaction_events');
const resets = new Counter('sse_resets');
const lagGauges = {
  0.5: new Gauge('sse_lag_p50_ms'),
  0.95: new Gauge('sse_lag_p95_ms'),
  0.99: new Gauge('sse_lag_p99_ms'),
};

// ---------------------------------------------------------------------------
// Lifecycle

export function setup() {
  requireService();
  const items = [];
  for (let i = 0; i < Math.min(MESSAGES, 100); i++) {
    items.push({ text: `k6 live events ${i}`, user_id: 'k6-live-author' });
  }
  const ids = createMessages(items, { tags: { phase: 'setup' } });
  if (ids.length === 0) {
    throw new Error('setup(): no message could be created; see the warnings above');
  }
  console.log(`setup(): ${ids.length} messages; ${SSE_CLIENTS} streams of ${STREAM_SECONDS}s`);
  return { ids: ids, lagBefore: lagHistogram() };
}

export function teardown(data) {
  const after = lagHistogram();
  if (after === undefined || data.lagBefore === undefined) {
    console.warn(`teardown(): no delivery lag: ${LAG_METRIC} could not be read from ${ADMIN_URLS.join(', ')}`);
    return;
  }
  const buckets = after.map((b, i) => ({ le: b.le, count: b.count - (data.lagBefore[i] ? data.lagBefore[i].count : 0) }));
  const total = buckets[buckets.length - 1].count;
  if (total === 0) {
    console.warn('teardown(): the API wrote no live event during the run');
    return;
  }
  const parts = [];
  for (const q of [0.5, 0.95, 0.99]) {
    const ms = quantile(buckets, q) * 1000;
    lagGauges[q].add(ms);
    parts.push(`p${Math.round(q * 100)} ${ms.toFixed(1)} ms`);
  }
  console.log(`teardown(): delivery lag, commit to client, over ${total} event writes: ${parts.join(', ')}`);
}

// ---------------------------------------------------------------------------
// Listeners

// listen holds one stream for STREAM_SECONDS and checks what it carried.
export function listen(data) {
  const q = query({ duration: `${STREAM_SECONDS}s` });
  const filters = data.ids.map((id) => `message_id=${id}`).join('&');
  const res = http.get(`${BASE_URL}/events${q}&${filters}`, {
    tags: { name: 'GET /events' },
    timeout: `${STREAM_SECONDS + 30}s`,
    headers: { Accept: 'text/event-stream' },
  });
  const events = res.status === 200 ? parseEvents(res.body || '') : [];
  let ordered = true;
  let versionsForward = true;
  const versions = {};
  let previous;
  let reactions = 0;
  let resetCount = 0;
  for (const e of events) {
    if (previous !== undefined && e.type !== 'reset' && compareIds(e.id, previous) <= 0) {
      ordered = false;
    }
    previous = e.id;
    if (e.type === 'reset') {
      resetCount++;
    }
    if (!e.type.startsWith('reaction.')) {
      continue;
    }
    reactions++;
    let d;
    try {
      d = JSON.parse(e.data);
    } catch (err) {
      versionsForward = false;
      continue;
    }
    const v = d.counts ? d.counts.version : undefined;
    if (typeof v !== 'number' || v < (versions[d.message_id] || 0)) {
      versionsForward = false;
    } else {
      versions[d.message_id] = v;
    }
  }
  const ok = check(res, {
    'GET /events: status 200, text/event-stream': (r) => r.status === 200 &&
      String(r.headers['Content-Type']).startsWith('text/event-stream'),
    'GET /events: starts with ready': () => events.length > 0 && events[0].type === 'ready',
    'GET /events: ids in order': () => ordered,
    'GET /events: each message\'s counts.version never goes back': () => versionsForward,
    'GET /events: no reset': () => resetCount === 0,
  });
  streamOK.add(ok);
  eventsSeen.add(events.length);
  reactionEvents.add(reactions);
  resets.add(resetCount);
}

// parseEvents splits an event stream into {id, type, data}; comments
// (heartbeats) and the retry line are skipped.
function parseEvents(body) {
  const out = [];
  for (const block of body.split('\n\n')) {
    const e = { id: '', type: '', data: '' };
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') {
        e.id = value;
      } else if (field === 'event') {
        e.type = value;
      } else if (field === 'data') {
        e.data = e.data === '' ? value : `${e.data}\n${value}`;
      }
    }
    if (e.type !== '') {
      out.push(e);
    }
  }
  return out;
}

// compareIds orders stream ids "ms-seq".
function compareIds(a, b) {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am !== bm ? am - bm : as - bs;
}

// ---------------------------------------------------------------------------
// Reactors

// react posts a reaction on one of the messages, or now and then deletes
// one, so that every kind of reaction event flows.
export function react(data) {
  const id = randItem(data.ids);
  const type = randItem(REACTION_TYPES);
  const user = poolUser(200, 'k6-live');
  if (chance(0.1)) {
    deleteReaction(id, type, user);
  } else {
    postReaction(id, type, user, randInt(1, 10));
  }
}

// ---------------------------------------------------------------------------
// Delivery lag from the API's histogram

// lagHistogram returns the cumulative buckets [{le, count}] of the lag
// histogram summed over ADMIN_URLS, or undefined when one cannot be read.
function lagHistogram() {
  const sums = {};
  for (const url of ADMIN_URLS) {
    const res = http.get(`${url}/metrics`, { tags: { name: 'GET admin /metrics' }, responseCallback: http.expectedStatuses(200) });
    if (res.status !== 200) {
      return undefined;
    }
    for (const line of String(res.body).split('\n')) {
      if (!line.startsWith(LAG_METRIC)) {
        continue;
      }
      const m = line.match(/le="([^"]+)"\}\s+(\S+)/);
      if (m) {
        sums[m[1]] = (sums[m[1]] || 0) + Number(m[2]);
      }
    }
  }
  const les = Object.keys(sums);
  if (les.length === 0) {
    return undefined;
  }
  les.sort((a, b) => (a === '+Inf' ? 1 : b === '+Inf' ? -1 : Number(a) - Number(b)));
  return les.map((le) => ({ le: le, count: sums[le] }));
}

// quantile interpolates the q-quantile (seconds) within cumulative buckets,
// as Prometheus's histogram_quantile does.
function quantile(buckets, q) {
  const total = buckets[buckets.length - 1].count;
  const rank = q * total;
  let lowerLe = 0;
  let lowerCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === '+Inf') {
        return lowerLe;
      }
      const upper = Number(b.le);
      const inBucket = b.count - lowerCount;
      return inBucket === 0 ? upper : lowerLe + (upper - lowerLe) * ((rank - lowerCount) / inBucket);
    }
    lowerLe = b.le === '+Inf' ? lowerLe : Number(b.le);
    lowerCount = b.count;
  }
  return lowerLe;
}
