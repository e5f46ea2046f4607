import http from 'node:http';
import { AddressInfo } from 'node:net';
import { AgentClient, AgentError } from '../../agent/api/client';

type Handler = (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void;

async function serve(handler: Handler): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits++;
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => handler(req, body, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    hits: () => hits,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const json = (res: http.ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

describe('AgentClient', () => {
  test('sends the bearer token and JSON, parses the answer', async () => {
    const s = await serve((req, body, res) => {
      expect(req.headers.authorization).toBe('Bearer tok-123456');
      expect(req.method).toBe('PUT');
      expect(req.url).toBe('/v1/pools/p%201');
      expect(JSON.parse(body)).toEqual({ disks: ['/d'] });
      json(res, 201, { name: 'p 1', uuid: 'u', disks: ['/d'], state: 'online', capacityBytes: 1, usedBytes: 0 });
    });
    const c = new AgentClient({ url: s.url + '/', token: 'tok-123456', node: 'n1' });
    const p = await c.putPool('p 1', { disks: ['/d'] });
    expect(p.name).toBe('p 1');
    await s.close();
  });

  test('retries idempotent calls on 5xx with backoff, then succeeds', async () => {
    let n = 0;
    const s = await serve((_req, _b, res) => (++n < 3 ? json(res, 503, { error: { code: 'internal', message: 'busy' } }) : json(res, 200, [])));
    const c = new AgentClient({ url: s.url, token: 't', retries: 3, backoffMs: 1 });
    expect(await c.listPools()).toEqual([]);
    expect(s.hits()).toBe(3);
    await s.close();
  });

  test('gives up after the retries with the last 5xx error', async () => {
    const s = await serve((_req, _b, res) => json(res, 500, { error: { code: 'internal', message: 'disk on fire' } }));
    const c = new AgentClient({ url: s.url, token: 't', retries: 2, backoffMs: 1, node: 'node-a' });
    const e = (await c.listReplicas().catch((x) => x)) as AgentError;
    expect(e).toBeInstanceOf(AgentError);
    expect(e.status).toBe(500);
    expect(e.code).toBe('internal');
    expect(e.node).toBe('node-a');
    expect(e.message).toContain('node-a');
    expect(e.message).toContain('disk on fire');
    expect(s.hits()).toBe(3);
    await s.close();
  });

  test('never retries 4xx', async () => {
    const s = await serve((_req, _b, res) => json(res, 409, { error: { code: 'conflict', message: "pool 'p' already exists" } }));
    const c = new AgentClient({ url: s.url, token: 't', retries: 3, backoffMs: 1 });
    const e = (await c.putPool('p', { disks: ['/x'] }).catch((x) => x)) as AgentError;
    expect(e.status).toBe(409);
    expect(e.code).toBe('conflict');
    expect(s.hits()).toBe(1);
    await s.close();
  });

  test('never retries PATCH, even on 5xx', async () => {
    const s = await serve((_req, _b, res) => json(res, 503, { error: { code: 'internal', message: 'x' } }));
    const c = new AgentClient({ url: s.url, token: 't', retries: 3, backoffMs: 1 });
    await expect(c.patchReplica('u', { sizeBytes: 4096 })).rejects.toMatchObject({ status: 503 });
    expect(s.hits()).toBe(1);
    await s.close();
  });

  test('404: get* answers undefined, delete* answers false', async () => {
    const s = await serve((_req, _b, res) => json(res, 404, { error: { code: 'not_found', message: 'nope' } }));
    const c = new AgentClient({ url: s.url, token: 't' });
    expect(await c.getPool('p')).toBeUndefined();
    expect(await c.getReplica('u')).toBeUndefined();
    expect(await c.deletePool('p')).toBe(false);
    await s.close();
  });

  test('DELETE answering 204 is true; non-JSON error bodies are kept', async () => {
    const s = await serve((req, _b, res) => {
      if (req.method === 'DELETE') {
        res.writeHead(204);
        res.end();
      } else {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end('plain failure');
      }
    });
    const c = new AgentClient({ url: s.url, token: 't' });
    expect(await c.deleteReplica('u')).toBe(true);
    const e = (await c.health().catch((x) => x)) as AgentError;
    expect(e.status).toBe(400);
    expect(e.message).toContain('plain failure');
    await s.close();
  });

  test('connection refused: status 0 naming the node and URL, after retries', async () => {
    const s = await serve(() => undefined);
    const url = s.url;
    await s.close();
    const c = new AgentClient({ url, token: 't', node: 'node-b', retries: 2, backoffMs: 1 });
    const e = (await c.listPools().catch((x) => x)) as AgentError;
    expect(e).toBeInstanceOf(AgentError);
    expect(e.status).toBe(0);
    expect(e.code).toBe('unreachable');
    expect(e.message).toContain('node-b');
    expect(e.message).toContain(url);
  });

  test('timeout: status 0, code timeout', async () => {
    const s = await serve(() => undefined /* never answers */);
    const c = new AgentClient({ url: s.url, token: 't', timeoutMs: 200, retries: 1, backoffMs: 1 });
    const e = (await c.listPools().catch((x) => x)) as AgentError;
    expect(e.status).toBe(0);
    expect(e.code).toBe('timeout');
    expect(s.hits()).toBe(2);
    await s.close();
  });

  test('bad URLs are rejected at construction', () => {
    expect(() => new AgentClient({ url: 'not a url' })).toThrow(/url/);
    expect(() => new AgentClient({ url: 'ftp://x' })).toThrow(/http/);
  });
});

describe('AgentClient signal (Terraform StopProvider)', () => {
  test('aborts a read in flight, refuses new calls without sending them, and never retries', async () => {
    let held: http.ServerResponse | undefined;
    const s = await serve((_req, _b, res) => {
      held = res;
    }); // never answers
    const stop = new AbortController();
    const c = new AgentClient({ url: s.url, token: 't', node: 'node-a', retries: 3, backoffMs: 1, signal: stop.signal });
    const pending = c.listPools().catch((x) => x);
    while (!held) await new Promise((r) => setTimeout(r, 5));
    stop.abort();
    const e = (await pending) as AgentError;
    expect(e).toBeInstanceOf(AgentError);
    expect(e.code).toBe('cancelled');
    expect(e.message).toMatch(/node-a.*GET .*\/v1\/pools cancelled: the provider was asked to stop/);
    expect(s.hits()).toBe(1);
    const again = (await c.putPool('p', { disks: ['/d'] }).catch((x) => x)) as AgentError;
    expect(again.code).toBe('cancelled');
    expect(s.hits()).toBe(1);
    await s.close();
  });

  test('lets a change already sent finish, so its outcome is known', async () => {
    const stop = new AbortController();
    const s = await serve((_req, _b, res) => {
      stop.abort(); // Terraform stops while the agent is creating the pool
      setTimeout(() => json(res, 201, { name: 'p', uuid: 'u', disks: ['/d'], state: 'online', capacityBytes: 1, usedBytes: 0 }), 50);
    });
    const c = new AgentClient({ url: s.url, token: 't', signal: stop.signal });
    expect((await c.putPool('p', { disks: ['/d'] })).name).toBe('p');
    await s.close();
  });
});
