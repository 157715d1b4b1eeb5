"""The node data key's life (数据保密性): creating it, rotating it, and re-encrypting what is stored.

Where ID numbers are stored in the provincial node, and how (``common.protection`` column types):

==========================  ===============================  ==============================================
table.column                holds                            stored as
==========================  ===============================  ==============================================
teacher.doc_number          the file's identity document     AES-256-GCM ciphertext; ``doc_index`` its HMAC
teacher.data / .draft       基本信息.身份证件号 (JBXX.SFZJH)     the same field encrypted inside the JSON
teacher_history.changes     old/new of JBXX.SFZJH             the same, inside the JSON
account.id_number           an account holder's ID number     ciphertext; ``id_index`` its HMAC
transfer.doc_number         a transfer request's identity     ciphertext
seal_key.key                the province seal keys            ciphertext (re-encrypted by a rotation too)
==========================  ===============================  ==============================================

The outbox's records, the batches and the upward/inbound protocol messages carry the identity *sealed* to the
province seal key (``provincial_node.sync.sealing``; before the province has one, held under this data key).

:func:`reencrypt` rewrites every row of those tables under the current key and fills the blind indexes; it is
the migration path of a node upgraded from before protection (``tmis province data-keys reencrypt``) and the second
half of a rotation (``tmis province data-keys rotate``). It works in batches, each in its own transaction, and can be
run again after an interruption: values under any key the file holds stay readable throughout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import flag_modified

from common.db import session_scope
from common.protection import PREFIX, DataKeys
from provincial_node.accounts.models import Account
from provincial_node.sync.models import SealKey
from provincial_node.teacher_files.models import Teacher, TeacherHistory
from provincial_node.transfers.models import Transfer

# (model, protected attributes, blind index attribute ← its source)
PROTECTED: tuple[tuple[type, tuple[str, ...], tuple[str, str] | None], ...] = (
    (Teacher, ("doc_number", "data", "draft"), ("doc_index", "doc_number")),
    (TeacherHistory, ("changes",), None),
    (Account, ("id_number",), ("id_index", "id_number")),
    (Transfer, ("doc_number",), None),
)


@dataclass(frozen=True)
class Reencrypted:
    rows: dict[str, int]


def create_key_file(path: Path) -> DataKeys:
    """A new data key file (mode 0600); an existing one is never overwritten."""
    keys = DataKeys.generate()
    keys.save(path)
    return keys


def rotate_key_file(path: Path) -> DataKeys:
    """Add a new current key to the file (the old ones stay, so everything stored stays readable)."""
    keys = DataKeys.load(path).rotated()
    keys.save(path, replace=True)
    return keys


def reencrypt(
    factory: sessionmaker[Session], batch: int = 500, progress: Callable[[str, int], None] | None = None
) -> Reencrypted:
    """Rewrite every protected value under the current key and fill every blind index (see the module rules)."""
    counts: dict[str, int] = {}
    for model, attrs, index in PROTECTED:
        done, last = 0, 0
        while True:
            with session_scope(factory) as s:
                rows = list(s.scalars(select(model).where(model.id > last).order_by(model.id).limit(batch)))
                for row in rows:
                    for attr in attrs:
                        flag_modified(row, attr)
                    if index is not None:
                        setattr(row, index[0], getattr(row, index[1]))
                if rows:
                    last = rows[-1].id
            done += len(rows)
            if progress and rows:
                progress(model.__tablename__, done)
            if len(rows) < batch:
                break
        counts[model.__tablename__] = done
    with session_scope(factory) as s:  # a handful of rows, keyed by kid
        keys = list(s.scalars(select(SealKey)))
        for row in keys:
            flag_modified(row, "key")
        counts[SealKey.__tablename__] = len(keys)
    return Reencrypted(counts)


def unprotected_rows(session: Session) -> int:
    """Rows still holding an ID number in clear or without their blind index (``serve`` refuses to start while
    there are any: run ``tmis province data-keys reencrypt``)."""
    like = PREFIX + "%"
    teachers = session.execute(
        text("SELECT count(*) FROM teacher WHERE doc_index IS NULL OR doc_number NOT LIKE :p"), {"p": like}
    ).scalar_one()
    accounts = session.execute(
        text(
            "SELECT count(*) FROM account WHERE id_number IS NOT NULL AND (id_index IS NULL OR id_number NOT LIKE :p)"
        ),
        {"p": like},
    ).scalar_one()
    transfers = session.execute(
        text("SELECT count(*) FROM transfer WHERE doc_number IS NOT NULL AND doc_number NOT LIKE :p"), {"p": like}
    ).scalar_one()
    return int(teachers) + int(accounts) + int(transfers)


def rows_under_old_keys(session: Session, keys: DataKeys) -> int:
    """Teacher rows whose identity is encrypted under a key other than the current one (after a rotation)."""
    current = f"{PREFIX}{keys.current}:%"  # raw SQL: an ORM comparison would encrypt the pattern
    return int(
        session.execute(text("SELECT count(*) FROM teacher WHERE doc_number NOT LIKE :p"), {"p": current}).scalar_one()
    )
