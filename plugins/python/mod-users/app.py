"""mod-users 2.0.0 in Python: the same releases, steps and records as the
Rust plugin (plugins/mod-users), so that one package of either language
upgrades the other's data. 1.0.0 creates `users`, `groups` and
`addresstypes`; 1.1.0 indexes `personal.email` and gives every user a
`type`; 2.0.0 moves `personal` to `name` (`lastName` -> `family`,
`firstName` -> `given`), `personal.email` to `contact.email` and
`patronGroup` to `groupId`, and rolls back to 1.1.0 exactly."""

import graft_sdk as graft
from graft_sdk import CREATED, UNCHANGED, UPGRADED, Collection, Failed, FieldChange, IndexSpec, Unsupported

RELEASE = "2.0.0"
RELEASES = ["1.0.0", "1.1.0", "2.0.0"]
EMAIL_INDEX = "users-email"
CONTACT_EMAIL_INDEX = "users-contact-email"
DEFAULT_TYPE = "patron"
PAGE = 2000

users = Collection("users")


class ModUsers(graft.Migration):
    module_name = "mod-users"
    release = RELEASE
    upgrades_from = RELEASES[:-1]
    rolls_back_to = ["1.1.0"]

    def inspect(self):
        """The release from the shape of storage: each release's index marks it."""
        if not users.exists():
            return None
        indexes = users.indexes()
        email, contact = EMAIL_INDEX in indexes, CONTACT_EMAIL_INDEX in indexes
        if email and contact:
            raise Unsupported(f"users has both {EMAIL_INDEX} and {CONTACT_EMAIL_INDEX}")
        return "2.0.0" if contact else "1.1.0" if email else "1.0.0"

    def upgrade(self, ctx):
        stored = self.inspect()
        if stored == RELEASE:
            return UNCHANGED
        if stored is not None and stored not in RELEASES:
            raise Unsupported(f"tenant {ctx.tenant} holds mod-users {stored}, which this plugin does not know")
        start = 0 if stored is None else RELEASES.index(stored) + 1
        for release in RELEASES[start:]:
            STEPS[release]()
        return CREATED if stored is None else UPGRADED

    def rollback(self, ctx):
        if ctx.release_to != "1.1.0":
            raise Unsupported(f"mod-users {RELEASE} cannot roll back to {ctx.release_to}; 2.0.0 rolls back to 1.1.0")
        stored = self.inspect()
        if stored == "1.1.0":
            return UNCHANGED
        if stored != "2.0.0":
            raise Unsupported(f"rollback to 1.1.0 needs storage at 2.0.0, found {stored}")
        users.drop_index(CONTACT_EMAIL_INDEX)
        rewrite_users(to_1_1_0)
        users.create_index(IndexSpec(EMAIL_INDEX, "personal.email"))
        return UPGRADED


def create_1_0_0():
    users.create()
    users.create_index(IndexSpec.unique_ci("users-username", "username"))
    users.create_index(IndexSpec("users-barcode", "barcode", unique=True))
    groups = Collection("groups")
    groups.create()
    groups.create_index(IndexSpec.unique_ci("groups-group", "group"))
    address_types = Collection("addresstypes")
    address_types.create()
    address_types.create_index(IndexSpec.unique_ci("addresstypes-addressType", "addressType"))


def upgrade_to_1_1_0():
    users.create_index(IndexSpec(EMAIL_INDEX, "personal.email"))
    users.update_all(FieldChange.set_default("type", DEFAULT_TYPE))


def upgrade_to_2_0_0():
    # The index on the moved field goes before the rewrite and the new one
    # after it: built once from all records, not updated record by record.
    users.drop_index(EMAIL_INDEX)
    rewrite_users(to_2_0_0)
    users.create_index(IndexSpec(CONTACT_EMAIL_INDEX, "contact.email"))


STEPS = {"1.0.0": create_1_0_0, "1.1.0": upgrade_to_1_1_0, "2.0.0": upgrade_to_2_0_0}


def rewrite_users(transform):
    """Rewrite every user, a page read and a batch written at a time."""
    total = users.count()
    with users.writer(PAGE) as writer:
        for done, (record_id, user) in enumerate(users.scan(PAGE)):
            try:
                writer.put(record_id, transform(user))
            except ValueError as e:
                raise Failed(str(e)).at("users", record_id) from None
            if done % PAGE == 0:
                graft.progress(done, total)
    graft.progress(total, total)


def to_2_0_0(user):
    for field in ("name", "contact", "groupId"):
        if field in user:
            raise ValueError(f'a 1.1.0 user must not have the 2.0.0 field "{field}"')
    if "patronGroup" in user:
        user["groupId"] = user.pop("patronGroup")
    if "personal" in user:
        name = user.pop("personal")
        if not isinstance(name, dict):
            raise ValueError(f"personal: expected a JSON object, found {name!r}")
        if "email" in name:
            user["contact"] = {"email": name.pop("email")}
        rename(name, "lastName", "family")
        rename(name, "firstName", "given")
        user["name"] = name
    return user


def to_1_1_0(user):
    if "groupId" in user:
        user["patronGroup"] = user.pop("groupId")
    email = None
    has_email = False
    if "contact" in user:
        contact = user.pop("contact")
        if not isinstance(contact, dict):
            raise ValueError(f"contact: expected a JSON object, found {contact!r}")
        has_email = "email" in contact
        email = contact.pop("email", None)
        if contact:
            raise ValueError("contact has fields 1.1.0 cannot hold")
    if "name" not in user:
        if has_email:
            raise ValueError("a user with contact.email but no name cannot be written as 1.1.0")
        return user
    personal = user.pop("name")
    if not isinstance(personal, dict):
        raise ValueError(f"name: expected a JSON object, found {personal!r}")
    rename(personal, "family", "lastName")
    rename(personal, "given", "firstName")
    if has_email:
        personal["email"] = email
    user["personal"] = personal
    return user


def rename(fields, source, target):
    if source in fields:
        fields[target] = fields.pop(source)


Migration = graft.export(ModUsers)
