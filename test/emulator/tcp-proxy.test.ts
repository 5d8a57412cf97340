/**
 * test/helpers/tcp-proxy.ts against the real emulator: it forwards keep-alive HTTP unchanged,
 * destroys both sockets for a request whose body has a marker (the engine never sees it), finds
 * markers across chunk boundaries and inside JSON strings, drops everything while told to (an
 * in-flight request is aborted at the engine), and closes clients when the engine is down.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy, type TcpProxyOptions } from '../helpers/tcp-proxy.ts';
import { call, chatBody, dataUrl, emulatorsForFile, makeImage, waitFor } from './helpers.ts';

const { agent, emulator } = emulatorsForFile();
const proxies: TcpProxy[] = [];
afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()));
});

async function proxyTo(url: string, options: Partial<TcpProxyOptions> = {}): Promise<TcpProxy> {
  const p = await startTcpProxy({ target: url, ...options });
  proxies.push(p);
  return p;
}

/** The error code of a failed exchange (UND_ERR_SOCKET for a closed connection, ECONNRESET, ...), or the status. */
async function outcome(p: Promise<{ status: number }>): Promise<number | string> {
  try {
    return (await p).status;
  } catch (err) {
    const e = err as { code?: string; cause?: { code?: string } };
    return e.code ?? e.cause?.code ?? String(err);
  }
}

const post = (url: string, text: string, extra: Record<string, unknown> = {}) =>
  call(agent, `${url}/v1/chat/completions`, { body: chatBody(text, [], { max_tokens: 10, ...extra }) });

/** Sends raw bytes on a fresh connection; resolves with what came back before the close. */
async function raw(port: number, parts: string[]): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString()));
  socket.on('error', () => {});
  for (const part of parts) {
    socket.write(part);
    await new Promise((r) => setImmediate(r));
  }
  const closed = once(socket, 'close');
  // A forwarded request is answered; then we close our side.
  await waitFor('an answer or a close', () => received.includes('\r\n\r\n') || socket.destroyed || socket.readableEnded, 10_000);
  if (received.includes('\r\n\r\n')) await waitFor('the whole answer', () => /"usage"/.test(received), 10_000);
  socket.end();
  await closed;
  return received;
}

function chunked(body: string, cut: number): string[] {
  const a = body.slice(0, cut);
  const b = body.slice(cut);
  const head = 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
  const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
  return [head + chunk(a), chunk(b), '0\r\n\r\n'];
}

describe('forwarding', () => {
  it('passes keep-alive requests and large bodies through unchanged', async () => {
    const emu = await emulator({ speed: 100 });
    const proxy = await proxyTo(emu.url, { dropMarkers: ['NEVER-SENT'] });
    const img = dataUrl(await makeImage(1288, 1000, 'png', 3));
    const direct = await call(agent, `${emu.url}/v1/chat/completions`, { body: chatBody('a page', [img], { max_tokens: 60 }) });
    for (let i = 0; i < 4; i++) {
      const r = await call(agent, `${proxy.url}/v1/chat/completions`, { body: chatBody('a page', [img], { max_tokens: 60 }) });
      expect(r.status).toBe(200);
      expect(r.json.choices[0].message.content).toBe(direct.json.choices[0].message.content);
    }
    expect(proxy.stats()).toMatchObject({ requests: 4, forwarded: 4, drops: 0 });
    // Connections are reused (undici opens a second one early on; never one per request).
    expect(proxy.stats().connections).toBeLessThan(4);
  });
});

