"""Two users changing the same thing at the same moment (SQLite and PostgreSQL): the second waits for the first
and decides from what it committed, so a file is approved once and a teacher has one open transfer request.

Each race runs two real transactions in two threads on a committed province. The first is held right after the
point where it has checked the state (and, with the fix, holds the lock); the second is let go once it either
waits for a lock (PostgreSQL: ``pg_stat_activity``; SQLite: the write lock) or reaches that same point, which
only happens when nothing serialises them — then both decide from the same state, and the test fails."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, text

from common import migrations
from common.config import DatabaseConfig
from common.db import begin_write, create_db_engine, make_session_factory, utcnow
from common.errors import ConflictError, PermissionDeniedError
from common.protection import DataKeys, install
from provincial_node import MIGRATIONS_DIR
from provincial_node.accounts import accounts
from provincial_node.accounts.access import actor_for
from provincial_node.context import Actor, ProvinceContext, Settings
from provincial_node.sync.models import OutboxEntry
from provincial_node.teacher_files import change_requests, files, review
from provincial_node.teacher_files.models import Teacher, TeacherHistory
from provincial_node.transfers import cross_province, local
from provincial_node.transfers.models import Transfer
from sync_protocol.identifiers import make_teacher_number
from tests.factories import resident_id
from tests.helpers import ctx
from tests.provincial.conftest import PASSWORD, build_province
from tests.provincial.teacher_files.test_files_review import P, _new_file, _to_effective

WAIT = 30.0  # seconds: only reached when something is broken


class Committed:
    def __init__(self, url: str) -> None:
        self.engine = install(create_db_engine(DatabaseConfig(url)), DataKeys.generate())
        migrations.upgrade(self.engine, MIGRATIONS_DIR)
        self.factory = make_session_factory(self.engine)
        self.session = self.factory()
        begin_write(self.session)
        self.province = build_province(self.session)

    def commit(self) -> None:
        self.session.commit()  # and holds no transaction (SQLite: nor the write lock) until the setup goes on

    def actor(self, name: str) -> Actor:
        return self.province.actor(name)

    def waiting_for_a_lock(self) -> bool:
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as c:
                return bool(
                    c.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                        )
                    )
                )
        return self.engine.tmis_writers.waiting > 0  # SQLite: a writer waits for the write lock

    def race(
        self, target: Any, name: str, first: Callable[[ProvinceContext], Any], second: Callable[[ProvinceContext], Any]
    ) -> list[Any]:
        """Run ``first`` and ``second`` in two transactions; ``first`` pauses when it calls ``target.name``, until
        ``second`` waits for a lock, reaches the same call, or has finished."""
        self.commit()  # the setup, before either transaction starts
        real = getattr(target, name)
        first_inside, second_inside, go = threading.Event(), threading.Event(), threading.Event()
        outcome: list[Any] = [None, None]

        def hold(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread().name == "first":
                first_inside.set()
                go.wait(WAIT)
            else:
                second_inside.set()
            return real(*args, **kwargs)

        def run(i: int, work: Callable[[ProvinceContext], Any], actor: str | None) -> None:
            with self.factory() as s:
                begin_write(s)
                try:
                    outcome[i] = work(ctx(s, None if actor is None else self.actor(actor), province=P))
                    s.commit()
                except Exception as e:
                    s.rollback()
                    outcome[i] = e

        setattr(target, name, hold)
        try:
            a = threading.Thread(target=run, args=(0, first[0], first[1]), name="first")
            b = threading.Thread(target=run, args=(1, second[0], second[1]), name="second")
            a.start()
            assert first_inside.wait(WAIT)
            b.start()
            deadline = time.monotonic() + WAIT
            while (
                b.is_alive()
                and not (second_inside.is_set() or self.waiting_for_a_lock())
                and time.monotonic() < deadline
            ):
                time.sleep(0.01)  # polls the condition: the other transaction waits, or got through
            go.set()
            a.join(WAIT)
            b.join(WAIT)
        finally:
            setattr(target, name, real)
        return outcome

    def close(self) -> None:
        self.session.close()
        self.engine.dispose()


@pytest.fixture
def committed(database_url_factory) -> Iterator[Committed]:
    c = Committed(database_url_factory("concurrent"))
    yield c
    c.close()


def _effective_file(c: Committed, seq: str = "701"):
    t = _to_effective(c.province, _new_file(c.province, seq=seq))
    c.commit()
    return t


def test_two_transfer_requests_for_one_teacher_at_once_open_one(committed):
    c = committed
    t = _effective_file(c)

    def ask(school: str) -> Callable[[ProvinceContext], Any]:
        unit = c.province.units[school].id
        return lambda x: local.start_transfer(x, t.teacher_number, t.doc_type, t.doc_number, unit, "工作需要")

    first, second = c.race(local, "_open_for", (ask("2144000002"), "school2_info"), (ask("3444000003"), "school3_info"))
    assert isinstance(first, Transfer), first
    assert isinstance(second, ConflictError) and "open transfer" in second.message, second
    with c.factory() as s:
        assert s.scalar(select(func.count()).where(Transfer.teacher_id == t.id, Transfer.status == "open")) == 1


def test_two_reviewers_approving_one_file_at_once_approve_it_once(committed):
    c = committed
    s, p = c.session, c.province
    acc = accounts.create_account(
        ctx(s),
        username="school1_rev2",
        real_name="复核",
        unit=p.units["2144000001"],
        role="infoadmin",
        password=PASSWORD,
    )
    p.actors["school1_rev2"] = actor_for(s, acc)
    t = _new_file(p, seq="702")
    files.submit(p.ctx("school1_info"), t.id)
    c.commit()

    def approve(x: ProvinceContext) -> Any:
        return review.review(x, t.id, "approve")

    first, second = c.race(review, "reviewing_unit", (approve, "school1_rev"), (approve, "school1_rev2"))
    assert not isinstance(first, Exception), first
    # the second reviewer sees the file approved by the school and waiting for the county
    assert isinstance(second, PermissionDeniedError) and "county" in second.message, second
    with c.factory() as s2:
        actions = s2.scalars(select(TeacherHistory.action).where(TeacherHistory.teacher_id == t.id)).all()
    assert actions.count("approve") == 1, actions


def test_two_schools_asking_another_province_for_one_teacher_at_once_send_one_request(committed):
    c = committed
    number, doc = make_teacher_number("11", 4242), resident_id("110105", "19800101", "424")

    def ask(school: str) -> Callable[[ProvinceContext], Any]:
        unit = c.province.units[school].id
        return lambda x: local.start_transfer(x, number, "1", doc, unit, "工作需要")

    # held after the check for an open request of that teacher number (there is no row to lock: a named lock)
    first, second = c.race(
        cross_province, "add_step", (ask("2144000002"), "school2_info"), (ask("3444000003"), "school3_info")
    )
    assert isinstance(first, Transfer), first
    assert isinstance(second, ConflictError) and "open transfer request" in second.message, second
    with c.factory() as s:
        assert s.scalar(select(func.count()).where(Transfer.teacher_number == number)) == 1


def test_two_bureau_users_deciding_one_change_request_at_once_apply_it_once(committed):
    c = committed
    s, p = c.session, c.province
    county = p.units["440106"]
    acc = accounts.create_account(
        ctx(s), username="tianhe_info2", real_name="区复核", unit=county, role="infoadmin", password=PASSWORD
    )
    p.actors["tianhe_info2"] = actor_for(s, acc)
    t = _effective_file(c, seq="703")
    change = [{"group": "JBXX", "field": "ZGXLM", "new": "11"}]
    cr = change_requests.request_change(p.ctx("school1_info"), t.id, change, "取得博士学位")
    version = t.file_version

    def approve(x: ProvinceContext) -> Any:
        return change_requests.decide(x, cr.id, "approve", "核实无误")

    # held where the decision validates the changed file, i.e. after its checks
    first, second = c.race(change_requests, "_validate", (approve, "tianhe_info"), (approve, "tianhe_info2"))
    assert not isinstance(first, Exception), first
    assert isinstance(second, ConflictError) and "already approved" in second.message, second
    with c.factory() as s2:
        assert s2.get(Teacher, t.id).file_version == version + 1  # one new effective version, not two
        assert s2.scalar(select(func.count()).where(OutboxEntry.teacher_id == t.id)) == version + 1


def test_expiry_leaves_alone_a_request_being_decided(committed):
    c = committed
    t = _effective_file(c, seq="704")
    school = c.province.units["2144000002"].id
    tr = local.start_transfer(
        c.province.ctx("school2_info", province=P), t.teacher_number, t.doc_type, t.doc_number, school, "工作需要"
    )
    later = utcnow() + Settings().transfer_expiry + dt.timedelta(days=1)

    def decide(x: ProvinceContext) -> Any:
        return local.decide(x, tr.id, "approve", "同意")

    def expire(x: ProvinceContext) -> int:
        return local.expire_due(ctx(x.session, None, now=later))

    # the decision is held after it read the request: the expiry run must not close it under the decision
    first, second = c.race(local, "_unit_for", (decide, "tianhe_info"), (expire, None))
    assert not isinstance(first, Exception), first
    with c.factory() as s:
        row = s.get(Transfer, tr.id)
        decisions = [x["decision"] for x in row.steps]
    if c.engine.dialect.name == "postgresql":  # the request being decided is left for the next run
        assert second == 0 and row.status == "open" and decisions == ["start", "approve"], (second, row.status)
        with c.factory() as s:
            assert local.expire_due(ctx(s, None, now=later)) == 1
            s.commit()
    else:  # SQLite: the expiry waited for the decision's commit, then found the request open and overdue
        assert second == 1 and row.status == "expired" and decisions == ["start", "approve", "expire"], decisions
