"""This province's side of tmis-sync/1: the outbox (change capture), sync rounds, receipts, trust, and the
dispatch of what the national node routes down. It knows no business area: areas write to its outboxes,
and register their inbox handlers through :mod:`provincial_node.areas`."""
