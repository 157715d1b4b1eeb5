"""Pages of the teacher files (教师信息, 新教师入职, 档案, 填报, 报送, 变更记录, 我的档案). Thin: parse the form, call
the same services as the API with the request's context, render; a service's FieldErrors go back next to their
inputs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from common.divisions import DivisionCodeError, all_divisions, derive, lookup
from common.errors import ConflictError, PermissionDeniedError, ValidationError
from common.http import keep_writes_on_error
from provincial_node.accounts import units
from provincial_node.accounts.models import Account, Unit
from provincial_node.context import SCHOOL_LEVELS, Role, current_context
from provincial_node.rules import BASIC_VIEW, Operation, View, authorize, may, rule_for
from provincial_node.teacher_files import duplicates, files, forms, self_service
from provincial_node.teacher_files.access import file_for
from provincial_node.teacher_files.files import TeacherFilter
from provincial_node.teacher_files.history import filled
from provincial_node.teacher_files.models import Teacher
from provincial_node.teacher_files.status import SUBMITTABLE, UNDER_REVIEW, FileStatus

bp = Blueprint("teacher_files_pages", __name__, template_folder="templates")
PAGE_SIZE = 50
IDENTITY = ("XM", "SFZJLXM", "SFZJH")


def _int(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


@bp.get("/teachers")
def teacher_list() -> str:
    """教师信息: filters, keyset pages of 50, the count, and the bulk actions of the user's role."""
    ctx = current_context()
    if ctx.user.role == Role.TEACHER:
        abort(403)  # a teacher's own file is 我的档案; the list is the staff's
    authorize(ctx, Operation.FILES_LIST)
    args = request.args
    f = TeacherFilter(
        unit_id=_int("unit_id"),
        status=args.get("status") or None,
        name=args.get("name") or None,
        teacher_number=args.get("teacher_number") or None,
        id_number=args.get("id_number") or None,
        school_type=args.get("school_type") or None,
        person_status=args.get("person_status") or None,
    )
    after = _int("after") or 0
    rows, next_after, total = files.search_teachers(ctx, f, after_id=after, limit=PAGE_SIZE)
    unit_ids = {t.unit_id for t in rows}
    unit_names = {u.id: u.name for u in ctx.session.query(Unit).filter(Unit.id.in_(unit_ids))} if unit_ids else {}
    params = {k: v for k, v in args.items() if k != "after" and v}
    return render_template(
        "teacher_files/teacher_list.html",
        rows=rows,
        total=total,
        unit_names=unit_names,
        filters=f,
        units=units.in_scope(ctx)[:2000],
        next_url=url_for(".teacher_list", **params, after=next_after) if next_after else None,
        first_url=url_for(".teacher_list", **params) if after else None,
        statuses=FileStatus.choices(),
        school_types=ctx.base_catalogue.table("BXLX").codes.values(),
        person_statuses=ctx.base_catalogue.table("RYZT").codes.values(),
        can_submit=may(ctx.user, Operation.FILE_SUBMIT),
        can_approve=may(ctx.user, Operation.FILE_REVIEW),
    )


@bp.post("/teachers/bulk-submit")
def bulk_submit() -> Any:
    """报送所选: each selected file is checked and submitted; the page says which were not, and why."""
    ctx = current_context()
    authorize(ctx, Operation.FILE_SUBMIT)
    done, failed = 0, []
    for raw in request.form.getlist("teacher_id"):
        if not raw.isdigit():
            continue
        try:
            files.submit(ctx, int(raw))
            done += 1
        except ValidationError as e:
            failed.append(f"{raw}：{len(e.errors)} 处信息不完整或有误")
        except (ConflictError, PermissionDeniedError) as e:
            failed.append(f"{raw}：{e.message_zh or '当前状态不能报送'}")
    flash(f"已报送 {done} 份档案。", "success" if done else "info")
    for line in failed[:20]:
        flash(f"未报送：档案 {line}", "warning")
    return redirect(request.referrer or url_for(".teacher_list"))


