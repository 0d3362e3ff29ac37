// models.js: the models the chat page offers, in one list. Sizes are approximate (bytes, for the
// picker and the quota check's message); the store checks the real size from the server before it
// downloads. Repository and file names are LiquidAI's GGUF repositories on Hugging Face, as other
// public projects load them (e.g. LFM2-8B-A1B-Q4_0.gguf at about 4.7 GB, LFM2-350M-Q8_0.gguf at
// 379,214,784 bytes).
export const PRESETS = [
  { id: 'lfm2-8b-a1b-q4_0', label: 'LFM2-8B-A1B (MoE) Q4_0', size: 4.7e9, source: 'hf:LiquidAI/LFM2-8B-A1B-GGUF/LFM2-8B-A1B-Q4_0.gguf', default: true },
  { id: 'lfm2-8b-a1b-q4_k_m', label: 'LFM2-8B-A1B (MoE) Q4_K_M', size: 5.0e9, source: 'hf:LiquidAI/LFM2-8B-A1B-GGUF/LFM2-8B-A1B-Q4_K_M.gguf' },
  { id: 'lfm2-8b-a1b-q8_0', label: 'LFM2-8B-A1B (MoE) Q8_0', size: 8.9e9, source: 'hf:LiquidAI/LFM2-8B-A1B-GGUF/LFM2-8B-A1B-Q8_0.gguf' },
  { id: 'lfm2-1.2b-q4_0', label: 'LFM2-1.2B Q4_0', size: 0.70e9, source: 'hf:LiquidAI/LFM2-1.2B-GGUF/LFM2-1.2B-Q4_0.gguf' },
  { id: 'lfm2-1.2b-q8_0', label: 'LFM2-1.2B Q8_0', size: 1.25e9, source: 'hf:LiquidAI/LFM2-1.2B-GGUF/LFM2-1.2B-Q8_0.gguf' },
  { id: 'lfm2-350m-q8_0', label: 'LFM2-350M Q8_0', size: 379214784, source: 'hf:LiquidAI/LFM2-350M-GGUF/LFM2-350M-Q8_0.gguf' },
  { id: 'demo-tiny', label: 'Demo (tiny, random weights)', size: 401024, source: './models/demo-tiny.gguf' },
];
