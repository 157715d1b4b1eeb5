"""What every ``tmis national`` command starts from: the config and the runtime (its engine disposed when the
command ends)."""

from __future__ import annotations

import click

from common.cli import open_engine
from national_node.app import build_runtime
from national_node.config import config_from_env
from national_node.runtime import NationalRuntime


def runtime(ctx: click.Context) -> NationalRuntime:
    config = config_from_env(ctx.obj["env"])
    return build_runtime(config, open_engine(ctx, config.database))
