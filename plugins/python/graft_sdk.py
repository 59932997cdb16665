"""Graft plugin SDK for Python.

Write the upgrade logic of a module as a Graft plugin in Python: a
WebAssembly component built by componentize-py from the contract
(`graft wit`, package `graft:migration@0.1.0`), called by the `graft` runner
tenant by tenant inside a database transaction. This module wraps the
generated bindings in plain Python, as the Rust SDK does:

- subclass `Migration`, and export it with `Migration = export(MyModule)`
  in the app module componentize-py builds;
- read and write the module's data through `Collection`s of dicts, with paged
  scans as iterators (`for id, doc in users.scan(): ...`) and batched writers;
- load vendor data with `load_folder(kind)` (or `read_records` + `load`), which
  applies the right rule for each kind through the runner's overlay;
- report with `info`, `warn`, `warn_record` and `progress`.

Raise `Unsupported` or `Failed` to fail a step: the runner rolls back
everything the step wrote. Any other exception fails the step too, as
`failed`, naming the collection and record the plugin was working on when
it was raised (the record last read from a scan, or the one being written).

Build: `componentize-py -d wit -w plugin componentize app -o plugin.wasm`,
with this file beside `app.py` (see `graft new --lang python`).
"""

import json
import os
import traceback

import componentize_py_types as _cpt
from wit_world.exports import Migration as _ExportedMigration
from wit_world.imports import log as _log
from wit_world.imports import overlay as _overlay
from wit_world.imports import store as _store
from wit_world.imports import types as _types

CONTRACT_VERSION = "0.1.0"

#: The kinds of vendor data, each treated its own way by the overlay.
DataKind = _types.DataKind
SYSTEM = DataKind.SYSTEM
REFERENCE = DataKind.REFERENCE
SAMPLE = DataKind.SAMPLE

#: Outcomes of a successful step.
CREATED = _types.Outcome.CREATED
UPGRADED = _types.Outcome.UPGRADED
UNCHANGED = _types.Outcome.UNCHANGED

#: How many records one overlay call carries.
LOAD_BATCH = 1000

# The record the plugin is working on, so that an unexpected exception
# names it: (collection, record id), set by scans and writes.
_current = [None, None]


# ---------------------------------------------------------------- errors


class StepError(Exception):
    """Base of the errors that end a step."""


