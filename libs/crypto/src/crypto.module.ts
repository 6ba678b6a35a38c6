import { Global, Module } from '@nestjs/common';

import { DataKeys } from './fields/data-keys';
import { FieldCipher } from './fields/field-cipher';
import { KeyMaintenance } from './fields/key-maintenance';
import { SealingSubscriber } from './fields/sealing.subscriber';
import { KeyEncryptionKey, KeyProvider } from './key-encryption';
import { PasswordPolicy } from './password-policy';
import { PasswordHasher } from './passwords';

@Global()
@Module({
  providers: [
    PasswordHasher,
    PasswordPolicy,
    KeyEncryptionKey,
    { provide: KeyProvider, useExisting: KeyEncryptionKey },
    DataKeys,
    FieldCipher,
    SealingSubscriber,
    KeyMaintenance,
  ],
  exports: [
    PasswordHasher,
    PasswordPolicy,
    KeyEncryptionKey,
    KeyProvider,
    DataKeys,
    FieldCipher,
    KeyMaintenance,
  ],
})
export class CryptoModule {}
