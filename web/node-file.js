// node-file.js: a model file on disk as the engine's read callback, over a file descriptor.
// Opening a model reads only what the engine asks for: header, tensor table, resident tensors.
import fs from 'node:fs';
import { LFM2Error } from './errors.js';

export function openFileReader(path) {
  let fd;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    throw new LFM2Error('ERR_FILE', `cannot open ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
  const size = fs.fstatSync(fd).size;
  let bytesRead = 0;
  const read = (view, offset) => {
    let done = 0;
    while (done < view.length) {
      const n = fs.readSync(fd, view, done, view.length - done, offset + done);
      if (n <= 0) break;
      done += n;
    }
    bytesRead += done;
    return done;
  };
  return {
    size,
    read,
    get bytesRead() { return bytesRead; },
    close() { if (fd !== undefined) fs.closeSync(fd); fd = undefined; },
  };
}
