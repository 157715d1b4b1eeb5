"""Synthetic, realistic teacher records for demos and benchmarks (never real people).

Every record validates against the catalogue (人员状态 and the other workflow fields are set by the node):
resident ID numbers with real birth dates, region codes of the school's county and correct check
characters; gender from the ID; education, degree, post and title codes consistent with each other (the
cascades and cross-field rules of the catalogue).

    python scripts/synthetic.py --county 440106 -n 5 > teachers.csv
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from typing import Any

from common.identity import check_character

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉斌宇浩"
    "凯健俊帆帅旭宁龙林欣怡佳琪梓涵雨萱子轩浩然"
)
# (education, degree level, degree) that belong together
EDUCATION = [
    ("21", "4", "404"),
    ("21", "4", "407"),
    ("14", "3", "342"),
    ("14", "3", "304"),
    ("31", "0", None),
    ("11", "2", "204"),
]
# (post type, level, title) that belong together
POSTS = [("1", "110", "012"), ("1", "108", "011"), ("1", "112", "013"), ("1", "105", "010"), ("1", "998", "000")]


def teacher(rng: random.Random, county: str, serial: int) -> dict[str, Any]:
    year = rng.randint(1966, 2000)
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    gender = rng.choice("12")
    seq = f"{serial % 499 * 2 + (1 if gender == '1' else 0):03d}"  # odd = male (GB 11643)
    first17 = f"{county}{year:04d}{month:02d}{day:02d}{seq}"
    work_year = year + rng.randint(21, 26)
    edu, level, degree = rng.choice(EDUCATION)
    rec: dict[str, Any] = {
        "XM": rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2))),
        "XBM": gender,
        "GJDQM": "156",
        "SFZJLXM": "1",
        "SFZJH": first17 + check_character(first17),
        "CSRQ": f"{year:04d}-{month:02d}-{day:02d}",
        "MZM": rng.choice(["01"] * 9 + ["03", "08", "11"]),
        "ZZMMM": [rng.choice(["01", "01", "03", "13", "13", "13"])],
        "HYZKM": rng.choice(["10", "20"]),
        "JKZKM": "1",
        "ZGXLM": edu,
        "ZGXWCCM": level,
        "CJGZNY": f"{min(work_year, 2024)}-09",
        "JBXNY": f"{min(work_year + rng.randint(0, 10), 2025)}-09",
        "JZGLYM": "11",
        "JZGLBM": "11",
        "SFZB": "1",
        "QDHTQKM": "1",
        "SFQRZSFLZYBY": rng.choice("01"),
        "SFSGTJZYPYPX": "0",
        "SFYTSJYCYZS": "0",
        "XXJSYYNLM": rng.choice("1234"),
        "SFSMFSFS": rng.choice("0001"),
        "SFCJJCFWXM": "0",
        "SFTJJS": "0",
        "SFXJGGJS": rng.choice("0001"),
        "SFXLJKJYJS": "0",
    }
    if degree:
        rec["ZGXWM"] = degree
    return rec


def posts(rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    kind, level, title = rng.choice(POSTS)
    gwpr = [
        {"GWLBM": kind, "GWDJM": level, "PRKSNY": f"{rng.randint(2016, 2024)}-01", "SFJRQTGW": "0", "XJZWM": ["00"]}
    ]
    zyjs = [{"PRZYJSZWM": title, **({"PRKSNY": f"{rng.randint(2014, 2024)}-01"} if title != "000" else {})}]
    return gwpr, zyjs


def teachers(county: str, n: int, seed: int = 2026, start: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)  # synthetic data, not security
    out, seen = [], set()
    serial = start
    while len(out) < n:
        rec = teacher(rng, county, serial)
        serial += 1
        if rec["SFZJH"] not in seen:
            seen.add(rec["SFZJH"])
            out.append(rec)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--county", required=True, help="6-digit county code used in the ID numbers")
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    rows = teachers(args.county, args.n, args.seed)
    w = csv.DictWriter(sys.stdout, fieldnames=sorted({k for r in rows for k in r}))
    w.writeheader()
    for r in rows:
        w.writerow({k: ",".join(v) if isinstance(v, list) else v for k, v in r.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