describe('drop by marker', () => {
  it('destroys both sockets before the engine sees the request; the next request goes through', async () => {
    const emu = await emulator({ speed: 100 });
    const proxy = await proxyTo(emu.url, { dropMarkers: ['<!-- page 3 -->'] });
    const drop = once(proxy, 'drop');
    expect(await outcome(post(proxy.url, 'page text <!-- page 3 --> more'))).toBe('UND_ERR_SOCKET');
    expect((await drop)[0]).toEqual({ marker: '<!-- page 3 -->', requestLine: 'POST /v1/chat/completions HTTP/1.1' });
    expect(emu.stats().requests).toBe(0);
    expect(await outcome(post(proxy.url, 'page 4'))).toBe(200);
    expect(proxy.stats()).toMatchObject({ drops: 1, dropsByMarker: { '<!-- page 3 -->': 1 }, forwarded: 1 });
    expect(emu.stats().requests).toBe(1);
  });

  it('resets instead with reset: true; markers change at run time and match inside JSON strings', async () => {
    const emu = await emulator({ speed: 100 });
    const proxy = await proxyTo(emu.url, { reset: true });
    expect(await outcome(post(proxy.url, 'say "hi" now'))).toBe(200);
    proxy.setDropMarkers(['say "hi"']);
    expect(await outcome(post(proxy.url, 'say "hi" now'))).toBe('ECONNRESET');
    expect(proxy.stats().drops).toBe(1);
    expect(() => proxy.setDropMarkers([''])).toThrow(TypeError);
  });

  it('finds a marker split across chunks of a chunked body, and forwards chunked bodies without one', async () => {
    const emu = await emulator({ speed: 100 });
    const proxy = await proxyTo(emu.url, { dropMarkers: ['MARKER-42'] });
    const body = JSON.stringify(chatBody('before MARKER-42 after', [], { max_tokens: 5 }));
    const dropped = await raw(proxy.port, chunked(body, body.indexOf('MARKER-42') + 4));
    expect(dropped).toBe('');
    const fine = JSON.stringify(chatBody('before MARKER-41 after', [], { max_tokens: 5 }));
    const answered = await raw(proxy.port, chunked(fine, 30));
    expect(answered).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(proxy.stats()).toMatchObject({ drops: 1, forwarded: 1 });
    expect(emu.stats().requests).toBe(1);
  });
});

describe('drop everything', () => {
  it('kills in-flight requests (aborted at the engine) and refuses new ones until switched off', async () => {
    const emu = await emulator({ speed: 1, outputTokensMin: 5000, outputTokensMax: 5000 });
    const proxy = await proxyTo(emu.url);
    const inFlight = outcome(post(proxy.url, 'a long answer', { max_tokens: 5000 }));
    await waitFor('the request running at the engine', () => emu.stats().running === 1);
    proxy.setDropAll(true);
    expect(await inFlight).toBe('UND_ERR_SOCKET');
    await waitFor('the engine to see the abort', () => emu.stats().aborted === 1);
    expect(await outcome(post(proxy.url, 'while dead'))).toBe('UND_ERR_SOCKET');
    expect(proxy.stats().droppedConnections).toBe(2);
    proxy.setDropAll(false);
    emu.setTiming({ speed: 100, outputTokensMin: 10, outputTokensMax: 10 });
    expect(await outcome(post(proxy.url, 'alive again'))).toBe(200);

    const gap = proxy.dropAllFor(300);
    expect(await outcome(post(proxy.url, 'in the gap'))).toBe('UND_ERR_SOCKET');
    await gap;
    expect(await outcome(post(proxy.url, 'after the gap'))).toBe(200);
  });

  it('closes the client when the engine behind it is down, and forwards again once it is back', async () => {
    const emu = await emulator({ speed: 100, deathExitMs: 50, restartDelayMs: 400 });
    const proxy = await proxyTo(emu.url);
    emu.kill();
    await waitFor('the engine port closed', () => emu.stats().state === 'down');
    expect(await outcome(post(proxy.url, 'nobody home'))).toBe('UND_ERR_SOCKET');
    expect(proxy.stats().upstreamFailures).toBe(1);
    await waitFor('the engine back', () => emu.stats().state === 'alive');
    expect(await outcome(post(proxy.url, 'back'))).toBe(200);
  });

  it('close() stops listening and leaves no socket', async () => {
    const emu = await emulator({ speed: 100 });
    const proxy = await proxyTo(emu.url);
    expect(await outcome(post(proxy.url, 'x'))).toBe(200);
    await proxy.close();
    await proxy.close();
    expect(await outcome(post(proxy.url, 'y'))).toBe('ECONNREFUSED');
  });
});
