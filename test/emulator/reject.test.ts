/**
 * The reject fault over real HTTP: requests whose text contains a given string (or any of a list
 * of page markers) get 400 BadRequestError, in every error style, counted; changed at run time so
 * a test can "fix" the engine and see the same requests succeed.
 */
import { describe, expect, it } from 'vitest';
import { optionsFromFlags } from '../../src/emulator/flags.ts';
import { call, chatBody, emulatorsForFile } from './helpers.ts';

const { agent, emulator } = emulatorsForFile();

const page = (n: number) => chatBody(`<!-- page ${n} -->\nSome text of page ${n}.`, [], { max_tokens: 20 });
const post = (url: string, body: unknown) => call(agent, `${url}/v1/chat/completions`, { body });

describe('reject', () => {
  it('answers 400 for the pages named, 200 for the others, until the rule is lifted', async () => {
    const emu = await emulator({ speed: 100, reject: { matchText: ['<!-- page 2 -->', '<!-- page 4 -->'] } });
    const first = await Promise.all([1, 2, 3, 4].map((n) => post(emu.url, page(n))));
    expect(first.map((r) => r.status)).toEqual([200, 400, 200, 400]);
    expect(first[1]?.json).toEqual({
      error: { message: 'The request was rejected: its text contains "<!-- page 2 -->".', type: 'BadRequestError', param: null, code: 400 },
    });
    expect(emu.stats().errors.rejected).toBe(2);

    emu.setFaults({ reject: null }); // the engine is "fixed"
    const retried = await Promise.all([2, 4].map((n) => post(emu.url, page(n))));
    expect(retried.map((r) => r.status)).toEqual([200, 200]);
    expect(emu.stats()).toMatchObject({ completed: 4, errorsTotal: 2 });
  });

  it('matches one string anywhere in any text part, with a message of choice, in the configured error style', async () => {
    const emu = await emulator({ speed: 100, errorStyle: 'flat' });
    const set = await call(agent, `${emu.url}/emulator/faults`, { body: { reject: { matchText: 'POISON', message: 'Failed to apply chat template.' } } });
    expect(set.status).toBe(200);
    const body = { messages: [{ role: 'system', content: 'POISON in the system prompt' }, { role: 'user', content: 'hello' }], max_tokens: 10 };
    const r = await post(emu.url, body);
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ object: 'error', message: 'Failed to apply chat template.', type: 'BadRequestError', param: null, code: 400 });
    const completion = await call(agent, `${emu.url}/v1/completions`, { body: { prompt: 'a POISON prompt' } });
    expect(completion.status).toBe(400);
    expect((await post(emu.url, chatBody('clean', [], { max_tokens: 10 }))).status).toBe(200);
  });

  it('is validated (TypeError naming the option) and has a repeatable flag', async () => {
    const emu = await emulator({ speed: 100 });
    expect(() => emu.setFaults({ reject: { matchText: '' } })).toThrow(/`reject.matchText` must be a non-empty string or a non-empty list/);
    expect(() => emu.setFaults({ reject: { matchText: [] } })).toThrow(/`reject.matchText`/);
    expect(() => emu.setFaults({ reject: { matchText: 'x', because: 1 } as never })).toThrow(/`reject` .*unknown key `because`/);
    expect(emu.faults().reject).toBeNull();
    expect(optionsFromFlags({ 'reject-match': ['<!-- page 2 -->', '<!-- page 9 -->'] }).reject).toEqual({ matchText: ['<!-- page 2 -->', '<!-- page 9 -->'] });
  });
});
