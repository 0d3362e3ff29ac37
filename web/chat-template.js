// chat-template.js: renders a conversation with the model's own Jinja chat template
// (tokenizer.chat_template in the GGUF) through @huggingface/jinja.
import { Template } from '@huggingface/jinja';
import { LFM2Error } from './errors.js';

const ROLES = new Set(['system', 'user', 'assistant', 'tool']);

/** Check OpenAI-style messages; content may be a string or an array of {type:'text', text} parts. */
export function normalizeMessages(messages) {
  if (!Array.isArray(messages) || messages.length === 0)
    throw new LFM2Error('ERR_BAD_REQUEST', 'messages must be a non-empty array');
  return messages.map((msg, i) => {
    if (!msg || typeof msg !== 'object') throw new LFM2Error('ERR_BAD_REQUEST', `messages[${i}] is not an object`);
    if (!ROLES.has(msg.role)) throw new LFM2Error('ERR_BAD_REQUEST', `messages[${i}].role must be one of ${[...ROLES].join(', ')}, not ${JSON.stringify(msg.role)}`);
    let content = msg.content ?? '';
    if (Array.isArray(content)) {
      content = content.map((part, j) => {
        if (part?.type !== 'text' || typeof part.text !== 'string')
          throw new LFM2Error('ERR_BAD_REQUEST', `messages[${i}].content[${j}]: only {type: 'text', text} parts are supported`);
        return part.text;
      }).join('');
    }
    if (typeof content !== 'string') throw new LFM2Error('ERR_BAD_REQUEST', `messages[${i}].content must be a string or text parts`);
    const out = { role: msg.role, content };
    if (msg.tool_calls !== undefined) out.tool_calls = msg.tool_calls;
    if (msg.tool_call_id !== undefined) out.tool_call_id = msg.tool_call_id;
    if (msg.name !== undefined) out.name = msg.name;
    return out;
  });
}

export class ChatTemplate {
  /** @param {string} source Jinja; @param {{bos_token: string, eos_token: string}} specials */
  constructor(source, specials) {
    if (!source) throw new LFM2Error('ERR_NO_TEMPLATE', 'the model has no chat template (tokenizer.chat_template)');
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new LFM2Error('ERR_TEMPLATE', `the model's chat template does not parse: ${e.message}`);
    }
    this.specials = specials;
  }

  /** @returns {string} the prompt text, special tokens included as text */
  render(messages, { tools, addGenerationPrompt = true } = {}) {
    try {
      return this.template.render({
        messages: normalizeMessages(messages),
        add_generation_prompt: addGenerationPrompt,
        ...(tools ? { tools } : {}),
        ...this.specials,
      });
    } catch (e) {
      if (e instanceof LFM2Error) throw e;
      throw new LFM2Error('ERR_TEMPLATE', `rendering the chat template failed: ${e.message}`);
    }
  }
}
