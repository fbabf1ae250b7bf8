"""Technicians in bulk: create or replace one, or import a CSV with a per-row error report.

A CSV row creates a technician, or updates one who exists in what the row says: the columns
the file has (a blank radius, capacity or time zone keeps theirs; a blank skills,
certifications, shifts or time off cell means none). What the file cannot say, their availability
toggle and webhook, is left as it is, so a roster re-imported to change skills does not put
someone who went offline back online. The report says who is new and what changes for whom,
so a file can be checked before it is saved (the API's dry run)."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Iterator
from datetime import date, datetime

from pydantic import ValidationError
from sqlalchemy.orm import Session

from cloud.dispatch import shifts
from cloud.dispatch.models import Technician
from cloud.dispatch.schemas import ImportResult, ImportRowError, TechnicianIdModel, TechnicianIn

COLUMNS = ("id", "name", "kind", "skills", "home_lat", "home_lon", "radius_km", "capacity")
LISTS = ("skills", "certifications", "shifts", "time_off")  # blank: none
EXPORTED = (*COLUMNS, "certifications", "shifts", "time_off", "timezone")
SCALARS = ("kind", "radius_km", "capacity", "timezone")  # blank: theirs (new: the default)
NUMBERS = ("home_lat", "home_lon", "radius_km", "capacity")
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
    for field, value in _values(body, only, now).items():
        setattr(tech, field, value)
    db_session.flush()
    return tech


def _values(body: TechnicianIn, only: Collection[str] | None, now: datetime) -> dict[str, object]:
    """The fields to set, as the columns keep them (JSON mode: certification dates and the
    webhook URL as strings; time off that is over left out)."""
    values = body.model_dump(mode="json", include=None if only is None else set(only))
    if "time_off" in values:
        values["time_off"] = shifts.not_over(body.time_off, now)
    return values


def changes(
    tech: Technician, body: TechnicianIn, only: Collection[str], now: datetime
) -> list[str]:
    """The fields of a technician who exists that `upsert` would change."""
    return [f for f, value in _values(body, only, now).items() if getattr(tech, f) != value]


def _row_to_body(row: dict[str, str | None]) -> tuple[TechnicianIn, set[str]]:
    """A CSV row as a technician: skills `a;b`, certifications `skill=YYYY-MM-DD;…`, shifts
    `mon-fri 07:00-19:00;sat 08:00-12:00` and time off `2026-12-22..2027-01-05;2027-02-12`
    (optional, with `timezone`); and the fields the row
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
    for listed in ("shifts", "time_off"):
        values[listed] = [s.strip() for s in (row.get(listed) or "").split(";") if s.strip()]
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
                tech.radius_km, tech.capacity, certs, ";".join(tech.shifts),
                ";".join(tech.time_off), tech.timezone,
            ]
        )  # fmt: skip
    return out.getvalue()


def decode(data: bytes) -> str:
    """A CSV file's text: UTF-8 (a byte-order mark or not), else Windows-1252, the code page
    spreadsheets set to a western European language save CSV in ("Müller" is not UTF-8
    there). Bytes that are neither become U+FFFD, and a file that is no CSV at all then
    fails on its header, with how to save one."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _rows(text: str) -> tuple[list[str], Iterator[dict[str, str | None]]]:
    """The header and the rows, as spreadsheets save them too: a byte-order mark before the
    header is dropped, and a header with semicolons and no commas (a spreadsheet set to a
    language that writes decimal commas) is read with semicolons between the cells and a
    comma as the decimal mark of the numbers."""
    text = text.removeprefix("\ufeff")
    header = text.split("\n", 1)[0]
    decimal_comma = ";" in header and "," not in header
    reader = csv.DictReader(io.StringIO(text), delimiter=";" if decimal_comma else ",")

    def rows() -> Iterator[dict[str, str | None]]:
        for row in reader:
            if decimal_comma:
                row.update({c: row[c].replace(",", ".") for c in NUMBERS if row.get(c)})
            yield row

    return list(reader.fieldnames or []), rows()


def import_csv(*, db_session: Session, text: str, now: datetime) -> ImportResult:
    """Import every valid row; report each invalid one with its line and what is wrong, and
    what the good ones do: who is new, and what changes for whom."""
    header, rows = _rows(text)
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        return ImportResult(
            imported=0,
            errors=[
                ImportRowError(
                    row=1,
                    technician_id=None,
                    error=f"header lacks columns: {', '.join(missing)} (the first line names "
                    f"the columns: {','.join(COLUMNS)}, and optionally "
                    f"{','.join(EXPORTED[len(COLUMNS) :])}; from a spreadsheet, save it as CSV)",
                )
            ],
        )
    result = ImportResult(imported=0, errors=[])
    seen: dict[str, int] = {}  # technician → the row that had them
    for line, row in enumerate(rows, start=2):
        if line - 1 > MAX_ROWS:
            result.errors.append(
                ImportRowError(row=line, technician_id=None, error=f"more than {MAX_ROWS} rows")
            )
            break
        tech_id = (row.get("id") or "").strip()
        try:
            TechnicianIdModel(id=tech_id)
            body, given = _row_to_body(row)
            if tech_id in seen:
                raise ValueError(f"{tech_id} is on row {seen[tech_id]} already: once per file")
        except (ValidationError, ValueError) as exc:
            result.errors.append(
                ImportRowError(row=line, technician_id=tech_id or None, error=_brief(exc))
            )
            continue
        seen[tech_id] = line
        tech = db_session.get(Technician, tech_id)
        if tech is None:
            result.created.append(tech_id)
        elif changed := changes(tech, body, given, now):
            result.changed[tech_id] = changed
        else:
            result.unchanged += 1
        if tech is not None and tech.retired_at is not None:
            result.retired.append(tech_id)
        upsert(db_session=db_session, technician_id=tech_id, body=body, now=now, only=given)
        result.imported += 1
    return result


def _brief(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
    return str(exc)
