"""The one path by which `check` and the lapse sweep write what they learned of URLs.

Every change of an image's URL state that `store.expiry` makes (a probe's answer, a signature
found void, an expiry passing) goes through `write_updates`, so anything that must move with
those states has one place to hook.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, update
from sqlalchemy.engine import Row

from store.schema.models import IMAGES, UrlState
from store.schema.rollups import url_states_changed

#: Rows per UPDATE batch (under SQLite's and psycopg's bind limits).
WRITE_BATCH = 500
#: The key of an update naming the call whose URL state it changes (not a column).
CHANGED_CALL = "changed_call"


def url_update(
    row: Row,
    state: UrlState,
    checked_at: datetime | None,
    status: int | None,
    code: str | None,
    failures: int,
) -> dict[str, Any]:
    """One row's new URL columns, as `write_updates` takes them. `row` is the image as read:
    its id, its call's id and its current `url_state`."""
    return {
        "b_id": row.id,
        # The call whose URL-state summary and rollups move with this row (None: no change).
        CHANGED_CALL: row.generation_id if state.value != row.url_state else None,
        "b_state": state.value,
        "b_checked_at": checked_at,
        "b_status": status,
        "b_code": code,
        "b_failures": failures,
    }


_UPDATE = (
    update(IMAGES)
    .where(IMAGES.c.id == bindparam("b_id"))
    .values(
        url_state=bindparam("b_state"),
        last_checked_at=bindparam("b_checked_at"),
        last_http_status=bindparam("b_status"),
        last_error_code=bindparam("b_code"),
        check_failures=bindparam("b_failures"),
    )
)


def write_updates(engine: Engine, updates: list[dict[str, Any]]) -> None:
    """One executemany UPDATE per batch, in one transaction with the move of the changed
    calls' URL-state summaries and rollups (store/schema/rollups.py)."""
    changed = {update[CHANGED_CALL] for update in updates if update[CHANGED_CALL] is not None}
    rows = [{k: v for k, v in update.items() if k != CHANGED_CALL} for update in updates]
    with engine.begin() as connection:
        for start in range(0, len(rows), WRITE_BATCH):
            connection.execute(_UPDATE, rows[start : start + WRITE_BATCH])
        url_states_changed(connection, changed)
