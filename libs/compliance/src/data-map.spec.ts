import { DataSource } from 'typeorm';

import { Classified, ClassifiedTable } from '@parley/core';

import { DataMap } from './data-map.service';

@ClassifiedTable({ purpose: 'A table for this test only.', retention: 'None.' })
class Marked {
  @Classified('internal') id: string;
  @Classified('confidential') secretNote: string;
  unmarked: string;
}

class WithoutTableMark {
  @Classified('internal') id: string;
}

function dataSourceWith(target: Function, properties: string[]): DataSource {
  return {
    entityMetadatas: [
      {
        target,
        tableName: 'things',
        schema: undefined,
        columns: properties.map((propertyName) => ({
          propertyName,
          databaseName: propertyName.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
        })),
      },
    ],
  } as unknown as DataSource;
}

describe('DataMap', () => {
  it('refuses to build when an entity column carries no classification mark', () => {
    const map = new DataMap(dataSourceWith(Marked, ['id', 'secretNote', 'unmarked']));

    expect(() => map.tables()).toThrow('things.unmarked has no classification mark');
  });

  it('refuses to build when an entity has no purpose and retention', () => {
    const map = new DataMap(dataSourceWith(WithoutTableMark, ['id']));

    expect(() => map.tables()).toThrow('things has no @ClassifiedTable purpose and retention');
  });

  it('seals confidential fields by default and names their column', () => {
    const map = new DataMap(dataSourceWith(Marked, ['id', 'secretNote']));
    const things = map.tables().find((table) => table.table === 'things');

    expect(things?.fields).toContainEqual(
      expect.objectContaining({
        column: 'secret_note',
        class: 'confidential',
        protection: 'sealed',
        encrypted: true,
        keyScope: 'organization',
        purpose: 'A table for this test only.',
      }),
    );
  });
});
