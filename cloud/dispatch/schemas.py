"""What the dispatch API takes and returns, and the offer pushed to a technician."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    UrlConstraints,
    model_validator,
)

from cloud.dispatch import shifts
from cloud.dispatch.history import JobTotals
from cloud.outbound.signing import SIGNATURE_HEADER
from cloud.tickets.schemas import TicketOut
from contracts.topics import APP, NAMESPACE_VERSION

# A technician's id: also their MQTT username and a level of their topics.
TECHNICIAN_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$"
# Their topics: `<prefix>/<technician>/offer` (offers made and withdrawn), `…/job` (jobs called
# off, or assigned by hand).
TECHNICIAN_TOPICS = f"tech/{APP}/{NAMESPACE_VERSION}"
TechnicianId = Annotated[str, Field(pattern=TECHNICIAN_ID_PATTERN)]
Skill = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
Reason = Annotated[str, Field(max_length=500)]
WebhookUrl = Annotated[AnyUrl, UrlConstraints(max_length=280, allowed_schemes=["http", "https"])]


def _shift(text: str) -> str:
    return str(shifts.parse(text))  # the canonical spelling, or what is wrong


def _leave(text: str) -> str:
    return str(shifts.parse_leave(text))  # the canonical spelling, or what is wrong


def _zone(name: str) -> str:
    shifts.zone(name)
    return name


ShiftText = Annotated[str, Field(max_length=60), AfterValidator(_shift)]
TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_zone)]
LeaveText = Annotated[str, Field(max_length=40), AfterValidator(_leave)]
TimeOff = Annotated[list[LeaveText], Field(max_length=50)]


class TechnicianIdModel(BaseModel):
    """Validates a technician id on its own (CSV rows)."""

    id: TechnicianId


class TechnicianIn(BaseModel):
    """A technician to create or replace."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: Literal["crowd", "staff"] = "crowd"
    skills: Annotated[list[Skill], Field(max_length=50)] = []
    certifications: dict[Skill, date] = {}
    home_lat: Annotated[float, Field(ge=-90, le=90)]
    home_lon: Annotated[float, Field(ge=-180, le=180)]
    radius_km: Annotated[float, Field(gt=0, le=500)] = 15.0
    available: bool = True
    # Weekly working hours, e.g. ["mon-fri 07:00-19:00", "sat 08:00-12:00"], in `timezone`:
    # offers only within them (and while `available`). None ([]): the toggle alone.
    shifts: Annotated[list[ShiftText], Field(max_length=21)] = []
    timezone: TimeZone = "UTC"
    # Days off, e.g. ["2026-12-22..2027-01-05", "2027-02-12"] (first and last day, both
    # included, in `timezone`): no offers on them, whatever the shifts say.
    time_off: TimeOff = []
    capacity: Annotated[int, Field(ge=1, le=20)] = 1
    webhook_url: WebhookUrl | None = None  # offers are POSTed here as JSON


class TechnicianOut(BaseModel):
    """A technician with their KPIs."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    kind: str
    skills: list[str]
    certifications: dict[str, str]
    home_lat: float
    home_lon: float
    radius_km: float
    lat: float | None
    lon: float | None
    position_at: datetime | None
    available: bool
    shifts: list[str]
    timezone: str
    time_off: list[str] = []
    on_shift: bool = True  # within their working hours now and not on time off
    on_leave: str | None = None  # the time off they are on now, as written
    shift_changes_at: datetime | None = None  # when a shift (or time off) next starts or ends
    capacity: int
    rating_count: int
    rating: float | None = None
    acceptance_rate: float | None = None
    active_jobs: int = 0
    paused: bool
    paused_reason: str
    last_job_at: datetime | None
    webhook_url: str | None = None
    webhook: WebhookHealthOut | None = None  # how POSTs to it are going (with a webhook_url)
    retired_at: datetime | None = None  # left: no offers, accounts closed (history kept)
    retired_reason: str = ""
    # Expired, or expiring within 30 days: to renew before their jobs stop coming.
    certifications_due: list[CertificationDue] = []


class CertificationDue(BaseModel):
    """A certification that has expired or soon will."""

    skill: str
    expires_at: datetime  # the end of the day it names (UTC)
    expired: bool


class WebhookHealthOut(BaseModel):
    """How a technician's webhook is doing: an app that does not take its POSTs misses
    offers (the MQTT topic still has them)."""

    model_config = ConfigDict(from_attributes=True)

    waiting: int  # notices not delivered yet (retried with a backoff)
    given_up: int  # in the last day, not delivered before they went out of date
    failing_since: datetime | None  # when the oldest notice still failing was made
    last_error: str | None  # of the latest failed POST


class WebhookSecretOut(BaseModel):
    """A new secret for the technician's webhook signatures, shown this once."""

    secret: str
    header: str = SIGNATURE_HEADER
    scheme: str = "t=<unix seconds>,v1=<hex HMAC-SHA256, keyed with the secret, of '<t>.<body>'>"


