"""Reconciliation between the tiers (对账): the digest of each province's core view compared with the store,
differences found by descending the tree; and what a province restored from an older backup asks for (its
chain position, the batches accepted after it)."""
