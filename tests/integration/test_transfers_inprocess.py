"""Cross-province transfers and rotations through the national node, in one process (SQLite and PostgreSQL):
completion, rejection at each step, withdrawal, expiry, refusals, lost answers, re-delivered messages,
restarted nodes, and the signed trail in the exported audit bundle."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from common.catalogue import load_catalogue
from common.cli import tmis
from common.db import make_session_factory, session_scope, utcnow
from common.errors import ConflictError
from common.http import runtime_of
from national_node.config import config_from_env as national_config_from_env
from national_node.inbox.models import InboxMessage
from national_node.intake.models import TeacherCore
from national_node.keys import load_keys
from national_node.ledger.models import LogLeaf
from national_node.transfers import broker as nat_transfers
from national_node.transfers.models import Transfer as NatTransfer
from national_node.transfers.models import TransferMessage
from provincial_node.sync.models import ParkedRecord, UpwardMessage
from provincial_node.teacher_files import files
from provincial_node.teacher_files.models import Teacher, TeacherHistory
from provincial_node.transfers import local as transfers
from provincial_node.transfers.models import Transfer
from sync_protocol.audit import audit_bundle, audit_transfer
from sync_protocol.identifiers import make_teacher_number
from tests.factories import resident_id
from tests.helpers import ctx
from tests.integration.federation import FlaskTransport, effective_teacher, make_national, make_province

CAT = load_catalogue()


@pytest.fixture
def fed(tmp_path, database_url_factory):
    app, env = make_national(tmp_path, database_url_factory("nat"))
    transport = FlaskTransport(app)
    a = make_province(tmp_path, database_url_factory("p44"), "44", transport, env)  # holds the teachers
    b = make_province(tmp_path, database_url_factory("p11"), "11", transport, env)  # receives
    national = make_session_factory(runtime_of(app).engine)
    yield {"app": app, "env": env, "transport": transport, "a": a, "b": b, "national": national, "tmp": tmp_path}
    runtime_of(app).engine.dispose()
    for node in (a, b):
        node.factory.kw["bind"].dispose()


def rounds(*nodes):
    for node in nodes:
        rnd = node.client.run_round()
        assert rnd.status == "ok", rnd.errors


def doc_of(node, number):
    with node.factory() as s:
        t = s.scalar(select(Teacher).where(Teacher.teacher_number == number))
        return t.doc_type, t.doc_number


def request(f, number, doc=None, from_province=None, expiry=None):
    """B's school asks for the teacher; returns B's transfer id."""
    b = f["b"]
    doc_type, doc_number = doc or doc_of(f["a"], number)
    with session_scope(b.factory) as s:
        t = transfers.start_transfer(
            ctx(s, b.actors["school_info"], province=b.code, expiry=expiry),
            number,
            doc_type,
            doc_number,
            b.school_id,
            "夫妻团聚",
            from_province=from_province,
        )
        return t.id


def decide(node, who, tid, decision="approve", reason=None):
    with session_scope(node.factory) as s:
        return transfers.decide(ctx(s, node.actors[who], province=node.code), tid, decision, reason).status


def local(node, uid=None, tid=None) -> Transfer:
    with node.factory() as s:
        t = s.get(Transfer, tid) if tid else s.scalar(select(Transfer).where(Transfer.transfer_uid == uid))
        s.expunge(t)
        return t


def uid_of(node, tid) -> str:
    return local(node, tid=tid).transfer_uid


def national_row(f, uid) -> NatTransfer:
    with f["national"]() as s:
        row = s.get(NatTransfer, uid)
        s.expunge(row)
        return row


def requested_at_a(f, number):
    """Start at B, approve at B's bureau, carry the request to A; returns (B's id, uid, A's id)."""
    tid = request(f, number)
    decide(f["b"], "county_info", tid)
    rounds(f["b"], f["a"])
    uid = uid_of(f["b"], tid)
    return tid, uid, local(f["a"], uid=uid).id


