// Graft plugin SDK for JavaScript (ES modules, componentize-js).
//
// Write the upgrade logic of a module as a Graft plugin in JavaScript: a
// WebAssembly component built by componentize-js from the contract
// (`graft wit`, package `graft:migration@0.1.0`), called by the `graft`
// runner tenant by tenant inside a database transaction. This module wraps
// the raw imports in plain JavaScript, as the Rust SDK does:
//
// - write a class extending `Migration`, and export it from `app.js` with
//   `export const migration = exportMigration(new MyModule());`
// - read and write the module's data through `Collection`s of plain objects,
//   with paged scans as iterators (`for (const [id, doc] of users.scan())`)
//   and batched writers;
// - load vendor data with `loadFolder(kind)` (or `readRecords` + `load`),
//   which applies the right rule for each kind through the runner's overlay;
// - report with `info`, `warn`, `warnRecord` and `progress`.
//
// Throw `Unsupported` or `Failed` to fail a step: the runner rolls back
// everything the step wrote. Any other exception fails the step too, as
// `failed`, naming the collection and record the plugin was working on.
//
// Vendor data: the JavaScript engine (StarlingMonkey) gives scripts no file
// API, so a plugin cannot read the package's data folders at run time as the
// Rust and Python plugins do. `build.mjs` reads them at build time, from the
// same package folder that ships them, into a generated module
// (`graft-data.generated.js`) that this SDK serves them from. The records the
// plugin loads are therefore the package's own files as they were when the
// plugin was built: `graft package` assembles both from one folder.

import * as store from 'graft:migration/store@0.1.0';
import { load as overlayLoad } from 'graft:migration/overlay@0.1.0';
import * as hostLog from 'graft:migration/log@0.1.0';
import { DATA } from './graft-data.generated.js';

export const CONTRACT_VERSION = '0.1.0';

// The kinds of vendor data and the outcomes of a step, as the contract names them.
export const SYSTEM = 'system';
export const REFERENCE = 'reference';
export const SAMPLE = 'sample';
export const CREATED = 'created';
export const UPGRADED = 'upgraded';
export const UNCHANGED = 'unchanged';

/** How many records one overlay call carries. */
export const LOAD_BATCH = 1000;

// The record the plugin is working on, so an unexpected exception names it.
const current = { collection: undefined, recordId: undefined };

// ------------------------------------------------------------------ errors

/** The plugin cannot do this step (the platform's 400). */
export class Unsupported extends Error {}

/** The step failed (500), optionally at one record. */
export class Failed extends Error {
  constructor(message, collection, recordId) {
    super(message);
    this.collection = collection;
    this.recordId = recordId;
  }

  /** Name the record the failure happened at. */
  at(collection, recordId) {
    this.collection = collection;
    this.recordId = recordId;
    return this;
  }
}

// A store call's error arrives as an exception carrying the contract's
// `store-error` variant; it becomes a `Failed` that says what it was.
function storeCall(call) {
  try {
    return call();
  } catch (e) {
    throw failedFromStore(e?.payload ?? e);
  }
}

function failedFromStore(error) {
  switch (error?.tag) {
    case 'unique-violation':
      return new Failed(`unique index ${error.val.index} violated`, error.val.collection, error.val.recordId);
    case 'no-such-collection':
      return new Failed(`no collection ${error.val}`, error.val);
    case 'invalid-name':
      return new Failed(`invalid name: ${error.val}`);
    case 'invalid-document':
      return new Failed(`invalid document: ${error.val}`);
    case 'other':
      return new Failed(`storage: ${error.val}`);
    default:
      return new Failed(`storage: ${error}`);
  }
}

// ------------------------------------------------------------------ storage

/** An index on one field (or several joined by commas) of the documents. */
export function index(name, field, { unique = false, caseInsensitive = false } = {}) {
  return { name, field, unique, caseInsensitive };
}

/** Changes the host applies to every record in one statement. */
export const FieldChange = {
  /** Set `path` to `value` where it is missing. */
  setDefault: (path, value) => ({ tag: 'set-default', val: [path, JSON.stringify(value)] }),
  /** Set `path` to `value` on every record. */
  set: (path, value) => ({ tag: 'set', val: [path, JSON.stringify(value)] }),
  /** Remove `path` from every record. */
  remove: (path) => ({ tag: 'remove', val: path }),
  /** Move the field at `from` to `to`. */
  rename: (from, to) => ({ tag: 'rename', val: [from, to] }),
};

/** One of the module's collections for the tenant of the call; records are
 * plain objects with string ids. */
export class Collection {
  constructor(name) {
    this.name = name;
  }

  exists() {
    return store.listCollections().includes(this.name);
  }

  /** Create the collection; false if it already existed. */
  create() {
    return storeCall(() => store.createCollection(this.name));
  }

