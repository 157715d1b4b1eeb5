"""The second factor (第二重身份鉴别) for administrators: WebAuthn security keys, standing for the education-CA
UKey of the seeds (暂行办法; Inner Mongolia's CA plan: information administrators log in with a key).

* **Who needs it**: accounts whose role the province lists (``TMIS_SECOND_FACTOR_ROLES``, default system and
  information administrators), and every account that has enrolled a key.
* **Enrolment is supervised by the unit above**: a system administrator of the unit directly above issues a
  one-time enrolment code (登记码, valid ``ENROLMENT_VALID``) and hands it over out of band; the user signs in
  with the password, types the code and touches the key. The province's own accounts, which have no unit above,
  get their code from the node's operator (``tmis province accounts enrolment-code``). Enrolment also gives ten
  one-time recovery codes (恢复码), shown once.
* **Signing in**: password, then the key (or one recovery code). API tokens of such accounts are issued only
  by a page after a fresh key check (``/account/api-token``); ``/api/v1/auth/login`` refuses them.
* **Step-up**: exports, decisions on change requests and account changes need a key check within the last
  ``TMIS_STEP_UP_MINUTES`` (:func:`require_fresh`).

Only hashes of the codes are stored. Every issue, enrolment, use of a recovery code, refusal and revocation
is an audit event. Keys are verified with py_webauthn (Duo Labs): registration with "none" attestation (any
FIDO2 key the province hands out), assertions with the stored public key and signature counter (a counter
that goes backwards — a cloned key — is refused)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from common.errors import AuthError, ConflictError, NotFoundError, PermissionDeniedError, invalid
from provincial_node.accounts.models import Account, SecondFactorCode, SecurityKey, Unit
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext, Role
from provincial_node.db import NodeSetting
from provincial_node.rules import Operation, Relation, authorize, relation

ENROLMENT_VALID = dt.timedelta(hours=72)
RECOVERY_CODES = 10
CHALLENGE_VALID = dt.timedelta(minutes=5)
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read over the phone


class CodeKind:
    ENROLMENT = "enrolment"
    RECOVERY = "recovery"


class SecondFactorRequiredError(PermissionDeniedError):
    """The operation needs a (fresh) second factor: the pages send the user to the key check and back."""

    code = "second_factor_required"


@dataclass(frozen=True)
class WebAuthnSite:
    """Where the keys are used: the relying party id (the host name users type) and the origins pages are
    served from (``TMIS_WEBAUTHN_RP_ID``, ``TMIS_WEBAUTHN_ORIGINS``)."""

    rp_id: str
    rp_name: str
    origins: tuple[str, ...]


def _hash(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").replace(" ", "").upper().encode()).hexdigest()


def _new_code(groups: int = 3) -> str:
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(groups))


def active_keys(session: Any, account_id: int) -> list[SecurityKey]:
    stmt = select(SecurityKey).where(SecurityKey.account_id == account_id, SecurityKey.revoked_at.is_(None))
    return list(session.scalars(stmt.order_by(SecurityKey.id)))


ROLES_SETTING = "second_factor_roles"


def required_roles(session: Any) -> tuple[str, ...]:
    """The roles the province requires a key of (a node setting: ``init`` sets system and information
    administrators; an upgraded node has none until its operator sets them)."""
    row = session.get(NodeSetting, ROLES_SETTING)
    return tuple(r for r in (row.value if row else "").split(",") if r)


def set_required_roles(ctx: ProvinceContext, roles: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Set the roles that must use a key (the operator's CLI, or the province's system administrator)."""
    wanted = tuple(dict.fromkeys(r.strip() for r in roles if r.strip()))
    bad = [r for r in wanted if r not in tuple(Role)]
    if bad:
        raise invalid("second_factor", "roles", "角色无效", f"unknown roles {bad}", ",".join(bad))
    if ctx.actor is not None:
        require_fresh(ctx, "the second-factor policy")
        authorize(ctx, Operation.SECOND_FACTOR_POLICY)
    row = ctx.session.get(NodeSetting, ROLES_SETTING)
    if row is None:
        row = NodeSetting(key=ROLES_SETTING, value="")
        ctx.session.add(row)
    row.value = ",".join(wanted)
    root = ctx.session.scalar(select(Unit).where(Unit.parent_id.is_(None)).order_by(Unit.id).limit(1))
    trail.record(ctx, "second_factor.policy", "node", None, root.path if root else "/", roles=row.value)
    return wanted


