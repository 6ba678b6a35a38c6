import type { DestinationStream } from 'pino';

/** A pino destination that keeps every line in memory so a suite can read what was logged. */
export class LogCapture implements DestinationStream {
  readonly lines: string[] = [];

  write(line: string): void {
    this.lines.push(line);
  }

  /** Every captured line as parsed JSON; lines that are not JSON are kept as `{ raw }`. */
  entries(): Record<string, unknown>[] {
    return this.lines.map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return { raw: line };
      }
    });
  }

  text(): string {
    return this.lines.join('');
  }
}
