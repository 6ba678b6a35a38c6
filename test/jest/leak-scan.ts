import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import type { SentValue } from '../support/run-folder';

/** A recorded value found in a log line. */
export interface Leak {
  sent: SentValue;
  /** The log file, relative to the run folder, and the 1-based line of the first occurrence. */
  logFile: string;
  line: number;
  /** How many log lines contain it, in all files. */
  lines: number;
}

export interface ScanResult {
  values: number;
  logFiles: number;
  logLines: number;
  leaks: Leak[];
}

/**
 * Many strings searched in one pass over a text (Aho-Corasick): every recorded value against
 * every log line of a run costs one walk over the logs, whatever the number of values.
 */
class Needles {
  private readonly next: Map<number, number>[] = [new Map()];
  private readonly fail: number[] = [0];
  private readonly ids: number[][] = [[]];
  private readonly outputLink: number[] = [0];

  add(text: string, id: number): void {
    let node = 0;
    for (let index = 0; index < text.length; index += 1) {
      const code = text.charCodeAt(index);
      let child = this.next[node].get(code);
      if (child === undefined) {
        child = this.next.length;
        this.next.push(new Map());
        this.fail.push(0);
        this.ids.push([]);
        this.outputLink.push(0);
        this.next[node].set(code, child);
      }
      node = child;
    }
    this.ids[node].push(id);
  }

  /** Links every node to the longest suffix that is also a prefix of some needle. */
  build(): void {
    const queue = [...this.next[0].values()];
    for (let head = 0; head < queue.length; head += 1) {
      const node = queue[head];
      for (const [code, child] of this.next[node]) {
        queue.push(child);
        let fallback = this.fail[node];
        while (fallback !== 0 && !this.next[fallback].has(code)) {
          fallback = this.fail[fallback];
        }
        const target = this.next[fallback].get(code);
        this.fail[child] = target !== undefined && target !== child ? target : 0;
        const failed = this.fail[child];
        this.outputLink[child] = this.ids[failed].length > 0 ? failed : this.outputLink[failed];
      }
    }
  }

  /** Calls back with the id and end index (exclusive) of every needle found in the text. */
  search(text: string, found: (id: number, end: number) => void): void {
    let node = 0;
    for (let index = 0; index < text.length; index += 1) {
      const code = text.charCodeAt(index);
      while (node !== 0 && !this.next[node].has(code)) {
        node = this.fail[node];
      }
      node = this.next[node].get(code) ?? 0;
      for (let match = node; match !== 0; match = this.outputLink[match]) {
        for (const id of this.ids[match]) {
          found(id, index + 1);
        }
      }
    }
  }
}

/**
 * Values shorter than this count only as a whole word: `member` is not found in
 * `assignee_not_member`, nor a six-digit MFA code inside a timestamp. Longer values (the
 * generated emails, passwords and tokens) count wherever they appear.
 */
const WHOLE_WORD_BELOW = 10;

function isWordCharacter(text: string, index: number): boolean {
  return index >= 0 && index < text.length && /[A-Za-z0-9_]/.test(text[index]);
}

function jsonLines(directory: string): { name: string; lines: string[] }[] {
  if (!existsSync(directory)) {
    return [];
  }

  return readdirSync(directory)
    .filter((name) => name.endsWith('.jsonl'))
    .sort()
    .map((name) => ({
      name,
      lines: readFileSync(join(directory, name), 'utf8')
        .split('\n')
        .filter((line) => line !== ''),
    }));
}

/**
 * Looks for every value recorded in `<run>/values/` in every line of `<run>/logs/`, as sent and
 * as JSON writes it inside a string (quotes, backslashes and control characters escaped).
 */
export function scanRunFolder(runDirectory: string): ScanResult {
  const byValue = new Map<string, SentValue>();
  for (const file of jsonLines(join(runDirectory, 'values'))) {
    for (const line of file.lines) {
      const sent = JSON.parse(line) as SentValue;
      if (!byValue.has(sent.value)) {
        byValue.set(sent.value, sent);
      }
    }
  }
  const values = [...byValue.values()];
  const needles = new Needles();
  const needleValue: number[] = [];
  const needleLength: number[] = [];
  values.forEach((sent, id) => {
    const escaped = JSON.stringify(sent.value).slice(1, -1);
    for (const text of new Set([sent.value, escaped])) {
      needles.add(text, needleValue.length);
      needleValue.push(id);
      needleLength.push(text.length);
    }
  });
  needles.build();

  const found = new Map<number, Leak>();
  const logs = jsonLines(join(runDirectory, 'logs'));
  let logLines = 0;
  for (const file of logs) {
    file.lines.forEach((line, index) => {
      logLines += 1;
      const inLine = new Set<number>();
      needles.search(line, (needle, end) => {
        const start = end - needleLength[needle];
        const wholeWord = !isWordCharacter(line, start - 1) && !isWordCharacter(line, end);
        if (needleLength[needle] >= WHOLE_WORD_BELOW || wholeWord) {
          inLine.add(needleValue[needle]);
        }
      });
      for (const id of inLine) {
        const leak = found.get(id);
        if (leak) {
          leak.lines += 1;
        } else {
          found.set(id, {
            sent: values[id],
            logFile: join('logs', file.name),
            line: index + 1,
            lines: 1,
          });
        }
      }
    });
  }

  return { values: values.length, logFiles: logs.length, logLines, leaks: [...found.values()] };
}

/** Enough of a value to recognize it, never all of it. */
export function preview(value: string): string {
  return `"${value.slice(0, 3)}…" (${value.length} characters)`;
}

/** The failure message of the whole-run check; undefined when there is nothing to report. */
export function describeLeaks(runDirectory: string, result: ScanResult): string | undefined {
  if (result.values > 0 && result.logLines === 0) {
    return (
      `The whole-run log check recorded ${result.values} confidential values but found no log ` +
      `line in ${join(runDirectory, 'logs')}: the test servers' logs were not written there.`
    );
  }
  if (result.leaks.length === 0) {
    return undefined;
  }
  const shown = result.leaks.slice(0, 20).map((leak) => {
    const { field, file, via, value } = leak.sent;
    const more = leak.lines > 1 ? ` (and ${leak.lines - 1} more lines)` : '';

    return `  - ${field} sent by ${file} (${via}), ${preview(value)}: ${leak.logFile} line ${leak.line}${more}`;
  });
  const hidden = result.leaks.length - shown.length;

  return [
    `${result.leaks.length} confidential values sent by the tests appear in what the test servers ` +
      `logged during this run:`,
    ...shown,
    ...(hidden > 0 ? [`  ... and ${hidden} more`] : []),
    `The run folder is kept for inspection: ${runDirectory}`,
  ].join('\n');
}
