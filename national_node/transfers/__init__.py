"""Cross-province transfers and rotations brokered by the national node (over :mod:`sync_protocol.transfer`)."""