class AvailabilityIn(BaseModel):
    """What a technician (or staff) changes from day to day, each optional: available or not
    (the toggle), where they are now, their working hours, time off and time zone."""

    model_config = ConfigDict(extra="forbid")

    available: bool | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    shifts: Annotated[list[ShiftText], Field(max_length=21)] | None = None  # []: none
    timezone: TimeZone | None = None
    time_off: TimeOff | None = None  # []: none

    @model_validator(mode="after")
    def _position_whole(self) -> AvailabilityIn:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("send lat and lon together (where the technician is now)")
        return self


class ImportRowError(BaseModel):
    """A CSV row that was not imported, and why."""

    row: int
    technician_id: str | None
    error: str


class ImportResult(BaseModel):
    """What a CSV import did (or, checked first, would do)."""

    imported: int = Field(description="rows imported: new, changed and unchanged technicians")
    created: list[str] = Field(default_factory=list, description="technicians new to crowdfix")
    changed: dict[str, list[str]] = Field(
        default_factory=dict, description="technicians who existed → the fields their row changes"
    )
    unchanged: int = Field(default=0, description="rows that change nothing")
    retired: list[str] = Field(
        default_factory=list, description="retired technicians in the file: they stay retired"
    )
    errors: list[ImportRowError]
    dry_run: bool = Field(default=False, description="checked only: nothing was saved")


class OfferOut(BaseModel):
    """An offer with its explanation: the candidates considered, best first, each with the
    score's parts or why not (at most matching.EXPLAIN_LIMIT, the chosen one always), and
    how many others were left out, by why (`left_out`)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    ticket_id: int
    technician_id: str
    stage: str
    state: str
    offered_at: datetime
    deadline: datetime
    answered_at: datetime | None
    reason: str
    eta_min: float
    score: float
    candidates: list[dict[str, Any]] = []
    left_out: dict[str, int] = Field(
        default={},
        description="technicians not listed in candidates, counted by why: "
        "'eligible but scored lower', or their first reason ('lack the skills', 'off shift', …)",
    )
    title: str = ""  # the ticket's, so the technician knows what the job is
    category: str = ""
    where: PlaceView | None = None  # and where it is
    arrive_by: datetime | None = None  # and by when someone must be there


class HistoryJobOut(BaseModel):
    """One job a technician held: how it came and how it ended."""

    ticket_id: int
    title: str
    category: str
    assigned_at: datetime
    assigned_how: str  # "accepted offer 7", or the operator's assignment and its reason
    en_route_at: datetime | None
    on_site_at: datetime | None
    on_site_by: datetime  # the ticket's on-site target
    on_site_in_time: bool | None  # None: they did not get there on this job
    ended_at: datetime | None
    ending: Literal["open", "resolved", "handed on", "cancelled"]
    end_reason: str  # why it was handed on or cancelled, or the resolution notes
    ended_by: str  # who ended it: the technician's own id, staff's name, a device, the system
    rating: int | None  # the ticket's stars, on the job that resolved it


class HistoryTotalsOut(BaseModel):
    """Everything the technician was offered and held, counted (not just the listed part)."""

    offers: int
    offers_by_state: dict[str, int]  # pending, accepted, declined, expired, withdrawn
    decline_reasons: dict[str, int] = {}  # why they said no, commonest first (the top 10)
    jobs: JobTotals


class TechnicianChangeOut(BaseModel):
    """An entry of the technician's own audit trail."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    kind: str  # paused (by policy), reviewed, retired, reinstated
    actor: str  # who: an operator's username, or the dispatcher
    reason: str


class TechnicianHistoryOut(BaseModel):
    """A technician's record: totals, their latest jobs and offers, and the latest changes
    to their standing (newest first)."""

    technician: TechnicianOut
    totals: HistoryTotalsOut
    jobs: list[HistoryJobOut]
    offers: list[OfferOut]
    changes: list[TechnicianChangeOut] = []


class AcceptIn(BaseModel):
    """Accepting, optionally with the technician's own ETA."""

    model_config = ConfigDict(extra="forbid")

    eta_min: Annotated[float, Field(gt=0, le=24 * 60)] | None = None


class DeclineIn(BaseModel):
    """Declining, with a reason."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason = ""


class ProgressIn(BaseModel):
    """A step on a job: en route (with ETA), on site, resolved (with notes)."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["en_route", "on_site", "resolved"]
    eta_min: Annotated[int, Field(gt=0, le=24 * 60)] | None = None
    notes: Reason = ""


class GiveBackIn(BaseModel):
    """Dropping a job, or cannot fix it (naming the skills it needs)."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500)]
    needs_skills: Annotated[list[Skill], Field(max_length=10)] = []


class AssignIn(BaseModel):
    """An operator's manual assignment."""

    model_config = ConfigDict(extra="forbid")

    technician_id: TechnicianId
    reason: Reason = ""


