"""Administrative divisions (行政区划代码, GB/T 2260) to county level.

Data: the ``cn/loc.dat`` file shipped with python-stdnum (maintained; compiled from the Chinese Wikipedia
lists of GB/T 2260 codes, with the years each code was valid). Codes are retired and re-used over time
(崇文区 110103 until 2010), so each name carries its validity years.

Deriving the levels of a 6-digit code ``PPCCXX``:

* province = ``PP0000``; prefecture (city) = ``PPCC00``; county = the code itself;
* the four municipalities (11 北京, 12 天津, 31 上海, 50 重庆) have no prefecture level: ``PP01``/``PP02`` are
  only "市辖区/县" groupings, so ``city`` is None and counties sit directly under the province;
* ``PP90xx`` are 省/自治区直辖县级行政单位 (仙桃 429004, 石河子 659001 …): no prefecture, ``city`` is None;
* prefecture-level cities without counties (东莞 441900, 中山 442000, 儋州 460400, 嘉峪关 620200) have no
  county level: ``county`` is None and the city supervises its schools directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

MUNICIPALITIES = frozenset({"11", "12", "31", "50"})
# prefecture-level cities that have no county-level divisions below them
CITIES_WITHOUT_COUNTIES = frozenset({"441900", "442000", "460400", "620200"})

# Divisions created after python-stdnum's data was compiled (the 2021 Hangzhou reform that retired 330103 下城区
# and 330104 江干区 is in the data; the two new districts are not). Add a line when a real division is refused
# as unknown: (code, name, first year).
SUPPLEMENT: tuple[tuple[str, str, int], ...] = (
    ("330113", "临平区", 2021),
    ("330114", "钱塘区", 2021),
)

_CODE_RE = re.compile(r"^[0-9]{6}\Z")
_NAME_RE = re.compile(r"^\[([0-9]{4})?-([0-9]{4})?\](.+)\Z")


@dataclass(frozen=True)
class DivisionName:
    name: str
    valid_from: int | None
    valid_to: int | None

    def valid_in(self, year: int) -> bool:
        return (self.valid_from is None or year >= self.valid_from) and (self.valid_to is None or year <= self.valid_to)


@dataclass(frozen=True)
class Division:
    code: str
    names: tuple[DivisionName, ...]

    @property
    def current_name(self) -> str | None:
        for n in reversed(self.names):
            if n.valid_to is None:
                return n.name
        return None

    @property
    def name(self) -> str:
        return self.current_name or self.names[-1].name

    @property
    def current(self) -> bool:
        return self.current_name is not None

    def name_in(self, year: int) -> str | None:
        for n in self.names:
            if n.valid_in(year):
                return n.name
        return None


@dataclass(frozen=True)
class DivisionPath:
    """The province / city / county a code belongs to (None where that level does not exist)."""

    province: str
    city: str | None
    county: str | None


def _parse_names(raw: str) -> tuple[DivisionName, ...]:
    out = []
    for part in raw.split(","):
        m = _NAME_RE.match(part)
        if m:
            out.append(
                DivisionName(
                    m.group(3), int(m.group(1)) if m.group(1) else None, int(m.group(2)) if m.group(2) else None
                )
            )
        else:
            out.append(DivisionName(part, None, None))
    return tuple(out)


@cache
def all_divisions() -> dict[str, Division]:
    """Every division code known to the data file, province, prefecture and county level."""
    text = resources.files("stdnum").joinpath("cn/loc.dat").read_text(encoding="utf-8")
    out: dict[str, Division] = {}
    prefix = ""
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = re.match(r'^(\s*)(\d+)\s+(\w+)="([^"]*)"', line)
        if not m:
            continue
        indent, digits, _kind, value = m.groups()
        if not indent:
            prefix = digits
            code = digits + "0000"
        else:
            code = prefix + digits
        if len(code) == 6:
            out[code] = Division(code, _parse_names(value))
    for code, name, since in SUPPLEMENT:
        if code not in out:
            out[code] = Division(code, (DivisionName(name, since, None),))
    return out


class DivisionCodeError(ValueError):
    """A division code is malformed or unknown; ``reason_zh``/``reason_en`` say why."""

    def __init__(self, reason_zh: str, reason_en: str) -> None:
        super().__init__(reason_en)
        self.reason_zh = reason_zh
        self.reason_en = reason_en


def lookup(code: str) -> Division | None:
    return all_divisions().get(code)


def derive(code: str) -> DivisionPath:
    """Province, city and county codes of a 6-digit division code (see the module rules)."""
    if not _CODE_RE.match(code or ""):
        raise DivisionCodeError("行政区划代码应为6位数字", "a division code has 6 digits")
    pp, cc, xx = code[:2], code[2:4], code[4:]
    province = pp + "0000"
    if province not in all_divisions() and pp != "66":
        raise DivisionCodeError(f"省级代码 {pp} 不存在", f"unknown province prefix {pp}")
    if cc == "00":
        if xx != "00":
            raise DivisionCodeError("行政区划代码格式错误", "malformed division code")
        return DivisionPath(province, None, None)
    if pp in MUNICIPALITIES or cc == "90":
        return DivisionPath(province, None, code if xx != "00" else None)
    city = pp + cc + "00"
    if city in CITIES_WITHOUT_COUNTIES or code in CITIES_WITHOUT_COUNTIES:
        return DivisionPath(province, city, None)
    return DivisionPath(province, city, code if xx != "00" else None)


def check_known(code: str) -> None:
    """A well-formed code that names a division in force; otherwise :class:`DivisionCodeError` saying why.
    新疆生产建设兵团 (66) has no GB/T 2260 code: its codes are checked for form only."""
    derive(code)
    if code.startswith("66"):
        return
    div = lookup(code)
    if div is None:
        raise DivisionCodeError(
            f"行政区划代码 {code} 不在 GB/T 2260 中（请核对；若是新设区划，请联系系统运维补充区划数据）",
            f"division code {code} is not in GB/T 2260 (check it; a division created recently is added to the data "
            "by the operator)",
        )
    if not div.current:
        last = div.names[-1]
        raise DivisionCodeError(
            f"行政区划代码 {code}（{last.name}）已于 {last.valid_to} 年撤销",
            f"division code {code} ({last.name}) was retired in {last.valid_to}",
        )


def validate_division(code: str) -> list[str]:
    """Validate a 6-digit code; return warnings (unknown or retired code), raise on malformed codes."""
    derive(code)
    div = lookup(code)
    if div is None:
        return [f"行政区划代码 {code} 不在 GB/T 2260 数据中 / division code {code} is not in the GB/T 2260 data"]
    if not div.current:
        return [f"行政区划代码 {code} 已撤销 / division code {code} has been retired"]
    return []
