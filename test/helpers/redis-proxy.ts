/**
 * A plain TCP forwarder in front of the test Redis, on a fixed port once chosen, that can be
 * taken down (listener closed, every connection destroyed: clients see ECONNREFUSED on
 * reconnect) and brought back on the same port: Redis going away and coming back, for one
 * process, without touching the Redis other tests share.
 *
 *     const proxy = await startRedisProxy();   // proxy.url: redis://127.0.0.1:<port>
 *     await proxy.down(); ... await proxy.up(); await proxy.close();
 *
 * `dropReplyOf(match)`: the next command a client sends that `match`es goes to Redis (it runs),
 * then that connection is closed before the reply comes down: a reply lost, which ioredis
 * answers by sending the command again once reconnected (autoResendUnfulfilledCommands).
 * `dropped` counts them. With `{ down: true }` the proxy goes down at that moment too (as
 * `down()`): the client stays away, its command unanswered, until `up()`.
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { TEST_REDIS_URL } from './redis.ts';

export interface RedisProxy {
  readonly url: string;
  dropReplyOf(match: (chunk: Buffer) => boolean, options?: { down?: boolean }): void;
  holdReplyOf(match: (chunk: Buffer) => boolean, action: () => Promise<void>): void;
  readonly dropped: number;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startRedisProxy(target = TEST_REDIS_URL): Promise<RedisProxy> {
  const t = new URL(target);
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  };
  let port = 0;
  let server: Server | null = null;
  let dropMatch: ((chunk: Buffer) => boolean) | null = null;
  let downOnDrop = false;
  let dropped = 0;
  let holdMatch: { match: (chunk: Buffer) => boolean; action: () => Promise<void> } | null = null;
  const listen = async () => {
    const s = createServer((client) => {
      track(client);
      const upstream = connect(Number(t.port || 6379), t.hostname);
      track(upstream);
      let armed = false;
      let holding: (() => Promise<void>) | null = null;
      client.on('data', (chunk) => {
        if (dropMatch?.(chunk)) {
          dropMatch = null;
          armed = true;
        }
        if (holdMatch?.match(chunk)) {
          holding = holdMatch.action;
          holdMatch = null;
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk) => {
        if (holding) {
          const action = holding;
          holding = null;
          upstream.pause();
          void action().finally(() => {
            client.write(chunk);
            upstream.resume();
          });
          return;
        }
        if (armed) {
          dropped++;
          client.destroy();
          upstream.destroy();
          if (downOnDrop) {
            downOnDrop = false;
            void stop();
          }
          return;
        }
        client.write(chunk);
      });
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    s.listen(port, '127.0.0.1');
    await once(s, 'listening');
    port = (s.address() as AddressInfo).port;
    server = s;
  };
  const stop = async () => {
    const s = server;
    server = null;
    for (const socket of sockets) socket.destroy();
    if (s) await new Promise<void>((ok) => s.close(() => ok()));
  };
  await listen();
  return {
    url: `redis://127.0.0.1:${port}`,
    dropReplyOf: (match, options) => {
      dropMatch = match;
      downOnDrop = options?.down === true;
    },
    holdReplyOf: (match, action) => {
      holdMatch = { match, action };
    },
    get dropped() {
      return dropped;
    },
    down: stop,
    up: listen,
    close: stop,
  };
}
