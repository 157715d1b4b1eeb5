"""Demo federation on SQLite: a national node and two provincial nodes (11 北京, 44 广东) as real processes on
loopback ports, driven only through the documented CLI and JSON API.

Steps (each printed as it runs; ``--once`` stops everything and exits non-zero at the first failure):

1. load and check the indicator catalogue;
2. ``tmis national init``; ``tmis province init`` for both provinces;
3. start the three servers (waitress) and wait for ``/health``;
4. enrol both provinces (``tmis national enrol-token`` → ``tmis province sync enrol``);
5. in each province, through the API: import the unit tree, create the accounts down the tree (each changes
   its initial password), import synthetic teachers (``scripts/synthetic.py``) from a CSV file, submit them,
   and review them to effective (school, then county: bulk approval);
6. one sync round per province (``tmis province sync run``) and their summaries;
7. the national counts per province (``tmis national provinces``);
8. one cross-province transfer (跨省调动) through the API: a Beijing school asks for a Guangdong teacher, both
   provinces decide their steps, sync rounds carry the signed messages, the national node moves the teacher
   number to Beijing (``tmis national transfers list``);
9. export the audit bundle (``tmis national export``), verify it offline (``tmis audit bundle``) and print the
   transfer's signed trail (``tmis audit transfer``);
10. print the URLs and accounts, then stop (``--once``) or wait for Ctrl-C.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import ClassVar

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import synthetic  # noqa: E402 - scripts/ is not a package

from common.identity import check_character  # noqa: E402

TMIS = str(Path(sys.executable).parent / "tmis")
PASSWORD = "Demo-pass-2026"  # noqa: S105 - demo only; every account changes it at first login
NEW_PASSWORD = "Demo-changed-2026"  # noqa: S105 - demo only
TREES = {
    "11": {
        "name": "北京市",
        "units": [
            ("110105", "朝阳区教委", "county", "110000", "", ""),
            ("2111000001", "朝阳区实验小学", "school", "110105", "211", "110105"),
            ("3411000002", "朝阳区第一中学", "school", "110105", "342", "110105"),
        ],
        "chain": [("110105", ["sysadmin", "infoadmin"])],
        "county": "110105",
    },
    "44": {
        "name": "广东省",
        "units": [
            ("440100", "广州市教育局", "city", "440000", "", ""),
            ("440106", "天河区教育局", "county", "440100", "", ""),
            ("2144000001", "天河区第一小学", "school", "440106", "211", "440106"),
            ("3444000002", "天河中学", "school", "440106", "342", "440106"),
        ],
        "chain": [("440100", ["sysadmin"]), ("440106", ["sysadmin", "infoadmin"])],
        "county": "440106",
    },
}


def school_teachers(code: str, i: int, n: int) -> list[dict]:
    """The synthetic teachers of the province's ``i``-th school (deterministic: tests recompute them)."""
    return synthetic.teachers(TREES[code]["county"], n, seed=int(code) * 100 + i, start=i * 1000)


def demo_id_numbers(n: int) -> list[str]:
    """Every ID number of a demo teacher (``--teachers n``): what must never be stored in clear (tests/test_demo)."""
    out = []
    for code, tree in TREES.items():
        schools = [u for u in tree["units"] if u[2] == "school"]
        out += [p["SFZJH"] for i in range(len(schools)) for p in school_teachers(code, i, n)]
    return out


def step(msg: str) -> None:
    print(f"\n== {msg}", flush=True)


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port on 127.0.0.1")


