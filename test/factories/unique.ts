import { randomBytes } from 'node:crypto';

/** A slug no other suite or run will pick, within the 40-character slug rule. */
export function uniqueSlug(prefix = 'org'): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`.slice(0, 40);
}

export function uniqueEmail(label = 'member'): string {
  return `${label}-${randomBytes(5).toString('hex')}@example.test`;
}

/** A password long enough for the 15-character rule and unique, so log checks can find it. */
export function uniquePassword(): string {
  return `pw-${randomBytes(12).toString('base64url')}-correct-horse`;
}
