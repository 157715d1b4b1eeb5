"""The national node's trust versions (root-signed key lists) and acceptance log (RFC 6962/9162 Merkle log,
signed checkpoints, receipts)."""