def required(ctx: ProvinceContext, account: Account) -> bool:
    """Whether the account signs in with a second factor: its role is on the province's list, or it has a key."""
    return account.role in required_roles(ctx.session) or bool(active_keys(ctx.session, account.id))


def require_fresh(ctx: ProvinceContext, what: str) -> None:
    """Step-up: an account that signs in with a second factor must have used it within the province's step-up
    window before ``what`` (an export, a decision on a change request, an account change). Programs acting
    without a user (``ctx.actor`` None: init, the node's own work) pass."""
    actor = ctx.actor
    if actor is None or not actor.second_factor_required:
        return
    at = actor.second_factor_at
    if at is None or ctx.now - at > ctx.settings.step_up:
        raise SecondFactorRequiredError(
            f"{what} needs a fresh second factor (a security key check within "
            f"{int(ctx.settings.step_up.total_seconds() // 60)} minutes)",
            details={"operation": what},
            message_zh="此操作需要再次验证安全密钥",
        )


# --- enrolment codes (the unit above) ----------------------------------------------------------------------


def issue_enrolment_code(ctx: ProvinceContext, account_id: int) -> str:
    """A one-time enrolment code for ``account_id`` (returned once; only its hash is kept). Issued by a system
    administrator of the unit directly above the account's unit, or by the node's operator (``ctx.actor``
    None) for the province's own accounts. Earlier unused codes of the account stop working."""
    session = ctx.session
    account = session.get(Account, account_id)
    if account is None:
        raise NotFoundError(f"account {account_id} not found", message_zh="账号不存在")
    unit = session.get(Unit, account.unit_id)
    if ctx.actor is not None:
        authorize(ctx, Operation.SECOND_FACTOR_SUPERVISE, unit, not_found=f"account {account_id} not found")
        if relation(ctx.actor, unit.path) != Relation.CHILD:
            raise PermissionDeniedError(
                "enrolment codes are issued by a system administrator of the unit directly above",
                message_zh="安全密钥登记码由上一级单位的系统管理员发放",
            )
    elif unit.parent_id is not None:
        raise PermissionDeniedError("the operator issues codes only to the province's own accounts")
    session.execute(
        update(SecondFactorCode)
        .where(
            SecondFactorCode.account_id == account.id,
            SecondFactorCode.kind == CodeKind.ENROLMENT,
            SecondFactorCode.used_at.is_(None),
        )
        .values(used_at=ctx.now)
    )
    code = _new_code()
    session.add(
        SecondFactorCode(
            account_id=account.id,
            kind=CodeKind.ENROLMENT,
            code_hash=_hash(code),
            issued_by=ctx.actor.account_id if ctx.actor else None,
            created_at=ctx.now,
            expires_at=ctx.now + ENROLMENT_VALID,
        )
    )
    trail.record(ctx, "second_factor.enrolment_code", "account", account.id, unit.path, username=account.username)
    return code


def _valid_enrolment_code(ctx: ProvinceContext, account: Account, code: str) -> SecondFactorCode:
    row = ctx.session.scalar(
        select(SecondFactorCode).where(
            SecondFactorCode.account_id == account.id,
            SecondFactorCode.kind == CodeKind.ENROLMENT,
            SecondFactorCode.code_hash == _hash(code or ""),
        )
    )
    if row is None or row.used_at is not None or (row.expires_at is not None and row.expires_at <= ctx.now):
        raise invalid(
            "security_key",
            "code",
            "登记码无效或已过期：请向上一级单位的系统管理员重新申请",
            "the enrolment code is wrong, used or expired",
        )
    return row


# --- registration (the user, with the code) ----------------------------------------------------------------


def registration_options(
    ctx: ProvinceContext, account: Account, code: str, site: WebAuthnSite
) -> tuple[dict[str, Any], bytes]:
    """The options for navigator.credentials.create() and the challenge to keep until the answer comes."""
    _valid_enrolment_code(ctx, account, code)
    options = generate_registration_options(
        rp_id=site.rp_id,
        rp_name=site.rp_name,
        user_name=account.username,
        user_id=str(account.id).encode(),
        user_display_name=account.real_name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=k.credential_id) for k in active_keys(ctx.session, account.id)
        ],
    )
    return json.loads(options_to_json(options)), options.challenge


