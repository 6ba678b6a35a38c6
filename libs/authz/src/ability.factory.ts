import { AbilityBuilder, MongoAbility, RawRuleOf, createMongoAbility } from '@casl/ability';
import { Injectable } from '@nestjs/common';

import { Actor } from '@parley/core';

import { SCOPE_GRANTS, isApiKeyScope } from './api-key-scopes';
import { Action, Subject } from './policy.decorator';

export interface ConversationRecord {
  __type: 'Conversation';
  organizationId: string;
  contactId: string;
  assigneeId: string | null;
}

export interface MessageRecord {
  __type: 'Message';
  organizationId: string;
  conversationContactId: string;
  conversationAssigneeId: string | null;
}

export interface ApiKeyRecord {
  __type: 'ApiKey';
  organizationId: string;
  createdBy: string | null;
}

type SubjectRecord = ConversationRecord | MessageRecord | ApiKeyRecord;

export type AppAbility = MongoAbility<[Action, Subject | SubjectRecord]>;

/** Tags a plain record with its CASL subject type. */
export function subjectOf<T extends SubjectRecord['__type']>(
  type: T,
  record: Omit<Extract<SubjectRecord, { __type: T }>, '__type'>,
): Extract<SubjectRecord, { __type: T }> {
  return { __type: type, ...record } as Extract<SubjectRecord, { __type: T }>;
}

/**
 * What each role may do. Rows of other organizations never reach these checks: row-level
 * security has already hidden them.
 */
@Injectable()
export class AbilityFactory {
  private readonly cache = new Map<string, AppAbility>();

  forActor(actor: Actor | undefined): AppAbility {
    const key = !actor
      ? 'none'
      : actor.type === 'user'
        ? `user:${actor.role}:${actor.id}`
        : actor.type === 'apiKey'
          ? `apiKey:${actor.id}:${actor.userId}:${actor.role}:${actor.scopes.join(',')}`
          : `${actor.type}:${actor.id}`;
    let ability = this.cache.get(key);
    if (!ability) {
      ability = actor?.type === 'apiKey' ? this.buildForApiKey(actor) : this.build(actor);
      if (this.cache.size > 10_000) {
        this.cache.clear();
      }
      this.cache.set(key, ability);
    }

    return ability;
  }

  private build(actor: Actor | undefined): AppAbility {
    const { can, build } = new AbilityBuilder<AppAbility>(createMongoAbility);
    if (actor?.type === 'user') {
      switch (actor.role) {
        case 'admin':
          can('manage', 'all');
          break;
        case 'manager':
          can('read', ['Organization', 'User', 'Contact', 'Conversation', 'Message']);
          can(['create', 'update'], ['Contact', 'Conversation']);
          can('create', 'Message');
          // Managers create API keys and manage only their own; admins manage every key.
          can('create', 'ApiKey');
          can(['read', 'update', 'delete'], 'ApiKey', { createdBy: actor.id } as never);
          break;
        case 'agent':
          can('read', ['Organization', 'User', 'Contact', 'Conversation', 'Message']);
          can('create', ['Contact', 'Conversation']);
          can('update', 'Contact');
          // An agent changes, and writes in, only conversations that are theirs or nobody's.
          can('update', 'Conversation', { assigneeId: { $in: [actor.id, null] } } as never);
          can('create', 'Message', { conversationAssigneeId: { $in: [actor.id, null] } } as never);
          break;
        case 'viewer':
          can('read', ['Organization', 'User', 'Contact', 'Conversation', 'Message']);
          break;
      }
    }
    if (actor?.type === 'visitor') {
      can(['read', 'create'], 'Conversation', { contactId: actor.contactId } as never);
      can(['read', 'create'], 'Message', { conversationContactId: actor.contactId } as never);
    }

    return build({ detectSubjectType: (subject) => (subject as SubjectRecord).__type as never });
  }

  /**
   * A key may do only what both its scopes and its creator's current role allow: for each
   * action and subject a scope grants, the role's own rules for that pair (with their
   * conditions, such as an agent's "assigned to me or nobody") are copied, and nothing else.
   */
  private buildForApiKey(actor: Extract<Actor, { type: 'apiKey' }>): AppAbility {
    const role = this.forActor({ type: 'user', id: actor.userId, role: actor.role, sessionId: '' });
    const rules: RawRuleOf<AppAbility>[] = [];
    for (const scope of actor.scopes) {
      for (const grant of isApiKeyScope(scope) ? SCOPE_GRANTS[scope] : []) {
        for (const action of grant.actions) {
          // CASL lists the highest priority first; later rules win, so they are copied reversed.
          for (const rule of [...role.possibleRulesFor(action, grant.subject)].reverse()) {
            rules.push({
              action,
              subject: grant.subject,
              conditions: rule.conditions,
              inverted: rule.inverted,
              fields: rule.fields,
            } as RawRuleOf<AppAbility>);
          }
        }
      }
    }

    return createMongoAbility<AppAbility>(rules, {
      detectSubjectType: (subject) => (subject as SubjectRecord).__type as never,
    });
  }
}
