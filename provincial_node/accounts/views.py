"""Pages of units (单位) and accounts (账号管理). Thin: the same services as the API."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from common.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from provincial_node.accounts import accounts, second_factor, units
from provincial_node.accounts.access import unit_in_scope
from provincial_node.accounts.models import SecurityKey, Unit
from provincial_node.context import Role, UnitLevel, current_context
from provincial_node.rules import Operation, authorize, may

bp = Blueprint("accounts_pages", __name__, template_folder="templates")
MAX_UNIT_CSV = 5 * 1024 * 1024


def _tree(rows: list[Unit]) -> list[dict[str, Any]]:
    """Units as nested nodes under their parents (rows in path order)."""
    nodes = {u.id: {"unit": u, "children": []} for u in rows}
    roots = []
    for u in rows:
        parent = nodes.get(u.parent_id)
        (parent["children"] if parent else roots).append(nodes[u.id])
    return roots


@bp.get("/units")
def unit_tree() -> str:
    """单位: the tree of the user's subtree, with a search (name or code)."""
    ctx = current_context()
    authorize(ctx, Operation.UNITS_READ)
    q = (request.args.get("q") or "").strip()
    rows = units.in_scope(ctx)
    hits = [u for u in rows if q and (q in u.name or u.code.startswith(q))][:200]
    return render_template(
        "accounts/unit_tree.html",
        tree=_tree(rows) if len(rows) <= 3000 else [],
        too_many=len(rows) > 3000,
        hits=hits,
        q=q,
        count=len(rows),
        can_import=may(ctx.user, Operation.UNITS_IMPORT),
    )


@bp.get("/units/<int:unit_id>")
def unit_detail(unit_id: int) -> str:
    """单位详情: codes, 办学类型, supervisor, the review chain of a school."""
    ctx = current_context()
    authorize(ctx, Operation.UNITS_READ)
    unit = unit_in_scope(ctx, unit_id)
    supervisor = ctx.session.get(Unit, unit.supervisor_id) if unit.supervisor_id else None
    parent = ctx.session.get(Unit, unit.parent_id) if unit.parent_id else None
    chain = None
    if unit.level == UnitLevel.SCHOOL:
        chain = [UnitLevel.SCHOOL, *units.review_levels(ctx.session, ctx.base_catalogue, unit)]
    children = list(ctx.session.scalars(select(Unit).where(Unit.parent_id == unit.id).order_by(Unit.code)))
    return render_template(
        "accounts/unit_detail.html", unit=unit, supervisor=supervisor, parent=parent, chain=chain, children=children
    )


@bp.route("/units/import", methods=["GET", "POST"])
def unit_import() -> Any:
    """单位导入 (province system administrators): a CSV of the tree; every bad row reported, nothing written
    unless every row is valid."""
    ctx = current_context()
    authorize(ctx, Operation.UNITS_IMPORT)
    result, row_errors, error = None, [], None
    if request.method == "POST":
        upload = request.files.get("file")
        data = upload.read(MAX_UNIT_CSV + 1) if upload else b""
        if not data:
            error = "请选择 CSV 文件"
        elif len(data) > MAX_UNIT_CSV:
            error = "文件超过 5 MB"
        else:
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                error = "CSV 须为 UTF-8 编码：在 Excel 中“另存为”时选择“CSV UTF-8（逗号分隔）”"
            else:
                try:
                    result = units.import_units_csv(ctx, text)
                except ValidationError as e:
                    row_errors = e.errors
    status = 422 if (error or row_errors) else 200
    return render_template(
        "accounts/unit_import.html", result=result, row_errors=row_errors, error=error, columns=units.CSV_COLUMNS
    ), status


@bp.get("/accounts")
def account_list() -> str:
    """账号管理: the accounts this system administrator manages (own unit; administrators of units directly below)."""
    ctx = current_context()
    authorize(ctx, Operation.ACCOUNTS_READ)
    rows = accounts.in_scope(ctx)
    unit_by_id = {u.id: u for u in units.in_scope(ctx)}
    me = ctx.user
    manageable = {
        a.id
        for a in rows
        if a.id != me.account_id
        and (a.unit_id == me.unit_id or (unit_by_id[a.unit_id].parent_id == me.unit_id and a.role == Role.SYSADMIN))
    }
    if may(me, Operation.SECOND_FACTOR_SUPERVISE):  # the accounts below whose keys this unit supervises
        rows += [a for a in second_factor.supervised_accounts(ctx) if a.id not in {r.id for r in rows}]
    supervised = {a.id for a in rows if unit_by_id[a.unit_id].parent_id == me.unit_id}  # the unit directly above
    states = second_factor.enrolment_states(ctx, rows)
    keys = {
        k.account_id: k
        for k in ctx.session.scalars(
            select(SecurityKey).where(SecurityKey.account_id.in_(list(supervised)), SecurityKey.revoked_at.is_(None))
        )
    }
    return render_template(
        "accounts/account_list.html",
        rows=rows,
        units=unit_by_id,
        manageable=manageable,
        supervised=supervised,
        states=states,
        keys=keys,
        roles=Role.choices(),
        required_roles=second_factor.required_roles(ctx.session),
        can_set_policy=may(me, Operation.SECOND_FACTOR_POLICY),
        now=ctx.now,
    )


