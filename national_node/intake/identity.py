"""Keyed identity indexes of the stored core records (national_node.sealing): computed again for every record
without one (a node upgraded from before sealing: migration 0008_sealed_identity dropped the unkeyed SHA-256
values) or for every record after a rotation of the index key (``tmis national data-keys reindex``)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from national_node.intake.models import DuplicateIdentity, TeacherCore
from national_node.sealing import INDEX_PREFIX, NationalSealKeys, Opener, opener
from sync_protocol.seal import SealError


def reindex(
    session: Session, keys: NationalSealKeys, *, all_rows: bool = False, progress: Callable[[int], None] | None = None
) -> int:
    """Compute the keyed identity index of every core record without one (``all_rows``: of every record, after a
    rotation of the index key), and of the duplicate-identity rows; returns the number of records indexed. A
    record whose seal does not open keeps no index and is counted in ``status``."""
    done, last = 0, ""
    openers: dict[str, Opener] = {}
    while True:
        stmt = select(TeacherCore.teacher_number, TeacherCore.province_code, TeacherCore.fields).where(
            TeacherCore.teacher_number > last
        )
        if not all_rows:
            stmt = stmt.where(
                (TeacherCore.identity_key.is_(None)) | (~TeacherCore.identity_key.startswith(INDEX_PREFIX))
            )
        rows = session.execute(stmt.order_by(TeacherCore.teacher_number).limit(1000)).all()
        if not rows:
            break
        changes = []
        for tn, province, fields in rows:
            op = openers.get(province) or openers.setdefault(province, opener(session, keys, province))
            try:
                index = op.identity_index(fields or {}, tn)
            except SealError:
                index = None
            changes.append({"teacher_number": tn, "identity_key": index})
        session.execute(update(TeacherCore), changes)
        done += len(rows)
        last = rows[-1][0]
        if progress:
            progress(done)
    index_of = dict(session.execute(select(TeacherCore.teacher_number, TeacherCore.identity_key)).all())
    for dup in session.scalars(select(DuplicateIdentity)):
        new = index_of.get(dup.teacher_number_a) or index_of.get(dup.teacher_number_b)
        if new and new != dup.identity_key:
            dup.identity_key = new
    session.flush()
    return done


def unindexed(session: Session) -> int:
    """Core records with an identity but no keyed index (before ``reindex``, or a seal that does not open)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(TeacherCore)
            .where((TeacherCore.identity_key.is_(None)) | (~TeacherCore.identity_key.startswith(INDEX_PREFIX)))
            .where(TeacherCore.op != "transfer_out")
        )
        or 0
    )
