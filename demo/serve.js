// serve.js: a small static server for the chat page, with the cross-origin isolation headers
// (COOP/COEP) that wasm threads need, byte ranges (resumable model downloads) and ETags.
// Usage: node demo/serve.js [--port 8080] [--no-isolation]
// --no-isolation (createServer({isolation: false})): no COOP/COEP headers, as a plain static host;
// with the page's ?nosw (no service worker, so no isolation fallback either) the engine runs its
// single-thread build.
// Browsers cannot resolve bare module specifiers inside a Worker (no import maps there), so the
// library's `import ... from '@huggingface/jinja'` is rewritten to the package's file on the way
// out, as a bundler would do.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.css': 'text/css', '.json': 'application/json', '.wasm': 'application/wasm', '.svg': 'image/svg+xml',
  '.gguf': 'application/octet-stream', '.png': 'image/png', '.webmanifest': 'application/manifest+json',
};
// Only these folders are served; the page lives in demo/.
const PUBLIC = ['demo', 'web', 'wasm/dist', 'node_modules/@huggingface/jinja/dist'];
// bare specifier -> file (relative to the root), for JS served from web/
const BARE = { '@huggingface/jinja': 'node_modules/@huggingface/jinja/dist/index.js' };

function rewriteImports(file, text) {
  return text.replace(/(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"./][^'"]*)\2/g, (all, pre, q, spec) => {
    if (!BARE[spec]) return all;
    let rel = path.relative(path.dirname(file), path.join(root, BARE[spec])).split(path.sep).join('/');
    if (!rel.startsWith('.')) rel = './' + rel;
    return `${pre}${q}${rel}${q}`;
  });
}

/**
 * @param {{onRequest?: (req, res) => boolean, isolation?: boolean}} opts onRequest may answer a request
 *   itself (tests); isolation: false leaves out the cross-origin isolation headers
 */
export function createServer(opts = {}) {
  return http.createServer((req, res) => {
    if (opts.isolation !== false) {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
      res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    }
    if (opts.onRequest?.(req, res)) return;
    const url = new URL(req.url, 'http://localhost');
    let rel;
    try {
      rel = decodeURIComponent(url.pathname).replace(/^\/+/, '');
    } catch {
      rel = '\0';
    }
    if (rel === '') {
      // the page lives at /demo/ so that its relative URLs (app.js, models/) resolve
      res.writeHead(302, { Location: '/demo/' + url.search });
      res.end();
      return;
    }
    if (rel === 'demo' || rel === 'demo/') rel = 'demo/index.html';
    if (rel === 'favicon.ico') rel = 'demo/favicon.svg';
    const file = path.resolve(root, rel);
    const allowed = PUBLIC.some((p) => file.startsWith(path.join(root, p) + path.sep));
    let stat;
    try {
      stat = allowed && fs.statSync(file);
    } catch {
      stat = null;
    }
    if (!stat || !stat.isFile()) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    const type = TYPES[path.extname(file)] ?? 'application/octet-stream';
    if (rel.startsWith('web/') && /\.m?js$/.test(file)) {
      const body = Buffer.from(rewriteImports(file, fs.readFileSync(file, 'utf8')));
      res.writeHead(200, { 'Content-Type': type, 'Content-Length': body.length, 'Cache-Control': 'no-cache' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (rel === 'demo/sw.js') res.setHeader('Service-Worker-Allowed', '/'); // the engine's files are outside demo/
    sendFile(req, res, file, stat, type);
  });
}

/** A file with ETag, Accept-Ranges and single byte ranges (206 / 416), If-Range honoured. */
export function sendFile(req, res, file, stat, type = 'application/octet-stream') {
  const etag = `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
  const headers = { 'Content-Type': type, 'Accept-Ranges': 'bytes', ETag: etag, 'Cache-Control': 'no-cache' };
  let start = 0, end = stat.size - 1, status = 200;
  const range = req.headers.range;
  const ifRange = req.headers['if-range'];
  if (range && (!ifRange || ifRange === etag)) {
    const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
    if (m && (m[1] || m[2])) {
      if (m[1]) { start = Number(m[1]); if (m[2]) end = Math.min(end, Number(m[2])); }
      else start = Math.max(0, stat.size - Number(m[2]));
      if (start >= stat.size || start > end) {
        res.writeHead(416, { ...headers, 'Content-Range': `bytes */${stat.size}` });
        res.end();
        return;
      }
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${stat.size}`;
    }
  }
  headers['Content-Length'] = stat.size === 0 ? 0 : end - start + 1;
  res.writeHead(status, headers);
  if (req.method === 'HEAD' || stat.size === 0) res.end();
  else fs.createReadStream(file, { start, end }).pipe(res);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--port');
  const port = i > 0 ? Number(process.argv[i + 1]) : Number(process.env.PORT ?? 8080);
  const isolation = !process.argv.includes('--no-isolation');
  createServer({ isolation }).listen(port, '127.0.0.1', () => console.log(`lfm2-wasm: serving the chat page at http://localhost:${port}/` +
    (isolation ? '' : ' without COOP/COEP headers (open /demo/?nosw for the single-thread engine)')));
}
