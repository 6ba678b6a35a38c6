import { Global, Module } from '@nestjs/common';

import { KeyEncryptionKey } from './key-encryption';
import { PasswordPolicy } from './password-policy';
import { PasswordHasher } from './passwords';

@Global()
@Module({
  providers: [PasswordHasher, PasswordPolicy, KeyEncryptionKey],
  exports: [PasswordHasher, PasswordPolicy, KeyEncryptionKey],
})
export class CryptoModule {}
