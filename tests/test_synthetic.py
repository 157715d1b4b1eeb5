"""The synthetic generator's records pass the catalogue validators (they feed the demo and benchmarks)."""

from __future__ import annotations

import importlib.util
import random

from common.catalogue import load_catalogue
from common.catalogue.schema import build_validator
from tests.conftest import REPO


def _module():
    spec = importlib.util.spec_from_file_location("synthetic", REPO / "scripts" / "synthetic.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def test_synthetic_teachers_validate_and_are_unique():
    m = _module()
    cat = load_catalogue()
    rows = m.teachers("440106", 300)
    assert len({r["SFZJH"] for r in rows}) == 300
    jbxx = build_validator(cat, "JBXX", school_type="211")
    for r in rows:
        jbxx.validate({**r, "RYZTM": "100"})  # 人员状态 is set by the registration workflow
    rng = random.Random(1)
    for _ in range(50):
        gwpr, zyjs = m.posts(rng)
        build_validator(cat, "GWPR").validate(gwpr[0])
        build_validator(cat, "ZYJSZWPR").validate(zyjs[0])
