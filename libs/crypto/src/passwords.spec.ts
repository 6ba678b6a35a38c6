import { Algorithm, hash } from '@node-rs/argon2';

import {
  ARGON2_PARAMETERS,
  PasswordHasher,
  argon2ParametersOf,
  describeArgon2Parameters,
} from './passwords';

describe('password hashing', () => {
  const hasher = new PasswordHasher();

  it('reads the argon2 parameters of a PHC string', () => {
    expect(argon2ParametersOf('$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA')).toEqual({
      algorithm: 'argon2id',
      version: 19,
      memoryCost: 19456,
      timeCost: 2,
      parallelism: 1,
    });
    expect(argon2ParametersOf('$2b$12$notargon')).toBeUndefined();
  });

  it('asks for a rehash only when the parameters differ from ARGON2_PARAMETERS', async () => {
    const current = await hasher.hash('tangerine lamp above quiet rivers');
    const weaker = await hash('tangerine lamp above quiet rivers', {
      ...ARGON2_PARAMETERS,
      memoryCost: 4096,
      timeCost: 1,
    });
    const argon2i = await hash('tangerine lamp above quiet rivers', {
      ...ARGON2_PARAMETERS,
      algorithm: Algorithm.Argon2i,
    });

    expect(hasher.needsRehash(current)).toBe(false);
    expect(hasher.needsRehash(weaker)).toBe(true);
    expect(hasher.needsRehash(argon2i)).toBe(true);
    expect(hasher.needsRehash('not a hash')).toBe(true);
    expect(describeArgon2Parameters(weaker)).toBe('argon2id v=19 m=4096,t=1,p=1');
  });

  it('matches a password however its accents are composed (NFKC)', async () => {
    const composed = 'caf\u00e9 lamp above quiet rivers';
    const decomposed = 'cafe\u0301 lamp above quiet rivers';

    const stored = await hasher.hash(composed);

    expect(await hasher.verify(stored, decomposed)).toBe(true);
    expect(await hasher.verify(stored, 'cafe lamp above quiet rivers')).toBe(false);
  });
});
