"""Identity resolution: identities merged into unified profiles (DESIGN §10).

The rules live in small modules, each named after what it holds:

- `settings`: the workspace's ordered identifiers and their blocked values;
- `normalise`: the comparison key of a value (trimmed, case-insensitive, null if
  empty or blocked);
- `links`: when two identities are linked, and the fixed order links are taken in;
- `components`: profiles as connected components, with the first-identifier guard;
- `values`: a profile's values (latest non-null per property);
- `ids`: stable profile ids and the merges and splits that change them;
- `store`: the `IdentityStore` contract the warehouse implements; `memory`: an
  implementation held in memory;
- `resolve`: the entry points, `resolve_changes` (after a run, over the affected
  neighbourhood only) and `rebuild` (everything).  Both give the same profiles.

Nothing here does I/O except through an `IdentityStore`; the run engine decides when
to call it (after a run's writes commit).  See docs/identity.md.
"""

from __future__ import annotations

from headwater.services.identity.memory import MemoryIdentityStore
from headwater.services.identity.normalise import normalise
from headwater.services.identity.records import (
    ChangeKind,
    Context,
    Identity,
    IdentityKey,
    ProfileChange,
    ProfilePlan,
    ProfileRow,
)
from headwater.services.identity.resolve import neighbourhood, rebuild, resolve_changes
from headwater.services.identity.settings import (
    IdentitySettings,
    default_blocked,
    identity_settings,
    settings_from_dict,
)
from headwater.services.identity.store import IdentityStore, Probe

__all__ = [
    "ChangeKind",
    "Context",
    "Identity",
    "IdentityKey",
    "IdentitySettings",
    "IdentityStore",
    "MemoryIdentityStore",
    "Probe",
    "ProfileChange",
    "ProfilePlan",
    "ProfileRow",
    "default_blocked",
    "identity_settings",
    "neighbourhood",
    "normalise",
    "rebuild",
    "resolve_changes",
    "settings_from_dict",
]
