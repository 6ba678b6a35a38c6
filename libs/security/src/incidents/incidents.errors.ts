import { ProblemException } from '@parley/core';

export enum IncidentsErrorCode {
  TransitionRefused = 'incident_transition_refused',
  RootCauseRequired = 'incident_root_cause_required',
  BreachMarkPermanent = 'incident_breach_mark_permanent',
  NotABreach = 'incident_not_a_breach',
  TimeInFuture = 'incident_time_in_future',
  NotifiedBeforeAware = 'incident_notified_before_aware',
  Resolved = 'incident_resolved',
  OwnAddress = 'incident_block_own_address',
  AddressBlocked = 'address_blocked',
}

export class IncidentsProblem extends ProblemException {
  constructor(code: IncidentsErrorCode, detail: string, status: number) {
    super(status, code, { detail });
  }
}
