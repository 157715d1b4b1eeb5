"""tmis-sync/1: the signed, versioned delta-sync protocol between provincial nodes and the national node.

Pure: this package works on bytes and values only. It imports no web framework, database layer, HTTP
client or scheduler, and no node package (checked by import-linter and by a test of ``sys.modules``).
The specification is ``docs/protocol.md``; the modules:

* ``canonical`` — RFC 8785 encoding and the strict parser; ``merkle`` — RFC 6962/9162 trees and proofs;
* ``keys``, ``dsse`` — Ed25519 keys and DSSE envelopes; ``identifiers`` — province codes, teacher numbers;
* ``records``, ``batch`` — core records and signed batches; ``trust`` — versioned trust metadata;
* ``log`` — acceptance-log leaves, C2SP checkpoints, receipts; ``inbox`` — national → province messages;
* ``verifier`` — the national node's acceptance state machine; ``audit`` — offline auditor functions.
"""

PROTOCOL = "tmis-sync/1"
