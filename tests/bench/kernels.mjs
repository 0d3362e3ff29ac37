#!/usr/bin/env node
// kernels.mjs: builds tests/bench/bench_kernels.c (the wasm kernel microbenchmark) with emcc into
// build/bench/ and runs it under Node, for 1 and 2 threads when it supports threads (its emcc line
// has -pthread and its top comment names a threads argument), else once. Skips with a message when
// the file or emcc is missing. The emcc flags are those of the build line in the file's top comment.
//   node tests/bench/kernels.mjs [--threads 1,2] [--json OUT] [-- ARGS for bench_kernels, e.g. quick q4_0]
// Also run by `npm run bench -- --kernels`.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = path.join(root, 'tests/bench/bench_kernels.c');
const OUT_DIR = path.join(root, 'build/bench');
const log = (...a) => console.error('[kernels]', ...a);

// The emcc command of the top comment: tokens from `emcc` to `-o` (exclusive), lines joined at `\`.
function commentFlags(src) {
  const comment = /\/\*([\s\S]*?)\*\//.exec(src)?.[1] ?? '';
  const text = comment.split('\n').map((l) => l.replace(/^\s*\*\s?/, '')).join('\n').replace(/\\\n/g, ' ');
  const m = /\bemcc\s+([^\n]*?)\s-o\s/.exec(text);
  const flags = m ? m[1].split(/\s+/).filter(Boolean) : null;
  // a threads argument named in the comment: "--threads N", "threads=N" or "-t N"
  const targ = /--threads\b/.test(comment) ? 'long' : /\bthreads=/.test(comment) ? 'kv' : /(^|\s)-t\s+N\b/.test(comment) ? 'short' : null;
  return { flags, targ, comment };
}

function threadArgs(kind, n) {
  return kind === 'long' ? ['--threads', String(n)] : kind === 'kv' ? [`threads=${n}`] : kind === 'short' ? ['-t', String(n)] : [];
}

/** Build and run bench_kernels; returns [{threads, markdown, json}] or null when skipped. */
export function runKernels({ threads = [1, 2], args = [], jsonOut } = {}) {
  if (!fs.existsSync(SRC)) {
    log('tests/bench/bench_kernels.c does not exist: kernel microbenchmark skipped.');
    return null;
  }
  const env = { ...process.env, NODE_PATH: ['/usr/share/nodejs', process.env.NODE_PATH].filter(Boolean).join(':') };
  try {
    execFileSync('emcc', ['--version'], { stdio: 'ignore', env });
  } catch {
    log('emcc not found (sudo apt-get install -y emscripten): kernel microbenchmark skipped.');
    return null;
  }
  const src = fs.readFileSync(SRC, 'utf8');
  const { flags: cflags, targ } = commentFlags(src);
  const kernels = fs.readdirSync(path.join(root, 'kernels')).filter((f) => f.endsWith('.c')).map((f) => `kernels/${f}`);
  let flags = cflags ?? ['-O3', '-msimd128', '-std=c11', '-Ikernels', 'tests/bench/bench_kernels.c', 'kernels/[all].c', '-sALLOW_MEMORY_GROWTH', '-sMAXIMUM_MEMORY=4GB'];
  if (!cflags) log('no emcc line found in the top comment of bench_kernels.c: default flags');
  flags = flags.flatMap((f) => (f === 'kernels/[all].c' || f === 'kernels/*.c' ? kernels : [f]));
  const threaded = flags.includes('-pthread') && targ !== null;
  const maxT = Math.max(...threads);
  if (threaded && !flags.some((f) => f.startsWith('-sPTHREAD_POOL_SIZE'))) flags.push(`-sPTHREAD_POOL_SIZE=${maxT}`);
  fs.mkdirSync(OUT_DIR, { recursive: true });
  // emcc's output is CommonJS, inside a "type": "module" package
  fs.writeFileSync(path.join(OUT_DIR, 'package.json'), '{"type":"commonjs"}\n');
  const out = path.join(OUT_DIR, 'bench_kernels.js');
  log(`emcc ${flags.join(' ')} -o ${path.relative(root, out)}`);
  const b = spawnSync('emcc', [...flags, '-o', out], { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
  if (b.status !== 0) {
    log(`emcc failed (status ${b.status}): kernel microbenchmark skipped.`);
    return null;
  }
  const runs = threaded ? threads : [1];
  if (!threaded && threads.some((t) => t > 1)) log('bench_kernels.c is single-threaded (no -pthread build line or threads argument): 1 thread only.');
  const results = [];
  for (const t of runs) {
    const argv = ['--no-experimental-fetch', out, ...threadArgs(threaded ? targ : null, t), ...args];
    log(`node ${argv.map((a) => path.isAbsolute(a) ? path.relative(root, a) : a).join(' ')}`);
    const r = spawnSync(process.execPath, argv, { cwd: root, env, encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) {
      log(`bench_kernels exited with status ${r.status}`);
      process.stdout.write(r.stdout ?? '');
      continue;
    }
    const lines = r.stdout.trimEnd().split('\n');
    const jl = lines.findLastIndex((l) => l.trimStart().startsWith('{'));
    let json = null;
    try { json = jl >= 0 ? JSON.parse(lines.slice(jl).join('\n')) : null; } catch { json = null; }
    const markdown = (jl >= 0 ? lines.slice(0, jl) : lines).join('\n').trimEnd();
    process.stdout.write(`\n## bench_kernels, ${t} thread(s)\n\n${markdown}\n`);
    results.push({ threads: t, markdown, json });
  }
  if (jsonOut) {
    fs.writeFileSync(jsonOut, JSON.stringify(results.map(({ threads: t, json }) => ({ threads: t, ...json })), null, 1) + '\n');
    log(`wrote ${jsonOut}`);
  }
  return results;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({
    options: { threads: { type: 'string', default: '1,2' }, json: { type: 'string' } },
    allowPositionals: true,
  });
  runKernels({ threads: values.threads.split(',').map(Number), args: positionals, jsonOut: values.json });
}