@bp.route("/teachers/new", methods=["GET", "POST"])
def register() -> Any:
    """新教师入职: the identity fields make the file (and its teacher number); the rest is filled next."""
    ctx = current_context()
    authorize(ctx, Operation.FILE_REGISTER)
    schools = [u for u in units.in_scope(ctx) if u.level in SCHOOL_LEVELS]
    errors: dict[str, str] = {}
    values = {k: (request.form.get(k) or "").strip() for k in (*IDENTITY, "school_id")}
    if request.method == "POST":
        school_id = int(values["school_id"]) if values["school_id"].isdigit() else (schools[0].id if schools else 0)
        try:
            t = files.register_teacher(ctx, school_id, {k: values[k] for k in IDENTITY if values[k]})
        except ValidationError as e:
            errors = forms.errors_by_input(e.errors)
        except duplicates.DuplicateIdentityError as e:
            ctx.session.rollback()
            duplicates.report_duplicate(ctx, e)  # the bureau above sees where; the school only what it may see
            keep_writes_on_error()
            d = e.details
            where = f"：教师编号 {d['teacher_number']}（{d.get('unit_name')}）" if d.get("teacher_number") else ""
            errors["f.SFZJH"] = (
                f"该证件号已在本省建档{where}。如属本校教师请直接查找该档案；如需从其他学校调入，请发起调动。"
            )
        else:
            flash(f"已建档，教师编号 {t.teacher_number}。请继续填写基本信息。", "success")
            return redirect(url_for(".edit_group", teacher_id=t.id, group="JBXX"))
    doc_types = ctx.base_catalogue.table("SFZJLX").codes.values()
    status = 422 if errors else 200
    page = render_template(
        "teacher_files/register.html", schools=schools, values=values, errors=errors, doc_types=doc_types
    )
    return page, status


def _stage(ctx: Any, teacher: Teacher) -> str | None:
    school = ctx.session.get(Unit, teacher.unit_id)
    return ctx.catalogue.stage_of(school.school_type) if school and school.school_type else None


def _file_page(teacher: Teacher, mine: bool = False) -> str:
    """The file as the reader's rule shows it (:func:`files.read_file`: an audited read; the working copy for
    those who work on files, the basic groups and fields with the ID number masked for query users)."""
    ctx = current_context()
    catalogue = ctx.catalogue
    view = files.read_file(ctx, teacher.id)
    full = rule_for(Operation.FILE_READ, ctx.user.role, ctx.user.unit_level).view == View.FULL
    document = view["draft"] if full else view["data"]
    stage = _stage(ctx, teacher)
    groups = [
        g for g in catalogue.ordered_groups if (stage is None or g.applies_to(stage)) and (full or g.code in document)
    ]
    editable = teacher.status not in (*UNDER_REVIEW, FileStatus.TRANSFERRED_OUT) and (
        may(ctx.user, Operation.FILE_EDIT)
        and (ctx.user.role != Role.TEACHER or ctx.user.teacher_id == teacher.id)
        and (ctx.user.role == Role.TEACHER or ctx.user.unit_id == teacher.unit_id)
    )
    can_fill = {
        g.code: any(forms.readonly_reason(ctx.user, f) is None for f in g.fields if not f.retired) for g in groups
    }
    pending = {g.code for g in groups if (view["draft"].get(g.code) or None) != (view["data"].get(g.code) or None)}
    shown = {}
    for g in groups:
        content = document.get(g.code)
        rows = content if isinstance(content, list) else [content or {}]
        shown[g.code] = [f for f in g.fields if not f.retired or any(filled(r.get(f.code)) for r in rows)]
        if not full and BASIC_VIEW.get(g.code) is not None:
            shown[g.code] = [f for f in shown[g.code] if f.code in BASIC_VIEW[g.code]]
    return render_template(
        "teacher_files/file.html",
        t=teacher,
        document=document,
        basic_view=not full,
        school=ctx.session.get(Unit, teacher.unit_id),
        groups=groups,
        editable=editable,
        can_fill=can_fill,
        pending=pending,
        can_submit=editable and teacher.status in SUBMITTABLE,
        can_change=ctx.user.role == Role.INFOADMIN
        and ctx.user.unit_id == teacher.unit_id
        and teacher.ever_effective
        and teacher.status != FileStatus.TRANSFERRED_OUT,
        mine=mine,
        shown=shown,
    )


