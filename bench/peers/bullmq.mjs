#!/usr/bin/env node
// BullMQ through the scenarios of `flotilla bench`, writing the same JSON report, so the
// two systems can be set side by side with compare.py (see README.md next to this file).
//
// The parent process enqueues, reads Redis statistics and times each scenario; workers
// run in child processes (the same script with --child-worker) that report their counts
// over IPC, so nothing but the systems under test talks to Redis while the clock runs.

import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { execFileSync, fork } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const SCENARIOS = ['enqueue', 'drain', 'latency', 'mixed', 'backlog', 'delayed'];
/** How long after its enqueue each job of the `delayed` scenario is due, in ms. */
const DELAYED_BY_MS = 1000;
/** Scenarios of `flotilla bench` with no BullMQ counterpart: accepted, so that one flag
 * list serves both benches, and skipped. */
const FLOTILLA_ONLY = ['floor'];
const QUEUE = 'bench';
/** Jobs per addBulk call, for prefilling and for the `bulk` enqueue variant. */
const BULK_CHUNK = 1000;
/** Adds in flight at once in the `pipelined` enqueue variant. */
const PIPELINE_DEPTH = 1000;
/** The `single` enqueue variant awaits each add, so it runs at most this many. */
const SINGLE_MAX = 10000;
/** Concurrency of the one worker in the latency, mixed and backlog scenarios. */
const FIXED_CONCURRENCY = 50;
/** How often a child worker reports its count to the parent. */
const PROGRESS_MS = 20;
/** Commands that are the harness's own bookkeeping or connection setup, not job work. */
const NOT_JOB_WORK = new Set(['info', 'config', 'client', 'ping', 'select', 'hello']);
const SCRIPT_COMMANDS = new Set(['evalsha', 'eval', 'fcall']);

/** Epoch milliseconds with sub-millisecond precision, on the same clock in every process. */
const nowMs = () => performance.timeOrigin + performance.now();
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------
// Command line

const USAGE = `usage: node bullmq.mjs [options]

  --redis-url URL         Redis to use (default: $FLOTILLA_REDIS_URL or redis://127.0.0.1:6379)
  --scenarios LIST        of enqueue,drain,latency,mixed,backlog,delayed (default: enqueue,drain,latency,mixed)
  --jobs N                jobs per scenario (default: 50000)
  --concurrency LIST      worker concurrencies for drain (default: 10,50,200)
  --workers LIST          worker process counts for drain (default: 1)
  --payload-bytes N       padding in each job's payload (default: 100)
  --ids                   give every job of enqueue, drain, mixed, backlog and delayed an id of
                          its own (BullMQ's jobId); the rows' variants end in +ids
  --rate LIST             latency scenario enqueue rates, jobs/s, or \`half\`: half the best
                          one-worker drain rate of this run (default: 1000,half)
  --latency-secs S        how long the latency scenario enqueues (default: 5)
  --backlog LIST          backlog sizes (default: 1000,10000,100000)
  --pin                   run worker processes on CPU 1 with taskset (Redis belongs on CPU 0)
  --json PATH             write the report as JSON
  --markdown PATH         write the report as a Markdown table
  --prefix P              BullMQ key prefix (default: bullbench)
  --timeout T             give up on a scenario after T seconds, or 300s, 5m ... (default: 300)
`;

