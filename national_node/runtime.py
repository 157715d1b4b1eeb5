"""What the national node's app (or a CLI command, or a test) holds for its lifetime: config, engine,
sessions, catalogue and the node's keys (loaded on first use). :func:`runtime` is the one lookup of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app

from common.http import NodeRuntime, runtime_of
from national_node.config import NationalConfig
from national_node.keys import NodeKeys, load_keys


@dataclass(frozen=True)
class NationalRuntime(NodeRuntime):
    config: NationalConfig

    @property
    def keys_dir(self) -> Path:
        return self.config.data_dir / "keys"

    def keys(self) -> NodeKeys:
        return load_keys(self.keys_dir)

    @property
    def origin(self) -> str:
        """The acceptance log's origin (the name in every checkpoint)."""
        return self.config.log_origin


def runtime(app: Flask | None = None) -> NationalRuntime:
    rt = runtime_of(app or current_app)
    if not isinstance(rt, NationalRuntime):
        raise TypeError("not a national node app")
    return rt
