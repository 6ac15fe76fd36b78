'use strict';

// meter(path, id, n = 1): a count that lives across intervals, with EWMA rates per second
// (Pandora.js / Dropwizard: 5-second ticks, 1-, 5- and 15-minute averages).

const test = require('node:test');
const assert = require('node:assert/strict');
const { next, fresh } = require('./helpers');

test('a meter counts across intervals and its moving averages start at the first 5 s tick', { timeout: 30000 }, async (t) => {
  const p = await fresh({ interval: 1000 });
  t.after(() => p.stop());
  const hit = p.bind('meter', ['http'], 'requests');
  for (let i = 0; i < 10; i++) hit();
  hit(5);
  hit(-1); // dropped
  p.meter(['http'], 'requests', 'x'); // dropped
  const first = await next(p, 'delivery');
  const v = first.data.master.http.requests.value;
  assert.deepEqual(Object.keys(v), ['count', 'meanRate', 'm1', 'm5', 'm15', 'timeStamp']);
  assert.equal(v.count, 15);
  assert.ok(v.meanRate > 0);
  assert.equal(first.meta.dropped, 2);
  // Idle intervals still report it; after a 5 s tick the averages hold the events' rate.
  let d;
  const until = Date.now() + 6500;
  do {
    d = await next(p, 'delivery');
  } while (Date.now() < until);
  const later = d.data.master.http.requests.value;
  assert.equal(later.count, 15, 'lives across intervals');
  for (const key of ['m1', 'm5', 'm15']) assert.ok(later[key] > 0 && later[key] <= 3, `${key} ${later[key]}`);
  assert.equal(d.data.cluster.http.requests.value.count, 15);
});
