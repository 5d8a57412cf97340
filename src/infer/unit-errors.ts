/**
 * What sending a unit (dispatch.ts) throws besides the engine's own errors: a failure for good
 * whatever its code's usual action, and a hand-back to the queue. The processor tells them apart.
 */
import { DocbatchError } from '../errors.ts';

/** The unit fails for good with this code, whatever the code's usual action (a unit refused 10 times). */
export class FinalUnitError extends DocbatchError {
  constructor(code: DocbatchError['code'], message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'FinalUnitError';
  }
}

/** Thrown when a unit should go back to the queue unchanged (no attempt used). */
export class ReleaseUnit extends DocbatchError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('ENGINE_DOWN', message, options);
    this.name = 'ReleaseUnit';
  }
}
