import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';

import { APP_CONFIG, AppConfig, Clock, safeError } from '@parley/core';

import { Alerts } from '../alerts/alerts.service';
import { SecurityAlert } from '../alerts/security-alert';

import {
  DETECTION_RULES,
  DetectionRuleName,
  DetectionSettings,
  detectionSettings,
  ruleSummary,
} from './detection-rules';
import { DetectionStore, MemoryDetectionStore, RedisDetectionStore } from './detection-store';

/** One event a rule counts. Keys and details hold ids and digests only, never a typed value. */
export interface Observation {
  rule: DetectionRuleName;
  /** The organization the event belongs to; null for an installation-wide one (an address). */
  organizationId: string | null;
  /** What the rule counts per: an account, an actor, an address digest, a session. */
  key: string;
  subject?: { type: string; id: string };
  details?: Record<string, unknown>;
}

/** Counts an address or other value against a set of the ones already seen for `key`. */
export interface Novelty {
  key: string;
  value: string;
}

/**
 * Counts observations per rule and key in fixed windows and raises one alert when a count
 * reaches its rule's threshold: exactly at the threshold, once per key and window. Counting
 * happens after the caller has moved on; callers never wait for it.
 */
@Injectable()
export class Detection implements OnModuleDestroy {
  private readonly logger = new Logger('Detection');
  private readonly settings: DetectionSettings;
  private readonly store: DetectionStore;
  private readonly pending = new Set<Promise<void>>();

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly clock: Clock,
    private readonly alerts: Alerts,
  ) {
    this.settings = detectionSettings(config);
    this.store = config.redisUrl
      ? new RedisDetectionStore(config.redisUrl)
      : new MemoryDetectionStore();
  }

  /** Counts `observation` in the background; with `novelty`, only when its value is new. */
  observe(observation: Observation, novelty?: Novelty): void {
    if (!this.settings[observation.rule]) {
      return;
    }
    this.track(novelty ? this.countIfNew(observation, novelty) : this.count(observation));
  }

  /** Runs `work` (which ends in observations) in the background, tracked like them. */
  track(work: Promise<unknown>): void {
    const tracked = work.then(
      () => undefined,
      (error: unknown) => {
        this.logger.error({ error: safeError(error) }, 'detection failed');
      },
    );
    this.pending.add(tracked);
    void tracked.then(() => this.pending.delete(tracked));
  }

  /** Resolves once every observation made so far has been counted (tests wait on it). */
  async whenIdle(): Promise<void> {
    while (this.pending.size > 0) {
      await Promise.all([...this.pending]);
    }
  }

  /** Counts one observation now; returns the alert when this one reached the threshold. */
  async count(observation: Observation): Promise<SecurityAlert | undefined> {
    const setting = this.settings[observation.rule];
    if (!setting) {
      return undefined;
    }
    const count = await this.store.hit(
      `${observation.rule}:${observation.organizationId ?? '-'}:${observation.key}`,
      setting.windowSeconds * 1000,
      this.clock.nowMs(),
    );
    if (count !== setting.threshold) {
      return undefined;
    }

    return this.alerts.raise({
      organizationId: observation.organizationId,
      rule: observation.rule,
      severity: DETECTION_RULES[observation.rule].severity,
      summary: ruleSummary(observation.rule, setting),
      subject: observation.subject,
      details: {
        ...observation.details,
        threshold: setting.threshold,
        windowSeconds: setting.windowSeconds,
      },
    });
  }

  async onModuleDestroy(): Promise<void> {
    await this.whenIdle();
    await this.store.close();
  }

  private async countIfNew(observation: Observation, novelty: Novelty): Promise<void> {
    const sighting = await this.store.remember(
      `${observation.rule}:${observation.organizationId ?? '-'}:${novelty.key}`,
      novelty.value,
    );
    if (sighting === 'new') {
      await this.count(observation);
    }
  }
}
