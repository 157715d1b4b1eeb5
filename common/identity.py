"""Identity documents (身份证件): validation rules per document type.

Rules (domain/REFERENCE.md §3, DESIGN.md §3):

* 1 居民身份证 (GB 11643-1999): 18 characters = 6-digit address code + birth date YYYYMMDD + 3-digit
  sequence (odd = male, even = female) + ISO 7064 MOD 11-2 check character (0–9 or X). The format, check
  character and birth date (a real date, not in the future, not before 1900) are errors; an address code
  that is not in the GB/T 2260 data is only a **warning** (codes are retired and re-used; python-stdnum's
  strict region check refuses valid numbers, see REFERENCE.md §3). A 15-digit legacy number is converted
  (insert "19" before YY, append the check character) and accepted with a warning.
  Numbers starting 81/82/83 are 港澳台居民居住证 and must be entered as type C.
* C 港澳台居民居住证: 18 characters, address code 810000 (Hong Kong), 820000 (Macao) or 830000 (Taiwan),
  then the same layout and MOD 11-2 check.
* D 外国人永久居留身份证: the 2023 card is 18 characters: ``9`` + 2-digit province + 3-digit country code +
  birth date YYYYMMDD + 3-digit sequence (odd = male) + MOD 11-2 check; the 2017 card is 15 characters,
  3 letters (country) + 12 digits, checked for format only.
* A 护照 and the other documents (2–9, B, Z): no checksum; 1–30 letters, digits, ``-`` or ``()``;
  the number is stored with the nationality.

The check character is computed by python-stdnum (``stdnum.cn.ric.calc_check_digit``), not by hand.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from stdnum.cn import ric

from common.divisions import lookup as lookup_division

RESIDENT_ID = "1"
RESIDENCE_PERMIT_HMT = "C"
FOREIGN_PERMANENT_RESIDENCE = "D"
PASSPORT = "A"

_FREE_FORMAT = re.compile(r"^[0-9A-Z()\-（）]{1,30}\Z")
_18 = re.compile(r"^[0-9]{17}[0-9X]\Z")
_15 = re.compile(r"^[0-9]{15}\Z")
_OLD_PR = re.compile(r"^[A-Z]{3}[0-9]{12}\Z")
_HMT_PREFIXES = {"810000": "香港", "820000": "澳门", "830000": "台湾"}


class IdentityError(ValueError):
    """The number is not valid for its document type; bilingual reason."""

    def __init__(self, reason_zh: str, reason_en: str) -> None:
        super().__init__(reason_en)
        self.reason_zh = reason_zh
        self.reason_en = reason_en


@dataclass(frozen=True)
class IdentityInfo:
    doc_type: str
    number: str  # normalised (upper case, 15-digit legacy converted to 18)
    birth_date: dt.date | None = None
    gender: str | None = None  # GB/T 2261.1 code: "1" male, "2" female
    region: str | None = None  # 6-digit address code where the document carries one
    warnings: tuple[str, ...] = field(default_factory=tuple)


def check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits."""
    # stdnum's function takes the whole number and ignores its last character
    return ric.calc_check_digit(first17 + "0")


def convert_legacy_15(number: str) -> str:
    """Convert a 15-digit first-generation number to its 18-digit form."""
    if not _15.match(number):
        raise IdentityError("15位旧身份证号应为15位数字", "a legacy resident ID number has 15 digits")
    first17 = number[:6] + "19" + number[6:]
    return first17 + check_character(first17)


def _birth_date(digits8: str, today: dt.date) -> dt.date:
    try:
        d = dt.date(int(digits8[:4]), int(digits8[4:6]), int(digits8[6:8]))
    except ValueError:
        raise IdentityError(
            f"证件号中的出生日期 {digits8} 不是有效日期", f"the birth date {digits8} in the number is not a real date"
        ) from None
    if d > today:
        raise IdentityError("证件号中的出生日期在未来", "the birth date in the number is in the future")
    if d.year < 1900:
        raise IdentityError("证件号中的出生日期早于1900年", "the birth date in the number is before 1900")
    return d


def _check_mod11(number: str) -> None:
    expected = check_character(number[:17])
    if number[17] != expected:
        raise IdentityError(f"校验码错误（应为 {expected}）", f"wrong check character (expected {expected})")


def _gb11643(number: str, today: dt.date) -> tuple[dt.date, str]:
    if not _18.match(number):
        raise IdentityError("应为18位：17位数字加1位数字或X", "must be 18 characters: 17 digits and a digit or X")
    birth = _birth_date(number[6:14], today)
    _check_mod11(number)
    return birth, "1" if int(number[16]) % 2 else "2"


def validate_identity(doc_type: str, number: str, *, today: dt.date | None = None) -> IdentityInfo:
    """Validate ``number`` as a document of ``doc_type`` (code table SFZJLX).

    Raises:
        IdentityError: the number cannot be valid for that document type.
    Returns:
        the normalised number with what it encodes, and warnings that do not block saving.
    """
    today = today or dt.date.today()  # noqa: DTZ011 - a calendar date, the local date is meant
    raw = (number or "").strip().upper().replace(" ", "")
    if not raw:
        raise IdentityError("证件号不能为空", "the document number is empty")
    warnings: list[str] = []

    if doc_type == RESIDENT_ID:
        if _15.match(raw):
            raw = convert_legacy_15(raw)
            warnings.append("15位旧身份证号已转换为18位 / legacy 15-digit number converted to 18 digits")
        if raw[:6] in _HMT_PREFIXES:
            raise IdentityError(
                "该号码是港澳台居民居住证号，请选择证件类型 C",
                "this is a Hong Kong/Macao/Taiwan residence permit number: use type C",
            )
        birth, gender = _gb11643(raw, today)
        region = raw[:6]
        if lookup_division(region) is None:
            warnings.append(f"地址码 {region} 不在行政区划数据中 / address code {region} is not a known division")
        return IdentityInfo(doc_type, raw, birth, gender, region, tuple(warnings))

    if doc_type == RESIDENCE_PERMIT_HMT:
        if raw[:6] not in _HMT_PREFIXES:
            raise IdentityError(
                "港澳台居民居住证号应以810000、820000或830000开头",
                "a residence permit number starts with 810000, 820000 or 830000",
            )
        birth, gender = _gb11643(raw, today)
        return IdentityInfo(doc_type, raw, birth, gender, raw[:6], tuple(warnings))

    if doc_type == FOREIGN_PERMANENT_RESIDENCE:
        if _OLD_PR.match(raw):
            warnings.append("2017版永久居留身份证号仅校验格式 / 2017 card: format checked only")
            return IdentityInfo(doc_type, raw, None, None, None, tuple(warnings))
        if not (_18.match(raw) and raw[0] == "9"):
            raise IdentityError(
                "外国人永久居留身份证号应为以9开头的18位，或3个字母加12位数字（2017版）",
                "a permanent residence card number is 18 characters starting with 9, "
                "or 3 letters and 12 digits (2017 card)",
            )
        birth = _birth_date(raw[6:14], today)
        _check_mod11(raw)
        return IdentityInfo(doc_type, raw, birth, "1" if int(raw[16]) % 2 else "2", None, tuple(warnings))

    if not _FREE_FORMAT.match(raw):
        raise IdentityError(
            "证件号只能包含字母、数字、连字符或括号，最长30位",
            "only letters, digits, '-' or brackets, at most 30 characters",
        )
    return IdentityInfo(doc_type, raw, None, None, None, tuple(warnings))
