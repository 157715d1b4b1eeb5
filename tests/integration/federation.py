"""Helpers to stand up a federation for integration tests: nodes initialised through the real CLI, teachers
made effective through the real services, a transport into the national app's test client."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from common.cli import tmis
from common.db import make_session_factory, session_scope
from common.errors import TransportError
from common.http import runtime_of
from common.transport import Response
from national_node.config import config_from_env as national_config_from_env
from provincial_node.accounts import accounts, units
from provincial_node.accounts.access import actor_for
from provincial_node.accounts.models import Unit
from provincial_node.app import build_runtime
from provincial_node.config import config_from_env as provincial_config_from_env
from provincial_node.context import Actor
from provincial_node.jobs import make_sync_client
from provincial_node.sync.round import SyncClient
from provincial_node.teacher_files import files, review
from tests.factories import GOOD_RECORDS, resident_id
from tests.helpers import ctx

PASSWORD = "Init-pass-2026"
WORKFLOW = ("XRGWLBM", "XRGWDJM", "XRZYJSZWM", "RYZTM")


def cli(env: dict[str, str], *args: str, input: str | None = None) -> str:
    result = CliRunner().invoke(tmis, list(args), obj={"env": env}, input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


class FlaskTransport:
    """Calls the national app in process; can be told to fail like a network would."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.client = app.test_client()
        self.fail_next = 0
        self.lose_answers = 0  # the request is processed, the answer is lost on the way back
        self.redeliver_inbox = 0  # the next N pulls get every inbox message of the province again

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Response:
        if self.fail_next:
            self.fail_next -= 1
            raise TransportError("simulated network failure", details={"retryable": True})
        r = self.client.open(path, method=method, data=body, headers=headers or {})
        if self.redeliver_inbox and "/inbox?after=" in path and r.status_code == 200:
            self.redeliver_inbox -= 1
            return Response(200, self._everything(path.split("/")[4]), "application/json")
        if self.lose_answers and r.status_code < 400:
            self.lose_answers -= 1
            raise TransportError("simulated lost answer", details={"retryable": True})
        if r.status_code >= 500:
            raise TransportError(f"HTTP {r.status_code}", details={"retryable": True})
        return Response(r.status_code, r.data, r.content_type)

    def _everything(self, province: str) -> bytes:
        """Every inbox message of the province again, as a national node re-delivering would send them."""
        import json

        from sqlalchemy import select

        from national_node.inbox.models import InboxMessage

        with make_session_factory(runtime_of(self.app).engine)() as s:
            envs = s.scalars(
                select(InboxMessage.envelope).where(InboxMessage.province_code == province).order_by(InboxMessage.seq)
            )
            return json.dumps({"messages": [json.loads(e) for e in envs]}).encode()


@dataclass
class ProvinceNode:
    code: str
    env: dict[str, str]
    factory: Any
    client: SyncClient
    admin: Actor | None = None
    actors: dict[str, Actor] = field(default_factory=dict)
    school_id: int = 0


def province_init_args(code: str) -> tuple[str, ...]:
    """`tmis province init` for a test province (admin``<code>`` with the test password)."""
    return (
        "province",
        "init",
        "--province-code",
        code,
        "--admin-username",
        f"admin{code}",
        "--admin-name",
        "管理员",
        "--admin-password",
        PASSWORD,
        "--second-factor-roles",
        "",
    )


def make_national(tmp: Path, url: str) -> tuple[Any, dict[str, str]]:
    from national_node.app import create_app

    env = {"TMIS_DATA_DIR": str(tmp / "national"), "TMIS_DATABASE_URL": url, "TMIS_LOG_ORIGIN": "test.tmis/log/v1"}
    cli(env, "national", "init")
    return create_app(national_config_from_env(env, testing=True)), env


