"""What each API key role may do. Roles are cumulative: ingest < clinician < operator < admin."""

from __future__ import annotations

import enum

from shared.db.models import Role


class Permission(str, enum.Enum):
    """An action an endpoint requires."""

    upload = "scans:upload"
    analyze = "scans:analyze"
    predict = "inference:predict"
    read = "read"  # patients, scans, reports
    annotate = "scans:annotate"  # the scan's free-text description
    manage_patients = "patients:write"
    delete_scans = "scans:delete"
    view_status = "runs:status"
    manage_keys = "keys:manage"
    read_audit = "audit:read"


ROLE_ORDER = (Role.ingest, Role.clinician, Role.operator, Role.admin)

# The permissions a role adds to those of the roles before it.
_ADDED: dict[Role, frozenset[Permission]] = {
    Role.ingest: frozenset({Permission.upload, Permission.analyze, Permission.predict}),
    Role.clinician: frozenset({Permission.read, Permission.annotate}),
    Role.operator: frozenset({Permission.manage_patients, Permission.delete_scans, Permission.view_status}),
    Role.admin: frozenset({Permission.manage_keys, Permission.read_audit}),
}


def _cumulative() -> dict[Role, frozenset[Permission]]:
    granted: set[Permission] = set()
    result = {}
    for role in ROLE_ORDER:
        granted |= _ADDED[role]
        result[role] = frozenset(granted)
    return result


ROLE_PERMISSIONS = _cumulative()


def allows(role: Role, permission: Permission) -> bool:
    """Whether ``role`` grants ``permission``."""
    return permission in ROLE_PERMISSIONS[role]


def least_role(permission: Permission) -> Role:
    """The lowest role that grants ``permission`` (for messages and the OpenAPI descriptions)."""
    return next(role for role in ROLE_ORDER if allows(role, permission))
