// native.test.mjs: the C unit tests (tests/c), built natively by ./build.sh native with the address
// and undefined-behaviour sanitizers; each binary prints its checks and exits non-zero on failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(root, 'build', 'native');
const sources = fs.readdirSync(path.join(root, 'tests', 'c')).filter((f) => /^test_.*\.c$/.test(f));

for (const name of ['test_simd', 'test_kernels', 'test_attn']) {
  test(`wasm: ${name} (SIMD128 kernels against the scalar reference)`, () => {
    const js = path.join(root, 'build', 'wasm-tests', `${name}.js`);
    assert.ok(fs.existsSync(js), `${js} is missing: run ./build.sh wasm-tests`);
    const r = spawnSync(process.execPath, ['--no-experimental-fetch', js], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, `${name} failed:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  });
}

for (const src of sources) {
  const name = src.replace(/\.c$/, '');
  test(`C: ${name}`, () => {
    const bin = path.join(dir, name);
    assert.ok(fs.existsSync(bin), `${bin} is missing: run ./build.sh native`);
    const r = spawnSync(bin, { cwd: root, encoding: 'utf8', env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1' } });
    assert.equal(r.status, 0, `${name} failed:\n${r.stdout}\n${r.stderr.slice(-4000)}`);
  });
}