def test_cross_province_transfer_completes_with_ownership_moved(fed):
    f, a, b = fed, fed["a"], fed["b"]
    number = effective_teacher(a, "301")
    rounds(a)
    tid, uid, aid = requested_at_a(f, number)
    at_a = local(a, tid=aid)
    assert (at_a.role, at_a.next_step, at_a.status) == ("from", "sending_school", "open")
    with a.factory() as s:  # A's school sees it waiting; B's steps are not listed at A
        assert [t.id for t in transfers.pending(ctx(s, a.actors["school_info"]))] == [aid]
    assert national_row(f, uid).next_step == "sending_school"
    decide(a, "school_info", aid)
    decide(a, "county_info", aid)
    assert local(a, tid=aid).next_step == "completion"
    rounds(a, b, b, a)
    row = national_row(f, uid)
    assert row.state == "completed" and row.file_hash
    with f["national"]() as s:
        core = s.get(TeacherCore, number)
        assert core.province_code == "11" and core.version > 0  # B's own record applied after the move
        assert nat_transfers.in_flight(s) == []
    with b.factory() as s:
        t = s.scalar(select(Teacher).where(Teacher.teacher_number == number))
        assert (t.status, t.unit_id, t.ever_effective) == ("effective", b.school_id, True)
        assert t.data["GZJL"][-1] == {"RZDWMC": "实验小学", "RZKSNY": t.data["JBXX"]["JBXNY"], "DWXZLBM": "2"}
        assert t.data["GZJL"][-2]["RZJSNY"]  # A's closing entry travelled with the file
        actions = [h.action for h in s.scalars(select(TeacherHistory).where(TeacherHistory.teacher_id == t.id))]
        assert actions[0] == "register" and actions[-1] == "transfer_in"  # A's history kept
        assert local(b, tid=tid).status == "completed"
    with a.factory() as s:
        t = s.scalar(select(Teacher).where(Teacher.teacher_number == number))
        assert t.status == "transferred_out" and t.data["JBXX"]["RYZTM"] == "304"
        assert s.scalar(select(func.count()).select_from(ParkedRecord)) == 0  # A's transfer_out was accepted
    with session_scope(a.factory) as s, pytest.raises(ConflictError):  # read-only at A
        files.update_group(ctx(s, a.actors["school_info"]), t.id, "JBXX", t.data["JBXX"])
    # the audit bundle holds the whole signed trail
    bundle = f["tmp"] / "bundle"
    CliRunner().invoke(tmis, ["national", "export", "-o", str(bundle)], obj={"env": f["env"]}, catch_exceptions=False)
    assert audit_bundle(bundle).ok
    report, trail = audit_transfer(bundle, uid)
    assert report.ok, [x.reason for x in report.findings if not x.ok]
    logged = [e["kind"] for e in trail if e["source"] == "log"]
    assert logged == ["transfer_request", "transfer_answer", "transfer_answer", "transfer_file"]
    assert trail[[e["kind"] for e in trail].index("transfer_file")]["state_after"] == "completed"
    assert sum(e["kind"] == "transfer_completion" for e in trail) == 2


def test_rejection_at_each_step(fed):
    f, a, b = fed, fed["a"], fed["b"]
    n1, n2, n3 = (effective_teacher(a, s) for s in ("311", "312", "313"))
    rounds(a)
    # 1. B's own bureau rejects: nothing leaves B
    tid = request(f, n1)
    decide(b, "county_info", tid, "reject", "编制已满")
    assert local(b, tid=tid).transfer_uid is None
    with b.factory() as s:
        assert s.scalar(select(func.count()).select_from(UpwardMessage)) == 0
    # 2. A's school and 3. A's bureau reject: B learns the reason
    for number, steps in ((n2, ["school_info"]), (n3, ["school_info", "county_info"])):
        tid, uid, aid = requested_at_a(f, number)
        for who in steps[:-1]:
            decide(a, who, aid)
        decide(a, steps[-1], aid, "reject", "教学任务未完成")
        rounds(a, b)
        assert local(b, tid=tid).status == "rejected"
        assert local(b, tid=tid).steps[-1]["reason"] == "教学任务未完成"
        assert national_row(f, uid).state == "rejected"
        with f["national"]() as s:
            assert s.get(TeacherCore, number).province_code == "44"


