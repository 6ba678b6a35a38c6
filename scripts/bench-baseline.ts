import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';

import Fastify from 'fastify';
import { Pool } from 'pg';
import { Server } from 'socket.io';

import { ensureDatabase } from './bench-database';

// The "limit" servers of scripts/bench.ts, run as its child process so that they do not share
// an event loop with the load generator: a bare Socket.IO server on /chat whose message:send
// is one pg insert, and a bare Fastify route whose message list is one pg select. No Nest, no
// auth, no tenancy; whatever Parley spends beyond these is its own overhead.

const DEFAULT_BENCH_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/parley_bench';

const POOL_SIZE = 10;

interface BaselineSettings {
  databaseUrl: string;
  readRows: number;
  readSeedText: string;
}

export interface BaselineReady {
  type: 'ready';
  socketUrl: string;
  httpUrl: string;
  readConversationId: string;
  readRows: number;
}

interface StoredMessageRow {
  id: string;
  conversation_id: string;
  body: string;
  created_at: Date;
}

function readSettings(): BaselineSettings {
  const readRows = Number(process.env.BENCH_READ_ROWS ?? '20');
  if (!Number.isInteger(readRows) || readRows < 0) {
    throw new Error(`BENCH_READ_ROWS must be a non-negative integer, got ${readRows}`);
  }

  return {
    databaseUrl: process.env.BENCH_DATABASE_URL ?? DEFAULT_BENCH_DATABASE_URL,
    readRows,
    readSeedText: process.env.BENCH_READ_SEED_TEXT ?? 'Seeded message for the read benchmark',
  };
}

async function prepareTable(pool: Pool, settings: BaselineSettings): Promise<string> {
  await pool.query(`
    create table if not exists bench_messages (
      id uuid default gen_random_uuid() primary key,
      conversation_id uuid,
      body text,
      created_at timestamptz default now()
    )`);

  // Parley reads a conversation's messages through an index; without one the baseline would
  // scan the whole table and flatter every ratio.
  await pool.query(
    'create index if not exists bench_messages_conversation_created_idx ' +
      'on bench_messages (conversation_id, created_at)',
  );

  // Each run starts from an empty table so that runs compare with each other.
  await pool.query('truncate bench_messages');

  const readConversationId = randomUUID();
  await pool.query(
    `insert into bench_messages (conversation_id, body, created_at)
     select $1::uuid, $2::text || ' #' || n, now() - (($3::int - n) * interval '1 second')
     from generate_series(1, $3::int) as n`,
    [readConversationId, settings.readSeedText, settings.readRows],
  );

  return readConversationId;
}

function toMessageView(row: StoredMessageRow, authorId: string) {
  return {
    id: row.id,
    conversationId: row.conversation_id,
    authorType: 'agent',
    authorId,
    body: row.body,
    createdAt: row.created_at.toISOString(),
  };
}

async function startSocketServer(pool: Pool) {
  const httpServer = createServer();
  const io = new Server(httpServer, { serveClient: false });
  const chat = io.of('/chat');

  chat.on('connection', (socket) => {
    const authorId = randomUUID();

    socket.on('conversation:join', async (payload: unknown, ack?: (reply: unknown) => void) => {
      const conversationId = readConversationId(payload);
      if (!conversationId) {
        ack?.({ ok: false, error: { code: 'INVALID_PAYLOAD', message: 'conversationId' } });

        return;
      }

      await socket.join(conversationId);
      ack?.({ ok: true, conversationId });
    });

    socket.on('message:send', async (payload: unknown, ack?: (reply: unknown) => void) => {
      const conversationId = readConversationId(payload);
      const body = readBody(payload);
      if (!conversationId || body === undefined) {
        ack?.({ ok: false, error: { code: 'INVALID_PAYLOAD', message: 'conversationId, body' } });

        return;
      }

      try {
        const result = await pool.query<StoredMessageRow>(
          'insert into bench_messages (conversation_id, body) values ($1, $2) ' +
            'returning id, conversation_id, body, created_at',
          [conversationId, body],
        );
        const message = toMessageView(result.rows[0], authorId);
        ack?.({ ok: true, message });
        chat.to(conversationId).emit('message:new', message);
      } catch (error) {
        const detail = error instanceof Error ? error.message : String(error);
        ack?.({ ok: false, error: { code: 'INSERT_FAILED', message: detail } });
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (httpServer.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => io.close(() => resolve())),
  };
}

async function startHttpServer(pool: Pool, readRows: number) {
  const app = Fastify({ logger: false });
  const authorId = randomUUID();

  app.get<{ Params: { conversationId: string } }>(
    '/conversations/:conversationId/messages',
    async (request) => {
      const result = await pool.query<StoredMessageRow>(
        'select id, conversation_id, body, created_at from bench_messages ' +
          'where conversation_id = $1 order by created_at, id limit $2',
        [request.params.conversationId, readRows],
      );

      return { items: result.rows.map((row) => toMessageView(row, authorId)) };
    },
  );

  const url = await app.listen({ port: 0, host: '127.0.0.1' });

  return { url, close: () => app.close() };
}

function readConversationId(payload: unknown): string | undefined {
  if (typeof payload !== 'object' || payload === null) {
    return undefined;
  }

  const value = (payload as Record<string, unknown>).conversationId;

  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function readBody(payload: unknown): string | undefined {
  if (typeof payload !== 'object' || payload === null) {
    return undefined;
  }

  const value = (payload as Record<string, unknown>).body;

  return typeof value === 'string' ? value : undefined;
}

function announce(message: object): void {
  if (process.send) {
    process.send(message);
  } else {
    console.log(JSON.stringify(message));
  }
}

async function main(): Promise<void> {
  const settings = readSettings();

  await ensureDatabase(settings.databaseUrl);

  const pool = new Pool({ connectionString: settings.databaseUrl, max: POOL_SIZE });
  const readConversationId = await prepareTable(pool, settings);

  const socketServer = await startSocketServer(pool);
  const httpServer = await startHttpServer(pool, settings.readRows);

  let stopping = false;
  const stop = async () => {
    if (stopping) {
      return;
    }
    stopping = true;

    await Promise.allSettled([socketServer.close(), httpServer.close()]);
    await pool.end();
    process.exit(0);
  };
  process.on('disconnect', () => void stop());
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());

  const ready: BaselineReady = {
    type: 'ready',
    socketUrl: socketServer.url,
    httpUrl: httpServer.url,
    readConversationId,
    readRows: settings.readRows,
  };
  announce(ready);
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  announce({ type: 'error', message });
  console.error(`bench-baseline: ${message}`);
  process.exit(1);
});