@bp.get("/teachers/<int:teacher_id>")
def file(teacher_id: int) -> str:
    """档案: the file by record group (the working copy; changes awaiting review are marked)."""
    ctx = current_context()
    file_for(ctx, Operation.FILE_READ, teacher_id)
    return _file_page(files.get_teacher(ctx, teacher_id))


@bp.get("/me/file")
def my_file() -> Any:
    """教师自助: the teacher's own file."""
    ctx = current_context()
    if ctx.user.role != Role.TEACHER or not ctx.user.teacher_id:
        abort(404)
    return _file_page(files.get_teacher(ctx, ctx.user.teacher_id), mine=True)


@bp.route("/teachers/<int:teacher_id>/groups/<group>", methods=["GET", "POST"])
def edit_group(teacher_id: int, group: str) -> Any:
    """填报: one record group's form, generated from the catalogue (multi-record groups: add and remove rows)."""
    ctx = current_context()
    file_for(ctx, Operation.FILE_EDIT, teacher_id)
    teacher = files.get_teacher(ctx, teacher_id)
    catalogue = ctx.catalogue
    code = group.upper()
    if code not in catalogue.groups:
        abort(404)
    g = catalogue.group(code)
    views = forms.field_views(catalogue, g, ctx.user, _stage(ctx, teacher))
    errors: dict[str, str] = {}
    current = teacher.draft.get(code)
    if request.method == "POST":
        origin = None
        if g.multiple:
            value, _inputs = forms.rows_from_form(request.form, views)
            origin = list(range(len(value)))  # the page is drawn again from the kept rows, in order
        else:
            value = forms.record_from_form(request.form, views, "f.")
        try:
            files.update_group(ctx, teacher.id, code, value)
        except ValidationError as e:
            errors = forms.errors_by_input(e.errors, origin)
        except PermissionDeniedError as e:
            errors = forms.errors_by_input(e.field_errors, origin) or {"": e.message_zh or "无权修改这些信息"}
        except ConflictError as e:
            errors = {"": _conflict_text(e)}
        else:
            flash(f"已保存{g.label}。", "success")
            back = url_for(".my_file") if ctx.user.role == Role.TEACHER else url_for(".file", teacher_id=teacher.id)
            return redirect(f"{back}#g-{code}")
        current = value
    rows = (current or []) if g.multiple else None
    page = render_template(
        "teacher_files/group_form.html", t=teacher, g=g, views=views, record=current or {}, rows=rows, errors=errors
    )
    return page, (422 if errors else 200)


def _conflict_text(e: ConflictError) -> str:
    return e.message_zh or "当前状态不允许此操作。"


@bp.post("/teachers/<int:teacher_id>/submit")
def submit(teacher_id: int) -> Any:
    """报送: the completeness check; what is missing is listed by group and field."""
    ctx = current_context()
    file_for(ctx, Operation.FILE_SUBMIT, teacher_id)
    try:
        files.submit(ctx, teacher_id)
    except ValidationError as e:
        teacher = files.get_teacher(ctx, teacher_id)
        return render_template("teacher_files/submit_errors.html", t=teacher, errors=e.errors), 422
    flash("已报送，等待审核。", "success")
    if ctx.user.role == Role.TEACHER:
        return redirect(url_for(".my_file"))
    return redirect(url_for(".file", teacher_id=teacher_id))


