/**
 * The sign of a prompt a server cut to its context without a word (src/infer/truncated-prompt.ts):
 * pure, no server.
 */
import { describe, expect, it } from 'vitest';
import { promptWasCut } from '../../src/infer/truncated-prompt.ts';

describe('promptWasCut', () => {
  it('the count reported equals the known context while our estimate is well over it: cut', () => {
    expect(promptWasCut(4096, 6000, 4096)).toBe(true);
    expect(promptWasCut(2000, 2500, 2000)).toBe(true);
  });

  it('a count under the context, or an estimate not well over it: not cut (our estimate is rough)', () => {
    expect(promptWasCut(1500, 6000, 4096)).toBe(false); // a vision encoder cheaper than our estimate
    expect(promptWasCut(4096, 4200, 4096)).toBe(false);
    expect(promptWasCut(null, 9000, 4096)).toBe(false);
  });

  it('an Ollama that does not say its context: a power of two of 1024 or more, at most two thirds of the estimate', () => {
    expect(promptWasCut(2048, 3500, null)).toBe(true);
    expect(promptWasCut(2048, 2600, null)).toBe(false);
    expect(promptWasCut(2000, 3500, null)).toBe(false);
    expect(promptWasCut(512, 3500, null)).toBe(false);
  });
});
