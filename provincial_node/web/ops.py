"""数据同步, for the province's operators: the round history with per-phase timings, the backlog, the records the
national node refused (with resolve), the trust version and its expiry, and "run a round now". It sits in the
shell because it starts a round (like the API's ``/sync/run``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from common.errors import SyncError, TmisError
from provincial_node.context import current_context, runtime
from provincial_node.jobs import make_sync_client
from provincial_node.rules import Operation, authorize
from provincial_node.sync import status as sync_status
from provincial_node.sync.models import RoundStatus, RoundTrigger
from provincial_node.sync.trust import trust_chain

bp = Blueprint("ops", __name__)

# Why the national node refused a record (intake's reasons), in the operator's words.
REFUSAL_REASONS = {
    "owned_by_other_province": "国家库中该教师归属其他省份：需经调动（跨省调动）转入后才能上报",
}


def _operator() -> None:
    authorize(current_context(), Operation.SYNC_OPERATE)


@bp.get("/sync")
def sync() -> str:
    _operator()
    ctx = current_context()
    try:
        trust = trust_chain(ctx.session)[-1]
    except TmisError:
        trust = None  # not enrolled yet: the page says so
    return render_template(
        "sync.html",
        status=sync_status.status(ctx.session),
        rounds=sync_status.last_rounds(ctx.session, 20),
        parked=sync_status.open_parked(ctx.session),
        trust=trust,
        national_url=runtime().config.national_url,
        reasons=REFUSAL_REASONS,
        now=ctx.now,
    )


@bp.post("/sync/run")
def run_round() -> Any:
    """Run a round now; the page shows how it went (a failed round is recorded like any other)."""
    _operator()
    if not runtime().config.national_url:
        flash("未配置国家级节点地址（TMIS_NATIONAL_URL），无法同步。", "danger")
        return redirect(url_for("ops.sync"))
    try:
        rnd = make_sync_client(runtime()).run_round(RoundTrigger.API)
    except (TmisError, SyncError) as e:
        flash(f"同步未能开始：{e.message_zh or e.message}", "danger")
        return redirect(url_for("ops.sync"))
    kind = "success" if rnd.status == RoundStatus.OK else "warning"
    flash(
        f"第 {rnd.id} 轮同步{RoundStatus.label_of(rnd.status)}：{rnd.batches} 个批次，{rnd.records} 条记录，"
        f"{rnd.messages} 条消息。",
        kind,
    )
    return redirect(url_for("ops.sync"))


@bp.post("/sync/parked/<int:parked_id>/resolve")
def resolve_parked(parked_id: int) -> Any:
    _operator()
    ctx = current_context()
    sync_status.resolve_parked(ctx.session, parked_id, ctx.now)
    flash(f"已将第 {parked_id} 条拒收记录标记为已处理。", "success")
    return redirect(url_for("ops.sync", _anchor="parked") if request.args.get("back") else url_for("ops.sync"))
