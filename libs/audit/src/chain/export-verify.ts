import { KeyObject, createPublicKey } from 'node:crypto';

import { ChainWalker, GENESIS_HASH } from './audit-chain';
import { Checkpoint, checkpointSignatureValid } from './audit-checkpoints';

export interface ExportVerification {
  valid: boolean;
  entries: number;
  organizationId: string | null;
  fromSeq: number | null;
  toSeq: number | null;
  /** The first problem, with the line number (1-based) where it was found. */
  problem?: { line: number; seq?: number; reason: string };
}

const HEX_HASH = /^[0-9a-f]{64}$/;

/**
 * Verifies a `parley-audit-export/v1` NDJSON file with nothing but the checkpoint public keys
 * (from /.well-known/parley-audit-keys.json): every entry links to the one before and matches
 * its hash, and the closing checkpoint, signed by a known key, names the last entry's hash. An
 * export that starts after entry 1 is trusted from its first entry's previous hash onwards.
 */
export function verifyExport(
  text: string,
  keys: { keys: { kid: string; publicKeyPem: string }[] } | Map<string, KeyObject>,
): ExportVerification {
  const publicKeys =
    keys instanceof Map
      ? keys
      : new Map(keys.keys.map((key) => [key.kid, createPublicKey(key.publicKeyPem)]));
  const result: ExportVerification = {
    valid: false,
    entries: 0,
    organizationId: null,
    fromSeq: null,
    toSeq: null,
  };
  const fail = (line: number, reason: string, seq?: number): ExportVerification => ({
    ...result,
    valid: false,
    problem: { line, reason, ...(seq === undefined ? {} : { seq }) },
  });
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  let walker: ChainWalker | undefined;
  let checkpoint: Checkpoint | undefined;
  for (const [index, raw] of lines.entries()) {
    const line = index + 1;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return fail(line, 'not JSON');
    }
    if (index === 0) {
      if (record.type !== 'header' || record.format !== 'parley-audit-export/v1') {
        return fail(line, 'the first line is not a parley-audit-export/v1 header');
      }
      result.organizationId =
        typeof record.organizationId === 'string' ? record.organizationId : null;
      continue;
    }
    if (checkpoint) {
      return fail(line, 'lines after the closing checkpoint');
    }
    if (record.type === 'entry') {
      const { seq, prevHash, hash, entry } = record as {
        seq: unknown;
        prevHash: unknown;
        hash: unknown;
        entry: unknown;
      };
      if (
        typeof seq !== 'number' ||
        !Number.isSafeInteger(seq) ||
        typeof prevHash !== 'string' ||
        !HEX_HASH.test(prevHash) ||
        typeof hash !== 'string' ||
        !HEX_HASH.test(hash) ||
        typeof entry !== 'string'
      ) {
        return fail(line, 'a malformed entry line');
      }
      let canonical: { organizationId?: unknown; seq?: unknown };
      try {
        canonical = JSON.parse(entry) as { organizationId?: unknown; seq?: unknown };
      } catch {
        return fail(line, 'the entry text is not JSON', seq);
      }
      if (canonical.seq !== seq || canonical.organizationId !== result.organizationId) {
        return fail(line, 'the entry text names another position or organization', seq);
      }
      if (!walker) {
        const previous = Buffer.from(prevHash, 'hex');
        if (seq === 1 && !previous.equals(GENESIS_HASH)) {
          return fail(line, 'entry 1 does not start from the genesis hash', seq);
        }
        walker = new ChainWalker({ seq, previous });
        result.fromSeq = seq;
      }
      const accepted = walker.push({
        seq,
        prevHash: Buffer.from(prevHash, 'hex'),
        hash: Buffer.from(hash, 'hex'),
        canonical: entry,
      });
      if (!accepted) {
        return fail(line, walker.broken?.detail ?? 'the chain breaks here', seq);
      }
      result.entries = walker.entries;
      result.toSeq = seq;
      continue;
    }
    if (record.type === 'checkpoint') {
      checkpoint = record as unknown as Checkpoint;
      if (!checkpointSignatureValid(checkpoint, publicKeys)) {
        return fail(line, 'the checkpoint signature does not verify with the given keys');
      }
      if (
        checkpoint.organizationId !== result.organizationId ||
        checkpoint.seq !== result.toSeq ||
        checkpoint.hash !== walker?.last?.hash.toString('hex')
      ) {
        return fail(line, 'the checkpoint does not sign the last entry of this export');
      }
      continue;
    }

    return fail(line, `an unknown line type ${JSON.stringify(record.type)}`);
  }
  if (!checkpoint) {
    return fail(lines.length, 'the export has no closing checkpoint');
  }

  return { ...result, valid: true };
}
