"""Batch intake (DESIGN §6.4): verify, apply, log, receipt; the national store of core records; duplicate
identities across provinces (一人一号)."""