class RatingIn(BaseModel):
    """A rating of the technician's work on a resolved ticket."""

    model_config = ConfigDict(extra="forbid")

    stars: Annotated[int, Field(ge=1, le=5)]


class RetireIn(BaseModel):
    """Why a technician leaves (kept with them and told with every job taken back)."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500)]


class ReviewIn(BaseModel):
    """An operator's review of a paused technician."""

    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, Field(min_length=1, max_length=500)]


class SlaOut(BaseModel):
    """Where a ticket stands against one SLA target."""

    target: str
    due: datetime
    met_at: datetime | None
    breached: bool
    warning: bool
    remaining_s: float


class ComplianceRow(BaseModel):
    """SLA compliance over some tickets: the share of those due that met each target (None:
    none due yet), and those open past their on-site target."""

    tickets: int
    accepted_in_time: float | None
    on_site_in_time: float | None
    resolved_in_time: float | None
    breached_open: int


class ComplianceOut(ComplianceRow):
    """SLA compliance over the tickets in a period, in all and by category and by site (each
    category has its own targets)."""

    by_category: dict[str, ComplianceRow] = {}
    by_site: dict[str, ComplianceRow] = {}


class PlaceOut(BaseModel):
    """Where a job is: the site (or the device, when it has no site) with its address and
    the point the ETA is measured to, for the technician to decide and to find it."""

    name: str
    address: str = ""
    lat: float | None = None
    lon: float | None = None


class PlaceView(PlaceOut):
    """A job's place as the API shows it: with a link to a map of it (CROWDFIX_MAP_URL)."""

    map_url: str | None = None


class JobOut(TicketOut):
    """A ticket a technician holds, with where it is."""

    where: PlaceView | None = None


class JobNotice(BaseModel):
    """What every push about a job to do says of it: the ticket, where it is (with a link to
    the deployment's map of the spot, CROWDFIX_MAP_URL) and by when to be there."""

    schema_version: Literal[1] = 1
    ticket_id: int
    title: str
    category: str
    priority: str
    where: PlaceView | None = None
    arrive_by: datetime | None = None  # the on-site target


class OfferNotice(JobNotice):
    """Pushed to the technician's topic (and webhook) when they get an offer."""

    type: Literal["offer"] = "offer"
    offer_id: int
    deadline: datetime
    eta_min: float


class OfferWithdrawn(BaseModel):
    """Pushed to the technician's offer topic (and webhook) when a pending offer is taken
    back: the ticket was cancelled, resolved or assigned by hand before they answered."""

    schema_version: Literal[1] = 1
    type: Literal["offer_withdrawn"] = "offer_withdrawn"
    offer_id: int
    ticket_id: int
    reason: str


class JobCalledOff(BaseModel):
    """Pushed to the technician's job topic (and webhook) when a job they hold is taken from
    them: cancelled (at the device or by an operator), reassigned or unassigned."""

    schema_version: Literal[1] = 1
    type: Literal["job_called_off"] = "job_called_off"
    ticket_id: int
    state: str  # what the ticket is now: cancelled, assigned (to someone else), dispatching…
    reason: str


class JobAssigned(JobNotice):
    """Pushed to the technician's job topic (and webhook) when an operator gives them a job
    by hand: there is no offer to accept, the job is theirs."""

    type: Literal["job_assigned"] = "job_assigned"
    reason: str
    arrive_by: datetime  # the on-site target


class DurationOut(BaseModel):
    """Minutes from the event to a milestone, over the tickets that reached it."""

    count: int
    mean_min: float | None
    median_min: float | None


class KpiOut(BaseModel):
    """Service KPIs of the tickets opened in a period, with tickets over time per category
    and per site (the six most frequent, the rest as "other")."""

    tickets: int
    time_to_accept: DurationOut
    time_to_arrive: DurationOut
    time_to_resolve: DurationOut
    compliance: ComplianceOut
    bucket: Literal["hour", "day"]
    buckets: list[datetime]
    by_category: dict[str, list[int]]
    by_site: dict[str, list[int]]


class RatingLinkOut(BaseModel):
    """A one-time link for the requester to rate the job (shown once; a new one replaces it),
    with its QR code (SVG) for the requester to scan off the technician's screen."""

    url: str
    expires_at: datetime
    qr_svg: str


class RatingInviteOut(BaseModel):
    """What the requester sees before rating: the job and the technician's first name."""

    ticket_id: int
    title: str
    technician: str
    state: str
    rated: bool
    expires_at: datetime


class RequesterRatingIn(BaseModel):
    """The requester's stars and an optional word."""

    model_config = ConfigDict(extra="forbid")

    stars: Annotated[int, Field(ge=1, le=5)]
    comment: Annotated[str, Field(max_length=500)] = ""
