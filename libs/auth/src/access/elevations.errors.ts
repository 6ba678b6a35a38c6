import { ProblemException } from '@parley/core';

export enum ElevationsErrorCode {
  RoleNotHigher = 'elevation_role_not_higher',
  AlreadyPending = 'elevation_already_pending',
  MfaRequired = 'elevation_mfa_required',
  OwnRequest = 'elevation_own_request',
  NotPending = 'elevation_not_pending',
  NotOpen = 'elevation_not_open',
}

export class ElevationsProblem extends ProblemException {
  constructor(code: ElevationsErrorCode, detail: string, status: number) {
    super(status, code, { detail });
  }
}