def test_withdrawal_before_the_last_step_only(fed):
    f, a, b = fed, fed["a"], fed["b"]
    n1, n2 = effective_teacher(a, "321"), effective_teacher(a, "322")
    rounds(a)
    tid, uid, aid = requested_at_a(f, n1)
    with session_scope(b.factory) as s:
        transfers.withdraw(ctx(s, b.actors["school_info"]), tid, "已另行安排")
    assert local(b, tid=tid).status == "open"  # closed when the national node confirms
    rounds(b, a, b)
    assert national_row(f, uid).state == "withdrawn"
    assert local(a, uid=uid).status == local(b, tid=tid).status == "withdrawn"
    with pytest.raises(ConflictError):
        decide(a, "school_info", aid)
    # waiting for A's bureau (the last step): too late to withdraw
    tid, uid, aid = requested_at_a(f, n2)
    decide(a, "school_info", aid)
    rounds(a, b)
    with session_scope(b.factory) as s, pytest.raises(ConflictError):
        transfers.withdraw(ctx(s, b.actors["school_info"]), tid, "x")


def test_expiry_is_decided_by_the_national_node(fed):
    f, a, b = fed, fed["a"], fed["b"]
    number = effective_teacher(a, "331")
    rounds(a)
    tid = request(f, number, expiry=dt.timedelta(days=3))
    decide(b, "county_info", tid)
    rounds(b, a)
    uid = uid_of(b, tid)
    later = utcnow() + dt.timedelta(days=4)
    with session_scope(b.factory) as s:
        assert transfers.expire_due(ctx(s, None, now=later)) == 0  # sent: only the national node expires it
    keys = load_keys(national_config_from_env(f["env"]).data_dir / "keys")
    with session_scope(f["national"]) as s:
        assert nat_transfers.expire_due(s, keys, later) == [uid]
        assert nat_transfers.expire_due(s, keys, later) == []
    rounds(a, b)
    assert local(a, uid=uid).status == local(b, tid=tid).status == "expired"
    assert national_row(f, uid).state == "expired"


def test_province_a_refuses_what_it_does_not_hold_and_the_national_node_checks_ownership(fed):
    f, a, b = fed, fed["a"], fed["b"]
    # a valid teacher number of province 44 that A never issued: the national node does not know it, A refuses
    ghost = make_teacher_number("44", 987654)
    tid = request(f, ghost, doc=("1", resident_id("440106", "19700101", "999")))
    decide(b, "county_info", tid)
    rounds(b, a, b)
    t = local(b, tid=tid)
    assert t.status == "rejected" and "not held by province 44" in t.steps[-1]["reason"]
    # the identity document does not match the teacher number: refused too
    number = effective_teacher(a, "341")
    rounds(a)
    tid = request(f, number, doc=("1", resident_id("440106", "19700101", "999")))
    decide(b, "county_info", tid)
    rounds(b, a, b)
    assert "identity document does not match" in local(b, tid=tid).steps[-1]["reason"]
    # asked from the wrong province: the national node knows the owner and refuses the request at once
    tid = request(f, number, from_province="45")
    decide(b, "county_info", tid)
    rnd = b.client.run_round()
    assert rnd.status == "partial" and rnd.errors[0]["code"] == "protocol_transfer_owner"
    assert local(b, tid=tid).status == "rejected"