  /** Drop the collection and its indexes; false if it did not exist. */
  dropCollection() {
    return storeCall(() => store.dropCollection(this.name));
  }

  createIndex(spec) {
    return storeCall(() => store.createIndex(this.name, spec));
  }

  dropIndex(name) {
    return storeCall(() => store.dropIndex(this.name, name));
  }

  /** The index names, sorted. */
  indexes() {
    return storeCall(() => store.listIndexes(this.name)).map((spec) => spec.name);
  }

  hasIndex(name) {
    return this.indexes().includes(name);
  }

  get(id) {
    const text = storeCall(() => store.get(this.name, id));
    return text === undefined || text === null ? undefined : JSON.parse(text);
  }

  /** Insert or replace one record; true if it was inserted. */
  put(id, doc) {
    current.collection = this.name;
    current.recordId = id;
    return storeCall(() => store.put(this.name, { id, doc: JSON.stringify(doc) }));
  }

  delete(id) {
    return storeCall(() => store.delete(this.name, id));
  }

  /** The number of records, as a Number. */
  count() {
    return Number(storeCall(() => store.count(this.name)));
  }

  /** Apply `FieldChange`s to every record, one statement each; returns how
   * many records changed. */
  updateAll(...changes) {
    return Number(storeCall(() => store.updateAll(this.name, changes)));
  }

  /** Every record as `[id, doc]`, in id order, read a page at a time. */
  *scan(pageSize = 2000) {
    let after;
    for (;;) {
      const page = storeCall(() => store.scan(this.name, after, pageSize));
      if (page.length === 0) return;
      for (const record of page) {
        current.collection = this.name;
        current.recordId = record.id;
        yield [record.id, JSON.parse(record.doc)];
      }
      after = page[page.length - 1].id;
    }
  }

  /** A `BatchWriter`: puts gathered and written `batchSize` at a time. */
  writer(batchSize = 2000) {
    return new BatchWriter(this.name, batchSize);
  }
}

/** Gathers puts and writes them in batches, one host call each; call
 * `finish()` at the end: what is not flushed is not written. */
export class BatchWriter {
  constructor(collection, batchSize) {
    this.collection = collection;
    this.batchSize = batchSize;
    this.pending = [];
    this.inserted = 0;
    this.written = 0;
  }

  put(id, doc) {
    this.pending.push({ id, doc: JSON.stringify(doc) });
    if (this.pending.length >= this.batchSize) this.flush();
  }

  flush() {
    if (this.pending.length === 0) return;
    this.inserted += storeCall(() => store.putBatch(this.collection, this.pending));
    this.written += this.pending.length;
    this.pending = [];
  }

  /** Write what is left; returns `{inserted, replaced}`. */
  finish() {
    this.flush();
    return { inserted: this.inserted, replaced: this.written - this.inserted };
  }
}

// ------------------------------------------------------------------ vendor data

/** What loads did, in counts. */
export class LoadReport {
  constructor() {
    this.inserted = this.replaced = this.unchanged = this.kept = this.skipped = 0;
  }

  add(other) {
    for (const field of ['inserted', 'replaced', 'unchanged', 'kept', 'skipped']) {
      this[field] += other[field];
    }
  }

  /** The outcome of a step that did these loads. */
  outcome() {
    if (this.inserted + this.replaced === 0) return UNCHANGED;
    if (this.unchanged + this.kept === 0 && this.replaced === 0) return CREATED;
    return UPGRADED;
  }
}

/** The collections of a kind's data folder, sorted (none if the package had
 * no data of that kind when the plugin was built). */
export function collections(kind) {
  return Object.keys(DATA[kind] ?? {}).sort();
}

/** The records of one collection folder, in file-name order. Files that were
 * not records were reported by the build; here they are warned about again
 * at run time, as the other SDKs do. */
export function readRecords(kind, collection) {
  const files = DATA[kind]?.[collection] ?? {};
  const records = [];
  for (const file of Object.keys(files).sort()) {
    const entry = files[file];
    if (entry.problem) warnRecord(collection, file, entry.problem);
    else records.push(entry.record);
  }
  return records;
}

/** Load records (plain objects with a string `id`) into a collection with
 * the rule of their kind; returns a `LoadReport`. */
export function load(collection, kind, records) {
  const report = new LoadReport();
  for (let start = 0; start < records.length; start += LOAD_BATCH) {
    const batch = records
      .slice(start, start + LOAD_BATCH)
      .map((record) => ({ id: record.id, doc: JSON.stringify(record) }));
    try {
      report.add(overlayLoad(collection, kind, batch));
    } catch (e) {
      const failure = failedFromStore(e?.payload ?? e);
      failure.collection ??= collection;
      throw failure;
    }
  }
  return report;
}

