"""Roles and what each may do."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """Admins manage the fleet and accounts; operators run the service desk; technicians see
    and act on their own offers and jobs only."""

    ADMIN = "admin"
    OPERATOR = "operator"
    TECHNICIAN = "technician"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling."""

    user_id: int
    username: str
    role: Role
    technician_id: str | None = None

    def is_staff(self) -> bool:
        """Admins and operators see everything."""
        return self.role in (Role.ADMIN, Role.OPERATOR)
