import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Token signing keys, shared by every instance. They belong to the installation, not to an
 * organization, so the table has no tenant column and no row-level security; private keys are
 * stored only sealed under the key-encryption key. Keys are never deleted by the runtime: a key
 * past its verification deadline is simply ignored.
 */
export class AddSigningKeys1764893300000 implements MigrationInterface {
  name = 'AddSigningKeys1764893300000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      create table signing_keys (
        kid text primary key check (length(kid) between 16 and 100),
        algorithm text not null check (algorithm in ('ES256')),
        public_key_pem text not null,
        private_key_sealed text not null check (private_key_sealed like 'kek1.%'),
        created_at timestamptz not null default now(),
        retired_at timestamptz,
        verify_until timestamptz
      )`);
    await queryRunner.query(`grant select, insert, update on signing_keys to parley_app`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`drop table signing_keys`);
  }
}
