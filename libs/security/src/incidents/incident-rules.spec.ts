import {
  MAX_ESCALATION_LEVEL,
  escalationLevelAt,
  higherSeverity,
  regulatorDueAt,
  responseDueAt,
  transitionOf,
} from './incident-rules';

const MINUTES = { low: 1440, medium: 480, high: 60, critical: 0 };
const HOUR_MS = 3_600_000;

describe('incident rules', () => {
  it('lets a status move only to the next one, and nothing leave resolved', () => {
    expect(transitionOf('open', 'acknowledged')).toBe('advance');
    expect(transitionOf('acknowledged', 'contained')).toBe('advance');
    expect(transitionOf('contained', 'resolved')).toBe('advance');
    expect(transitionOf('open', 'open')).toBe('unchanged');

    expect(transitionOf('open', 'contained')).toBe('refused');
    expect(transitionOf('open', 'resolved')).toBe('refused');
    expect(transitionOf('contained', 'acknowledged')).toBe('refused');
    expect(transitionOf('resolved', 'open')).toBe('refused');
  });

  it('keeps the higher of two severities', () => {
    expect(higherSeverity('low', 'high')).toBe('high');
    expect(higherSeverity('critical', 'medium')).toBe('critical');
    expect(higherSeverity('medium', 'medium')).toBe('medium');
  });

  it('sets the response deadline from the opening time by severity', () => {
    const opened = new Date('2026-01-01T00:00:00Z');

    expect(responseDueAt(opened, 'low', MINUTES).toISOString()).toBe('2026-01-02T00:00:00.000Z');
    expect(responseDueAt(opened, 'medium', MINUTES).toISOString()).toBe('2026-01-01T08:00:00.000Z');
    expect(responseDueAt(opened, 'high', MINUTES).toISOString()).toBe('2026-01-01T01:00:00.000Z');
    expect(responseDueAt(opened, 'critical', MINUTES)).toEqual(opened);
  });

  it('makes the regulator notification due 72 hours after awareness', () => {
    expect(regulatorDueAt(new Date('2026-01-01T10:00:00Z')).toISOString()).toBe(
      '2026-01-04T10:00:00.000Z',
    );
  });

  it('escalates to level 1 at the deadline, one level per interval after it, and stops at the top', () => {
    const due = 10 * HOUR_MS;

    expect(escalationLevelAt(due, due - 1, HOUR_MS)).toBe(0);
    expect(escalationLevelAt(due, due, HOUR_MS)).toBe(1);
    expect(escalationLevelAt(due, due + HOUR_MS - 1, HOUR_MS)).toBe(1);
    expect(escalationLevelAt(due, due + HOUR_MS, HOUR_MS)).toBe(2);
    expect(escalationLevelAt(due, due + 100 * HOUR_MS, HOUR_MS)).toBe(MAX_ESCALATION_LEVEL);
  });
});
