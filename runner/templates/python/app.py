"""The migration plugin of {{module}}, made by `graft new`.

One plugin per release. It knows every step from an empty tenant up to its
own release, so any older tenant can be brought up to date, and it finds the
release the data is at by looking at the data (`inspect`), never by trusting
what was recorded.

To add release 1.1.0: set RELEASE, append it to RELEASES, write
`upgrade_to_1_1_0` and list it in STEPS, make `inspect` recognise it (an
index or collection only 1.1.0 has), and, if 1.1.0 can be undone, list 1.0.0
in `rolls_back_to` and write `rollback`. Then capture fixtures of tenants at
1.0.0 and run `graft validate` on them.
"""

import graft_sdk as graft
from graft_sdk import CREATED, UNCHANGED, UPGRADED, Collection, IndexSpec, Unsupported

# The release this plugin migrates to; it must match the ModuleDescriptor.
RELEASE = "1.0.0"
# Every release, oldest first.
RELEASES = ["1.0.0"]

items = Collection("{{name}}")
item_types = Collection("{{name}}-types")
# The index whose presence marks storage at 1.0.0.
NAME_INDEX = "{{name}}-name"


class Plugin(graft.Migration):
    module_name = "{{module}}"
    release = RELEASE
    # Releases this one can upgrade from: all before it.
    upgrades_from = RELEASES[:-1]

    def inspect(self):
        if not items.exists():
            return None
        if items.has_index(NAME_INDEX):
            return "1.0.0"
        raise Unsupported(f"{{name}} exists without the index {NAME_INDEX}")

    def upgrade(self, ctx):
        stored = self.inspect()
        # Running again on data already at this release changes nothing:
        # `graft validate` checks that a second run is UNCHANGED.
        if stored == RELEASE:
            return UNCHANGED
        if stored is not None and stored not in RELEASES:
            raise Unsupported(f"storage holds {{module}} {stored}, which this plugin does not know")
        start = 0 if stored is None else RELEASES.index(stored) + 1
        for release in RELEASES[start:]:
            STEPS[release]()
        return CREATED if stored is None else UPGRADED

    # load_data is the SDK's: every collection folder of the package's data
    # folder of the kind, through the runner's overlay, so a tenant's edits
    # to reference records survive. Never write vendor data with plain puts.


def create_1_0_0():
    items.create()
    items.create_index(IndexSpec.unique_ci(NAME_INDEX, "name"))
    items.create_index(IndexSpec("{{name}}-typeId", "typeId"))
    item_types.create()
    item_types.create_index(IndexSpec.unique_ci("{{name}}-types-name", "name"))


STEPS = {"1.0.0": create_1_0_0}

Migration = graft.export(Plugin)
