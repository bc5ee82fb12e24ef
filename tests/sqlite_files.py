"""Reading a runcast SQLite file with plain sqlite3, apart from the store's own code: what a test
checks the store against."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def stored_events(db: Path, run_id: str) -> tuple[str, list[str]]:
    """What the file holds for `run_id`: (status, frames in index order), the indices checked to
    be 0..n-1."""
    connection = sqlite3.connect(db)
    try:
        (status,) = connection.execute("SELECT status FROM runs WHERE run_id=?", (run_id,)).fetchone()
        rows = connection.execute(
            "SELECT idx, frame FROM events WHERE run_id=? ORDER BY idx", (run_id,)
        ).fetchall()
    finally:
        connection.close()
    assert [idx for idx, _ in rows] == list(range(len(rows)))
    return status, [frame for _, frame in rows]
