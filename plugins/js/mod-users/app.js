// mod-users 2.0.0 in JavaScript: the same releases, steps and records as the
// Rust plugin (plugins/mod-users), so that one package of either language
// upgrades the other's data. 1.0.0 creates `users`, `groups` and
// `addresstypes`; 1.1.0 indexes `personal.email` and gives every user a
// `type`; 2.0.0 moves `personal` to `name` (`lastName` -> `family`,
// `firstName` -> `given`), `personal.email` to `contact.email` and
// `patronGroup` to `groupId`, and rolls back to 1.1.0 exactly.

import {
  CREATED, UNCHANGED, UPGRADED, Collection, Failed, FieldChange, Migration, Unsupported,
  exportMigration, index, progress,
} from './graft-sdk.js';

const RELEASE = '2.0.0';
const RELEASES = ['1.0.0', '1.1.0', '2.0.0'];
const EMAIL_INDEX = 'users-email';
const CONTACT_EMAIL_INDEX = 'users-contact-email';
const DEFAULT_TYPE = 'patron';
const PAGE = 2000;

const users = new Collection('users');

class ModUsers extends Migration {
  constructor() {
    super();
    this.moduleName = 'mod-users';
    this.release = RELEASE;
    this.upgradesFrom = RELEASES.slice(0, -1);
    this.rollsBackTo = ['1.1.0'];
  }

  // The release from the shape of storage: each release's index marks it.
  inspect() {
    if (!users.exists()) return undefined;
    const indexes = users.indexes();
    const email = indexes.includes(EMAIL_INDEX);
    const contact = indexes.includes(CONTACT_EMAIL_INDEX);
    if (email && contact) throw new Unsupported(`users has both ${EMAIL_INDEX} and ${CONTACT_EMAIL_INDEX}`);
    return contact ? '2.0.0' : email ? '1.1.0' : '1.0.0';
  }

  upgrade(ctx) {
    const stored = this.inspect();
    if (stored === RELEASE) return UNCHANGED;
    const start = stored === undefined ? 0 : RELEASES.indexOf(stored) + 1;
    for (const release of RELEASES.slice(start)) STEPS[release]();
    return stored === undefined ? CREATED : UPGRADED;
  }

  rollback(ctx) {
    if (ctx.releaseTo !== '1.1.0') {
      throw new Unsupported(`mod-users ${RELEASE} cannot roll back to ${ctx.releaseTo}; 2.0.0 rolls back to 1.1.0`);
    }
    const stored = this.inspect();
    if (stored === '1.1.0') return UNCHANGED;
    if (stored !== '2.0.0') throw new Unsupported(`rollback to 1.1.0 needs storage at 2.0.0, found ${stored}`);
    users.dropIndex(CONTACT_EMAIL_INDEX);
    rewriteUsers(to110);
    users.createIndex(index(EMAIL_INDEX, 'personal.email'));
    return UPGRADED;
  }
}

const STEPS = {
  '1.0.0'() {
    users.create();
    users.createIndex(index('users-username', 'username', { unique: true, caseInsensitive: true }));
    users.createIndex(index('users-barcode', 'barcode', { unique: true }));
    const groups = new Collection('groups');
    groups.create();
    groups.createIndex(index('groups-group', 'group', { unique: true, caseInsensitive: true }));
    const addressTypes = new Collection('addresstypes');
    addressTypes.create();
    addressTypes.createIndex(index('addresstypes-addressType', 'addressType', { unique: true, caseInsensitive: true }));
  },
  '1.1.0'() {
    users.createIndex(index(EMAIL_INDEX, 'personal.email'));
    users.updateAll(FieldChange.setDefault('type', DEFAULT_TYPE));
  },
  // The index on the moved field goes before the rewrite and the new one
  // after it: built once from all records, not updated record by record.
  '2.0.0'() {
    users.dropIndex(EMAIL_INDEX);
    rewriteUsers(to200);
    users.createIndex(index(CONTACT_EMAIL_INDEX, 'contact.email'));
  },
};

// Rewrite every user, a page read and a batch written at a time.
function rewriteUsers(transform) {
  const total = users.count();
  const writer = users.writer(PAGE);
  let done = 0;
  for (const [id, user] of users.scan(PAGE)) {
    let changed;
    try {
      changed = transform(user);
    } catch (e) {
      throw new Failed(e.message).at('users', id);
    }
    writer.put(id, changed);
    if (done % PAGE === 0) progress(done, total);
    done += 1;
  }
  writer.finish();
  progress(total, total);
}

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

function to200(user) {
  for (const field of ['name', 'contact', 'groupId']) {
    if (field in user) throw new Error(`a 1.1.0 user must not have the 2.0.0 field "${field}"`);
  }
  if ('patronGroup' in user) {
    user.groupId = user.patronGroup;
    delete user.patronGroup;
  }
  if ('personal' in user) {
    const name = user.personal;
    delete user.personal;
    if (!isObject(name)) throw new Error(`personal: expected a JSON object, found ${JSON.stringify(name)}`);
    if ('email' in name) {
      user.contact = { email: name.email };
      delete name.email;
    }
    rename(name, 'lastName', 'family');
    rename(name, 'firstName', 'given');
    user.name = name;
  }
  return user;
}

function to110(user) {
  if ('groupId' in user) {
    user.patronGroup = user.groupId;
    delete user.groupId;
  }
  let hasEmail = false;
  let email;
  if ('contact' in user) {
    const contact = user.contact;
    delete user.contact;
    if (!isObject(contact)) throw new Error(`contact: expected a JSON object, found ${JSON.stringify(contact)}`);
    hasEmail = 'email' in contact;
    email = contact.email;
    delete contact.email;
    if (Object.keys(contact).length > 0) throw new Error('contact has fields 1.1.0 cannot hold');
  }
  if (!('name' in user)) {
    if (hasEmail) throw new Error('a user with contact.email but no name cannot be written as 1.1.0');
    return user;
  }
  const personal = user.name;
  delete user.name;
  if (!isObject(personal)) throw new Error(`name: expected a JSON object, found ${JSON.stringify(personal)}`);
  rename(personal, 'family', 'lastName');
  rename(personal, 'given', 'firstName');
  if (hasEmail) personal.email = email;
  user.personal = personal;
  return user;
}

function rename(fields, from, to) {
  if (from in fields) {
    fields[to] = fields[from];
    delete fields[from];
  }
}

export const migration = exportMigration(new ModUsers());
