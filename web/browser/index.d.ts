// lfm2-wasm (browser entry, web/index.js): the engine in a dedicated module Worker, models in OPFS.
// The same API as lfm2-wasm/node, except that every call crosses postMessage, so the methods that
// are synchronous in Node (tokenize, detokenize, info, stats, applyChatTemplate, unload) return promises.
import type { ChatMessage, CompletionsAPI, LoadOptions, ModelInfo, Stats, Tool } from '../index.js';

export * from '../index.js';

export interface BrowserLoadOptions extends Omit<LoadOptions, 'onProgress'> {
  /** Expert-cache byte budget: a number or '2GB' (default: what a wasm32 heap holds). */
  memoryBudget?: number | string;
  cachePolicy?: 'lfu' | 'lru';
  /** download: bytes stored so far, total (null when the server does not say), bytesPerSecond; load: bytes read by the engine. */
  onProgress?: (p: { phase: 'download' | 'load'; bytes: number; total: number | null; bytesPerSecond?: number }) => void;
  /** Name to store a downloaded model under (default: the URL's file name). */
  name?: string;
  /** Where web/worker.js is served, when a bundler moved it. */
  workerUrl?: string | URL;
  /** Where wasm/dist/lfm2.mjs is served, when a bundler moved it (lfm2-st.mjs on a page that is not cross-origin isolated). */
  moduleUrl?: string;
}

export interface StoredModel {
  name: string;
  url: string | null;
  /** Bytes the complete file has (null: unknown yet). */
  size: number | null;
  /** Bytes on disk. */
  bytes: number;
  /** Downloaded and verified (size, and ETag when the server gave one); only complete models load. */
  complete: boolean;
  etag: string | null;
  updated: number | null;
}

export interface BrowserModel extends CompletionsAPI {
  /** The store name of the model (or the File's name). */
  readonly name: string;
  readonly size: number;
  /** Threads the engine runs on (1 when `isolated` is false, whatever was asked). */
  readonly threads: number;
  /**
   * false: the page is not cross-origin isolated (no COOP/COEP headers, so no SharedArrayBuffer), and
   * the engine runs its single-thread build (wasm/dist/lfm2-st.mjs) on one thread.
   */
  readonly isolated: boolean;
  applyChatTemplate(messages: ChatMessage[], opts?: { tools?: Tool[]; addGenerationPrompt?: boolean }): Promise<string>;
  tokenize(text: string, opts?: { addSpecial?: boolean; parseSpecial?: boolean }): Promise<number[]>;
  detokenize(ids: ArrayLike<number>, opts?: { renderSpecial?: boolean; cleanSpaces?: boolean }): Promise<string>;
  info(): Promise<ModelInfo>;
  stats(): Promise<Stats & Record<string, unknown>>;
  /** Frees the model and ends its Worker. */
  unload(): Promise<void>;
}

export class LFM2 {
  /**
   * source: an https URL (downloaded into OPFS once, resumable), 'hf:owner/repo/file.gguf',
   * a File/Blob (read in place), or the name of a stored model.
   */
  static load(source: string | URL | Blob, opts?: BrowserLoadOptions): Promise<BrowserModel>;
  /** Stored models, partial downloads included. */
  static list(): Promise<StoredModel[]>;
  /** Delete a stored model (ERR_BUSY while it is loaded). */
  static delete(name: string): Promise<void>;
  /** Bytes of stored models, and the origin's usage and quota. */
  static usage(): Promise<{ models: number; usage: number | null; quota: number | null }>;
}
