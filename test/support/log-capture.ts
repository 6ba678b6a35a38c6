import type { DestinationStream } from 'pino';

import { RunLogFile } from './run-record';

/**
 * A pino destination that keeps every line in memory so a suite can read what was logged, and,
 * given a run file, also appends each line there for the check at the end of the whole run.
 */
export class LogCapture implements DestinationStream {
  readonly lines: string[] = [];

  constructor(private readonly runFile?: RunLogFile) {}

  write(line: string): void {
    this.lines.push(line);
    this.runFile?.append(line);
  }

  /** Closes the run file, if any; a line logged later opens it again. */
  close(): void {
    this.runFile?.close();
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
