"""Cross-province transfers with real processes over loopback HTTP (SQLite and PostgreSQL): `tmis national
serve` killed and restarted between every step, provinces synchronising with `tmis province sync run` (a new
process each round, one of them killed mid-round), a re-sent message, rejections, withdrawal, expiry, a
request province A refuses, and the signed trail shown by `tmis audit transfer`."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time

import pytest
from sqlalchemy import select

from common.catalogue import load_catalogue
from common.db import session_scope
from national_node.intake.models import TeacherCore
from national_node.transfers.models import Transfer as NatTransfer
from national_node.transfers.models import TransferMessage
from provincial_node.sync.models import UpwardMessage
from provincial_node.teacher_files.models import Teacher
from provincial_node.transfers import local as transfers
from provincial_node.transfers.models import Transfer
from sync_protocol.identifiers import make_teacher_number
from tests.conftest import run_tmis
from tests.factories import resident_id
from tests.helpers import ctx
from tests.integration.conftest import TMIS
from tests.integration.federation import effective_teacher

pytestmark = pytest.mark.slow
CAT = load_catalogue()


def sync(node, check=True):
    return run_tmis("province", "sync", "run", env=node.env, check=check, timeout=300)


def start(b, number, doc, expiry=None):
    with session_scope(b.factory) as s:
        return transfers.start_transfer(
            ctx(s, b.actors["school_info"], province=b.code, expiry=expiry),
            number,
            doc[0],
            doc[1],
            b.school_id,
            "夫妻团聚",
        ).id


def decide(node, who, tid, decision="approve", reason=None):
    with session_scope(node.factory) as s:
        transfers.decide(ctx(s, node.actors[who], province=node.code), tid, decision, reason)


def local(node, tid=None, uid=None):
    with node.factory() as s:
        t = s.get(Transfer, tid) if tid else s.scalar(select(Transfer).where(Transfer.transfer_uid == uid))
        s.expunge(t)
        return t


def doc_of(node, number):
    with node.factory() as s:
        t = s.scalar(select(Teacher).where(Teacher.teacher_number == number))
        return t.doc_type, t.doc_number


def test_transfer_completes_across_restarts_and_the_trail_verifies(fed, tmp_path):
    national, p, nat, nat_env = fed
    a, b = p["44"], p["11"]
    number = effective_teacher(a, "401")
    sync(a)

    def bounce():  # the national node dies without warning and comes back
        national.kill()
        national.start()

    tid = start(b, number, doc_of(a, number))
    bounce()
    decide(b, "county_info", tid)
    bounce()
    sync(b)
    uid = local(b, tid).transfer_uid
    bounce()
    # province A's sync process is killed in the middle of its round, then runs again
    proc = subprocess.Popen(
        [TMIS, "province", "sync", "run"],
        env={**os.environ, **a.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.8)
    proc.kill()
    proc.wait(timeout=30)
    sync(a)
    aid = local(a, uid=uid).id
    bounce()
    decide(a, "school_info", aid)
    decide(a, "county_info", aid)
    bounce()
    sync(a)
    # A's node loses its record of having sent the messages and sends them all again: no double effect
    with session_scope(a.factory) as s:
        for m in s.scalars(select(UpwardMessage)):
            m.status = "pending"
    sync(a)
    bounce()
    sync(b)
    sync(b)
    sync(a)
    with nat.connect() as c:
        row = c.execute(select(NatTransfer).where(NatTransfer.transfer_id == uid)).one()
        owner = c.execute(select(TeacherCore.province_code).where(TeacherCore.teacher_number == number)).scalar_one()
        messages = c.execute(select(TransferMessage.kind).where(TransferMessage.transfer_id == uid)).scalars().all()
    assert row.state == "completed" and owner == "11"
    assert sorted(messages) == ["transfer_answer", "transfer_answer", "transfer_file", "transfer_request"]
    with b.factory() as s:
        t = s.scalar(select(Teacher).where(Teacher.teacher_number == number))
        assert (t.status, t.unit_id) == ("effective", b.school_id)
    with a.factory() as s:
        assert s.scalar(select(Teacher.status).where(Teacher.teacher_number == number)) == "transferred_out"
    listing = run_tmis("national", "transfers", "list", "--all", "--json", env=nat_env)
    assert [r["state"] for r in json.loads(listing.stdout)] == ["completed"]
    bundle = tmp_path / "bundle"
    run_tmis("national", "export", "-o", str(bundle), env=nat_env)
    assert run_tmis("audit", "bundle", str(bundle), check=False).returncode == 0
    trail = run_tmis("audit", "transfer", str(bundle), uid, check=False)
    assert trail.returncode == 0, trail.stdout
    lines = [x for x in trail.stdout.splitlines() if x.startswith(("log leaf", "inbox "))]
    assert any("transfer_file" in x and "-> completed" in x for x in lines)
    assert sum("transfer_completion" in x for x in lines) == 2


def test_rejections_withdrawal_expiry_and_refusal_over_http(fed):
    national, p, nat, nat_env = fed
    a, b = p["44"], p["11"]
    n1, n2, n3, n4 = (effective_teacher(a, s) for s in ("411", "412", "413", "414"))
    sync(a)
    t1 = start(b, n1, doc_of(a, n1))  # rejected by A's school
    t2 = start(b, n2, doc_of(a, n2))  # rejected by A's bureau
    t3 = start(b, n3, doc_of(a, n3))  # withdrawn by B
    ghost = make_teacher_number("44", 424242)
    t5 = start(b, ghost, ("1", resident_id("440106", "19700101", "424")))  # A holds no such teacher
    for tid in (t1, t2, t3, t5):
        decide(b, "county_info", tid)
    sync(b)
    sync(a)
    uid = {tid: local(b, tid).transfer_uid for tid in (t1, t2, t3, t5)}
    decide(a, "school_info", local(a, uid=uid[t1]).id, "reject", "教学任务未完成")
    decide(a, "school_info", local(a, uid=uid[t2]).id)
    decide(a, "county_info", local(a, uid=uid[t2]).id, "reject", "编制不能调出")
    with session_scope(b.factory) as s:
        transfers.withdraw(ctx(s, b.actors["school_info"]), t3, "已另行安排")
    # a request that reaches the national node and then outlives its deadline
    t4 = start(b, n4, doc_of(a, n4), expiry=dt.timedelta(seconds=10))
    decide(b, "county_info", t4)
    started = time.monotonic()
    sync(b)
    uid[t4] = local(b, t4).transfer_uid
    with nat.connect() as c:
        assert c.execute(select(NatTransfer.state).where(NatTransfer.transfer_id == uid[t4])).scalar_one() == "open"
    time.sleep(max(0.0, 10.5 - (time.monotonic() - started)))
    expired = run_tmis("national", "transfers", "expire", env=nat_env)
    assert uid[t4] in expired.stdout
    sync(a)
    sync(b)
    sync(a)
    states = {tid: local(b, tid).status for tid in uid}
    assert states == {t1: "rejected", t2: "rejected", t3: "withdrawn", t4: "expired", t5: "rejected"}
    assert local(b, t2).steps[-1]["reason"] == "编制不能调出"
    assert "not held by province 44" in local(b, t5).steps[-1]["reason"]
    assert local(a, uid=uid[t3]).status == "withdrawn" and local(a, uid=uid[t4]).status == "expired"
    listing = json.loads(run_tmis("national", "transfers", "list", "--json", env=nat_env).stdout)
    assert listing == []  # nothing left in flight
    with nat.connect() as c:
        owners = set(c.execute(select(TeacherCore.province_code)).scalars())
    assert owners == {"44"}
