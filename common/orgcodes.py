"""Organisation codes: 学校标识码 and 统一社会信用代码.

学校标识码 (school identifier, 《学校(机构)代码管理办法》, MOE 2011): ten digits ``AA BB CCCCCC``:

* ``AA`` the school class, equal to the first two digits of the school's 办学类型 (11, 21, 22, 31–37,
  41, 42, 51, 91–93 — the set is taken from the 办学类型 code table, not repeated here);
* ``BB`` the 2-digit province code (66 for 新疆生产建设兵团);
* ``CCCCCC`` a sequence assigned by the province (for higher-education institutions ``0`` + the MOE
  5-digit school code, e.g. 4111010001 北京大学). It never changes.

统一社会信用代码 (USCC, GB 32100-2015, 18 characters) is validated by python-stdnum; its characters 3–8 are
a division code and 9–17 the former 组织机构代码 (GB 11714).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stdnum import exceptions as stdnum_exc
from stdnum.cn import uscc

from common.config import NODE_PROVINCE_CODES
from common.divisions import DivisionCodeError, derive

_SCHOOL_ID = re.compile(r"^[0-9]{10}\Z")


class OrgCodeError(ValueError):
    def __init__(self, reason_zh: str, reason_en: str) -> None:
        super().__init__(reason_en)
        self.reason_zh = reason_zh
        self.reason_en = reason_en


@dataclass(frozen=True)
class SchoolId:
    code: str
    school_class: str  # AA
    province: str  # BB
    sequence: str  # CCCCCC


def parse_school_id(code: str, *, school_classes: frozenset[str], school_type: str | None = None) -> SchoolId:
    """Parse and validate a 学校标识码.

    Args:
        school_classes: the valid ``AA`` values (first two digits of the 办学类型 codes).
        school_type: when given, the 办学类型 code the identifier must agree with.
    Raises:
        OrgCodeError: malformed, unknown class or province, or disagreeing with ``school_type``.
    """
    code = (code or "").strip()
    if not _SCHOOL_ID.match(code):
        raise OrgCodeError("学校标识码应为10位数字", "a school identifier has 10 digits")
    sid = SchoolId(code, code[:2], code[2:4], code[4:])
    if sid.school_class not in school_classes:
        raise OrgCodeError(
            f"学校标识码前两位 {sid.school_class} 不是有效的学校类别", f"{sid.school_class} is not a school class code"
        )
    if sid.province not in NODE_PROVINCE_CODES:
        raise OrgCodeError(f"学校标识码第3–4位 {sid.province} 不是省级代码", f"{sid.province} is not a province code")
    if school_type is not None and school_type[:2] != sid.school_class:
        raise OrgCodeError(
            f"学校标识码类别 {sid.school_class} 与办学类型 {school_type} 不一致",
            f"school class {sid.school_class} disagrees with school type {school_type}",
        )
    return sid


@dataclass(frozen=True)
class CreditCode:
    code: str
    organisation_code: str  # former 组织机构代码, characters 9–17
    division: str  # registering division, characters 3–8


def parse_credit_code(code: str) -> CreditCode:
    """Validate a 统一社会信用代码 (check character and registering division)."""
    try:
        compact = uscc.validate(code or "")
    except stdnum_exc.ValidationError as e:
        raise OrgCodeError(
            "统一社会信用代码无效（长度、字符或校验位错误）", f"invalid unified social credit code: {e.message}"
        ) from None
    try:
        derive(compact[2:8])
    except DivisionCodeError as e:
        raise OrgCodeError(
            "统一社会信用代码中的行政区划码无效：" + e.reason_zh,
            "the division code inside the credit code is invalid: " + e.reason_en,
        ) from None
    return CreditCode(compact, compact[8:17], compact[2:8])
