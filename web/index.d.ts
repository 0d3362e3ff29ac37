// Types of the lfm2-wasm JS API, shared by the Node entry (lfm2-wasm/node) and the browser entry.

export type ErrorCode =
  | 'ERR_ARG' | 'ERR_BAD_REQUEST' | 'ERR_UNKNOWN_OPTION' | 'ERR_BUSY' | 'ERR_ABORTED' | 'ERR_UNLOADED'
  | 'ERR_FILE' | 'ERR_TEMPLATE' | 'ERR_NO_TEMPLATE' | 'ERR_INTERNAL'
  | `LFM2_E_${string}`;

/** Every error the library reports: `code` is stable (engine status names start with LFM2_E_). */
export class LFM2Error extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string);
}

export interface LoadOptions {
  /** Worker threads of the engine (default: all cores). */
  threads?: number;
  /** Tokens the evaluation state holds (default: min(model context, 4096)). */
  contextLength?: number;
  /** Compute in f32 over dequantised weights (slow; the ground truth). */
  reference?: boolean;
  /** Bytes for weights, contexts and the expert cache: a number or '3.5GB' (default: what a wasm32
   * heap holds). Experts beyond it are read from the file as needed. */
  memoryBudget?: number | string;
  /** Expert cache eviction (default 'lfu', with ageing). */
  cachePolicy?: 'lfu' | 'lru';
  onProgress?: (p: { phase: string; bytes: number; total: number; bytesPerSecond?: number }) => void;
  signal?: AbortSignal;
}

export type Role = 'system' | 'user' | 'assistant' | 'tool';

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: Role;
  content: string | Array<{ type: 'text'; text: string }> | null;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  name?: string;
}

export interface Tool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

export interface SamplingOptions {
  max_tokens?: number;
  max_completion_tokens?: number;
  /** 0: greedy. Default 0.3 (LFM2's recommendation). */
  temperature?: number;
  top_k?: number;
  top_p?: number;
  /** Default 0.15. */
  min_p?: number;
  /** Default 1.05, over the last repeat_last_n (64) tokens. */
  repeat_penalty?: number;
  repeat_last_n?: number;
  frequency_penalty?: number;
  presence_penalty?: number;
  /** Token id -> additive bias; -Infinity bans the token. */
  logit_bias?: Record<string, number>;
  seed?: number;
  stop?: string | string[];
  signal?: AbortSignal;
  model?: string;
  n?: 1;
  user?: string;
  stream_options?: { include_usage?: boolean };
}

export interface ChatCompletionRequest extends SamplingOptions {
  messages: ChatMessage[];
  tools?: Tool[];
  tool_choice?: unknown;
  parallel_tool_calls?: boolean;
  stream?: boolean;
}

export interface CompletionRequest extends SamplingOptions {
  prompt: string;
  echo?: boolean;
  stream?: boolean;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** cached_tokens: prompt tokens already held by the state, not evaluated again. */
  prompt_tokens_details: { cached_tokens: number };
}

export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{
    index: 0;
    message: { role: 'assistant'; content: string | null; tool_calls?: ToolCall[] };
    finish_reason: FinishReason;
    logprobs: null;
  }>;
  usage: Usage;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{ index: 0; delta: { role?: 'assistant'; content?: string }; finish_reason: FinishReason | null; logprobs: null }>;
  usage?: Usage;
}

export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: Array<{ index: 0; text: string; finish_reason: FinishReason | null; logprobs: null }>;
  usage?: Usage;
}

export interface ModelInfo {
  architecture: 'lfm2' | 'lfm2moe';
  name: string;
  gguf_version: number;
  file_size: number;
  n_tensors: number;
  n_layer: number;
  n_embd: number;
  n_vocab: number;
  context_length: number;
  n_head: number;
  head_dim: number;
  n_ff: number;
  rope_theta: number;
  rms_eps: number;
  conv_l_cache: number;
  /** One letter a layer: C short-conv, A attention. */
  layers: string;
  n_head_kv: number[];
  n_expert?: number;
  n_expert_used?: number;
  n_ff_exp?: number;
  n_dense_lead?: number;
  n_params: number;
  tensor_bytes: number;
  expert_bytes: number;
  dense_bytes: number;
  tensor_types: Record<string, { tensors: number; bytes: number }>;
  context_length_used: number;
  threads: number;
}

export interface Stats {
  n_past: number;
  context_length: number;
  /** Size of the wasm heap. */
  memory_bytes: number;
  expert_hits: number;
  expert_misses: number;
  expert_evictions: number;
  /** Bytes read by expert misses, and the time spent reading them. */
  bytes_read: number;
  read_seconds: number;
  /** The part of read_seconds not overlapped with the other threads' compute. */
  read_wait_seconds: number;
  dense_bytes: number;
  expert_bytes: number;
  context_bytes: number;
  /** 0: no limit. */
  budget: number;
  expert_slots: number;
  last: null | {
    prompt_tokens: number;
    cached_tokens: number;
    evaluated_tokens: number;
    completion_tokens: number;
    prefill_ms: number;
    decode_ms: number;
    prefill_tokens_per_s: number;
    decode_tokens_per_s: number;
    finish_reason: FinishReason;
  };
  totals: { requests: number; promptTokens: number; cachedTokens: number; evaluatedTokens: number; generatedTokens: number };
}

/** The OpenAI-style generation calls, the same in Node and in the browser. */
export interface CompletionsAPI {
  chat: {
    completions: {
      create(req: ChatCompletionRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
      create(req: ChatCompletionRequest & { stream?: false }): Promise<ChatCompletion>;
    };
  };
  completions: {
    create(req: CompletionRequest & { stream: true }): Promise<AsyncIterable<Completion>>;
    create(req: CompletionRequest & { stream?: false }): Promise<Completion>;
  };
}

/** A loaded model with its evaluation state. */
export interface LFM2Model extends CompletionsAPI {
  /** The prompt text the model's chat template makes of a conversation. */
  applyChatTemplate(messages: ChatMessage[], opts?: { tools?: Tool[]; addGenerationPrompt?: boolean }): string;
  /** addSpecial: add BOS as the model asks (default true); parseSpecial: match special tokens (default true). */
  tokenize(text: string, opts?: { addSpecial?: boolean; parseSpecial?: boolean }): number[];
  /** renderSpecial (default true); cleanSpaces: llama.cpp's space cleaning (default true). */
  detokenize(ids: ArrayLike<number>, opts?: { renderSpecial?: boolean; cleanSpaces?: boolean }): string;
  info(): ModelInfo;
  stats(): Stats;
  unload(): void;
}
