"""Former home of the case and effect statements, split by concern in the shell redesign:
`rungs.store.sql` (statements on the driver's cursor), `rungs.store.cases` (load, find,
save) and `rungs.store.effects` (the effect writer). These names stay importable from here
until every caller (the dispatcher's `Sql`, `run`, `run_many`) imports them from their home.
"""

from __future__ import annotations

from rungs.store.cases import find_open, insert_case, load_case, new_case_id, save_case
from rungs.store.sql import Sql, run, run_many

__all__ = [
    "Sql",
    "find_open",
    "insert_case",
    "load_case",
    "new_case_id",
    "run",
    "run_many",
    "save_case",
]
