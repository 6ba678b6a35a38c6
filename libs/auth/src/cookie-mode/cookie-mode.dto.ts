import { ApiProperty } from '@nestjs/swagger';

/**
 * What login and refresh answer in cookie mode (`X-Client: dashboard`): the refresh token is in
 * the HttpOnly `__Host-parley_refresh` cookie instead, and `csrfToken` (also in the readable
 * `__Host-parley_csrf` cookie) goes in the `X-CSRF-Token` header of each cookie-authenticated
 * call.
 */
export class DashboardTokenView {
  @ApiProperty() accessToken: string;
  @ApiProperty({ enum: ['Bearer'] }) tokenType: 'Bearer';
  @ApiProperty({ description: 'seconds until the access token expires' }) expiresIn: number;
  @ApiProperty({ description: 'send as X-CSRF-Token with the refresh cookie; fixed per session' })
  csrfToken: string;
}