class Unsupported(StepError):
    """The plugin cannot do this step (the platform's 400), e.g. a downgrade
    it does not support."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class Failed(StepError):
    """The step failed (500), optionally at one record."""

    def __init__(self, message, collection=None, record_id=None):
        super().__init__(message)
        self.message = message
        self.collection = collection
        self.record_id = record_id

    def at(self, collection, record_id):
        """Name the record the failure happened at."""
        self.collection, self.record_id = collection, record_id
        return self

    def __str__(self):
        where = ""
        if self.collection:
            where = f" (collection {self.collection}"
            if self.record_id:
                where += f", record {self.record_id}"
            where += ")"
        return self.message + where


def _store_call(call, *args):
    """Call the store, turning its error into `Failed` naming what it says."""
    try:
        return call(*args)
    except _cpt.Err as err:
        raise _failed_from_store(err.value) from None


def _failed_from_store(error):
    if isinstance(error, _store.StoreError_UniqueViolation):
        v = error.value
        return Failed(f"unique index {v.index} violated", v.collection, v.record_id)
    if isinstance(error, _store.StoreError_NoSuchCollection):
        return Failed(f"no collection {error.value}", error.value)
    kinds = {
        _store.StoreError_InvalidName: "invalid name",
        _store.StoreError_InvalidDocument: "invalid document",
        _store.StoreError_Other: "storage",
    }
    return Failed(f"{kinds.get(type(error), 'storage')}: {error.value}")


# ---------------------------------------------------------------- storage


class IndexSpec:
    """An index on one field (or several joined by commas) of the documents."""

    def __init__(self, name, field, unique=False, case_insensitive=False):
        self.name, self.field = name, field
        self.unique, self.case_insensitive = unique, case_insensitive

    @classmethod
    def unique_ci(cls, name, field):
        """A unique, case-insensitive index (FOLIO's `lower(...)` indexes)."""
        return cls(name, field, unique=True, case_insensitive=True)

    def _wit(self):
        return _store.IndexSpec(self.name, self.field, self.unique, self.case_insensitive)


class FieldChange:
    """A change the host applies to every record in one statement."""

    @staticmethod
    def set_default(path, value):
        """Set `path` to `value` where it is missing."""
        return _store.FieldChange_SetDefault((path, json.dumps(value)))

    @staticmethod
    def set(path, value):
        """Set `path` to `value` on every record."""
        return _store.FieldChange_Set((path, json.dumps(value)))

    @staticmethod
    def remove(path):
        """Remove `path` from every record."""
        return _store.FieldChange_Remove(path)

    @staticmethod
    def rename(source, target):
        """Move the field at `source` to `target`."""
        return _store.FieldChange_Rename((source, target))


class Collection:
    """One of the module's collections for the tenant of the call; records
    are dicts (JSON objects) with string ids."""

    def __init__(self, name):
        self.name = name

    def exists(self):
        return self.name in _store.list_collections()

    def create(self):
        """Create the collection; False if it already existed."""
        return _store_call(_store.create_collection, self.name)

    def drop_collection(self):
        """Drop the collection and its indexes; False if it did not exist."""
        return _store_call(_store.drop_collection, self.name)

    def create_index(self, spec):
        return _store_call(_store.create_index, self.name, spec._wit())

    def drop_index(self, name):
        return _store_call(_store.drop_index, self.name, name)

    def indexes(self):
        """The index names, sorted."""
        return [spec.name for spec in _store_call(_store.list_indexes, self.name)]

    def has_index(self, name):
        return name in self.indexes()

    def get(self, record_id):
        text = _store_call(_store.get, self.name, record_id)
        return None if text is None else json.loads(text)

    def put(self, record_id, doc):
        """Insert or replace one record; True if it was inserted."""
        _current[:] = [self.name, record_id]
        return _store_call(_store.put, self.name, _types.Record(record_id, _dump(doc)))

    def delete(self, record_id):
        return _store_call(_store.delete, self.name, record_id)

    def count(self):
        return _store_call(_store.count, self.name)

    def update_all(self, *changes):
        """Apply `FieldChange`s to every record, one statement each; returns
        how many records changed."""
        return _store_call(_store.update_all, self.name, list(changes))

    def scan(self, page_size=2000):
        """Every record as `(id, doc)`, in id order, read a page at a time."""
        after = None
        while True:
            page = _store_call(_store.scan, self.name, after, page_size)
            if not page:
                return
            for record in page:
                _current[:] = [self.name, record.id]
                yield record.id, json.loads(record.doc)
            after = page[-1].id

    def writer(self, batch_size=2000):
        """A `BatchWriter`: puts gathered and written `batch_size` at a time."""
        return BatchWriter(self.name, batch_size)


class BatchWriter:
    """Gathers puts and writes them in batches (one host call each). Use it
    as a context manager, or call `finish()`: what is not flushed is not
    written. Each batch is written whole or not at all."""

    def __init__(self, collection, batch_size):
        self.collection, self.batch_size = collection, batch_size
        self.pending = []
        self.inserted = 0
        self.written = 0

    def put(self, record_id, doc):
        self.pending.append(_types.Record(record_id, _dump(doc)))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self):
        if self.pending:
            self.inserted += _store_call(_store.put_batch, self.collection, self.pending)
            self.written += len(self.pending)
            self.pending = []

    def finish(self):
        """Write what is left; returns (inserted, replaced)."""
        self.flush()
        return self.inserted, self.written - self.inserted

    def __enter__(self):
        return self

    def __exit__(self, kind, value, trace):
        if kind is None:
            self.flush()
        return False


def _dump(doc):
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------- vendor data

_FOLDERS = {SYSTEM: "/system-data", REFERENCE: "/reference-data", SAMPLE: "/sample-data"}


class LoadReport:
    """What loads did, in counts."""

    def __init__(self):
        self.inserted = self.replaced = self.unchanged = self.kept = self.skipped = 0

    def add(self, other):
        for field in ("inserted", "replaced", "unchanged", "kept", "skipped"):
            setattr(self, field, getattr(self, field) + getattr(other, field))

    def outcome(self):
        """The outcome of a step that did these loads."""
        if self.inserted + self.replaced == 0:
            return UNCHANGED
        if self.unchanged + self.kept == 0 and self.replaced == 0:
            return CREATED
        return UPGRADED


def folder(kind):
    """The read-only folder the runner mounts for a kind of data."""
    return _FOLDERS[kind]


def collections(kind):
    """The collection folders of a kind's data folder, sorted (none if the
    package has no data of that kind)."""
    try:
        entries = os.listdir(folder(kind))
    except OSError:
        return []
    return sorted(e for e in entries if os.path.isdir(os.path.join(folder(kind), e)))


def read_records(kind, collection):
    """The records of one collection folder, in file-name order, as
    `_types.Record`s. A file that is not a JSON object with a string `id` is
    reported as a warning on that file and skipped."""
    directory = os.path.join(folder(kind), collection)
    records = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            warn_record(collection, name, "not a record: a folder (records are JSON files in the collection folder)")
            continue
        if not name.endswith(".json"):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            warn_record(collection, name, f"not JSON: {e}")
            continue
        if not isinstance(doc, dict):
            warn_record(collection, name, "not a record: the file holds no JSON object")
        elif not isinstance(doc.get("id"), str):
            warn_record(collection, name, 'not a record: no string "id" field')
        else:
            records.append(_types.Record(doc["id"], _dump(doc)))
    return records


def load(collection, kind, records):
    """Load records (`_types.Record`s or dicts with an `id`) into a
    collection with the rule of their kind; returns a `LoadReport`."""
    report = LoadReport()
    batch = []
    for record in records:
        if isinstance(record, dict):
            record = _types.Record(record["id"], _dump(record))
        batch.append(record)
        if len(batch) == LOAD_BATCH:
            report.add(_load_batch(collection, kind, batch))
            batch = []
    if batch:
        report.add(_load_batch(collection, kind, batch))
    return report


