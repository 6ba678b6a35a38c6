import { Controller, Get, HttpCode, HttpStatus, Logger, Res } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';

import { Policy } from '@parley/authz';
import { DatabaseHealth } from '@parley/database';

interface ReplyLike {
  status(code: number): ReplyLike;
  send(body: unknown): void;
}

@ApiTags('health')
@Controller('health')
@SkipThrottle({ api: true, credentials: true })
export class HealthController {
  private readonly logger = new Logger(HealthController.name);

  constructor(private readonly database: DatabaseHealth) {}

  @Get('live')
  @HttpCode(HttpStatus.OK)
  @Policy.public()
  @ApiOkResponse({ description: 'the process is up' })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Ready when the database answers and every migration this build knows has been applied. */
  @Get('ready')
  @Policy.public()
  @ApiOkResponse({ description: 'the database is reachable and migrated' })
  async ready(@Res() reply: ReplyLike): Promise<void> {
    const database = await this.database.status();
    if (!database.reachable) {
      this.logger.warn({ reason: database.error }, 'readiness check: database unreachable');
    }
    if (database.unknownMigrations.length > 0) {
      this.logger.warn(
        { unknown: database.unknownMigrations },
        'readiness check: the database was migrated by a newer version of Parley',
      );
    }
    const ready =
      database.reachable &&
      database.pendingMigrations.length === 0 &&
      database.unknownMigrations.length === 0;
    reply.status(ready ? 200 : 503).send({
      status: ready ? 'ok' : 'unavailable',
      checks: {
        database: database.reachable ? 'up' : 'down',
        migrations:
          database.unknownMigrations.length > 0
            ? `${database.unknownMigrations.length} unknown`
            : database.pendingMigrations.length === 0
              ? 'applied'
              : `${database.pendingMigrations.length} pending`,
      },
    });
  }
}
