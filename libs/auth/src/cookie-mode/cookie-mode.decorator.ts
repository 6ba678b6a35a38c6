import { SetMetadata, Type, applyDecorators } from '@nestjs/common';
import { ApiExtraModels, ApiHeader, ApiOkResponse, getSchemaPath } from '@nestjs/swagger';

import { DashboardTokenView } from './cookie-mode.dto';

export const REFRESH_COOKIE_ROUTE = 'parley:refresh-cookie-route';

/**
 * Lets a member route be called with the refresh cookie (plus the CSRF token and an allowed
 * Origin) when no Authorization header is sent: logout, so a dashboard that reloaded and holds
 * no access token can still end its session.
 */
export const AcceptsRefreshCookie = (): MethodDecorator => SetMetadata(REFRESH_COOKIE_ROUTE, true);

/** Documents the X-Client switch and both answers of a route that issues a token pair. */
export function ApiCookieModeResponse(bearerView: Type<unknown>): MethodDecorator {
  return applyDecorators(
    ApiExtraModels(bearerView, DashboardTokenView),
    ApiHeader({
      name: 'X-Client',
      required: false,
      enum: ['dashboard'],
      description:
        'dashboard: cookie mode. The refresh token is set as the HttpOnly __Host-parley_refresh ' +
        'cookie instead of returned, and csrfToken is returned (and set as __Host-parley_csrf). ' +
        'Only from an Origin listed in DASHBOARD_ORIGINS.',
    }),
    ApiOkResponse({
      description: 'a token pair; in cookie mode a DashboardTokenView and the two cookies',
      schema: {
        oneOf: [{ $ref: getSchemaPath(bearerView) }, { $ref: getSchemaPath(DashboardTokenView) }],
      },
    }),
  );
}

/** Documents the header a call authenticated by the refresh cookie must carry. */
export function ApiCsrfHeader(): MethodDecorator {
  return ApiHeader({
    name: 'X-CSRF-Token',
    required: false,
    description:
      'required with the __Host-parley_refresh cookie: the csrfToken of the session, and the ' +
      'request must come from an Origin listed in DASHBOARD_ORIGINS',
  });
}