def _load_batch(collection, kind, batch):
    try:
        return _overlay.load(collection, kind, batch)
    except _cpt.Err as err:
        failure = _failed_from_store(err.value)
        failure.collection = failure.collection or collection
        raise failure from None


def load_folder(kind):
    """Load every collection folder of a kind's data folder; the outcome is
    UNCHANGED when nothing was written."""
    total = LoadReport()
    for collection in collections(kind):
        total.add(load(collection, kind, read_records(kind, collection)))
    return total.outcome()


# ---------------------------------------------------------------- log


def info(message):
    _log.log(_log.Level.INFO, message)


def warn(message):
    _log.log(_log.Level.WARN, message)


def warn_record(collection, record_id, message):
    """A problem with one record that does not fail the step."""
    _log.warn_record(collection, record_id, message)


def progress(done, total):
    _log.progress(done, total)


# ---------------------------------------------------------------- the plugin


class Context:
    """What the runner asks of a step."""

    def __init__(self, ctx):
        self.tenant = ctx.tenant
        #: The module id recorded before the step, or None: a hint only.
        self.module_from = ctx.module_from
        self.module_to = ctx.module_to
        self.parameters = dict(ctx.parameters)
        self.simulate = ctx.simulate

    def param(self, name, default=None):
        return self.parameters.get(name, default)

    @property
    def release_to(self):
        """`2.0.0` of `mod-users-2.0.0`."""
        return release_of(self.module_to)

    @property
    def release_from(self):
        return None if self.module_from is None else release_of(self.module_from)


def release_of(module_id):
    """The release of an Okapi module id: everything after the first `-<digit>`."""
    for i in range(1, len(module_id)):
        if module_id[i - 1] == "-" and module_id[i].isdigit():
            return module_id[i:]
    return module_id


class Migration:
    """The upgrade logic of one module release. Override `inspect` and
    `upgrade`; `rollback` refuses unless overridden; `load_data` loads the
    package's data folder of the kind. Each method runs in a fresh instance,
    in its own transaction, for one tenant.

    `inspect` returns None (nothing stored), a release string, or raises
    `Unsupported` with what it found that it does not recognise."""

    module_name = None
    release = None
    upgrades_from = ()
    rolls_back_to = ()

    def inspect(self):
        raise NotImplementedError

    def upgrade(self, ctx):
        raise NotImplementedError

    def rollback(self, ctx):
        raise Unsupported(f"{self.module_name} {self.release} cannot be rolled back to {ctx.module_to}")

    def load_data(self, ctx, kind):
        return load_folder(kind)


def export(migration_class):
    """The class componentize-py exports for the `migration` interface,
    bridging a `Migration` subclass to the generated bindings. In `app.py`:
    `Migration = graft_sdk.export(MyModule)`."""

    plugin = migration_class()

    class Exported(_ExportedMigration):
        def describe(self):
            return _types.Description(
                plugin.module_name,
                plugin.release,
                list(plugin.upgrades_from),
                list(plugin.rolls_back_to),
                CONTRACT_VERSION,
            )

        def inspect(self):
            try:
                found = plugin.inspect()
            except Unsupported as e:
                return _types.StoredState_Unrecognised(e.message)
            except Exception as e:  # noqa: BLE001 - a guest error is data for the host
                return _types.StoredState_Unrecognised(f"{type(e).__name__}: {e}")
            if found is None:
                return _types.StoredState_Empty()
            return _types.StoredState_Release(found)

        def upgrade(self, ctx):
            return _step(plugin.upgrade, Context(ctx))

        def rollback(self, ctx):
            return _step(plugin.rollback, Context(ctx))

        def load_data(self, ctx, kind):
            return _step(plugin.load_data, Context(ctx), kind)

    return Exported


def _step(method, *args):
    _current[:] = [None, None]
    try:
        outcome = method(*args)
    except Unsupported as e:
        raise _cpt.Err(_types.Failure_Unsupported(e.message)) from None
    except Failed as e:
        raise _cpt.Err(_types.Failure_Failed(_types.FailureDetail(e.message, e.collection, e.record_id))) from None
    except Exception as e:  # noqa: BLE001 - any error fails the step, never traps
        frame = traceback.extract_tb(e.__traceback__)[-1]
        message = f"{type(e).__name__}: {e} (at {os.path.basename(frame.filename)}:{frame.lineno})"
        collection, record_id = _current
        raise _cpt.Err(_types.Failure_Failed(_types.FailureDetail(message, collection, record_id))) from None
    if outcome not in (CREATED, UPGRADED, UNCHANGED):
        raise _cpt.Err(_types.Failure_Failed(_types.FailureDetail(
            f"{method.__name__} returned {outcome!r}, not CREATED, UPGRADED or UNCHANGED", None, None)))
    return outcome
