// harness.mjs: Debian's chromium driven by playwright-core, against demo/serve.js on a free port.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createServer } from '../../demo/serve.js';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Why the browser tests cannot run here, or null. */
export async function unavailable() {
  if (!fs.existsSync(CHROMIUM)) return `no chromium at ${CHROMIUM} (apt-get install -y chromium)`;
  try {
    await import('playwright-core');
  } catch {
    return 'playwright-core is not installed (npm i -D playwright-core)';
  }
  return null;
}

/** Start the demo server (routes: extra handlers for test-only URLs) and a fresh browser profile. */
export async function start({ onRequest } = {}) {
  const { chromium } = await import('playwright-core');
  const sockets = new Set();
  const server = createServer({ onRequest });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'lfm2-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1100, height: 900 } });
  return {
    context, server, port, origin: `http://127.0.0.1:${port}`,
    /** Stop serving (the offline test): close the listener and every open connection. */
    async stopServer() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
    async close() {
      await context.close().catch(() => {});
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(() => r())).catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
