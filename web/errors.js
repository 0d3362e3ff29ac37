// errors.js: every failure the library reports is an LFM2Error with a stable `code`
// (the engine's status name such as "LFM2_E_TRUNCATED", or a JS-side code such as "ERR_ARG").
export class LFM2Error extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'LFM2Error';
    this.code = code;
  }
}
