import { Global, Module } from '@nestjs/common';

import { PasswordHasher } from './passwords';

@Global()
@Module({
  providers: [PasswordHasher],
  exports: [PasswordHasher],
})
export class CryptoModule {}
