"""Services of the provincial node. Every function takes the SQLAlchemy session and never commits: the
request (or CLI command, or job) owns the transaction. Every function that acts for a user takes the
:class:`~provincial_node.services.access.Actor` and confines itself to the actor's unit subtree and role."""
