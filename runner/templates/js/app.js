// The migration plugin of {{module}}, made by `graft new`.
//
// One plugin per release. It knows every step from an empty tenant up to its
// own release, so any older tenant can be brought up to date, and it finds
// the release the data is at by looking at the data (`inspect`), never by
// trusting what was recorded.
//
// To add release 1.1.0: set RELEASE, append it to RELEASES, add its step to
// STEPS, make `inspect` recognise it (an index or collection only 1.1.0 has),
// and, if 1.1.0 can be undone, list 1.0.0 in `rollsBackTo` and write
// `rollback`. Then capture fixtures of tenants at 1.0.0 and run
// `graft validate` on them.

import { CREATED, UNCHANGED, UPGRADED, Collection, Migration, Unsupported, exportMigration, index } from './graft-sdk.js';

// The release this plugin migrates to; it must match the ModuleDescriptor.
const RELEASE = '1.0.0';
// Every release, oldest first.
const RELEASES = ['1.0.0'];

const items = new Collection('{{name}}');
const itemTypes = new Collection('{{name}}-types');
// The index whose presence marks storage at 1.0.0.
const NAME_INDEX = '{{name}}-name';

class Plugin extends Migration {
  constructor() {
    super();
    this.moduleName = '{{module}}';
    this.release = RELEASE;
    // Releases this one can upgrade from: all before it.
    this.upgradesFrom = RELEASES.slice(0, -1);
  }

  inspect() {
    if (!items.exists()) return undefined;
    if (items.hasIndex(NAME_INDEX)) return '1.0.0';
    throw new Unsupported(`{{name}} exists without the index ${NAME_INDEX}`);
  }

  upgrade(ctx) {
    const stored = this.inspect();
    // Running again on data already at this release changes nothing:
    // `graft validate` checks that a second run is UNCHANGED.
    if (stored === RELEASE) return UNCHANGED;
    if (stored !== undefined && !RELEASES.includes(stored)) {
      throw new Unsupported(`storage holds {{module}} ${stored}, which this plugin does not know`);
    }
    const start = stored === undefined ? 0 : RELEASES.indexOf(stored) + 1;
    for (const release of RELEASES.slice(start)) STEPS[release]();
    return stored === undefined ? CREATED : UPGRADED;
  }

  // loadData is the SDK's: the package's data of the kind (embedded by
  // build.mjs), through the runner's overlay, so a tenant's edits to
  // reference records survive. Never write vendor data with plain puts.
}

const STEPS = {
  '1.0.0'() {
    items.create();
    items.createIndex(index(NAME_INDEX, 'name', { unique: true, caseInsensitive: true }));
    items.createIndex(index('{{name}}-typeId', 'typeId'));
    itemTypes.create();
    itemTypes.createIndex(index('{{name}}-types-name', 'name', { unique: true, caseInsensitive: true }));
  },
};

export const migration = exportMigration(new Plugin());