def finish_registration(
    ctx: ProvinceContext,
    account: Account,
    code: str,
    credential: Any,
    challenge: bytes,
    site: WebAuthnSite,
    name: str,
) -> tuple[SecurityKey, list[str]]:
    """Verify the key's answer, store the key, use up the code; returns the key and ten fresh recovery codes
    (shown once; earlier unused ones stop working)."""
    row = _valid_enrolment_code(ctx, account, code)
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=site.rp_id,
            expected_origin=list(site.origins),
        )
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as e:
        raise invalid(
            "security_key", "credential", "安全密钥的应答无效，请重试", f"registration refused: {e}"
        ) from None
    if ctx.session.scalar(select(SecurityKey.id).where(SecurityKey.credential_id == verified.credential_id)):
        raise ConflictError("this key is already enrolled", message_zh="该安全密钥已经登记过")
    key = SecurityKey(
        account_id=account.id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        name=(name or "").strip()[:64] or "安全密钥",
        created_at=ctx.now,
        supervised_by=row.issued_by,
    )
    ctx.session.add(key)
    row.used_at = ctx.now
    codes = new_recovery_codes(ctx, account)
    unit = ctx.session.get(Unit, account.unit_id)
    trail.record(ctx, "second_factor.enrol", "account", account.id, unit.path, key=key.name)
    return key, codes


def new_recovery_codes(ctx: ProvinceContext, account: Account) -> list[str]:
    """Ten new one-time recovery codes for the account (earlier unused ones stop working)."""
    ctx.session.execute(
        update(SecondFactorCode)
        .where(
            SecondFactorCode.account_id == account.id,
            SecondFactorCode.kind == CodeKind.RECOVERY,
            SecondFactorCode.used_at.is_(None),
        )
        .values(used_at=ctx.now)
    )
    codes = [_new_code(4) for _ in range(RECOVERY_CODES)]
    for code in codes:
        ctx.session.add(
            SecondFactorCode(account_id=account.id, kind=CodeKind.RECOVERY, code_hash=_hash(code), created_at=ctx.now)
        )
    return codes


# --- signing in and step-up --------------------------------------------------------------------------------


def authentication_options(ctx: ProvinceContext, account: Account, site: WebAuthnSite) -> tuple[dict[str, Any], bytes]:
    keys = active_keys(ctx.session, account.id)
    if not keys:
        raise ConflictError("no security key enrolled", message_zh="尚未登记安全密钥")
    options = generate_authentication_options(
        rp_id=site.rp_id,
        allow_credentials=[PublicKeyCredentialDescriptor(id=k.credential_id) for k in keys],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return json.loads(options_to_json(options)), options.challenge


def finish_authentication(
    ctx: ProvinceContext, account: Account, credential: Any, challenge: bytes, site: WebAuthnSite
) -> SecurityKey:
    """Check a key's assertion for the account; raises AuthError (audited) when it does not hold."""
    unit = ctx.session.get(Unit, account.unit_id)
    raw_id = credential.get("rawId") if isinstance(credential, dict) else None
    keys = {k.credential_id: k for k in active_keys(ctx.session, account.id)}
    key = None
    if isinstance(raw_id, str):
        from webauthn import base64url_to_bytes

        try:
            key = keys.get(base64url_to_bytes(raw_id))
        except (ValueError, TypeError):
            key = None
    try:
        if key is None:
            raise InvalidAuthenticationResponse("not a key of this account")
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=site.rp_id,
            expected_origin=list(site.origins),
            credential_public_key=key.public_key,
            credential_current_sign_count=key.sign_count,
        )
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError) as e:
        trail.record(ctx, "second_factor.refused", "account", account.id, unit.path, reason=str(e)[:200])
        raise AuthError("the security key check failed", message_zh="安全密钥验证未通过，请重试") from None
    key.sign_count, key.last_used_at = verified.new_sign_count, ctx.now
    trail.record(ctx, "second_factor.use", "account", account.id, unit.path, key=key.name)
    return key