def make_province(tmp: Path, url: str, code: str, transport: Any, national_env: dict[str, str]) -> ProvinceNode:
    env = {"TMIS_DATA_DIR": str(tmp / f"province-{code}"), "TMIS_DATABASE_URL": url, "TMIS_PROVINCE_CODE": code}
    cli(env, *province_init_args(code))
    runtime = build_runtime(provincial_config_from_env(env))
    factory = runtime.session_factory
    client = make_sync_client(runtime, transport, batch_size=50, sleep=lambda s: None)
    token = cli(national_env, "national", "enrol-token", "--province", code).strip()
    client.enrol(token)
    node = ProvinceNode(code, env, factory, client)
    _seed_units(node)
    return node


def _seed_units(node: ProvinceNode) -> None:
    p = node.code
    county = {"11": "110105", "44": "440106"}[p]
    school = f"21{p}000001"
    with session_scope(node.factory) as s:
        rows = [f"{county},区教育局,county,{p}0000,,,,,", f"{school},实验小学,school,{county},,211,111,,{county}"]
        if p == "44":
            rows.insert(0, "440100,广州市教育局,city,440000,,,,,")
            rows[1] = rows[1].replace(",440000,", ",440100,")
        units.import_units_csv(
            ctx(s, None),
            "code,name,level,parent_code,division_code,school_type,urban_rural_type,"
            "sponsor_type,supervisor_code\n" + "\n".join(rows) + "\n",
        )
        for name, code, role in (
            ("school_info", school, "infoadmin"),
            ("school_rev", school, "infoadmin"),  # the school's reviewer: not the entry account (谁填报谁负责)
            ("county_info", county, "infoadmin"),
        ):
            acc = accounts.create_account(
                ctx(s, None),
                username=f"{name}{p}",
                real_name=name,
                unit=units.get_unit_by_code(s, code),
                role=role,
                password=PASSWORD,
            )
            node.actors[name] = actor_for(s, acc)
        node.school_id = s.query(Unit).filter(Unit.code == school).one().id


def effective_teacher(node: ProvinceNode, seq: str, region: str = "440106", number: str | None = None) -> str:
    """Register, fill and review a teacher to effective (ID number ``number``, or one made from ``region`` and
    ``seq``); returns the teacher number."""
    rid = number or resident_id(region, "19880315", seq)
    basic = {
        **{k: v for k, v in GOOD_RECORDS["JBXX"].items() if k not in WORKFLOW},
        "SFZJH": rid,
        "XBM": "1" if int(rid[-2]) % 2 else "2",  # the ID number's sex digit
        "XM": f"教师{seq}",
    }
    with session_scope(node.factory) as s:
        school, county = node.actors["school_info"], node.actors["county_info"]
        t = files.register_teacher(
            ctx(s, school, province=node.code), node.school_id, {k: basic[k] for k in ("XM", "SFZJLXM", "SFZJH")}
        )
        files.update_group(ctx(s, school), t.id, "JBXX", basic)
        files.update_group(ctx(s, school), t.id, "JBDY", [GOOD_RECORDS["JBDY"]])
        files.submit(ctx(s, school), t.id)
        review.review(ctx(s, node.actors["school_rev"], province=node.code), t.id, "approve")
        review.review(ctx(s, county, province=node.code), t.id, "approve")
        return t.teacher_number


def rename(node: ProvinceNode, teacher_number: str, name: str) -> None:
    """An approved change request of 姓名: a new effective version with a changed core field."""
    from provincial_node.teacher_files import change_requests
    from provincial_node.teacher_files.models import Teacher

    with session_scope(node.factory) as s:
        t = s.query(Teacher).filter(Teacher.teacher_number == teacher_number).one()
        cr = change_requests.request_change(
            ctx(s, node.actors["school_info"], province=node.code),
            t.id,
            [{"group": "JBXX", "field": "XM", "new": name}],
            "更正姓名",
        )
        change_requests.decide(ctx(s, node.actors["county_info"], province=node.code), cr.id, "approve", "")