@bp.post("/accounts/second-factor-policy")
def second_factor_policy() -> Any:
    """须使用安全密钥的角色 (the province's system administrator; a fresh key check when it uses one)."""
    ctx = current_context()
    authorize(ctx, Operation.SECOND_FACTOR_POLICY)
    roles = second_factor.set_required_roles(ctx, request.form.getlist("roles"))
    names = "、".join(Role.label_of(r) for r in roles) or "无"
    flash(f"须使用安全密钥登录的角色：{names}。", "success")
    return redirect(url_for(".account_list"))


@bp.route("/accounts/new", methods=["GET", "POST"])
def account_new() -> Any:
    ctx = current_context()
    authorize(ctx, Operation.ACCOUNT_CREATE)
    me = ctx.user
    choices = [u for u in units.in_scope(ctx) if u.id == me.unit_id or u.parent_id == me.unit_id]
    errors: dict[str, str] = {}
    form = request.form
    if request.method == "POST":
        try:
            unit = unit_in_scope(ctx, int(form.get("unit_id") or 0))
            account = accounts.create_account(
                ctx,
                username=(form.get("username") or "").strip(),
                real_name=form.get("real_name") or "",
                unit=unit,
                role=form.get("role") or "",
                password=form.get("password") or "",
                phone=(form.get("phone") or "").strip() or None,
                id_number=(form.get("id_number") or "").strip() or None,
                email=(form.get("email") or "").strip() or None,
            )
        except ValidationError as e:
            for err in e.errors:  # several reasons for one field (the password rules) are all shown
                errors[err.field] = "；".join(filter(None, (errors.get(err.field), err.reason_zh)))
        except NotFoundError:
            errors = {"unit_id": "请选择本单位或直属下级单位"}
        except PermissionDeniedError:
            errors = {"role": "您只能为本单位开设账号，或为直属下级单位开设系统管理员账号"}
        except ConflictError as e:
            errors = {"username": "用户名已被使用" if "username" in e.message else "该单位已有系统管理员"}
        else:
            flash(f"已开设账号 {account.username}，首次登录须修改初始密码。", "success")
            return redirect(url_for(".account_list"))
    roles = [(r, label) for r, label in Role.choices() if r != Role.TEACHER]
    page = render_template("accounts/account_new.html", units=choices, roles=roles, errors=errors, form=form)
    return page, (422 if errors else 200)


@bp.post("/accounts/<int:account_id>/actions")
def account_action(account_id: int) -> Any:
    """解锁 / 重置密码 / 停用 / 恢复, with the reason (audited)."""
    ctx = current_context()
    authorize(ctx, Operation.ACCOUNT_MANAGE)
    action = request.form.get("action") or ""
    reason = (request.form.get("reason") or "").strip()
    one_time = None
    try:
        if action == "reset_password":
            account, one_time = accounts.reset_password(ctx, account_id, reason)
        elif action.startswith("role:"):
            account = accounts.change_role(ctx, account_id, action.removeprefix("role:"), reason)
        else:
            account = accounts.set_account_state(ctx, account_id, action, reason)
    except ValidationError as e:
        flash("未完成：" + "；".join(err.reason_zh for err in e.errors), "danger")
    except (NotFoundError, PermissionDeniedError):
        abort(404)
    else:
        done = {"unlock": "已解锁", "disable": "已停用，其已登录的会话已结束", "restore": "已恢复"}
        if one_time:
            flash(
                f"已重置 {account.username} 的密码。一次性密码：{one_time}（只显示这一次，请当面或电话告知本人；"
                "首次登录须修改）。",
                "warning",
            )
        elif action.startswith("role:"):
            flash(f"已将 {account.username} 的角色改为{Role.label_of(account.role)}，其已登录的会话已结束。", "success")
        else:
            flash(f"{account.username} {done.get(action, '已完成')}。", "success")
    return redirect(url_for(".account_list"))


BLUEPRINTS = (bp,)
