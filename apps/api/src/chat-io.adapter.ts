import { INestApplicationContext, Logger } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import Redis from 'ioredis';
import { Server, ServerOptions } from 'socket.io';

import { AppConfig } from '@parley/core';

import { setEssentialHeadersFirst } from './security-headers';

const MAX_FRAME_BYTES = 64 * 1024;

/**
 * Socket.IO with limits: small frames, no polling upgrade tricks, and the Redis adapter when
 * REDIS_URL is set so rooms span every instance.
 */
export class ChatIoAdapter extends IoAdapter {
  private readonly log = new Logger('ChatIoAdapter');
  private readonly clients: Redis[] = [];

  constructor(
    app: INestApplicationContext,
    private readonly config: AppConfig,
  ) {
    super(app);
  }

  override createIOServer(port: number, options?: ServerOptions): Server {
    const server = super.createIOServer(port, {
      ...(options as ServerOptions),
      maxHttpBufferSize: MAX_FRAME_BYTES,
      pingInterval: 20_000,
      pingTimeout: 20_000,
      connectTimeout: 10_000,
      allowEIO3: false,
    }) as Server;
    // Engine.IO has just attached to the HTTP(S) server and answers /socket.io/ outside Fastify.
    setEssentialHeadersFirst(this.httpServer);
    if (this.config.redisUrl) {
      const publisher = new Redis(this.config.redisUrl, {
        lazyConnect: false,
        maxRetriesPerRequest: 2,
      });
      const subscriber = publisher.duplicate();
      for (const client of [publisher, subscriber]) {
        client.on('error', (error) =>
          this.log.warn({ err: error.message }, 'redis adapter connection error'),
        );
        this.clients.push(client);
      }
      server.adapter(createAdapter(publisher, subscriber));
      this.log.log('socket rooms shared through Redis');
    } else {
      this.log.log('no REDIS_URL: socket rooms are local to this single instance');
    }

    return server;
  }

  override async close(server: Server): Promise<void> {
    await super.close(server);
    await Promise.all(this.clients.map((client) => client.quit().catch(() => undefined)));
  }
}
