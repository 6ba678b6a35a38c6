import { availableParallelism } from 'node:os';

import { Algorithm, hash, verify } from '@node-rs/argon2';
import { Injectable } from '@nestjs/common';

import { normalizePassword } from './password-policy';

/** OWASP's argon2id floor: 19 MiB, two passes, one lane. */
export const ARGON2_PARAMETERS = {
  algorithm: Algorithm.Argon2id,
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
} as const;

export interface Argon2HashParameters {
  algorithm: string;
  version: number;
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

const PHC_PATTERN = /^\$(argon2(?:id|i|d))\$v=(\d+)\$m=(\d+),t=(\d+),p=(\d+)\$/;

/** The parameters of an argon2 PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`). */
export function argon2ParametersOf(passwordHash: string): Argon2HashParameters | undefined {
  const match = PHC_PATTERN.exec(passwordHash);
  if (!match) {
    return undefined;
  }

  return {
    algorithm: match[1],
    version: Number(match[2]),
    memoryCost: Number(match[3]),
    timeCost: Number(match[4]),
    parallelism: Number(match[5]),
  };
}

/** `argon2id v=19 m=19456,t=2,p=1`, for audit entries; never the salt or the hash. */
export function describeArgon2Parameters(passwordHash: string): string {
  const parameters = argon2ParametersOf(passwordHash);
  if (!parameters) {
    return 'unknown';
  }
  const { algorithm, version, memoryCost, timeCost, parallelism } = parameters;

  return `${algorithm} v=${version} m=${memoryCost},t=${timeCost},p=${parallelism}`;
}

/**
 * Runs at most `limit` tasks at once, the rest in arrival order. argon2 runs on libuv's thread
 * pool (4 threads), which file, DNS and other crypto work share: more hashes at once than there
 * are cores only makes each slower, and a burst of sign-ins would hold every thread.
 */
class Gate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running += 1;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) {
        next();
      } else {
        this.running -= 1;
      }
    }
  }
}

@Injectable()
export class PasswordHasher {
  private dummyHash: Promise<string> | undefined;
  private readonly gate = new Gate(Math.max(1, Math.min(4, availableParallelism())));

  // Both sides see the NFKC form (NIST SP 800-63B-4), so a password typed with composed or
  // decomposed accents, or full-width letters, matches itself; ASCII passwords are unchanged.
  hash(password: string): Promise<string> {
    return this.gate.run(() => hash(normalizePassword(password), ARGON2_PARAMETERS));
  }

  async verify(passwordHash: string, password: string): Promise<boolean> {
    try {
      return await this.gate.run(() => verify(passwordHash, normalizePassword(password)));
    } catch {
      return false;
    }
  }

  /** True when a stored hash was made with other parameters than ARGON2_PARAMETERS. */
  needsRehash(passwordHash: string): boolean {
    const parameters = argon2ParametersOf(passwordHash);

    return (
      !parameters ||
      parameters.algorithm !== 'argon2id' ||
      parameters.version !== 19 ||
      parameters.memoryCost !== ARGON2_PARAMETERS.memoryCost ||
      parameters.timeCost !== ARGON2_PARAMETERS.timeCost ||
      parameters.parallelism !== ARGON2_PARAMETERS.parallelism
    );
  }

  /** Spends the same time as a real check, so an unknown account answers like a wrong password. */
  async verifyAgainstNothing(password: string): Promise<false> {
    this.dummyHash ??= this.hash('parley-timing-equaliser-not-a-password');
    await this.verify(await this.dummyHash, password);

    return false;
  }
}