def use_recovery_code(ctx: ProvinceContext, account: Account, code: str) -> None:
    """One recovery code instead of the key (for a lost or broken key; the unit above then revokes it and
    issues a new enrolment code). A wrong code is audited and refused."""
    unit = ctx.session.get(Unit, account.unit_id)
    row = ctx.session.scalar(
        select(SecondFactorCode).where(
            SecondFactorCode.account_id == account.id,
            SecondFactorCode.kind == CodeKind.RECOVERY,
            SecondFactorCode.code_hash == _hash(code or ""),
            SecondFactorCode.used_at.is_(None),
        )
    )
    if row is None:
        trail.record(ctx, "second_factor.refused", "account", account.id, unit.path, reason="recovery code")
        raise AuthError("wrong or used recovery code", message_zh="恢复码不正确或已使用")
    row.used_at = ctx.now
    left = ctx.session.scalar(
        select(SecondFactorCode.id).where(
            SecondFactorCode.account_id == account.id,
            SecondFactorCode.kind == CodeKind.RECOVERY,
            SecondFactorCode.used_at.is_(None),
        )
    )
    trail.record(ctx, "second_factor.recovery_code", "account", account.id, unit.path, codes_left=bool(left))


# --- the unit above's view ---------------------------------------------------------------------------------


def revoke_key(ctx: ProvinceContext, key_id: int, reason: str) -> SecurityKey:
    """Revoke a key (lost, broken, the person left): by its owner, or a system administrator of the unit above."""
    key = ctx.session.get(SecurityKey, key_id)
    if key is None or key.revoked_at is not None:
        raise NotFoundError(f"security key {key_id} not found", message_zh="安全密钥不存在")
    account = ctx.session.get(Account, key.account_id)
    unit = ctx.session.get(Unit, account.unit_id)
    if ctx.actor is not None and ctx.actor.account_id != account.id:
        authorize(ctx, Operation.SECOND_FACTOR_SUPERVISE, unit, not_found=f"security key {key_id} not found")
        if relation(ctx.actor, unit.path) != Relation.CHILD:
            raise PermissionDeniedError("keys are revoked by their owner or the unit directly above")
    if not (reason or "").strip():
        raise invalid("security_key", "reason", "须说明注销原因", "a reason is required")
    key.revoked_at, key.revoked_by = ctx.now, ctx.actor.account_id if ctx.actor else None
    trail.record(ctx, "second_factor.revoke", "account", account.id, unit.path, key=key.name, reason=reason)
    return key


def supervised_accounts(ctx: ProvinceContext) -> list[Account]:
    """The accounts of the units directly below the actor's unit that must use a key or have one (whose
    enrolment the actor's unit supervises), teachers aside."""
    children = select(Unit.id).where(Unit.parent_id == ctx.user.unit_id)
    candidates = ctx.session.scalars(
        select(Account)
        .where(Account.unit_id.in_(children), Account.role != Role.TEACHER)
        .order_by(Account.unit_id, Account.username)
    )
    states = enrolment_states(ctx, list(candidates))
    return [st.account for st in states.values() if st.required or st.keys]


@dataclass(frozen=True)
class EnrolmentState:
    account: Account
    required: bool
    keys: int
    code_pending: bool


def enrolment_states(ctx: ProvinceContext, accounts: list[Account]) -> dict[int, EnrolmentState]:
    """For the administrators' list: who must use a key, how many they have, whether a code waits."""
    ids = [a.id for a in accounts]
    if not ids:
        return {}
    counts: dict[int, int] = {}
    for account_id in ctx.session.scalars(
        select(SecurityKey.account_id).where(SecurityKey.account_id.in_(ids), SecurityKey.revoked_at.is_(None))
    ):
        counts[account_id] = counts.get(account_id, 0) + 1
    pending = set(
        ctx.session.scalars(
            select(SecondFactorCode.account_id).where(
                SecondFactorCode.account_id.in_(ids),
                SecondFactorCode.kind == CodeKind.ENROLMENT,
                SecondFactorCode.used_at.is_(None),
                SecondFactorCode.expires_at > ctx.now,
            )
        )
    )
    roles = required_roles(ctx.session)
    return {
        a.id: EnrolmentState(a, a.role in roles or counts.get(a.id, 0) > 0, counts.get(a.id, 0), a.id in pending)
        for a in accounts
    }
