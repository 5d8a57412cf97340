/**
 * What a running worker, writer or dashboard says when its Redis goes away. A connection that
 * worked and then dropped (ECONNRESET, EPIPE: Redis restarted, `SHUTDOWN`, the network) was said
 * as at start: "is it Redis, and does it want TLS (rediss://)?", sending the operator of a Redis
 * that merely restarted to check ports and TLS. At start (the probe) that question stays.
 */
import { expect, it } from 'vitest';
import { RedisLink, redisProblem } from '../../queues/redis-link.ts';
import type { DocbatchError } from '../../src/errors.ts';

const URL = 'redis://ops:secret@10.0.0.5:6380/0';

function dropped(code: 'ECONNRESET' | 'EPIPE'): Error {
  return Object.assign(new Error(`read ${code}`), { code });
}

it('a running process whose connection dropped says Redis stopped or the network dropped, not TLS', () => {
  const link = new RedisLink({ url: URL, ping: () => Promise.resolve('PONG') });
  const said: DocbatchError[] = [];
  link.on('down', (problem) => said.push(problem));
  expect(link.noteError(dropped('ECONNRESET'))).toBe(true);
  link.close();
  expect(said).toHaveLength(1);
  expect(said[0]!.code).toBe('REDIS_UNREACHABLE');
  expect(said[0]!.message).toMatch(/^10\.0\.0\.5:6380 closed the connection \(ECONNRESET\): Redis stopped or restarted, or the network to it dropped/);
  expect(said[0]!.message).not.toMatch(/TLS|rediss/);
  expect(said[0]!.message).not.toMatch(/secret/);
});

it('at start, a connection closed at once still asks whether it is Redis and whether it wants TLS', () => {
  expect(redisProblem(dropped('EPIPE'), URL)!.message).toMatch(/closed the connection \(EPIPE\): is it Redis, and does it want TLS/);
});
