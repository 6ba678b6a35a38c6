import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';

/** Says when the server stops and why, so a stop in the log is never a silent disappearance. */
@Injectable()
export class ShutdownLog implements BeforeApplicationShutdown {
  private readonly logger = new Logger('Shutdown');

  beforeApplicationShutdown(signal?: string): void {
    this.logger.log({ signal: signal ?? null }, 'shutting down: finishing open requests');
  }
}
