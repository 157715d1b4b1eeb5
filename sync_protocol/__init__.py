"""tmis-sync/1: the signed, versioned delta-sync protocol between provincial nodes and the national node.

Pure: this package works on bytes and values only. It imports no web framework, database layer, HTTP
client or scheduler, and no node package (checked by import-linter and by a test of ``sys.modules``).
The specification is ``docs/protocol.md``.
"""
