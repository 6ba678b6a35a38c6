/**
 * Revokes an API key of the current organization as the current caller: 404 when the caller may
 * not manage it, nothing more when it is already revoked. Incidents need it without importing
 * the auth library, which imports this one; auth provides it (ApiKeysService).
 */
export abstract class ApiKeyRevoker {
  abstract revoke(apiKeyId: string): Promise<void>;
}