function parseArgs(argv) {
  const opts = {
    redisUrl: process.env.FLOTILLA_REDIS_URL || 'redis://127.0.0.1:6379',
    scenarios: ['enqueue', 'drain', 'latency', 'mixed'],
    jobs: 50000,
    concurrency: [10, 50, 200],
    workers: [1],
    payloadBytes: 100,
    rate: [1000, 'half'],
    latencySecs: 5,
    backlog: [1000, 10000, 100000],
    pin: false,
    ids: false,
    json: null,
    markdown: null,
    prefix: 'bullbench',
    timeout: 300,
    childWorker: false,
  };
  const positive = (flag, v, { integer = true } = {}) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
      fail(`${flag} wants a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(v)}`);
    }
    return n;
  };
  const list = (flag, v, o) => String(v).split(',').filter(s => s.trim() !== '').map(s => positive(flag, s.trim(), o));
  const handlers = {
    '--redis-url': v => { opts.redisUrl = v; },
    '--scenarios': v => {
      opts.scenarios = v.split(',').map(s => s.trim()).filter(Boolean);
      for (const s of opts.scenarios) {
        if (!SCENARIOS.includes(s) && !FLOTILLA_ONLY.includes(s)) {
          fail(`unknown scenario ${JSON.stringify(s)}; known: ${SCENARIOS.join(', ')}`);
        }
      }
    },
    '--jobs': v => { opts.jobs = positive('--jobs', v); },
    '--concurrency': v => { opts.concurrency = list('--concurrency', v); },
    '--workers': v => { opts.workers = list('--workers', v); },
    '--payload-bytes': v => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) fail(`--payload-bytes wants an integer >= 0, got ${JSON.stringify(v)}`);
      opts.payloadBytes = n;
    },
    '--rate': v => {
      opts.rate = String(v)
        .split(',')
        .map(s => s.trim())
        .filter(Boolean)
        .map(s => (s === 'half' ? s : positive('--rate', s, { integer: false })));
    },
    '--latency-secs': v => { opts.latencySecs = positive('--latency-secs', v, { integer: false }); },
    '--backlog': v => { opts.backlog = list('--backlog', v); },
    '--json': v => { opts.json = v; },
    '--markdown': v => { opts.markdown = v; },
    '--prefix': v => { opts.prefix = v; },
    '--timeout': v => {
      // seconds, or a duration as `flotilla bench` takes it: 300s, 5m, 1h, 1500ms
      const m = String(v).trim().match(/^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/);
      const scale = { ms: 0.001, s: 1, m: 60, h: 3600 };
      if (!m || Number(m[1]) <= 0) fail(`--timeout wants seconds or a duration like 300s, got ${JSON.stringify(v)}`);
      opts.timeout = Number(m[1]) * scale[m[2] || 's'];
    },
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (arg === '--pin') {
      opts.pin = true;
    } else if (arg === '--ids') {
      opts.ids = true;
    } else if (arg === '--child-worker') {
      opts.childWorker = true;
    } else {
      const eq = arg.indexOf('=');
      const name = eq > 0 ? arg.slice(0, eq) : arg;
      const handler = handlers[name];
      if (!handler) fail(`unknown argument ${JSON.stringify(arg)}\n\n${USAGE}`);
      let value;
      if (eq > 0) {
        value = arg.slice(eq + 1);
      } else {
        if (i + 1 >= argv.length) fail(`${name} wants a value`);
        value = argv[++i];
      }
      handler(value);
    }
  }
  return opts;
}

function fail(message) {
  process.stderr.write(`bullmq bench: ${message}\n`);
  process.exit(2);
}

