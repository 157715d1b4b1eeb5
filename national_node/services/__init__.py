"""Services of the national node. They take the session and never commit (the request or CLI command
owns the transaction); all protocol verification is done by ``sync_protocol`` before anything is stored."""
