// opfs-reader.js: the engine's read callback (view, offset) -> bytes read, in a browser Worker,
// over an OPFS FileSystemSyncAccessHandle (opened read-only, so other tabs may read the same model)
// or over a File/Blob through FileReaderSync (the user's file, read in place: no copy into OPFS).
import { LFM2Error } from './errors.js';

/** @param {FileSystemFileHandle} fh */
export async function openSyncReader(fh) {
  let h;
  try {
    h = await fh.createSyncAccessHandle({ mode: 'read-only' });
  } catch (e) {
    if (e.name === 'NoModificationAllowedError') throw new LFM2Error('ERR_BUSY', `${fh.name} is being written (a download in progress?)`);
    h = await fh.createSyncAccessHandle(); // browsers without access modes
  }
  const size = h.getSize();
  let bytesRead = 0;
  return {
    size,
    read(view, offset) {
      let done = 0;
      while (done < view.length) {
        const n = h.read(done ? view.subarray(done) : view, { at: offset + done });
        if (n <= 0) break;
        done += n;
      }
      bytesRead += done;
      return done;
    },
    get bytesRead() { return bytesRead; },
    close() { h?.close(); h = null; },
  };
}

/** @param {Blob} blob */
export function blobReader(blob) {
  if (typeof FileReaderSync === 'undefined') throw new LFM2Error('ERR_BAD_REQUEST', 'a File/Blob can only be read inside a Worker');
  const fr = new FileReaderSync();
  let bytesRead = 0;
  return {
    size: blob.size,
    read(view, offset) {
      const end = Math.min(blob.size, offset + view.length);
      if (end <= offset) return 0;
      const buf = new Uint8Array(fr.readAsArrayBuffer(blob.slice(offset, end)));
      view.set(buf);
      bytesRead += buf.length;
      return buf.length;
    },
    get bytesRead() { return bytesRead; },
    close() {},
  };
}