@bp.get("/teachers/<int:teacher_id>/history")
def history(teacher_id: int) -> str:
    """变更记录: who, when, what (old → new, by field label), why."""
    ctx = current_context()
    file_for(ctx, Operation.FILE_HISTORY, teacher_id)
    teacher = files.get_teacher(ctx, teacher_id)
    rows = files.history(ctx, teacher_id)
    catalogue = ctx.catalogue

    def field_label(group: str, field: str) -> str:
        if group in catalogue.groups and catalogue.group(group).has_field(field):
            return f"{catalogue.group(group).label} · {catalogue.group(group).field(field).label}"
        return f"{group}.{field}"

    names = {a.id: a.real_name for a in ctx.session.query(Account).filter(Account.id.in_({h.actor_id for h in rows}))}
    return render_template("teacher_files/history.html", t=teacher, rows=rows, field_label=field_label, names=names)


@bp.get("/pickers/division")
def division_picker() -> str:
    """行政区划代码 search (GB/T 2260): by code prefix or name; a fragment for the form's picker (htmx), or a page."""
    q = (request.args.get("q") or "").strip()
    field = request.args.get("field") or ""
    if not q:
        q = next((v for k, v in request.args.items() if k not in ("q", "field") and v), "").strip()
    matches = []
    if q:
        for code, d in all_divisions().items():
            name = d.current_name
            if name and (code.startswith(q) or q in name):
                matches.append((code, _division_path(code), name))
                if len(matches) >= 30:
                    break
    template = (
        "teacher_files/division_fragment.html"
        if request.headers.get("HX-Request")
        else "teacher_files/division_page.html"
    )
    return render_template(template, q=q, matches=matches, field=field)


def _division_path(code: str) -> str:
    try:
        path = derive(code)
    except DivisionCodeError:
        return code
    names = [lookup(c).current_name for c in (path.province, path.city, path.county) if c and lookup(c)]
    return " / ".join(n for n in names if n)


BLUEPRINTS = (bp,)


@bp.route("/teacher-accounts/new", methods=["GET", "POST"])
def new_teacher_account() -> Any:
    """开设教师账号 (the school's system administrator): the teacher is named by teacher number, and the name,
    gender, birth date and ID number typed here must match the file (the administrator does not read files)."""
    ctx = current_context()
    authorize(ctx, Operation.TEACHER_ACCOUNT_CREATE)
    form = request.form
    errors: dict[str, str] = {}
    if request.method == "POST":
        number = (form.get("teacher_number") or "").strip().upper()
        teacher = ctx.session.scalar(
            select(Teacher).where(Teacher.teacher_number == number, Teacher.unit_id == ctx.user.unit_id)
        )
        if teacher is None:
            errors["teacher_number"] = "本校没有该教师编号的档案"
        else:
            try:
                acc = self_service.create_teacher_account(
                    ctx,
                    teacher.id,
                    name=(form.get("name") or "").strip(),
                    gender=form.get("gender") or "",
                    birth_date=form.get("birth_date") or "",
                    id_number=(form.get("id_number") or "").strip(),
                    initial_password=form.get("initial_password") or "",
                )
            except ValidationError as e:
                errors = {
                    ("initial_password" if err.field == "password" else err.field): err.reason_zh for err in e.errors
                }
            except ConflictError as e:
                errors = {"teacher_number": e.message_zh or "该教师已有自助账号"}
            else:
                flash(
                    f"已开设教师自助账号：用户名为教师编号 {acc.username}（也可用身份证件号登录）；"
                    "首次登录须修改初始密码。",
                    "success",
                )
                return redirect(url_for("accounts_pages.account_list"))
    genders = ctx.base_catalogue.table("XB").codes.values()
    page = render_template("teacher_files/teacher_account_new.html", form=form, errors=errors, genders=genders)
    return page, (422 if errors else 200)