def test_lost_answers_and_redelivered_messages_have_no_double_effect(fed):
    f, a, b, transport = fed, fed["a"], fed["b"], fed["transport"]
    number = effective_teacher(a, "351")
    rounds(a)
    tid, uid, aid = requested_at_a(f, number)
    decide(a, "school_info", aid)
    decide(a, "county_info", aid)
    transport.lose_answers = 1  # the national node applies A's first answer, the answer back is lost
    rounds(a)
    with f["national"]() as s:
        assert s.scalar(select(func.count()).select_from(TransferMessage)) == 4
        leaves = s.scalar(select(func.count()).select_from(LogLeaf))
    # A sends every accepted message again (its acceptance records are lost): stored receipts, nothing new
    with session_scope(a.factory) as s:
        for m in s.scalars(select(UpwardMessage)):
            m.status = "pending"
    rounds(a)
    transport.redeliver_inbox = 1  # and the national node delivers B's whole inbox again
    rounds(b)
    transport.redeliver_inbox = 1
    rounds(b)
    with f["national"]() as s:
        assert s.scalar(select(func.count()).select_from(TransferMessage)) == 4
        # two new batch leaves (A: transfer_out, B: its record of the teacher); no new message leaf
        assert s.scalar(select(func.count()).select_from(LogLeaf)) == leaves + 2
        assert (
            s.scalar(select(func.count()).select_from(InboxMessage).where(InboxMessage.kind == "transfer_completion"))
            == 2
        )
    with b.factory() as s:
        assert s.scalar(select(func.count()).select_from(Teacher).where(Teacher.teacher_number == number)) == 1
        t = s.scalar(select(Teacher).where(Teacher.teacher_number == number))
        assert sum(1 for r in t.data["GZJL"] if not r.get("RZJSNY")) == 1  # one opening entry, not two
    assert national_row(f, uid).state == "completed"


def test_restarting_every_node_between_steps_converges(fed):
    """Between every step the national app and both sync clients are rebuilt from their databases."""
    from national_node.app import create_app
    from provincial_node.sync.round import SyncClient

    f, a, b = fed, fed["a"], fed["b"]

    def restart():
        old = f["transport"].app
        if old is not f["app"]:
            runtime_of(old).engine.dispose()
        app = create_app(national_config_from_env(f["env"], testing=True))
        f["transport"].app, f["transport"].client = app, app.test_client()
        for node in (a, b):
            c = node.client
            node.client = SyncClient(c.runtime, f["transport"], c.signer, c.settings)

    number = effective_teacher(a, "361")
    rounds(a)
    restart()
    tid = request(f, number)
    restart()
    decide(b, "county_info", tid)
    restart()
    rounds(b)
    restart()
    rounds(a)
    aid = local(a, uid=uid_of(b, tid)).id
    restart()
    decide(a, "school_info", aid)
    restart()
    decide(a, "county_info", aid)
    restart()
    rounds(a)
    restart()
    rounds(b)
    restart()
    rounds(b, a)
    assert national_row(f, uid_of(b, tid)).state == "completed"
    with f["national"]() as s:
        assert s.get(TeacherCore, number).province_code == "11"
    runtime_of(f["transport"].app).engine.dispose()


def test_cross_province_rotation_with_personnel_change(fed):
    f, a, b = fed, fed["a"], fed["b"]
    number = effective_teacher(a, "371")
    rounds(a)
    with session_scope(a.factory) as s:
        tid = s.scalar(select(Teacher.id).where(Teacher.teacher_number == number))
        t = transfers.start_rotation(
            ctx(s, a.actors["school_info"], province="44"),
            tid,
            with_transfer=True,
            rotation_type="1",
            start_month="2026-09",
            end_month="2029-08",
            reason="对口支援",
            to_province="11",
            to_school_code="2111000001",
            to_unit_name="实验小学",
        )
        aid = t.id
    decide(a, "county_info", aid)  # A's bureau: the request leaves A
    rounds(a, b)
    uid = uid_of(a, aid)
    bid = local(b, uid=uid).id
    assert local(b, tid=bid).next_step == "receiving_school"
    decide(b, "school_info", bid)
    decide(b, "county_info", bid)
    rounds(b, a, b)  # A pulls B's last approval and sends the file in the same round
    assert national_row(f, uid).state == "completed"
    with b.factory() as s:
        t = s.scalar(select(Teacher).where(Teacher.teacher_number == number))
        assert t.unit_id == b.school_id and t.data["JLLG"][-1]["JLLGLXM"] == "1"
        assert t.data["JLLG"][-1]["SFDDRSGX"] == "1"
    rounds(a)  # A pulls the completion
    assert local(a, tid=aid).status == "completed"
    with a.factory() as s:
        assert s.scalar(select(Teacher.status).where(Teacher.teacher_number == number)) == "transferred_out"


