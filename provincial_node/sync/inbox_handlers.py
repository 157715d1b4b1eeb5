"""Who handles what the national node sends (the sync round knows no business area).

Areas declare, by message kind, a handler for inbox messages (``transfer_request`` …) and a handler for
the refusal of an upward message they queued; :mod:`provincial_node.areas` collects them into one
:class:`InboxDispatch`, which the app puts into the runtime and the sync round uses. ``trust_update`` is the
sync layer's own kind. A kind nobody handles is kept with an error (``sync status`` counts it) and never
blocks the inbox.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from provincial_node.context import ProvinceContext
from provincial_node.sync.models import UpwardMessage
from sync_protocol.inbox import InboxMessage

InboxHandler = Callable[[ProvinceContext, InboxMessage], None]
RefusalHandler = Callable[[ProvinceContext, UpwardMessage, str, str], None]


@dataclass(frozen=True)
class InboxDispatch:
    handlers: Mapping[str, InboxHandler] = field(default_factory=dict)
    refusals: Mapping[str, RefusalHandler] = field(default_factory=dict)

    @classmethod
    def merge(cls, parts: list[InboxDispatch]) -> InboxDispatch:
        """One dispatch from the areas' (a kind claimed twice is a programming error)."""
        handlers: dict[str, InboxHandler] = {}
        refusals: dict[str, RefusalHandler] = {}
        for part in parts:
            for target, source in ((handlers, part.handlers), (refusals, part.refusals)):
                clash = set(target) & set(source)
                if clash:
                    raise ValueError(f"message kinds claimed by two areas: {sorted(clash)}")
                target.update(source)
        return cls(handlers, refusals)
