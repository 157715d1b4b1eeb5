"""信息共享 classes of the catalogue's fields (暂行办法 art. 31): 无条件共享 / 有条件共享 / 不予共享, as data
(``data/sharing.toml``): a class per record group, exceptions per field. Pure; both nodes may read it."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources

from common.enums import LabelledStrEnum
from common.errors import CatalogueError


class ShareClass(LabelledStrEnum):
    UNCONDITIONAL = "unconditional", "无条件共享"
    CONDITIONAL = "conditional", "有条件共享"
    WITHHELD = "withheld", "不予共享"


@cache
def _data() -> tuple[Mapping[str, ShareClass], Mapping[tuple[str, str], ShareClass]]:
    raw = tomllib.loads(resources.files("common.catalogue").joinpath("data/sharing.toml").read_text("utf-8"))
    try:
        groups = {g: ShareClass(c) for g, c in raw["groups"].items()}
        fields = {tuple(k.split(".", 1)): ShareClass(c) for k, c in raw.get("fields", {}).items()}
    except (ValueError, KeyError) as e:
        raise CatalogueError(f"data/sharing.toml: {e}") from None
    return groups, fields  # type: ignore[return-value]


def share_class(group: str, field: str) -> ShareClass:
    """The class of one field; a group not listed (a custom indicator's group cannot be) and custom indicators
    (``X_…`` codes) are conditional."""
    groups, fields = _data()
    if (group, field) in fields:
        return fields[(group, field)]
    if field.startswith("X_"):
        return ShareClass.CONDITIONAL
    return groups.get(group, ShareClass.CONDITIONAL)


def listed() -> tuple[Mapping[str, ShareClass], Mapping[tuple[str, str], ShareClass]]:
    """The groups and fields the data names (for the consistency test)."""
    return _data()
