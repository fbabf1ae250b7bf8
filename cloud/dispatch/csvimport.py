"""Technicians in bulk: create or replace one, or import a CSV with a per-row error report.

A CSV row creates a technician, or updates one who exists in what the row says: the columns
the file has (a blank radius, capacity or time zone keeps theirs; a blank skills,
certifications or shifts cell means none). What the file cannot say, their availability
toggle and webhook, is left as it is, so a roster re-imported to change skills does not put
someone who went offline back online."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable
from datetime import date, datetime

from pydantic import ValidationError
from sqlalchemy.orm import Session

from cloud.dispatch.models import Technician
from cloud.dispatch.schemas import ImportResult, ImportRowError, TechnicianIdModel, TechnicianIn

COLUMNS = ("id", "name", "kind", "skills", "home_lat", "home_lon", "radius_km", "capacity")
LISTS = ("skills", "certifications", "shifts")  # blank: none
EXPORTED = (*COLUMNS, "certifications", "shifts", "timezone")
SCALARS = ("kind", "radius_km", "capacity", "timezone")  # blank: theirs (new: the default)
MAX_ROWS = 10_000


def upsert(
    *,
    db_session: Session,
    technician_id: str,
    body: TechnicianIn,
    now: datetime,
    only: Collection[str] | None = None,
) -> Technician:
    """Create the technician or replace their details; ratings, offers and pauses are kept.
    only: for one who exists, change just these fields (a new one gets every field)."""
    tech = db_session.get(Technician, technician_id)
    if tech is None:
        tech = Technician(
            id=technician_id,
            created_at=now,
            rating_sum=0.0,
            rating_count=0,
            paused=False,
            paused_reason="",
        )
        db_session.add(tech)
        only = None
    # JSON mode: certification dates and the webhook URL as the strings the columns keep.
    values = body.model_dump(mode="json", include=None if only is None else set(only))
    for field, value in values.items():
        setattr(tech, field, value)
    db_session.flush()
    return tech


def _row_to_body(row: dict[str, str | None]) -> tuple[TechnicianIn, set[str]]:
    """A CSV row as a technician: skills `a;b`, certifications `skill=YYYY-MM-DD;…`, shifts
    `mon-fri 07:00-19:00;sat 08:00-12:00` (optional, with `timezone`); and the fields the row
    gives (see the module's docstring)."""
    certs: dict[str, date] = {}
    for part in filter(None, (row.get("certifications") or "").split(";")):
        skill, _, expiry = part.partition("=")
        certs[skill.strip()] = date.fromisoformat(expiry.strip())
    values: dict[str, object] = {
        "name": row.get("name", ""),
        "skills": [s.strip() for s in (row.get("skills") or "").split(";") if s.strip()],
        "certifications": certs,
        "home_lat": row.get("home_lat"),
        "home_lon": row.get("home_lon"),
    }
    values["shifts"] = [s.strip() for s in (row.get("shifts") or "").split(";") if s.strip()]
    for optional in SCALARS:
        if row.get(optional):
            values[optional] = row[optional]
    given = {"name", "home_lat", "home_lon"} | {c for c in LISTS if c in row}
    given |= {c for c in SCALARS if row.get(c)}
    return TechnicianIn.model_validate(values), given


def export_csv(techs: Iterable[Technician]) -> str:
    """The technicians as a CSV that import_csv reads back to the same details."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORTED)
    for tech in techs:
        certs = ";".join(f"{skill}={until}" for skill, until in sorted(tech.certifications.items()))
        writer.writerow(
            [
                tech.id, tech.name, tech.kind, ";".join(tech.skills), tech.home_lat, tech.home_lon,
                tech.radius_km, tech.capacity, certs, ";".join(tech.shifts), tech.timezone,
            ]
        )  # fmt: skip
    return out.getvalue()


def import_csv(*, db_session: Session, text: str, now: datetime) -> ImportResult:
    """Import every valid row; report each invalid one with its line and what is wrong."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        return ImportResult(
            imported=0,
            errors=[
                ImportRowError(
                    row=1, technician_id=None, error=f"header lacks columns: {', '.join(missing)}"
                )
            ],
        )
    imported, errors = 0, []
    for line, row in enumerate(reader, start=2):
        if line - 1 > MAX_ROWS:
            errors.append(
                ImportRowError(row=line, technician_id=None, error=f"more than {MAX_ROWS} rows")
            )
            break
        tech_id = (row.get("id") or "").strip()
        try:
            TechnicianIdModel(id=tech_id)
            body, given = _row_to_body(row)
        except (ValidationError, ValueError) as exc:
            errors.append(
                ImportRowError(row=line, technician_id=tech_id or None, error=_brief(exc))
            )
            continue
        upsert(db_session=db_session, technician_id=tech_id, body=body, now=now, only=given)
        imported += 1
    return ImportResult(imported=imported, errors=errors)


def _brief(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
    return str(exc)
