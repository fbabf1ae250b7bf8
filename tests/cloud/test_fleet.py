"""Fleet health (pure rules and the /api/fleet view), the device page's data, and the KPIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.db import transaction
from cloud.devices.health import (
    Health,
    HealthInput,
    Signal,
    downsample,
    health,
    key_signal,
)
from cloud.dispatch.kpis import TicketTimes, bucket_start, buckets, kpis
from cloud.telemetry import service as telemetry
from cloud.telemetry.service import Sample
from tests.cloud.factories import client, fault, ingest, press, register

# -- pure health ------------------------------------------------------------------------------


def test_health_is_the_worst_of_the_active_faults_and_a_stuck_backlog() -> None:
    assert health(HealthInput(active_severities=[])) == (Health.OK, [])
    state, reasons = health(HealthInput(active_severities=["warning", "info"]))
    assert state is Health.WARNING and reasons == ["2 warning fault(s) active"]
    state, reasons = health(HealthInput(active_severities=["warning", "critical"]))
    assert state is Health.FAULT and len(reasons) == 2
    stuck = HealthInput(active_severities=[], oldest_pending_s=301, heartbeat_interval_s=60)
    assert health(stuck)[0] is Health.WARNING
    assert "301 s" in health(stuck)[1][0]
    fresh = HealthInput(active_severities=[], oldest_pending_s=100, heartbeat_interval_s=60)
    assert health(fresh)[0] is Health.OK


@given(st.lists(st.sampled_from(["info", "warning", "major", "critical"])))
def test_health_is_fault_exactly_when_a_major_or_critical_fault_is_active(sev: list[str]) -> None:
    state, reasons = health(HealthInput(active_severities=sev))
    assert (state is Health.FAULT) == bool({"major", "critical"} & set(sev))
    assert (state is Health.OK) == (not sev) == (not reasons)


def test_the_key_signal_is_the_first_measured_quantity() -> None:
    assert key_signal([]) is None
    signals = [Signal("door_shut", "", 1), Signal("room_c", "C", 4.1), Signal("a_pct", "%", 3)]
    assert key_signal(signals) == "a_pct"
    assert key_signal([Signal("door_shut", "", 1), Signal("count", "", 9)]) == "count"


@given(st.lists(st.floats(-1e6, 1e6), max_size=400), st.integers(1, 60))
def test_downsample_keeps_the_range_and_the_order(values: list[float], points: int) -> None:
    out = downsample(values, points)
    assert len(out) == min(len(values), points)
    if values:
        assert min(values) - 1e-6 <= min(out) and max(out) <= max(values) + 1e-6
    with pytest.raises(ValueError):
        downsample(values, 0)


# -- the fleet view ---------------------------------------------------------------------------


def test_the_fleet_view_counts_filters_and_draws_the_key_signal(sessions) -> None:
    register(sessions, "pos-1", "pos-2", site="hb")
    register(sessions, "pos-3", site="oerlikon")
    now = datetime.now(UTC)
    ingest(sessions, fault("pos-1", "terminal-unreachable", severity="critical", base=now))
    ingest(sessions, fault("pos-2", "paper-low", severity="warning", base=now))
    ingest(sessions, press("pos-3", base=now))
    with transaction(sessions) as db:
        samples = [
            Sample("pos-3", "pi_cpu_c", 40 + i, "C", now - timedelta(seconds=10 * i))
            for i in range(12)
        ]
        samples.append(Sample("pos-3", "door_shut", 1, "", now))
        telemetry.store(db_session=db, samples=samples)
    api = client(sessions)

    view = api.get("/api/fleet").json()
    counts = view["counts"]
    assert (counts["fault"], counts["warning"], counts["ok"]) == (1, 1, 1)
    assert counts["offline"] == 0 and counts["open_tickets"] == 3
    rows = {d["id"]: d for d in view["devices"]}
    assert rows["pos-1"]["health"] == "fault"
    assert rows["pos-1"]["active_faults"][0]["code"] == "terminal-unreachable"
    assert rows["pos-2"]["health"] == "warning" and rows["pos-2"]["open_tickets"] == 1
    spark = rows["pos-3"]["spark"]
    assert spark["name"] == "pi_cpu_c" and spark["unit"] == "C" and spark["latest"] == 40
    assert spark["points"][0] == 51 and spark["points"][-1] == 40  # oldest first
    assert rows["pos-1"]["spark"] is None

    only = api.get("/api/fleet?health=fault").json()
    assert [d["id"] for d in only["devices"]] == ["pos-1"]
    assert only["counts"] == counts  # the counts are over the whole fleet
    assert [d["id"] for d in api.get("/api/fleet?site_id=oerlikon").json()["devices"]] == ["pos-3"]
    assert api.get("/api/fleet?health=bogus").status_code == 422
    bare = api.get("/api/fleet?sparklines=false").json()
    assert bare["counts"] == counts and all(d["spark"] is None for d in bare["devices"])

    ingest(sessions, fault("pos-1", "terminal-unreachable", raised=False, minutes=1, base=now))
    device = api.get("/api/devices/pos-1").json()
    assert device["health"] == "ok" and device["health_reasons"] == []
    history = [(t["code"], t["state"]) for t in device["fault_history"]]
    assert history == [("terminal-unreachable", "cleared"), ("terminal-unreachable", "raised")]


# -- KPIs -------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 24, 12, 30, tzinfo=UTC)


def _ticket(
    hours_ago: float,
    category: str,
    site: str | None,
    accept: float | None = None,
    arrive: float | None = None,
    resolve: float | None = None,
) -> TicketTimes:
    opened = NOW - timedelta(hours=hours_ago)

    def later(minutes: float | None) -> datetime | None:
        return None if minutes is None else opened + timedelta(minutes=minutes)

    return TicketTimes(opened, category, site, later(accept), later(arrive), later(resolve))


def test_kpis_give_mean_and_median_times_and_tickets_over_time() -> None:
    rows = [
        _ticket(1, "till", "hb", accept=2, arrive=30, resolve=60),
        _ticket(1.2, "till", "hb", accept=4, arrive=50),
        _ticket(5, "network", None, accept=12),
        _ticket(30, "till", "hb"),
    ]
    view = kpis(rows, now=NOW, days=2)
    assert view["bucket"] == "hour" and view["tickets"] == 4
    assert view["time_to_accept"] == {"count": 3, "mean_min": 6.0, "median_min": 4.0}
    assert view["time_to_arrive"] == {"count": 2, "mean_min": 40.0, "median_min": 40.0}
    assert view["time_to_resolve"]["count"] == 1
    slots = view["buckets"]
    assert len(slots) == 49 and slots[-1] == datetime(2026, 11, 24, 12, tzinfo=UTC)
    assert sum(view["by_category"]["till"]) == 3 and sum(view["by_category"]["network"]) == 1
    assert view["by_site"]["(none)"][slots.index(datetime(2026, 11, 24, 7, tzinfo=UTC))] == 1
    assert view["by_site"]["hb"][-2] == 2  # both opened between 11:00 and 12:00

    daily = kpis(rows, now=NOW, days=7)
    assert daily["bucket"] == "day" and len(daily["buckets"]) == 8
    assert daily["by_category"]["till"][-1] == 2 and daily["by_category"]["till"][-2] == 1


def test_the_rare_categories_are_summed_as_other() -> None:
    rows = [_ticket(1, f"cat-{i}", "hb") for i in range(8)] + [_ticket(1, "cat-0", "hb")]
    view = kpis(rows, now=NOW, days=1)
    assert next(iter(view["by_category"])) == "cat-0" and len(view["by_category"]) == 7
    assert sum(view["by_category"]["other"]) == 2


def test_buckets_align_to_midnight_and_cover_the_period() -> None:
    assert bucket_start(NOW, timedelta(hours=1)) == datetime(2026, 11, 24, 12, tzinfo=UTC)
    assert bucket_start(NOW, timedelta(days=1)) == datetime(2026, 11, 24, tzinfo=UTC)
    assert buckets(NOW, 1, timedelta(hours=1))[0] == datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_the_kpi_api_reports_the_tickets_of_the_period(sessions) -> None:
    register(sessions, "pos-1", site="hb")
    ingest(sessions, press("pos-1", base=datetime.now(UTC)))
    view = client(sessions).get("/api/kpis?days=1").json()
    assert view["tickets"] == 1 and view["bucket"] == "hour"
    assert sum(view["by_category"]["receipt-printer"]) == 1
    assert view["compliance"]["tickets"] == 1
    assert client(sessions).get("/api/kpis?days=0").status_code == 422


def test_sla_compliance_counts_each_target_when_met_or_overdue_in_all_by_category_and_site(
    sessions,
) -> None:
    """Four tickets over two categories (a till has 45 minutes to be on site, a printer 60)
    and two sites: one on time throughout, one accepted and on site late, one still waiting
    three hours on (accept and arrive overdue, resolve not due yet), one just opened (nothing
    due). A target counts once met or overdue; the rest wait."""
    from cloud.dispatch.sla import compliance
    from cloud.tickets.models import Ticket

    now = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    opened = now - timedelta(hours=3)
    register(sessions, "pos-hb", site="hb")
    register(sessions, "pos-zh", site="zh")
    on_time = ingest(sessions, press("pos-hb", "till", base=opened)).ticket_id
    late = ingest(sessions, press("pos-zh", "till", base=opened)).ticket_id
    waiting = ingest(sessions, press("pos-hb", "receipt-printer", base=opened)).ticket_id
    ingest(sessions, press("pos-zh", "receipt-printer", base=now - timedelta(minutes=2)))
    with transaction(sessions) as db:
        for ticket_id, accepted, on_site, resolved in (
            (on_time, 3, 40, 100),
            (late, 10, 50, 110),
        ):
            ticket = db.get(Ticket, ticket_id)
            assert ticket is not None
            ticket.state = "resolved"
            ticket.dispatched_at = opened + timedelta(minutes=accepted)
            ticket.on_site_at = opened + timedelta(minutes=on_site)
            ticket.resolved_at = opened + timedelta(minutes=resolved)
        waiting_ticket = db.get(Ticket, waiting)
        assert waiting_ticket is not None and waiting_ticket.state in {"new", "dispatching"}

    with sessions() as db:
        report = compliance(db_session=db, now=now, days=1).model_dump()
    third = round(1 / 3, 4)
    assert {k: v for k, v in report.items() if not k.startswith("by_")} == {
        "tickets": 4,
        "accepted_in_time": third,
        "on_site_in_time": third,
        "resolved_in_time": 1.0,
        "breached_open": 1,
    }
    row = ("tickets", "accepted_in_time", "on_site_in_time", "resolved_in_time", "breached_open")
    by_category = {name: tuple(r[k] for k in row) for name, r in report["by_category"].items()}
    assert by_category == {"receipt-printer": (2, 0.0, 0.0, None, 1), "till": (2, 0.5, 0.5, 1.0, 0)}
    by_site = {name: tuple(r[k] for k in row) for name, r in report["by_site"].items()}
    assert by_site == {"hb": (2, 0.5, 0.5, 1.0, 1), "zh": (2, 0.0, 0.0, 1.0, 0)}
