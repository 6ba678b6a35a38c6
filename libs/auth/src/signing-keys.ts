import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { CryptoKey, calculateJwkThumbprint, exportJWK, importPKCS8, importSPKI } from 'jose';

import { APP_CONFIG, AppConfig } from '@parley/core';

export const SIGNING_ALGORITHM = 'ES256';

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

/**
 * The ES256 key that signs every token. Production must supply JWT_PRIVATE_KEY; elsewhere a
 * development key is generated once into the data folder and kept there.
 */
@Injectable()
export class SigningKeys implements OnModuleInit {
  private readonly logger = new Logger(SigningKeys.name);
  private current: SigningKey;
  private readonly byKid = new Map<string, CryptoKey>();

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  async onModuleInit(): Promise<void> {
    const pem = this.config.jwtPrivateKey ?? this.developmentKey();
    const privateKey = createPrivateKey(pem);
    if (
      privateKey.asymmetricKeyType !== 'ec' ||
      privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
    ) {
      throw new Error('JWT_PRIVATE_KEY must be a P-256 (ES256) private key');
    }
    const publicKeyObject: KeyObject = createPublicKey(privateKey);
    const kid = await calculateJwkThumbprint(await exportJWK(publicKeyObject), 'sha256');
    // Imported once as CryptoKeys: jose signs and verifies twice as fast as with raw key material.
    const signing = await importPKCS8(
      privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      SIGNING_ALGORITHM,
    );
    const verifying = await importSPKI(
      publicKeyObject.export({ type: 'spki', format: 'pem' }).toString(),
      SIGNING_ALGORITHM,
    );
    this.current = { kid, privateKey: signing, publicKey: verifying };
    this.byKid.set(kid, verifying);
  }

  signingKey(): SigningKey {
    return this.current;
  }

  /** The public key for a key id this server issued, or undefined for any other. */
  verificationKey(kid: string | undefined): CryptoKey | undefined {
    return kid ? this.byKid.get(kid) : undefined;
  }

  private developmentKey(): string {
    const dir = join(this.config.dataDir, 'secrets');
    const file = join(dir, 'jwt-signing-key.pem');
    if (existsSync(file)) {
      return readFileSync(file, 'utf8');
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    writeFileSync(file, pem, { mode: 0o600 });
    chmodSync(file, 0o600);
    this.logger.warn(
      { file },
      'generated a development signing key; set JWT_PRIVATE_KEY in production',
    );

    return pem;
  }
}