/** Load every collection folder of a kind; `unchanged` when nothing was written. */
export function loadFolder(kind) {
  const total = new LoadReport();
  for (const collection of collections(kind)) {
    total.add(load(collection, kind, readRecords(kind, collection)));
  }
  return total.outcome();
}

// ------------------------------------------------------------------ log

export const info = (message) => hostLog.log('info', message);
export const warn = (message) => hostLog.log('warn', message);
/** A problem with one record that does not fail the step. */
export const warnRecord = (collection, recordId, message) => hostLog.warnRecord(collection, recordId, message);
export const progress = (done, total) => hostLog.progress(BigInt(done), BigInt(total));

// ------------------------------------------------------------------ the plugin

/** The release of an Okapi module id: everything after the first `-<digit>`. */
export function releaseOf(moduleId) {
  for (let i = 1; i < moduleId.length; i++) {
    if (moduleId[i - 1] === '-' && moduleId[i] >= '0' && moduleId[i] <= '9') return moduleId.slice(i);
  }
  return moduleId;
}

/** What the runner asks of a step. */
export class Context {
  constructor(ctx) {
    this.tenant = ctx.tenant;
    /** The module id recorded before the step, or undefined: a hint only. */
    this.moduleFrom = ctx.moduleFrom ?? undefined;
    this.moduleTo = ctx.moduleTo;
    this.parameters = Object.fromEntries(ctx.parameters);
    this.simulate = ctx.simulate;
  }

  param(name, fallback) {
    return this.parameters[name] ?? fallback;
  }

  get releaseTo() {
    return releaseOf(this.moduleTo);
  }

  get releaseFrom() {
    return this.moduleFrom === undefined ? undefined : releaseOf(this.moduleFrom);
  }
}

/** The upgrade logic of one module release. Set `moduleName`, `release`,
 * `upgradesFrom` and `rollsBackTo`; override `inspect` and `upgrade`.
 * `rollback` refuses unless overridden; `loadData` loads the package's data
 * of the kind. `inspect` returns undefined (nothing stored), a release
 * string, or throws `Unsupported` saying what it does not recognise. */
export class Migration {
  constructor() {
    this.upgradesFrom = [];
    this.rollsBackTo = [];
  }

  inspect() {
    throw new Error('inspect is not implemented');
  }

  upgrade() {
    throw new Error('upgrade is not implemented');
  }

  rollback(ctx) {
    throw new Unsupported(`${this.moduleName} ${this.release} cannot be rolled back to ${ctx.moduleTo}`);
  }

  loadData(ctx, kind) {
    return loadFolder(kind);
  }
}

/** The object `app.js` exports as `migration`, bridging a `Migration` to
 * the contract's exports. */
export function exportMigration(plugin) {
  return {
    describe() {
      return {
        moduleName: plugin.moduleName,
        release: plugin.release,
        upgradesFrom: [...plugin.upgradesFrom],
        rollsBackTo: [...plugin.rollsBackTo],
        contract: CONTRACT_VERSION,
      };
    },
    inspect() {
      let found;
      try {
        found = plugin.inspect();
      } catch (e) {
        return { tag: 'unrecognised', val: e instanceof Unsupported ? e.message : describeError(e) };
      }
      return found === undefined || found === null ? { tag: 'empty' } : { tag: 'release', val: String(found) };
    },
    upgrade: (ctx) => step(() => plugin.upgrade(new Context(ctx)), 'upgrade'),
    rollback: (ctx) => step(() => plugin.rollback(new Context(ctx)), 'rollback'),
    loadData: (ctx, kind) => step(() => plugin.loadData(new Context(ctx), kind), 'loadData'),
  };
}

function step(run, name) {
  current.collection = current.recordId = undefined;
  let outcome;
  try {
    outcome = run();
  } catch (e) {
    if (e instanceof Unsupported) throw { tag: 'unsupported', val: e.message };
    if (e instanceof Failed) {
      throw { tag: 'failed', val: { message: e.message, collection: e.collection, recordId: e.recordId } };
    }
    throw {
      tag: 'failed',
      val: { message: describeError(e), collection: current.collection, recordId: current.recordId },
    };
  }
  if (![CREATED, UPGRADED, UNCHANGED].includes(outcome)) {
    throw {
      tag: 'failed',
      val: { message: `${name} returned ${String(outcome)}, not CREATED, UPGRADED or UNCHANGED` },
    };
  }
  return outcome;
}

function describeError(e) {
  if (e instanceof Error) {
    const where = (e.stack ?? '').split('\n')[0];
    return `${e.name}: ${e.message}${where ? ` (at ${where})` : ''}`;
  }
  return `thrown: ${String(e)}`;
}