/** ioredis connection options from a redis:// or rediss:// URL. */
function connectionOptions(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    fail(`bad Redis URL ${JSON.stringify(redactUrl(url))}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') fail(`Redis URL must be redis:// or rediss://`);
  const conn = { host: u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1', port: Number(u.port || 6379) };
  if (u.username) conn.username = decodeURIComponent(u.username);
  if (u.password) conn.password = decodeURIComponent(u.password);
  const db = u.pathname.replace(/^\//, '');
  if (db) conn.db = Number(db);
  if (u.protocol === 'rediss:') conn.tls = {};
  return conn;
}

function redactUrl(url) {
  return String(url).replace(/\/\/([^@/]*)@/, (_, auth) => (auth.includes(':') ? `//${auth.split(':')[0]}:***@` : `//***@`));
}

// ---------------------------------------------------------------------------------------
// Child worker: one BullMQ Worker, driven by the parent over IPC

async function childWorker() {
  const cfg = await new Promise(resolve => process.once('message', resolve));
  let completed = 0;
  let lastAt = 0;
  const latencies = [];
  const processors = {
    noop: async () => {},
    mixed: async job => {
      if (job.data.fail_first && job.attemptsMade === 0) throw new Error('fails on its first attempt');
    },
    latency: async job => {
      latencies.push(nowMs() - job.data.sent);
    },
  };
  const worker = new Worker(cfg.queue, processors[cfg.mode], {
    connection: cfg.connection,
    prefix: cfg.prefix,
    concurrency: cfg.concurrency,
    autorun: false,
  });
  worker.on('completed', () => {
    completed++;
    lastAt = nowMs();
  });
  worker.on('error', err => process.stderr.write(`\nworker ${process.pid}: ${err.message}\n`));
  await worker.waitUntilReady();
  process.on('disconnect', () => process.exit(1)); // the parent went away
  process.on('message', msg => {
    if (msg.type === 'run') {
      worker.run().catch(err => {
        process.stderr.write(`\nworker ${process.pid}: ${err.stack || err}\n`);
        process.exit(1);
      });
    } else if (msg.type === 'stop') {
      clearInterval(ticker);
      worker.close().finally(() => {
        process.send({ type: 'stopped', completed, lastAt, latencies }, () => process.exit(0));
      });
    }
  });
  let reported = -1;
  const ticker = setInterval(() => {
    if (completed !== reported) {
      reported = completed;
      process.send({ type: 'progress', completed, lastAt });
    }
  }, PROGRESS_MS);
  process.send({ type: 'ready' });
}

// ---------------------------------------------------------------------------------------
// Machine, process and Redis measurements

function findOnPath(cmd) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const candidate = path.join(dir, cmd);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

function clockTicks() {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

function machineInfo(redisVersion) {
  let cpu = null;
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m);
    if (m) cpu = m[1].trim();
  } catch {
    // not Linux
  }
  const cpus = os.cpus();
  return {
    cpu: cpu || cpus[0]?.model || 'unknown',
    cores: cpus.length,
    redis: redisVersion,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

/** CPU time (user + system) of a process so far, in µs, from /proc/<pid>/stat. */
function processCpuUs(pid, ticks) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return ((Number(fields[11]) + Number(fields[12])) / ticks) * 1e6;
  } catch {
    return null;
  }
}

/** Peak resident set of a process (VmHWM), in MB. */
function processPeakRssMb(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s*(\d+)\s*kB/m);
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

function parseInfo(text) {
  const out = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

class RedisStats {
  constructor(connection) {
    // Fail fast when Redis is not there rather than retrying forever; errors surface
    // through the commands that fail.
    this.redis = new Redis({ ...connection, retryStrategy: times => (times > 3 ? null : 200) });
    this.redis.on('error', () => {});
  }

  async info(section) {
    return parseInfo(await this.redis.info(section));
  }

  async version() {
    return (await this.info('server')).redis_version;
  }

  async usedMemory() {
    return Number((await this.info('memory')).used_memory);
  }

  async cpuUs() {
    const cpu = await this.info('cpu');
    return (Number(cpu.used_cpu_user) + Number(cpu.used_cpu_sys)) * 1e6;
  }

  /** Zeroes the command statistics; returns the starting point of a timed part. */
  async start() {
    await this.redis.config('RESETSTAT');
    return { cpuUs: await this.cpuUs(), memory: await this.usedMemory() };
  }

  /** What Redis did since `start`, per job. */
  async finish(from, jobs) {
    const cpuUs = (await this.cpuUs()) - from.cpuUs;
    const commandstats = await this.info('commandstats');
    const memory = await this.usedMemory();
    let calls = 0;
    let scriptCalls = 0;
    for (const [key, value] of Object.entries(commandstats)) {
      if (!key.startsWith('cmdstat_')) continue;
      const name = key.slice('cmdstat_'.length).split('|')[0].toLowerCase();
      const m = value.match(/(?:^|,)calls=(\d+)/);
      const n = m ? Number(m[1]) : 0;
      if (NOT_JOB_WORK.has(name)) continue;
      calls += n;
      if (SCRIPT_COMMANDS.has(name)) scriptCalls += n;
    }
    return {
      redis_cpu_us_per_job: cpuUs / jobs,
      redis_calls_per_job: calls / jobs,
      script_calls_per_job: scriptCalls / jobs,
      memory,
    };
  }

  /** Deletes every key under the prefix (synchronously, so used_memory settles). */
  async clean(prefix) {
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await this.redis.del(...keys);
    } while (cursor !== '0');
  }

  async close() {
    await this.redis.quit();
  }
}

// ---------------------------------------------------------------------------------------
// Progress line

class Progress {
  constructor(label) {
    this.label = label;
    this.tty = process.stderr.isTTY;
    this.lastDraw = 0;
    this.width = 0;
  }

  update(text, force = false) {
    const now = Date.now();
    if (!force && now - this.lastDraw < 200) return;
    this.lastDraw = now;
    if (this.tty) this.draw(text);
  }

  draw(text) {
    const line = `  ${this.label.padEnd(20)} ${text}`;
    process.stderr.write(`\r${line.padEnd(this.width)}`);
    this.width = line.length;
  }

  done(text) {
    if (this.tty) {
      this.draw(text);
      process.stderr.write('\n');
    } else {
      process.stderr.write(`  ${this.label.padEnd(20)} ${text}\n`);
    }
  }
}

const fmtRate = (n, ms) => `${ms > 0 ? Math.round((n * 1000) / ms) : 0} jobs/s`;

// ---------------------------------------------------------------------------------------
// The bench

class Bench {
  constructor(opts) {
    this.opts = opts;
    this.connection = connectionOptions(opts.redisUrl);
    this.stats = new RedisStats(this.connection);
    this.payload = { pad: 'x'.repeat(opts.payloadBytes) };
    this.ticks = clockTicks();
    const taskset = findOnPath('taskset');
    this.pinned = opts.pin && taskset !== null && os.cpus().length >= 2;
    this.taskset = taskset;
    this.children = new Set();
    this.results = [];
  }

  // --- queues and workers ---

  /** Empties the prefix and opens a fresh queue on it; resolves once its metadata is written. */
  async freshQueue() {
    await this.stats.clean(this.opts.prefix);
    const queue = new Queue(QUEUE, { connection: this.connection, prefix: this.opts.prefix });
    await queue.waitUntilReady();
    // After the constructor's metadata write, on the same connection (BullMQ 6 keeps the
    // raw client on its Redis backend).
    const client = await queue.getBackend().client;
    await client.ping();
    return queue;
  }

  async prefill(queue, n, jobAt, label) {
    const progress = new Progress(label);
    for (let start = 0; start < n; start += BULK_CHUNK) {
      const end = Math.min(n, start + BULK_CHUNK);
      const jobs = [];
      for (let i = start; i < end; i++) jobs.push(jobAt(i));
      await queue.addBulk(jobs);
      progress.update(`prefill ${end}/${n}`);
    }
  }

  spawnChild() {
    const script = fileURLToPath(import.meta.url);
    const options = { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] };
    if (this.pinned) {
      // taskset execs node in place, so the pid (and /proc/<pid>) is the worker's
      options.execPath = this.taskset;
      options.execArgv = ['-c', '1', process.execPath];
    }
    const proc = fork(script, ['--child-worker'], options);
    const child = { proc, completed: 0, lastAt: 0, exited: null };
    this.children.add(child);
    const ready = deferred();
    const stopped = deferred();
    child.ready = ready.promise;
    child.stopped = stopped.promise;
    proc.on('message', msg => {
      if (msg.type === 'ready') {
        ready.resolve();
        return;
      }
      child.completed = msg.completed;
      child.lastAt = msg.lastAt;
      if (msg.type === 'stopped') stopped.resolve(msg);
    });
    proc.on('exit', (code, signal) => {
      child.exited = signal ? `signal ${signal}` : `code ${code}`;
      this.children.delete(child);
    });
    // 'close' comes after the last IPC message has been delivered, unlike 'exit'
    child.closed = new Promise(resolve => {
      proc.on('close', () => {
        const err = new Error(`worker process ${proc.pid} exited (${child.exited})`);
        ready.reject(err);
        stopped.reject(err);
        resolve();
      });
    });
    return child;
  }

  /** Starts `count` worker processes and resolves once every one is connected and idle. */
  async startWorkers(count, concurrency, mode) {
    const children = [];
    for (let i = 0; i < count; i++) {
      const child = this.spawnChild();
      child.proc.send({
        connection: this.connection,
        prefix: this.opts.prefix,
        queue: QUEUE,
        concurrency,
        mode,
      });
      children.push(child);
    }
    await Promise.all(children.map(c => c.ready));
    return children;
  }

  async stopWorkers(children) {
    const replies = await Promise.all(
      children.map(c => {
        c.proc.send({ type: 'stop' });
        return c.stopped;
      }),
    );
    await Promise.all(children.map(c => c.closed));
    return replies;
  }

  killChildren() {
    for (const child of this.children) child.proc.kill('SIGKILL');
  }

  /** Resolves with the epoch ms of the last completion once the children have completed `n`. */
  async waitCompleted(children, n, startedAt, progress) {
    const deadline = startedAt + this.opts.timeout * 1000;
    for (;;) {
      const done = children.reduce((sum, c) => sum + c.completed, 0);
      const now = nowMs();
      if (done >= n) return Math.max(...children.map(c => c.lastAt));
      const dead = children.find(c => c.exited);
      if (dead) throw new Error(`worker process ${dead.proc.pid} exited (${dead.exited}) after ${done}/${n} jobs`);
      if (now > deadline) throw new Error(`only ${done} of ${n} jobs done after ${this.opts.timeout}s`);
      progress.update(`${done}/${n}  ${fmtRate(done, now - startedAt)}`);
      await sleep(10);
    }
  }

  workerCpu(children) {
    return children.map(c => processCpuUs(c.proc.pid, this.ticks));
  }

  /**
   * Times a drain by worker processes that are already running idle: resets the Redis
   * statistics, lets the workers go, and waits for `n` completions.
   */
  async timedDrain(children, n, progress) {
    const from = await this.stats.start();
    const cpuBefore = this.workerCpu(children);
    const startedAt = nowMs();
    for (const c of children) c.proc.send({ type: 'run' });
    const endedAt = await this.waitCompleted(children, n, startedAt, progress);
    const cpuAfter = this.workerCpu(children);
    const redis = await this.stats.finish(from, n);
    const elapsedMs = endedAt - startedAt;
    progress.done(`${n}/${n}  ${fmtRate(n, elapsedMs)}`);
    return {
      elapsedMs,
      redis,
      workerRssMb: maxOrNull(children.map(c => processPeakRssMb(c.proc.pid))),
      workerCpuUsPerJob: perJob(sumOrNull(cpuAfter.map((a, i) => (a === null || cpuBefore[i] === null ? null : a - cpuBefore[i]))), n),
    };
  }

  /** Records a prefilled drain's figures as one row. */
  recordDrain(scenario, variant, jobs, run) {
    this.record({
      scenario,
      variant,
      jobs,
      jobs_per_s: (jobs * 1000) / run.elapsedMs,
      ...run.redis,
      redis_bytes_per_job: run.retainedBytes,
      worker_rss_mb: run.workerRssMb,
      worker_cpu_us_per_job: run.workerCpuUsPerJob,
    });
  }

  record(row) {
    const r = {
      scenario: row.scenario,
      variant: row.variant,
      jobs: row.jobs,
      jobs_per_s: round(row.jobs_per_s, 1),
      latency_ms: row.latency_ms ?? null,
      redis_cpu_us_per_job: round(row.redis_cpu_us_per_job, 3),
      redis_calls_per_job: round(row.redis_calls_per_job, 3),
      script_calls_per_job: round(row.script_calls_per_job, 3),
      redis_bytes_per_job: round(row.redis_bytes_per_job, 1),
      worker_rss_mb: round(row.worker_rss_mb, 1),
      worker_cpu_us_per_job: round(row.worker_cpu_us_per_job, 3),
    };
    this.results.push(r);
    return r;
  }

  /** A row's variant, marked when the jobs carry ids of their own. */
  variant(name) {
    return this.opts.ids ? `${name}+ids` : name;
  }

  /** The options of job i: its own id when --ids asks for one, and `extra`. */
  jobOpts(i, extra = {}) {
    return this.opts.ids ? { ...extra, jobId: `bench-${i}` } : extra;
  }

  // --- scenarios ---

  async enqueue() {
    const { jobs } = this.opts;
    const variants = [
      ['single', Math.min(jobs, SINGLE_MAX), (q, n, p) => this.addSingle(q, n, p)],
      ['pipelined', jobs, (q, n, p) => this.addPipelined(q, n, p)],
      ['bulk', jobs, (q, n, p) => this.addBulkChunks(q, n, p)],
    ];
    for (const [variant, n, add] of variants) {
      const queue = await this.freshQueue();
      const progress = new Progress(`enqueue ${variant}`);
      const from = await this.stats.start();
      const startedAt = nowMs();
      await add(queue, n, done => progress.update(`${done}/${n}  ${fmtRate(done, nowMs() - startedAt)}`));
      const elapsedMs = nowMs() - startedAt;
      const redis = await this.stats.finish(from, n);
      progress.done(`${n}/${n}  ${fmtRate(n, elapsedMs)}`);
      this.record({
        scenario: 'enqueue',
        variant: this.variant(variant),
        jobs: n,
        jobs_per_s: (n * 1000) / elapsedMs,
        ...redis,
        redis_bytes_per_job: (redis.memory - from.memory) / n,
        worker_rss_mb: null,
        worker_cpu_us_per_job: null,
      });
      await queue.close();
    }
    await this.stats.clean(this.opts.prefix);
  }

  async addSingle(queue, n, onProgress) {
    for (let i = 0; i < n; i++) {
      await queue.add('noop', this.payload, this.jobOpts(i));
      if ((i & 255) === 0) onProgress(i + 1);
    }
  }

  async addPipelined(queue, n, onProgress) {
    let next = 0;
    let done = 0;
    const lane = async () => {
      while (next < n) {
        const i = next++;
        await queue.add('noop', this.payload, this.jobOpts(i));
        if ((++done & 255) === 0) onProgress(done);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PIPELINE_DEPTH, n) }, lane));
  }

  async addBulkChunks(queue, n, onProgress) {
    for (let start = 0; start < n; start += BULK_CHUNK) {
      const end = Math.min(n, start + BULK_CHUNK);
      const jobs = [];
      for (let i = start; i < end; i++) jobs.push({ name: 'noop', data: this.payload, opts: this.jobOpts(i) });
      await queue.addBulk(jobs);
      onProgress(end);
    }
  }

  async drain() {
    const n = this.opts.jobs;
    for (const w of this.opts.workers) {
      for (const c of this.opts.concurrency) {
        const variant = this.variant(`W${w}xC${c}`);
        const label = `drain ${variant}`;
        const run = await this.prefilledDrain(n, i => ({ name: 'noop', data: this.payload, opts: this.jobOpts(i) }), label, w, c, 'noop');
        this.recordDrain('drain', variant, n, run);
      }
    }
    await this.stats.clean(this.opts.prefix);
  }

  /** A --rate entry in jobs/s; `half` is half the best one-worker drain rate so far. */
  resolveRate(rate) {
    if (rate !== 'half') return rate;
    const best = this.results
      .filter(r => r.scenario === 'drain' && r.variant.startsWith('W1x'))
      .reduce((m, r) => Math.max(m, r.jobs_per_s), 0);
    return best > 0 ? Math.max(1, Math.round(best / 2)) : 1000;
  }

  async latency() {
    for (const asked of this.opts.rate) {
      const rate = this.resolveRate(asked);
      // `half` rows carry the same name on every system, whatever rate each reached.
      const variant = asked === 'half' ? 'half-max' : `rate${rate}`;
      const progress = new Progress(`latency ${variant}`);
      const total = Math.max(1, Math.round(rate * this.opts.latencySecs));
      const queue = await this.freshQueue();
      const memoryBefore = await this.stats.usedMemory();
      const children = await this.startWorkers(1, FIXED_CONCURRENCY, 'latency');
      const [child] = children;
      for (const c of children) c.proc.send({ type: 'run' });
      await sleep(100); // let the worker reach its blocking wait for jobs
      const from = await this.stats.start();
      const cpuBefore = this.workerCpu(children);

      // Job i is due at startedAt + i / rate, whatever happened to the jobs before it.
      const adds = [];
      const startedAt = nowMs();
      let sent = 0;
      let firstSentAt = 0;
      let lastSentAt = 0;
      while (sent < total) {
        const due = Math.min(total, Math.floor(((nowMs() - startedAt) * rate) / 1000) + 1);
        while (sent < due) {
          const at = nowMs();
          if (sent === 0) firstSentAt = at;
          lastSentAt = at;
          adds.push(queue.add('noop', { ...this.payload, sent: at }));
          sent++;
        }
        progress.update(`sent ${sent}/${total}, done ${child.completed}`);
        if (sent < total) await sleep(Math.max(0, startedAt + (sent * 1000) / rate - nowMs()));
      }
      await Promise.all(adds);
      await this.waitCompleted(children, total, startedAt, progress);
      const cpuAfter = this.workerCpu(children);
      const redis = await this.stats.finish(from, total);
      const rss = processPeakRssMb(child.proc.pid);
      const [reply] = await this.stopWorkers(children);
      const achieved = total > 1 ? ((total - 1) * 1000) / (lastSentAt - firstSentAt) : total / this.opts.latencySecs;
      const latency = percentiles(reply.latencies);
      progress.done(
        `${total} jobs at ${achieved.toFixed(0)}/s  p50 ${latency.p50.toFixed(2)} ms  p99 ${latency.p99.toFixed(2)} ms`,
      );
      this.record({
        scenario: 'latency',
        variant,
        jobs: total,
        jobs_per_s: achieved,
        latency_ms: latency,
        ...redis,
        redis_bytes_per_job: (redis.memory - memoryBefore) / total,
        worker_rss_mb: rss,
        worker_cpu_us_per_job: perJob(cpuAfter[0] === null || cpuBefore[0] === null ? null : cpuAfter[0] - cpuBefore[0], total),
      });
      await queue.close();
    }
    await this.stats.clean(this.opts.prefix);
  }

  async mixed() {
    const n = this.opts.jobs;
    const variant = this.variant(`W1xC${FIXED_CONCURRENCY}`);
    const label = `mixed ${variant}`;
    const run = await this.prefilledDrain(
      n,
      i => {
        const job = mixedJob(i, this.payload);
        return { ...job, opts: this.jobOpts(i, job.opts) };
      },
      label,
      1,
      FIXED_CONCURRENCY,
      'mixed',
    );
    this.recordDrain('mixed', variant, n, run);
    await this.stats.clean(this.opts.prefix);
  }

  async backlog() {
    for (const size of this.opts.backlog) {
      const variant = this.variant(String(size));
      const label = `backlog ${variant}`;
      const run = await this.prefilledDrain(size, i => ({ name: 'noop', data: this.payload, opts: this.jobOpts(i) }), label, 1, FIXED_CONCURRENCY, 'noop');
      this.record({
        scenario: 'backlog',
        variant,
        jobs: size,
        jobs_per_s: (size * 1000) / run.elapsedMs,
        ...run.redis,
        redis_bytes_per_job: run.pendingBytes,
        worker_rss_mb: run.workerRssMb,
        worker_cpu_us_per_job: run.workerCpuUsPerJob,
      });
    }
    await this.stats.clean(this.opts.prefix);
  }

  /**
   * Jobs each due DELAYED_BY_MS after its enqueue, drained by one idle worker per
   * concurrency: Redis's figures hold enqueue, promotion and completion, and the clock runs
   * from when the first job is due to the last completion.
   */
  async delayed() {
    const n = this.opts.jobs;
    for (const c of this.opts.concurrency) {
      const variant = this.variant(`W1xC${c}`);
      const progress = new Progress(`delayed ${variant}`);
      const queue = await this.freshQueue();
      const memoryBefore = await this.stats.usedMemory();
      const children = await this.startWorkers(1, c, 'noop');
      for (const child of children) child.proc.send({ type: 'run' });
      await sleep(100); // let the worker reach its blocking wait for jobs
      const from = await this.stats.start();
      const cpuBefore = this.workerCpu(children);
      const firstDue = nowMs() + DELAYED_BY_MS;
      await this.prefill(queue, n, i => ({ name: 'noop', data: this.payload, opts: this.jobOpts(i, { delay: DELAYED_BY_MS }) }), `delayed ${variant}`);
      const endedAt = await this.waitCompleted(children, n, firstDue, progress);
      const cpuAfter = this.workerCpu(children);
      const redis = await this.stats.finish(from, n);
      const rss = maxOrNull(children.map(child => processPeakRssMb(child.proc.pid)));
      await this.stopWorkers(children);
      const elapsedMs = endedAt - firstDue;
      progress.done(`${n}/${n}  ${fmtRate(n, elapsedMs)}`);
      this.record({
        scenario: 'delayed',
        variant,
        jobs: n,
        jobs_per_s: (n * 1000) / elapsedMs,
        ...redis,
        redis_bytes_per_job: (redis.memory - memoryBefore) / n,
        worker_rss_mb: rss,
        worker_cpu_us_per_job: perJob(sumOrNull(cpuAfter.map((a, i) => (a === null || cpuBefore[i] === null ? null : a - cpuBefore[i]))), n),
      });
      await queue.close();
    }
    await this.stats.clean(this.opts.prefix);
  }

  /**
   * One timed drain of a laid-down backlog: `n` jobs from `makeJob(i)` added to a fresh
   * queue, then `workers` child processes of `concurrency` run them. Returns the timed
   * run with the memory the backlog took per job (pending) and what stayed after it
   * (retained).
   */
  async prefilledDrain(n, makeJob, label, workers, concurrency, kind) {
    const queue = await this.freshQueue();
    const memoryBefore = await this.stats.usedMemory();
    await this.prefill(queue, n, makeJob, label);
    const pendingBytes = ((await this.stats.usedMemory()) - memoryBefore) / n;
    const children = await this.startWorkers(workers, concurrency, kind);
    const run = await this.timedDrain(children, n, new Progress(label));
    await this.stopWorkers(children);
    await queue.close();
    return { ...run, pendingBytes, retainedBytes: (run.redis.memory - memoryBefore) / n };
  }
}

