'use strict';
// The README's example: workers record, the master delivers their exact merge and serves it.
const cluster = require('node:cluster');
const Panopticon = require('panoptic');

// The same instance in every process. scaleFactor 1000: rates per second, times in seconds.
const p = new Panopticon({ name: 'jobs', interval: 1000, scaleFactor: 1000 });

if (cluster.isPrimary) {
  cluster.fork();
  cluster.fork();
  p.on('delivery', ({ data }) => {
    const workers = Object.values(data.workers ?? {}).map((tree) => tree.jobs?.done.value.val);
    const { done, seconds } = data.cluster.jobs ?? {};
    if (done) console.log(`${done.value.val} jobs/s (${workers.join(' + ')}), p99 ${seconds.value.p99} s`);
  });
  // Prometheus scrapes <url>metrics; a browser opens <url>, the live page.
  p.serve({ port: Number(process.env.PORT ?? 9464) }).then(({ url }) => console.log(`serving ${url}`));
} else {
  const done = p.bind('inc', ['jobs'], 'done'); // resolved once: the fastest way to record
  const seconds = p.bind('histogram', ['jobs'], 'seconds');
  setInterval(() => {
    const start = process.hrtime();
    for (let i = 0, x = 0; i < 1e5; i++) x += Math.sqrt(i); // a job
    seconds(process.hrtime(start));
    done();
  }, 10);
}