def test_a_teacher_comes_back_to_the_province_they_left(fed):
    """44 → 11, then 44's school asks for the teacher back: the default source is where they went, and 44's
    read-only file becomes effective again (same row, same teacher number)."""
    f, a, b = fed, fed["a"], fed["b"]
    number = effective_teacher(a, "381")
    rounds(a)
    tid, uid, aid = requested_at_a(f, number)
    decide(a, "school_info", aid)
    decide(a, "county_info", aid)
    rounds(a, b, b, a)
    with a.factory() as s:
        old = s.scalar(select(Teacher).where(Teacher.teacher_number == number))
        old_id, doc = old.id, (old.doc_type, old.doc_number)
    with session_scope(a.factory) as s:  # 44 asks for them back; from_province defaults to 11
        back = transfers.start_transfer(
            ctx(s, a.actors["school_info"], province="44"), number, *doc, a.school_id, "回原籍"
        )
        back_id = back.id
        assert back.remote_province == "11"
    decide(a, "county_info", back_id)
    rounds(a, b)
    bid = local(b, uid=uid_of(a, back_id)).id
    decide(b, "school_info", bid)
    decide(b, "county_info", bid)
    rounds(b, a, a, b)
    with a.factory() as s:
        t = s.scalar(select(Teacher).where(Teacher.teacher_number == number))
        assert (t.id, t.status, t.data["JBXX"]["RYZTM"]) == (old_id, "effective", "100")
    rounds(b)  # B reports its transfer_out; the national node keeps it as history, nothing is parked
    with b.factory() as s:
        assert s.scalar(select(Teacher.status).where(Teacher.teacher_number == number)) == "transferred_out"
        assert s.scalar(select(func.count()).select_from(ParkedRecord)) == 0
    with f["national"]() as s:
        assert s.get(TeacherCore, number).province_code == "44"


def test_bad_input_is_refused_with_the_field_and_nothing_is_kept(fed):
    from common.errors import ValidationError

    f, a, b = fed, fed["a"], fed["b"]
    number = effective_teacher(a, "391")
    with session_scope(b.factory) as s, pytest.raises(ValidationError) as e:
        transfers.start_transfer(
            ctx(s, b.actors["school_info"], province="11"),
            number[:-1] + "0",
            "1",
            doc_of(a, number)[1],
            b.school_id,
            "x",
            from_province="44",
        )
    assert "teacher_number" in str(e.value.details["errors"])
    with session_scope(b.factory) as s, pytest.raises(ValidationError) as e:
        transfers.start_transfer(
            ctx(s, b.actors["school_info"], province="11"),
            number,
            *doc_of(a, number),
            b.school_id,
            "x",
            from_province="99",
        )
    assert "from_province" in str(e.value.details["errors"])
    tid = request(f, number)
    with session_scope(b.factory) as s:
        s.get(Transfer, tid).reason = "很长" * 300  # longer than the protocol's 500 characters
    with pytest.raises(ValidationError):
        decide(b, "county_info", tid)
    t = local(b, tid=tid)
    assert (t.status, t.next_step, t.transfer_uid) == ("open", "receiving_bureau", None)
    with b.factory() as s:
        assert s.scalar(select(func.count()).select_from(UpwardMessage)) == 0