/**
 * Job i of the mixed scenario. Priorities repeat every ten jobs (critical 1 in 10, default
 * 6, low 3, interleaved); one job in ten fails its first attempt, the failing slot moving
 * through the ten each round so failures fall on every priority.
 */
function mixedJob(i, payload) {
  const slot = i % 10;
  const priority = slot === 0 ? 1 : slot === 3 || slot === 6 || slot === 9 ? 3 : 2;
  const failFirst = slot === Math.floor(i / 10) % 10;
  return {
    name: 'noop',
    data: failFirst ? { ...payload, fail_first: true } : payload,
    opts: { priority, attempts: 3, backoff: { type: 'fixed', delay: 10 } },
  };
}

function percentiles(values) {
  const sorted = Float64Array.from(values).sort();
  const at = q => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
  return {
    p50: round(at(0.5), 3),
    p90: round(at(0.9), 3),
    p99: round(at(0.99), 3),
    p999: round(at(0.999), 3),
    max: round(sorted[sorted.length - 1], 3),
  };
}

function round(x, digits) {
  if (x === null || x === undefined || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function maxOrNull(xs) {
  const present = xs.filter(x => x !== null);
  return present.length ? Math.max(...present) : null;
}

function perJob(total, jobs) {
  return total === null ? null : total / jobs;
}

function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // a rejection nobody awaits (a worker exiting when stopped) is not an error
  return { promise, resolve, reject };
}

function sumOrNull(xs) {
  return xs.some(x => x === null) ? null : xs.reduce((a, b) => a + b, 0);
}

// ---------------------------------------------------------------------------------------
// Report

function markdownTable(results) {
  const cell = (x, digits) => (x === null || x === undefined ? '–' : Number(x).toFixed(digits));
  const lines = [
    '| scenario | variant | jobs | jobs/s | p50 ms | p99 ms | p99.9 ms | max ms | Redis µs/job | Redis calls/job | script calls/job | Redis bytes/job | worker RSS MB | worker CPU µs/job |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const r of results) {
    const l = r.latency_ms || {};
    lines.push(
      `| ${r.scenario} | ${r.variant} | ${r.jobs} | ${cell(r.jobs_per_s, 0)} | ${cell(l.p50, 2)} | ${cell(l.p99, 2)} | ${cell(l.p999, 2)} | ${cell(l.max, 2)} | ${cell(r.redis_cpu_us_per_job, 1)} | ${cell(r.redis_calls_per_job, 2)} | ${cell(r.script_calls_per_job, 2)} | ${cell(r.redis_bytes_per_job, 0)} | ${cell(r.worker_rss_mb, 1)} | ${cell(r.worker_cpu_us_per_job, 1)} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function writeFile(file, text) {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileSync(file, text);
}

function bullmqVersion() {
  const require = createRequire(import.meta.url);
  return JSON.parse(readFileSync(require.resolve('bullmq/package.json'), 'utf8')).version;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.childWorker) {
    await childWorker();
    return false;
  }
  const bench = new Bench(opts);
  const cleanUp = () => bench.killChildren();
  process.on('exit', cleanUp);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      cleanUp();
      process.exit(130);
    });
  }

  const version = bullmqVersion();
  let redisVersion;
  try {
    redisVersion = await bench.stats.version();
  } catch (err) {
    fail(`cannot reach Redis at ${redactUrl(opts.redisUrl)}: ${err.message}`);
  }
  if (opts.pin && !bench.pinned) {
    process.stderr.write('bullmq bench: --pin ignored (needs taskset and at least two CPUs)\n');
  }
  console.log(
    `bullmq ${version} bench: ${opts.jobs} jobs, payload ${opts.payloadBytes} bytes, Redis ${redisVersion} at ${redactUrl(opts.redisUrl)}` +
      (bench.pinned ? ', worker processes on CPU 1' : ''),
  );

  try {
    for (const scenario of opts.scenarios) {
      if (FLOTILLA_ONLY.includes(scenario)) {
        process.stderr.write(`  ${scenario.padEnd(20)} skipped: no BullMQ counterpart\n`);
        continue;
      }
      await bench[scenario]();
    }
  } finally {
    await bench.stats.clean(opts.prefix).catch(() => {});
  }

  const ran = new Set(opts.scenarios);
  const notes = [
    'completed jobs kept (BullMQ default removeOnComplete: false); failed jobs kept (removeOnFail: false)',
    'redis_bytes_per_job: used_memory per job left after completion (enqueue and backlog: per pending job)',
    bench.pinned ? 'worker processes pinned to CPU 1 with taskset' : 'worker processes not pinned',
  ];
  if (ran.has('enqueue')) {
    notes.push(
      `enqueue: single awaits each add (at most ${SINGLE_MAX} jobs), pipelined keeps ${PIPELINE_DEPTH} adds in flight, bulk calls addBulk with ${BULK_CHUNK} jobs`,
    );
  }
  if (ran.has('drain') || ran.has('mixed') || ran.has('backlog')) {
    notes.push(
      `drain, mixed and backlog: jobs prefilled with addBulk (chunks of ${BULK_CHUNK}) before the clock starts; the clock runs from the connected, idle workers being told to run until the last completion`,
    );
  }
  if (ran.has('latency')) {
    notes.push(
      `latency: one worker process, concurrency ${FIXED_CONCURRENCY}, jobs added at a fixed rate for ${opts.latencySecs}s; latency is pickup time (processor start - add call)`,
    );
  }
  if (ran.has('mixed')) {
    notes.push(
      `mixed: one worker process, concurrency ${FIXED_CONCURRENCY}; priorities 1/2/3 for 10/60/30% of jobs, 10% fail their first attempt, attempts 3, fixed backoff 10 ms`,
    );
  }
  if (ran.has('backlog')) notes.push(`backlog: drained by one worker process, concurrency ${FIXED_CONCURRENCY}`);
  const report = {
    system: 'bullmq',
    version,
    machine: machineInfo(redisVersion),
    params: { jobs: opts.jobs, payload_bytes: opts.payloadBytes, pinned: bench.pinned },
    notes,
    results: bench.results,
  };
  const table = markdownTable(bench.results);
  console.log(`\n${table}`);
  if (opts.json) writeFile(opts.json, `${JSON.stringify(report, null, 2)}\n`);
  if (opts.markdown) writeFile(opts.markdown, table);
  await bench.stats.close();
  return true;
}

main().then(
  finished => {
    if (finished) process.exit(0);
  },
  err => {
    process.stderr.write(`\nbullmq bench: ${err.stack || err}\n`);
    process.exit(1);
  },
);
