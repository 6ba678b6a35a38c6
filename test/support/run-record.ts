import { appendFileSync, closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { basename, join, relative } from 'node:path';

import { Socket } from 'socket.io-client';

import { isRedactedKey } from '@parley/core';

import { RECORDED_MIN_LENGTH, RUN_DIR_VARIABLE, SentValue } from './run-folder';

function runDirectory(): string | undefined {
  return process.env[RUN_DIR_VARIABLE] || undefined;
}

/** The test file running in this module registry, relative to the repository. */
export function currentTestFile(): string {
  const path = typeof expect === 'undefined' ? undefined : expect.getState().testPath;

  return path ? relative(process.cwd(), path) : 'unknown';
}

function fileLabel(file: string): string {
  return basename(file).replace(/[^A-Za-z0-9.-]/g, '_');
}

let logFiles = 0;

/**
 * Where one log capture appends its lines for the whole-run check; every line is written as it
 * is logged, so a server a suite never closed still counts.
 */
export class RunLogFile {
  private descriptor: number | undefined;

  private constructor(readonly path: string) {}

  /** A new file in this run's `logs/` folder, or undefined when no run folder is set. */
  static open(): RunLogFile | undefined {
    const directory = runDirectory();
    if (!directory) {
      return undefined;
    }
    mkdirSync(join(directory, 'logs'), { recursive: true });
    logFiles += 1;
    const name = `${fileLabel(currentTestFile())}.${process.pid}.${logFiles}.jsonl`;

    return new RunLogFile(join(directory, 'logs', name));
  }

  append(line: string): void {
    this.descriptor ??= openSync(this.path, 'a');
    writeSync(this.descriptor, line.endsWith('\n') ? line : `${line}\n`);
  }

  /** Closes the file; a later line opens it again. */
  close(): void {
    if (this.descriptor !== undefined) {
      closeSync(this.descriptor);
      this.descriptor = undefined;
    }
  }
}

const recorded = new Set<string>();

function recordValue(field: string, value: string, via: string): void {
  const directory = runDirectory();
  if (!directory || value.length < RECORDED_MIN_LENGTH || recorded.has(value)) {
    return;
  }
  recorded.add(value);
  mkdirSync(join(directory, 'values'), { recursive: true });
  const file = currentTestFile();
  const entry: SentValue = { field, via, file, value };
  appendFileSync(
    join(directory, 'values', `${fileLabel(file)}.${process.pid}.jsonl`),
    `${JSON.stringify(entry)}\n`,
  );
}

/** Every string at or under a key, however deeply it nests. */
function strings(value: unknown, found: string[] = [], depth = 0): string[] {
  if (typeof value === 'string') {
    found.push(value);
  } else if (value !== null && typeof value === 'object' && depth < 32) {
    for (const item of Object.values(value)) {
      strings(item, found, depth + 1);
    }
  }

  return found;
}

/**
 * Records every value a request body or socket payload carries under a confidential,
 * restricted or credential name (the names the classification marks give, as the log
 * redaction uses them), at any depth.
 */
export function recordSentValues(payload: unknown, via: string, depth = 0): void {
  if (!runDirectory() || payload === null || typeof payload !== 'object' || depth > 32) {
    return;
  }
  for (const [key, value] of Object.entries(payload)) {
    if (isRedactedKey(key)) {
      for (const text of strings(value)) {
        recordValue(key, text, via);
      }
    } else {
      recordSentValues(value, via, depth + 1);
    }
  }
}

/** Records a credential (a token received, a key) that no log line of the run may contain. */
export function recordCredential(value: string, via: string): void {
  recordValue('credential', value, via);
}

let socketsRecorded = false;

/**
 * Makes every socket.io-client socket of this test file record what it emits (`emit`,
 * `emitWithAck`, `timeout().emit...`), however the suite opened it.
 */
export function recordSocketSends(): void {
  if (socketsRecorded) {
    return;
  }
  socketsRecorded = true;
  const prototype = Socket.prototype as unknown as {
    emit: (this: Socket, event: string, ...args: unknown[]) => unknown;
  };
  const emit = prototype.emit;
  prototype.emit = function recordedEmit(this: Socket, event: string, ...args: unknown[]) {
    recordSentValues(args, `socket ${event}`);

    return emit.call(this, event, ...args);
  };
}
