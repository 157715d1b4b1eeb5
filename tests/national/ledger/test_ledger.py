"""The acceptance log's append, receipt and checkpoint (both databases): the ``log_head`` row keeps the log's
frontier, so neither reads the old leaves again; a row without one (written before it was kept) is rebuilt from
the leaves once."""

from __future__ import annotations

from sqlalchemy import select

from common.db import utcnow
from national_node.db import NodeSetting
from national_node.ledger import ledger
from sync_protocol import merkle
from sync_protocol.log import trust_leaf, verify_checkpoint, verify_receipt


def _log_keys(nation):
    return {nation.keys.log.public.keyid: nation.keys.log.public}


def _head(nation) -> NodeSetting:
    return nation.session.scalar(select(NodeSetting).where(NodeSetting.key == "log_head"))


def _append_and_check(nation, n: int) -> None:
    s = nation.session
    for i in range(n):
        leaf = trust_leaf(version=1000 + i, trust_hash=f"{i:064x}", accepted_at=utcnow())
        appended = ledger.append_leaf(s, leaf)
        hashes = ledger.leaf_hashes(s)
        assert appended.index == len(hashes) - 1 and appended.size == len(hashes)
        receipt = ledger.receipt(nation.keys, nation.origin, appended, leaf)
        got, cp = verify_receipt(receipt.to_bytes(), origin=nation.origin, log_keys=_log_keys(nation))
        assert (cp.size, cp.root) == (len(hashes), merkle.root(hashes))
        assert list(got.inclusion_proof) == merkle.inclusion_proof(appended.index, hashes)
        now = verify_checkpoint(
            ledger.checkpoint(s, nation.keys, nation.origin), origin=nation.origin, keys=_log_keys(nation)
        )
        assert (now.size, now.root) == (cp.size, cp.root)


def test_every_receipt_and_checkpoint_equals_the_one_computed_from_all_leaves(nation):
    _append_and_check(nation, 40)  # sizes 2..41: every shape of frontier up to 6 subtrees
    assert _head(nation).value.startswith("frontier1 41 ")


def test_a_log_head_without_a_frontier_is_rebuilt_from_the_leaves_once(nation):
    _append_and_check(nation, 5)
    head = _head(nation)
    head.value = "0"  # as written by `tmis national init` before the frontier was kept (and never changed)
    nation.session.flush()
    cp = verify_checkpoint(
        ledger.checkpoint(nation.session, nation.keys, nation.origin), origin=nation.origin, keys=_log_keys(nation)
    )
    assert cp.size == 6  # read back from the leaves
    _append_and_check(nation, 3)
    assert _head(nation).value.startswith("frontier1 9 ")


def test_a_frontier_that_does_not_match_the_log_is_not_trusted(nation):
    _append_and_check(nation, 3)
    head = _head(nation)
    head.value = head.value.replace("frontier1 4 ", "frontier1 3 ", 1)  # a size the leaves do not have
    nation.session.flush()
    _append_and_check(nation, 2)  # rebuilt from the leaves: receipts still match the whole log
    head.value = "frontier1 6 " + "00" * 32  # 6 has two 1-bits: one hash does not add up
    nation.session.flush()
    hashes = ledger.leaf_hashes(nation.session)
    cp = verify_checkpoint(
        ledger.checkpoint(nation.session, nation.keys, nation.origin), origin=nation.origin, keys=_log_keys(nation)
    )
    assert (cp.size, cp.root) == (len(hashes), merkle.root(hashes))
