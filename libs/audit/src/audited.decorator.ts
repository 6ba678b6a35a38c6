const AUDITED = Symbol('parley:audited');

/** Marks an entity whose inserts, updates and deletes the audit subscriber records. */
export function Audited(targetType: string): ClassDecorator {
  return (target) => {
    Reflect.defineMetadata(AUDITED, targetType, target);
  };
}

export function auditedTargetType(entity: Function | string): string | undefined {
  return typeof entity === 'function'
    ? (Reflect.getMetadata(AUDITED, entity) as string | undefined)
    : undefined;
}
