/**
 * The reconciler settles a unit that failed outside a worker from its BullMQ reason
 * (src/write/reconcile.ts parseReason). Only docbatch's own codes are taken as codes: a reason
 * like "ENOENT: no such file" (an error that reached BullMQ raw) was listed in the report and the
 * output as code ENOENT, no code of ERROR_CODES (not in docs/errors.md, and `retry --code` and
 * the action table know nothing of it). It is INTERNAL now, the reason kept whole.
 */
import { expect, it } from 'vitest';
import { parseReason } from '../../src/write/reconcile.ts';

it('takes docbatch codes; keeps anything else whole under INTERNAL; a stall is UNIT_STALLED', () => {
  expect(parseReason('ARCHIVE_CORRUPT: the results archive is damaged')).toEqual({ code: 'ARCHIVE_CORRUPT', message: 'the results archive is damaged' });
  expect(parseReason('PAGE_TOO_LARGE: multi\nline')).toEqual({ code: 'PAGE_TOO_LARGE', message: 'multi\nline' });
  expect(parseReason("ENOENT: no such file or directory, open '/blobs/ab/cd'")).toEqual({ code: 'INTERNAL', message: "ENOENT: no such file or directory, open '/blobs/ab/cd'" });
  expect(parseReason('ECONNRESET: socket hang up')).toMatchObject({ code: 'INTERNAL' });
  expect(parseReason('job stalled more than allowable limit')).toMatchObject({ code: 'UNIT_STALLED' });
  expect(parseReason('something odd')).toEqual({ code: 'INTERNAL', message: 'something odd' });
});
