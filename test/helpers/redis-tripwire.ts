/**
 * A TCP forwarder in front of the test Redis that lets a test stop a process at a chosen moment:
 * when a client sends a command whose bytes match `trip` (e.g. the key a settle writes and the
 * unit it settles), that command is forwarded (Redis runs it), then nothing more from any of
 * the forwarder's clients reaches Redis, and `onTrip` runs before any other byte is read (it
 * SIGKILLs the process, say). So the process dies exactly after that command, before the next
 * one: between a unit's result being stored and its write job being added, or its job acked.
 * With `before: true` the matching command is not forwarded either.
 *
 * A process that only some of its connections point here still talks to Redis on the others:
 * point all of them (REDIS_URL) at `url`.
 *
 *     const wire = await startRedisTripwire({ trip: (b) => b.includes('…'), onTrip: () => child.kill('SIGKILL') });
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { TEST_REDIS_URL } from './redis.ts';

export interface RedisTripwireOptions {
  /** Whether a chunk the client sent holds the command to stop after. */
  trip: (chunk: Buffer) => boolean;
  /** Runs once, synchronously, right after the matching chunk was forwarded (or before, see `before`). */
  onTrip: () => void;
  /** Do not forward the matching chunk. @defaultValue false */
  before?: boolean;
  target?: string;
}

export interface RedisTripwire {
  readonly url: string;
  /** Whether it tripped. */
  tripped(): boolean;
  close(): Promise<void>;
}

export async function startRedisTripwire(options: RedisTripwireOptions): Promise<RedisTripwire> {
  const t = new URL(options.target ?? TEST_REDIS_URL);
  const sockets = new Set<Socket>();
  let tripped = false;
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  };
  const server: Server = createServer((client) => {
    track(client);
    const upstream = connect(Number(t.port || 6379), t.hostname);
    track(upstream);
    client.on('data', (chunk: Buffer) => {
      if (tripped) return;
      if (options.trip(chunk)) {
        tripped = true;
        if (!options.before) upstream.write(chunk);
        options.onTrip();
        return;
      }
      upstream.write(chunk);
    });
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    tripped: () => tripped,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}