def run(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run([TMIS, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"tmis {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout.strip()


def wait_healthy(name: str, url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with status {proc.returncode}; see its log")
        try:
            if requests.get(url + "/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{name} not healthy after {timeout:.0f}s")


class Api:
    """A user of a provincial node's JSON API."""

    def __init__(self, base: str, username: str, password: str) -> None:
        self.base = base + "/api/v1"
        r = requests.post(self.base + "/auth/login", json={"username": username, "password": password}, timeout=30)
        self._check(r)
        self.headers = {"Authorization": f"Bearer {r.json()['token']}"}
        if r.json()["must_change_password"]:
            self.post("/auth/password", {"old_password": password, "new_password": NEW_PASSWORD})

    _signed_in: ClassVar[dict[tuple[str, str], Api]] = {}

    @classmethod
    def of(cls, base: str, username: str) -> Api:
        """The signed-in user ``username`` (signing in, and changing the initial password, the first time)."""
        key = (base, username)
        if key not in cls._signed_in:
            cls._signed_in[key] = cls(base, username, PASSWORD)
        return cls._signed_in[key]

    @staticmethod
    def _check(r: requests.Response) -> requests.Response:
        if r.status_code >= 400:
            raise RuntimeError(f"{r.request.method} {r.url} → {r.status_code}: {r.text[:800]}")
        return r

    def get(self, path: str) -> dict:
        return self._check(requests.get(self.base + path, headers=self.headers, timeout=60)).json()

    def put(self, path: str, body: object) -> dict:
        return self._check(requests.put(self.base + path, json=body, headers=self.headers, timeout=60)).json()

    def post(self, path: str, body: dict | None = None, data: bytes | None = None, content_type: str = "") -> dict:
        headers = {**self.headers, **({"Content-Type": content_type} if content_type else {})}
        r = requests.post(
            self.base + path, json=body if data is None else None, data=data, headers=headers, timeout=600
        )
        return self._check(r).json()


ROLE_NAMES = {"sysadmin": "系统管理员", "infoadmin": "信息管理员", "query": "信息查询员", "teacher": "教师"}
LEVEL_NAMES = {"province": "省级", "city": "地市", "county": "区县", "school": "学校"}


def seed_province(code: str, url: str, n: int) -> list[tuple[str, str]]:
    """Units, accounts and teachers of one province through its API; returns the logins to print
    (``[(who, username)]``). The accounts follow the access rules: each system administrator creates its own
    unit's accounts and the system administrator directly below; every account is real-name; each school has an
    entry clerk and a separate reviewer (谁填报谁负责、谁审核谁负责). The first school keeps work in every queue so
    the pages have something to show: a draft, a file waiting for the school's review, one waiting for the
    county's, one the county returned, a change request to decide, a teacher account, and a province notice."""
    tree = TREES[code]
    admin = Api.of(url, f"admin{code}")
    logins = [("省级系统管理员", f"admin{code}")]
    rows = ["code,name,level,parent_code,division_code,school_type,urban_rural_type,sponsor_type,supervisor_code"]
    rows += [
        f"{c},{name},{lvl},{parent},,{st},{'111' if st else ''},,{sup}"
        for c, name, lvl, parent, st, sup in tree["units"]
    ]
    admin.post("/units/import", data=("\n".join(rows) + "\n").encode(), content_type="text/csv")
    units = {u["code"]: u for u in admin.get("/units")["units"]}
    ids = {c: u["id"] for c, u in units.items()}
    serial = iter(range(1, 1000))

    def account(creator: Api, username: str, real_name: str, unit: str, role: str, duty: str = "") -> None:
        """A real-name account (ID number and phone), created by the system administrator the access rules name."""
        first17 = f"{code}0101" + "19800101" + f"{next(serial):03d}"
        creator.post(
            "/accounts",
            {
                "username": username,
                "real_name": real_name,
                "unit_id": ids[unit],
                "role": role,
                "password": PASSWORD,
                "id_number": first17 + check_character(first17),
                "phone": "13800138000",
            },
        )
        level = next(lvl for c, _n, lvl, *_rest in tree["units"] if c == unit)
        logins.append((f"{LEVEL_NAMES[level]}{ROLE_NAMES[role]}{duty}（{units[unit]['name']}）", username))

    creator = admin
    for unit, roles in tree["chain"]:
        account(creator, f"sysadmin{unit}", f"{unit}系统管理员", unit, "sysadmin")
        creator = Api.of(url, f"sysadmin{unit}")
        if "infoadmin" in roles:
            account(creator, f"infoadmin{unit}", f"{unit}信息管理员", unit, "infoadmin", "·审核")
    county_code = tree["county"]
    account(creator, f"query{county_code}", f"{county_code}信息查询员", county_code, "query")
    Api.of(url, f"query{county_code}")  # signs in once: the initial password becomes the one printed for all
    schools = [u for u in tree["units"] if u[2] == "school"]
    for school in schools:
        account(creator, f"sysadmin{school[0]}", f"{school[1]}系统管理员", school[0], "sysadmin")
        school_admin = Api.of(url, f"sysadmin{school[0]}")
        account(school_admin, f"info{school[0]}", f"{school[1]}信息员", school[0], "infoadmin", "·录入")
        # the school's reviewer: not the account that enters the files (谁填报谁负责、谁审核谁负责)
        account(school_admin, f"rev{school[0]}", f"{school[1]}审核员", school[0], "infoadmin", "·审核")
    first = schools[0][0]
    county = Api.of(url, f"infoadmin{county_code}")
    total, kept = 0, []
    for i, school in enumerate(schools):
        api = Api.of(url, f"info{school[0]}")
        people = school_teachers(code, i, n)
        fields = sorted({k for p in people for k in p})
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow([f"x({f})" for f in fields])
        for p in people:
            w.writerow([",".join(p[f]) if isinstance(p.get(f), list) else p.get(f, "") for f in fields])
        result = api.post(
            f"/imports/JBXX?school_id={ids[school[0]]}&format=csv",
            data=buf.getvalue().encode(),
            content_type="text/csv",
        )
        if result["failed"]:
            raise RuntimeError(f"import into {school[0]} failed rows: {result['errors'][:3]}")
        drafts = api.get(f"/teachers?unit_id={ids[school[0]]}&status=draft&limit=1000")["teachers"]
        rng = random.Random(int(code) * 100 + i)  # synthetic data, not security
        for t in drafts:  # 岗位聘任 and 专业技术职务聘任 (the posts the home page's chart counts)
            gwpr, zyjs = synthetic.posts(rng)
            api.put(f"/teachers/{t['id']}/groups/GWPR", gwpr)
            api.put(f"/teachers/{t['id']}/groups/ZYJSZWPR", zyjs)
        if school[0] == first and len(drafts) >= 7:  # three stay effective: one moves to 11, a change, an account
            kept, drafts = drafts[-4:], drafts[:-4]  # left in the queues below
        for t in drafts:
            api.post(f"/teachers/{t['id']}/submit")
        Api.of(url, f"rev{school[0]}").post("/reviews/bulk-approve", {})
        total += result["created"]
    county.post("/reviews/bulk-approve", {"reason": "区县审核通过"})
    if kept:
        clerk = Api.of(url, f"info{first}")
        reviewer = Api.of(url, f"rev{first}")
        for t in kept[1:]:
            clerk.post(f"/teachers/{t['id']}/submit")  # kept[0] stays a draft
        for t in kept[2:]:
            reviewer.post(f"/teachers/{t['id']}/review", {"decision": "approve"})  # kept[1] waits for the school
        county.post(f"/teachers/{kept[3]['id']}/review", {"decision": "reject", "reason": "请核对参加工作年月"})
        # kept[2] waits for the county; kept[3] is back at the school with the county's reason
        # the newest two effective files (step 8 moves the first one to Beijing)
        effective = clerk.get(f"/teachers?unit_id={ids[first]}&status=effective&limit=1000")["teachers"][-2:]
        target = clerk.get(f"/teachers/{effective[0]['id']}")
        clerk.post(
            f"/teachers/{target['id']}/change-requests",
            {
                "changes": [{"group": "JBXX", "field": "XM", "new": target["data"]["JBXX"]["XM"] + "华"}],
                "reason": "本人已更名",
            },
        )
        basics = clerk.get(f"/teachers/{effective[1]['id']}")["data"]["JBXX"]  # the person shows their ID card
        teacher_account = Api.of(url, f"sysadmin{first}").post(
            f"/teachers/{effective[1]['id']}/account",
            {
                "name": basics["XM"],
                "gender": basics["XBM"],
                "birth_date": basics["CSRQ"],
                "id_number": basics["SFZJH"],
                "initial_password": PASSWORD,
            },
        )
        Api.of(url, teacher_account["username"])  # the teacher changes the initial password
        logins.append((f"教师本人（{effective[1]['name']}）", teacher_account["username"]))
    admin.post(
        "/notices",
        {
            "title": f"关于做好{time.localtime().tm_year}年度教师信息更新工作的通知",
            "body": "各学校请于本月底前完成本校教师年度考核、培训信息的录入，并提交区县审核。",
        },
    )
    effective_n = len(county.get("/teachers?status=effective&limit=1000")["teachers"])
    print(
        f"   province {code}: {total} teachers imported at {len(schools)} schools, {effective_n} effective after "
        f"school and county review; at {first}: 1 draft, 1 waiting for the school, 1 for the county, 1 returned,"
        f" 1 change request"
    )
    return logins


def cross_province_transfer(urls: dict[str, str], nodes: dict[str, dict[str, str]]) -> str:
    """Beijing's 朝阳区实验小学 asks for a teacher of Guangdong's 天河区第一小学; returns the transfer id."""
    b_school = Api.of(urls["11"], "info2111000001")
    b_bureau = Api.of(urls["11"], "infoadmin110105")
    a_school = Api.of(urls["44"], "info2144000001")
    a_bureau = Api.of(urls["44"], "infoadmin440106")
    a_school_id = {u["code"]: u["id"] for u in a_school.get("/units")["units"]}["2144000001"]
    first = a_school.get(f"/teachers?unit_id={a_school_id}&status=effective&limit=1")["teachers"][0]
    teacher = a_school.get(f"/teachers/{first['id']}")  # the teacher tells the new school number and ID card
    basic = teacher["data"]["JBXX"]
    b_school_id = {u["code"]: u["id"] for u in b_school.get("/units")["units"]}["2111000001"]
    t = b_school.post(
        "/transfers",
        {
            "teacher_number": teacher["teacher_number"],
            "doc_type": basic["SFZJLXM"],
            "doc_number": basic["SFZJH"],
            "to_school_id": b_school_id,
            "reason": "夫妻团聚",
            "from_province": "44",
        },
    )
    print(f"   11 朝阳区实验小学 asks for {teacher['teacher_number']} {teacher['name']} of province 44")
    b_bureau.post(f"/transfers/{t['id']}/decision", {"decision": "approve", "reason": "同意调入"})
    print("   11 朝阳区教委 approves; the request leaves Beijing with the next sync round")
    run(["province", "sync", "run"], nodes["11"])
    run(["province", "sync", "run"], nodes["44"])
    (waiting,) = a_school.get("/transfers/pending")["transfers"]
    uid = waiting["cross_province"]["transfer_id"]
    print(f"   44 天河区第一小学 sees transfer {uid} waiting for it ({waiting['next_step']})")
    a_school.post(f"/transfers/{waiting['id']}/decision", {"decision": "approve", "reason": "同意调出"})
    a_bureau.post(f"/transfers/{waiting['id']}/decision", {"decision": "approve", "reason": "同意调出"})
    print("   44 school and 天河区教育局 approve; the file goes with the next sync round")
    for code in ("44", "11", "11", "44"):
        run(["province", "sync", "run"], nodes[code])
    moved = b_school.get(f"/teachers?unit_id={b_school_id}&status=effective&limit=1000")["teachers"]
    assert any(x["teacher_number"] == teacher["teacher_number"] for x in moved), "the file did not arrive"
    old = a_school.get(f"/teachers/{first['id']}")
    print(
        f"   11 now holds {teacher['teacher_number']} (effective); 44 shows it {old['status']} "
        f"(人员状态 {old['data']['JBXX']['RYZTM']})"
    )
    print("   " + run(["national", "transfers", "list", "--all"], nodes["national"]).replace("\n", "\n   "))
    return uid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--once", action="store_true", help="run non-interactively and stop everything at the end")
    parser.add_argument(
        "--data-dir",
        default=str(ROOT / "var" / "demo"),
        help="where the demo keeps its SQLite files, keys and logs (wiped at start)",
    )
    parser.add_argument("--teachers", type=int, default=25, help="synthetic teachers per school")
    args = parser.parse_args()
    data = Path(args.data_dir).resolve()
    procs: list[tuple[str, subprocess.Popen, object]] = []

    def stop_all() -> None:
        for _name, p, _log in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p, log in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                print(f"   {name} killed after 15 s", flush=True)
            log.close()

    def stop_on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # `kill` or a closed terminal stops the nodes too, as Ctrl-C does (finally: below)

    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGHUP, stop_on_signal)
    try:
        step("1. indicator catalogue (指标体系)")
        print(run(["catalogue", "show"], {}))

        step(f"2. fresh data directory {data}: national node and two provincial nodes initialised")
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        national_url = f"http://127.0.0.1:{free_port(8000)}"
        nodes: dict[str, dict[str, str]] = {
            "national": {
                "TMIS_DATA_DIR": str(data / "national"),
                "TMIS_BIND": national_url[7:],
                "TMIS_LOG_ORIGIN": "demo.tmis.local/acceptance-log/v1",
            }
        }
        print("   " + run(["national", "init"], nodes["national"]).replace("\n", "\n   "))
        for code in TREES:
            nodes[code] = {
                "TMIS_DATA_DIR": str(data / f"province-{code}"),
                "TMIS_PROVINCE_CODE": code,
                "TMIS_BIND": f"127.0.0.1:{free_port(8100 + int(code))}",
                "TMIS_NATIONAL_URL": national_url,
                "TMIS_SYNC_SCHEDULE_MINUTES": "0",
                "TMIS_SYNC_BATCH_SIZE": "20",
            }
            out = run(
                [
                    "province",
                    "init",
                    "--province-code",
                    code,
                    "--admin-username",
                    f"admin{code}",
                    "--admin-name",
                    f"{TREES[code]['name']}管理员",
                    "--admin-password",
                    PASSWORD,
                    "--second-factor-roles",
                    "",
                ],
                nodes[code],
            )
            print("   " + out.replace("\n", "\n   "))

        step("3. start the nodes (waitress, loopback only)")
        urls = {}
        for name, env in nodes.items():
            kind = "national" if name == "national" else "province"
            log = open(data / f"{name}.log", "w")  # noqa: SIM115 - kept open for the child's lifetime
            p = subprocess.Popen([TMIS, kind, "serve"], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
            procs.append((name, p, log))
            urls[name] = "http://" + env["TMIS_BIND"]
            print(f"   {name:<9} pid {p.pid}  {urls[name]}  log {data / (name + '.log')}")
        for name, p, _log in procs:
            wait_healthy(name, urls[name], p)
        print("   all healthy")

        step("4. enrol both provinces at the national node")
        for code in TREES:
            token = run(["national", "enrol-token", "--province", code], nodes["national"])
            print(f"   {code}: " + run(["province", "sync", "enrol", "--token", token], nodes[code]))

        step("5. units, accounts and synthetic teachers through each province's API, reviewed to effective")
        logins = {code: seed_province(code, urls[code], args.teachers) for code in TREES}

        step("6. a sync round per province: outbox → signed batches → national intake → receipts → inbox")
        for code in TREES:
            print(f"   {code}: " + run(["province", "sync", "run"], nodes[code]).splitlines()[-1])

        step("7. the national node: per-province state and counts")
        print("   " + run(["national", "provinces"], nodes["national"]).replace("\n", "\n   "))

        step("8. a cross-province transfer (跨省调动) from Guangdong to Beijing through the national node")
        uid = cross_province_transfer(urls, nodes)

        step("9. export the audit bundle, verify it offline and show the transfer's signed trail")
        bundle = data / "audit-bundle"
        print("   " + run(["national", "export", "-o", str(bundle)], nodes["national"]))
        verdict = run(["audit", "bundle", str(bundle)], {})
        print("   " + "\n   ".join(verdict.splitlines()[-4:]))
        trail = run(["audit", "transfer", str(bundle), uid], {})
        print("   " + "\n   ".join(line for line in trail.splitlines() if not line.startswith("OK")))

        step("10. the federation is up")
        for name, url in urls.items():
            print(f"   {name:<9} {url}  (health: {url}/health, OpenAPI: {url}/api/openapi.json)")
        print(f"\n   Open a province's login page and sign in as any of these (password {NEW_PASSWORD} for all):")
        for code, people in logins.items():
            print(f"\n   {TREES[code]['name']}（{code}）  {urls[code]}/login")
            for who, username in people:
                print(f"     {username:<22} {who}")
        print(
            "\n   Security keys (安全密钥) are off in the demo; to try them, in a province's environment run"
            "\n   `tmis province second-factor roles --set sysadmin,infoadmin` and open its pages at localhost"
            "\n   (keys are bound to a host name, not to 127.0.0.1): docs/security.md, Second factor."
        )
        if args.once:
            print("\nall steps succeeded; stopping the nodes (--once)")
            return 0
        print("\nPress Ctrl-C to stop the nodes.")
        while all(p.poll() is None for _n, p, _l in procs):
            time.sleep(1)
        print("a node exited; stopping the others")
        return 1
    except KeyboardInterrupt:
        print("\nstopping")
        return 0
    except Exception as e:  # report any failed step and exit non-zero
        print(f"\nDEMO FAILED: {e}", file=sys.stderr)
        if os.environ.get("TMIS_DEMO_TRACEBACK"):
            traceback.print_exc()
        return 1
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
