import 'reflect-metadata';

/**
 * How sensitive a stored field is. The mark is given once, next to the column, and everything
 * else reads it: field encryption, log redaction, what a viewer may see, the compliance export
 * and the data map.
 */
export type DataClass = 'public' | 'internal' | 'confidential' | 'restricted';

/**
 * How a field is kept at rest. Confidential and restricted fields are `sealed` (envelope
 * encryption bound to their row) unless they are one-way `hashed` secrets, a keyed `blind-index`
 * of a sealed field, or key material sealed directly under the key-encryption key (`kek-sealed`).
 */
export type Protection = 'none' | 'sealed' | 'hashed' | 'blind-index' | 'kek-sealed';

/** Whose data key seals a sealed field: the organization's, or the contact the row is about. */
export type KeyScope = 'organization' | 'contact';

export interface FieldMark {
  class: DataClass;
  /** Why the field is kept, in words a privacy officer can read; defaults to the table's. */
  purpose?: string;
  /** How long it is kept; defaults to the table's. */
  retention?: string;
  /** Defaults to `sealed` for confidential and restricted fields and `none` for the rest. */
  protection?: Protection;
  /** For sealed fields: whose key seals them (default `organization`). */
  keyScope?: KeyScope;
  /**
   * For contact-scoped fields: the property holding the contact's id (`id` on the contacts
   * table itself). Without one, the entity cannot seal the field and only its service writes it.
   */
  subject?: string;
  /** For sealed fields looked up by exact value: the property that holds their blind index. */
  blindIndex?: string;
}

export interface TableMark {
  /** The table's purpose and retention rule, inherited by fields that do not state their own. */
  purpose: string;
  retention: string;
}

export interface ClassifiedField {
  /** The property name in code (`createdAt`) and the column name in the database (`created_at`). */
  property: string;
  column: string;
  class: DataClass;
  purpose: string;
  retention: string;
  protection: Protection;
  keyScope: KeyScope | null;
  subject: string | null;
  blindIndex: string | null;
  encrypted: boolean;
}

export interface TableClassification {
  table: string;
  purpose: string;
  retention: string;
  fields: ClassifiedField[];
}

const FIELD_MARKS = Symbol('parley:field-marks');
const TABLE_MARK = Symbol('parley:table-mark');

/** Every class with at least one marked property, for redaction by field name. */
const markedEntities = new Set<Function>();

const PROTECTED: ReadonlySet<DataClass> = new Set(['confidential', 'restricted']);

/** Marks one entity property. */
export function Classified(
  dataClass: DataClass,
  options: Omit<FieldMark, 'class'> = {},
): PropertyDecorator {
  return (target, property) => {
    const constructor = target.constructor;
    const marks: Map<string, FieldMark> =
      Reflect.getOwnMetadata(FIELD_MARKS, constructor) ?? new Map();
    marks.set(String(property), { class: dataClass, ...options });
    Reflect.defineMetadata(FIELD_MARKS, marks, constructor);
    markedEntities.add(constructor);
  };
}

/** Gives an entity its purpose and retention rule. */
export function ClassifiedTable(mark: TableMark): ClassDecorator {
  return (target) => {
    Reflect.defineMetadata(TABLE_MARK, mark, target);
  };
}

export function fieldMarksOf(entity: Function): ReadonlyMap<string, FieldMark> {
  return (
    (Reflect.getOwnMetadata(FIELD_MARKS, entity) as Map<string, FieldMark> | undefined) ?? new Map()
  );
}

export function tableMarkOf(entity: Function): TableMark | undefined {
  return Reflect.getOwnMetadata(TABLE_MARK, entity) as TableMark | undefined;
}

/** Fills in a mark's defaults; throws when the combination makes no sense. */
export function resolveField(
  table: TableMark & { table: string },
  property: string,
  column: string,
  mark: FieldMark,
): ClassifiedField {
  const protection = mark.protection ?? (PROTECTED.has(mark.class) ? 'sealed' : 'none');
  if (PROTECTED.has(mark.class) && protection === 'none') {
    throw new Error(`${table.table}.${column} is ${mark.class} and must be protected at rest`);
  }
  if (protection === 'sealed' && !PROTECTED.has(mark.class)) {
    throw new Error(`${table.table}.${column} is sealed but marked ${mark.class}`);
  }

  return {
    property,
    column,
    class: mark.class,
    purpose: mark.purpose ?? table.purpose,
    retention: mark.retention ?? table.retention,
    protection,
    keyScope: protection === 'sealed' ? (mark.keyScope ?? 'organization') : null,
    subject: mark.subject ?? null,
    blindIndex: mark.blindIndex ?? null,
    encrypted: protection === 'sealed' || protection === 'kek-sealed',
  };
}

/**
 * Tables the server writes without an entity (raw SQL only) declare their fields here, by
 * column name, so the data map and the classification test cover every stored column.
 */
const declaredTables = new Map<string, TableClassification>();

export function declareTable(
  table: string,
  mark: TableMark,
  fields: Record<string, FieldMark>,
): void {
  declaredTables.set(table, {
    table,
    purpose: mark.purpose,
    retention: mark.retention,
    fields: Object.entries(fields).map(([column, field]) =>
      resolveField({ table, ...mark }, column, column, field),
    ),
  });
}

export function declaredTablesList(): TableClassification[] {
  return [...declaredTables.values()];
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/**
 * The names (in code and in the database) of every confidential or restricted field: a value
 * under one of these keys is removed from logs, error details and audit entries wherever it is
 * nested. It is computed from the marks each time it is asked for after a new mark appears.
 */
export function sensitiveFieldNames(): ReadonlySet<string> {
  const size = markedEntities.size + declaredTables.size;
  if (sensitiveCache && sensitiveCache.size === size) {
    return sensitiveCache.names;
  }
  const names = new Set<string>();
  for (const entity of markedEntities) {
    for (const [property, mark] of fieldMarksOf(entity)) {
      if (PROTECTED.has(mark.class)) {
        names.add(property);
        names.add(snakeCase(property));
      }
    }
  }
  for (const table of declaredTables.values()) {
    for (const field of table.fields) {
      if (PROTECTED.has(field.class)) {
        names.add(field.column);
      }
    }
  }
  sensitiveCache = { size, names };

  return names;
}

let sensitiveCache: { size: number; names: Set<string> } | undefined;

export function isProtectedClass(dataClass: DataClass): boolean {
  return PROTECTED.has(dataClass);
}
