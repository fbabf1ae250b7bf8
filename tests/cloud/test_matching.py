"""Matching and dispatch policy, pure: eligibility, ranking, explanations, deadlines, pauses."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.dispatch import matching, policy
from cloud.dispatch.matching import Candidate, Job, Kind

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ZURICH = (47.3779, 8.5403)
SKILLS = ["pos", "printers", "network", "refrigeration", "electrical"]


def tech(tech_id: str, **values: object) -> Candidate:
    base: dict[str, object] = {
        "id": tech_id,
        "kind": Kind.CROWD,
        "skills": frozenset({"printers"}),
        "home": ZURICH,
        "radius_km": 20.0,
        "available": True,
        "capacity": 1,
        "active_jobs": 0,
    }
    return Candidate(**(base | values))  # type: ignore[arg-type]


JOB = Job(ticket_id=1, skills=frozenset({"printers"}), location=ZURICH)


def test_distance_and_eta_are_plausible() -> None:
    oerlikon = (47.4111, 8.5446)
    km = matching.distance_km(ZURICH, oerlikon)
    assert 3.5 < km < 4.0
    assert matching.eta_min(0) == matching.SET_OFF_MIN
    assert 15 < matching.eta_min(km) < 20  # 4 km across town: a quarter of an hour or so


def test_the_next_shift_start_is_of_someone_who_could_then_take_the_job() -> None:
    """Only shifts that would make someone eligible count: not those of people lacking the
    skill, toggled unavailable or paused."""
    soon, later = NOW + timedelta(minutes=1), NOW + timedelta(hours=2)
    others = [
        tech("a", off_shift=True, shift_starts_at=soon, skills=frozenset({"pos"})),
        tech("b", off_shift=True, shift_starts_at=soon, available=False),
        tech("c", off_shift=True, shift_starts_at=soon, paused=True),
        tech("d"),  # on shift already: no start to wait for
    ]
    assert matching.next_shift_start(others, JOB) is None
    pool = [*others, tech("e", off_shift=True, shift_starts_at=later)]
    assert matching.next_shift_start(pool, JOB) == later
    pool.append(tech("f", off_shift=True, shift_starts_at=soon))
    assert matching.next_shift_start(pool, JOB) == soon


def test_certifications_due_are_the_expired_and_those_within_the_warning() -> None:
    day = timedelta(days=1)
    certs = {
        "pos": NOW + 30 * day,  # the last day of the warning: flagged
        "network": NOW + 31 * day,  # not yet
        "printers": NOW - day,  # expired
        "electrical": NOW,  # expires this instant
    }
    assert matching.certifications_due(certs, NOW) == [
        ("printers", NOW - day),
        ("electrical", NOW),
        ("pos", NOW + 30 * day),
    ]
    assert matching.certifications_due({}, NOW) == []


def test_each_reason_for_ineligibility_is_named() -> None:
    far = (47.0502, 8.3093)  # Lucerne, ~45 km
    cases = {
        "lacks skills: printers": tech("a", skills=frozenset({"pos"})),
        "beyond the 20 km service radius": tech("b", home=far),
        "not available": tech("c", available=False),
        "at capacity (1/1 jobs)": tech("d", active_jobs=1),
        "paused by policy": tech("e", paused=True),
        "certification expired: printers": tech(
            "f", certifications={"printers": NOW - timedelta(days=1)}
        ),
        "already declined": tech("g"),
    }
    job = Job(1, frozenset({"printers"}), ZURICH, excluded=frozenset({"g"}))
    for words, candidate in cases.items():
        scored = matching.score(candidate, job, NOW)
        assert not scored.eligible and any(words in r for r in scored.reasons), (words, scored)


def test_a_fresh_position_counts_and_a_stale_one_does_not() -> None:
    away = (47.0502, 8.3093)
    fresh = tech("a", home=away, position=ZURICH, position_at=NOW - timedelta(minutes=5))
    stale = tech("b", home=away, position=ZURICH, position_at=NOW - timedelta(hours=2))
    assert matching.score(fresh, JOB, NOW).eligible
    assert not matching.score(stale, JOB, NOW).eligible


def test_one_glowing_review_does_not_beat_a_long_good_record() -> None:
    newcomer = tech("newcomer", rating_sum=5.0, rating_count=1)
    veteran = tech("veteran", rating_sum=4.9 * 200, rating_count=200)
    assert matching.smoothed_rating(veteran) > matching.smoothed_rating(newcomer)


def test_nearer_is_better_all_else_equal() -> None:
    near = tech("near", home=(47.38, 8.54))
    far = tech("far", home=(47.45, 8.60))
    ranked = matching.rank([far, near], JOB, NOW)
    assert [s.technician_id for s in ranked] == ["near", "far"]
    assert ranked[0].parts["eta"] > ranked[1].parts["eta"]


def crowds(lat, lon, radius_km: float, names: str = "abcdefgh", **more) -> st.SearchStrategy:
    """Technicians living between these latitudes and longitudes; `more`: other fields."""
    return st.builds(
        Candidate,
        id=st.text(names, min_size=1, max_size=4),
        kind=st.sampled_from(list(Kind)),
        skills=st.frozensets(st.sampled_from(SKILLS), max_size=4),
        home=st.tuples(lat, lon),
        radius_km=st.floats(1, radius_km),
        available=st.booleans(),
        capacity=st.integers(1, 3),
        active_jobs=st.integers(0, 3),
        rating_sum=st.floats(0, 500),
        rating_count=st.integers(0, 100),
        offers_recent=st.integers(0, 20),
        accepted_recent=st.integers(0, 20),
        paused=st.booleans(),
        **more,
    )


def jobs_in(lat, lon, names: str = "abcdefgh") -> st.SearchStrategy:
    """Jobs between these latitudes and longitudes, some technicians asked before."""
    return st.builds(
        Job,
        ticket_id=st.just(1),
        skills=st.frozensets(st.sampled_from(SKILLS), min_size=1, max_size=2),
        location=st.tuples(lat, lon),
        excluded=st.frozensets(st.text(names, min_size=1, max_size=4), max_size=3),
    )


candidates = crowds(st.floats(47.2, 47.6), st.floats(8.3, 8.8), 50)
jobs = jobs_in(st.floats(47.2, 47.6), st.floats(8.3, 8.8))
demands = st.dictionaries(st.sampled_from(SKILLS), st.integers(0, 50), max_size=5)


@settings(max_examples=200, deadline=None)
@given(st.lists(candidates, max_size=12, unique_by=lambda c: c.id), jobs, demands)
def test_the_chosen_one_is_always_eligible(
    techs: list[Candidate], job: Job, demand: dict[str, int]
) -> None:
    ranked = matching.rank(techs, job, NOW, pressure=matching.skill_pressure(demand, techs))
    kinds = {t.id: t.kind for t in techs}
    for kind in (None, Kind.CROWD, Kind.STAFF):
        choice = matching.best(ranked, kind, kinds)
        if choice is None:
            continue
        chosen = next(t for t in techs if t.id == choice.technician_id)
        assert job.skills <= chosen.skills
        assert chosen.available and not chosen.paused
        assert chosen.active_jobs < chosen.capacity
        assert chosen.id not in job.excluded
        assert matching.distance_km(chosen.home, job.location) <= chosen.radius_km
        assert kind is None or chosen.kind is kind
    # Eligible ones come first, and each verdict explains itself.
    flags = [s.eligible for s in ranked]
    assert flags == sorted(flags, reverse=True)
    assert all(s.eligible == (not s.reasons) for s in ranked)


@settings(max_examples=100, deadline=None)
@given(st.lists(candidates, max_size=12, unique_by=lambda c: c.id), jobs, demands, st.randoms())
def test_the_ranking_does_not_depend_on_input_order(techs, job, demand, rnd: random.Random) -> None:
    shuffled = list(techs)
    rnd.shuffle(shuffled)
    pressure = matching.skill_pressure(demand, techs)
    assert pressure == matching.skill_pressure(demand, shuffled)
    first = [s.technician_id for s in matching.rank(techs, job, NOW, pressure=pressure)]
    assert first == [s.technician_id for s in matching.rank(shuffled, job, NOW, pressure=pressure)]


def test_skill_pressure_is_demand_share_over_supply_share() -> None:
    pool = [
        tech("a", skills=frozenset({"pos"})),
        tech("b", skills=frozenset({"pos"})),
        tech("c", skills=frozenset({"pos", "printers"})),
        tech("d", skills=frozenset({"printers"}), available=False),  # not counted
        tech("e", skills=frozenset({"network"}), paused=True),  # not counted
    ]
    pressure = matching.skill_pressure({"pos": 5, "printers": 5, "network": 3}, pool)
    # wanted (one each to start): pos 6, printers 6, network 4 of 16; held: 3, 1, 0 of 3
    assert abs(pressure["pos"] - (6 / 16) / (3 / 3)) < 1e-9
    assert abs(pressure["printers"] - (6 / 16) / (1 / 3)) < 1e-9
    assert pressure["network"] == matching.PRESSURE_CAP  # nobody available holds it


def test_a_specialist_in_short_supply_is_kept_for_the_jobs_only_they_can_do() -> None:
    """Two technicians equally near for a till job; one also repairs printers, which few
    available people do: the other gets the offer, and the part that decided says so."""
    both = tech("a-both", skills=frozenset({"pos", "printers"}))
    till_only = tech("b-till", skills=frozenset({"pos"}))
    pool = [both, till_only, tech("c-till", skills=frozenset({"pos"}), available=False)]
    job = Job(1, frozenset({"pos"}), ZURICH)
    pressure = matching.skill_pressure({"pos": 10, "printers": 10}, pool)
    ranked = matching.rank(pool, job, NOW, pressure=pressure)
    assert [s.technician_id for s in ranked[:2]] == ["b-till", "a-both"]
    assert ranked[0].parts["reserve"] > ranked[1].parts["reserve"]
    # Without a view of demand, nothing counts as short: the tie goes by id.
    assert matching.rank(pool, job, NOW)[0].technician_id == "a-both"


def test_identical_technicians_are_ranked_by_id() -> None:
    ranked = matching.rank([tech("b"), tech("c"), tech("a")], JOB, NOW)
    assert [s.technician_id for s in ranked] == ["a", "b", "c"]


# -- policy -------------------------------------------------------------------------------

RULES = policy.DispatchPolicy()


def test_the_offer_deadline_is_five_minutes_unless_the_sla_is_nearer() -> None:
    def deadline(arrive_in_min: float, eta: float) -> timedelta:
        return policy.offer_deadline(NOW, NOW + timedelta(minutes=arrive_in_min), eta, RULES) - NOW

    assert deadline(60, 15) == timedelta(minutes=5)  # plenty of slack
    assert deadline(20, 17) == timedelta(minutes=3)  # 3 minutes of slack left
    assert deadline(20, 25) == timedelta(minutes=2)  # late already: still time to answer


def test_the_cascade_goes_crowd_then_staff_then_an_operator() -> None:
    assert policy.stage(0, 0, NOW, NOW, RULES) is policy.Stage.CROWD
    assert policy.stage(3, 0, NOW, NOW, RULES) is policy.Stage.STAFF
    assert policy.stage(1, 0, NOW, NOW + timedelta(minutes=16), RULES) is policy.Stage.STAFF
    assert policy.stage(3, 2, NOW, NOW, RULES) is policy.Stage.OPERATOR


def test_technicians_below_policy_are_paused_with_the_reason() -> None:
    assert policy.below_policy(4.7 * 10, 10, [], RULES) is not None
    assert policy.below_policy(4.7 * 9, 9, [], RULES) is None  # too few ratings to judge
    assert policy.below_policy(4.9 * 10, 10, [True] * 20, RULES) is None
    assert policy.below_policy(0, 0, [True] * 16 + [False] * 4, RULES) is None  # 80%: fine
    why = policy.below_policy(0, 0, [True] * 15 + [False] * 5, RULES)
    assert why is not None and "acceptance 75%" in why
    assert policy.below_policy(0, 0, [False] * 19, RULES) is None  # fewer than 20 offers


def test_sla_clocks_warn_then_breach() -> None:
    due = NOW + timedelta(minutes=60)
    running = policy.sla_clock("arrive", NOW, due, None, NOW + timedelta(minutes=30), RULES)
    warned = policy.sla_clock("arrive", NOW, due, None, NOW + timedelta(minutes=50), RULES)
    breached = policy.sla_clock("arrive", NOW, due, None, NOW + timedelta(minutes=61), RULES)
    met = policy.sla_clock("arrive", NOW, due, NOW + timedelta(minutes=40), NOW, RULES)
    assert not running.warning and warned.warning and breached.breached
    assert not met.breached and not met.warning and met.remaining_s == 20 * 60


def test_why_nobody_counts_who_holds_the_skills_by_their_first_reason() -> None:
    far = (ZURICH[0] + 0.5, ZURICH[1])  # 56 km north
    crowd = [
        tech("a", active_jobs=1), tech("b", active_jobs=1), tech("c", home=far),
        tech("d", available=False), tech("e", skills=frozenset({"pos"})),
    ]  # fmt: skip
    assert matching.why_nobody(crowd, JOB, NOW) == (
        "of the 4 holding printers: 2 at capacity, 1 beyond their service radius, 1 not available"
    )
    free = [*crowd, tech("f")]  # the cascade is past the crowd: she is asked meanwhile
    assert "holding printers: 1 free to take it, 2 at capacity" in matching.why_nobody(
        free, JOB, NOW
    )
    assert matching.why_nobody(crowd[4:], JOB, NOW) == "nobody holds printers"


@given(st.lists(candidates, max_size=12, unique_by=lambda c: c.id), jobs)
def test_why_nobody_agrees_with_the_ranking(techs, job: Job) -> None:
    """Its counts add up to those holding the skills, and those it finds free are the
    eligible of the full ranking."""
    phrase = matching.why_nobody(techs, job, NOW)
    holding = [c for c in techs if job.skills <= c.skills]
    if not holding:
        assert phrase.startswith("nobody holds ")
        return
    counts = {
        part.split(" ", 1)[1]: int(part.split(" ", 1)[0])
        for part in phrase.split(": ", 1)[1].split(", ")
    }
    assert sum(counts.values()) == len(holding)
    eligible = sum(s.eligible for s in matching.rank(techs, job, NOW))
    assert counts.get(matching.FREE, 0) == eligible


@given(st.lists(candidates, max_size=12, unique_by=lambda c: c.id), jobs)
def test_the_nearest_eta_is_that_of_the_nearest_eligible_technician(techs, job: Job) -> None:
    ranked = matching.rank(techs, job, NOW)
    etas = [s.eta_min for s in ranked if s.eligible]
    assert matching.nearest_eta(techs, job, NOW) == (min(etas) if etas else None)


# A crowd spread over a country (Switzerland, roughly), with every reason not to take a job.
SWISS_LAT, SWISS_LON = st.floats(45.8, 47.8), st.floats(6.0, 10.5)
countrywide = crowds(
    SWISS_LAT,
    SWISS_LON,
    80,
    "abcdefghij",
    position=st.none() | st.tuples(SWISS_LAT, SWISS_LON),
    position_at=st.sampled_from([None, NOW - timedelta(minutes=5), NOW - timedelta(hours=2)]),
    certifications=st.dictionaries(
        st.sampled_from(SKILLS), st.sampled_from([NOW - timedelta(days=1), NOW + timedelta(days=9)])
    ),
    last_job_at=st.none() | st.sampled_from([NOW - timedelta(hours=h) for h in (1, 5, 30)]),
    off_shift=st.booleans(),
    on_leave=st.booleans(),
)
jobs_anywhere = jobs_in(SWISS_LAT, SWISS_LON, "abcdefghij")
weightings = st.builds(
    matching.Weights,
    **{part: st.floats(0, 1) for part in ("eta", "rating", "acceptance", "load", "fairness")},
    reserve=st.floats(0, 0.5),
    miss_penalty_min=st.floats(0, 20),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(countrywide, max_size=40, unique_by=lambda c: c.id),
    jobs_anywhere,
    demands,
    st.integers(0, 10),
    weightings,
)
def test_a_shortlist_is_the_ranking_cut_where_an_explanation_stops(
    techs, job, demand, limit, weights
) -> None:
    """Every eligible one, then the best others up to the limit, each verdict exactly as
    ranking everyone gives it (those ruled out by latitude, or never scored because they
    could not make the list, included); the rest counted by the kind of their first reason."""
    pressure = matching.skill_pressure(demand, techs)
    everyone = matching.rank(techs, job, NOW, weights, pressure)
    ranked, unranked = matching.shortlist(techs, job, NOW, weights, pressure, limit=limit)
    eligible = sum(1 for s in everyone if s.eligible)
    assert ranked == everyone[: max(eligible, limit)]
    rest: dict[str, int] = {}
    for scored in everyone[len(ranked) :]:
        rest[scored.why_not] = rest.get(scored.why_not, 0) + 1
    assert unranked == rest
    etas = [s.eta_min for s in everyone if s.eligible]
    assert matching.nearest_eta(techs, job, NOW) == (min(etas) if etas else None)


@given(countrywide, jobs_anywhere)
def test_latitude_alone_never_puts_anyone_further_than_they_are(tech, job: Job) -> None:
    km = matching.distance_km(matching.where(tech, NOW), job.location)
    assert matching.km_at_least(tech, job, NOW) <= km + 1e-9


def test_a_countrywide_crowd_is_scored_only_as_far_as_the_list_goes() -> None:
    """Near Zurich: two who could go, three off shift; 200 more spread over the country, out
    of reach. The three off shift fill the list; the country is counted, not scored."""
    near = [tech("go1"), tech("go2", home=(47.39, 8.54))]
    off = [tech(f"off{i}", off_shift=True, home=(47.38 + i * 0.01, 8.54)) for i in range(3)]
    rnd = random.Random(5)
    country = [
        tech(f"c{i:03d}", home=(rnd.uniform(45.8, 47.0), rnd.uniform(6.0, 10.5)))
        for i in range(200)
    ]
    ranked, unranked = matching.shortlist([*country, *off, *near], JOB, NOW, limit=5)
    assert [s.technician_id for s in ranked] == ["go1", "go2", "off0", "off1", "off2"]
    assert unranked == {"beyond their service radius": 200}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(candidates, max_size=20, unique_by=lambda c: c.id),
    jobs,
    st.integers(1, 8),
    st.sampled_from([None, Kind.CROWD, Kind.STAFF]),
)
def test_an_explanation_lists_the_best_and_counts_every_other(techs, job, limit, kind) -> None:
    """However many technicians: at most `limit` listed, in rank order, the chosen one among
    them, those lacking the skills only where there is room; every other one counted once,
    by the kind of their first reason."""
    able = [t for t in techs if job.skills <= t.skills]
    lacking = [t for t in techs if not job.skills <= t.skills]
    ranked = matching.rank(able, job, NOW)
    choice = matching.best(ranked, kind, {t.id: t.kind for t in techs})
    chosen = choice.technician_id if choice else None
    listed, left_out = matching.explain(ranked, lacking, job, NOW, chosen=chosen, limit=limit)
    ids = [s.technician_id for s in listed]
    assert len(ids) == len(set(ids)) == min(limit, len(techs))
    assert chosen is None or chosen in ids
    assert sum(left_out.values()) == len(techs) - len(ids)
    everyone = {s.technician_id: s for s in matching.rank(techs, job, NOW)}
    expected: dict[str, int] = {}
    for tech_id, scored in everyone.items():
        if tech_id not in ids:
            why = (scored.reasons and scored.why_not) or matching.LEFT_OUT_ELIGIBLE
            expected[why] = expected.get(why, 0) + 1
    assert left_out == expected
    for scored in listed:  # each listed verdict is the one ranking everyone gives
        assert scored == everyone[scored.technician_id]
    able_listed = [i for i in ids if i in {t.id for t in able}]
    assert ids[: len(able_listed)] == able_listed  # those who could do it come first
    if lacking and any(i not in able_listed for i in ids):
        assert len(able_listed) == len(able)  # the others only fill the room that is left


def test_a_big_crowd_is_explained_by_the_few_who_could_have_had_it() -> None:
    near = [tech(f"n{i:02d}", home=(ZURICH[0] + i * 0.001, ZURICH[1])) for i in range(40)]
    busy = [tech("busy", active_jobs=1), tech("off", off_shift=True)]
    electricians = [tech(f"e{i}", skills=frozenset({"electrical"})) for i in range(500)]
    able = near + busy
    ranked = matching.rank(able, JOB, NOW)
    listed, left_out = matching.explain(ranked, electricians, JOB, NOW, chosen="n00")
    assert [s.technician_id for s in listed] == [f"n{i:02d}" for i in range(30)]
    assert left_out == {"eligible but scored lower": 10, "at capacity": 1, "off shift": 1,
                        "lack the skills": 500}  # fmt: skip
    # The chosen one is listed even when thirty others score higher (a staff stage, say).
    listed, _ = matching.explain(ranked, electricians, JOB, NOW, chosen="n35")
    assert len(listed) == 30 and listed[-1].technician_id == "n35"
    # A small crowd is listed whole, those lacking the skills after the rest.
    listed, left_out = matching.explain(ranked[:3], electricians[:2], JOB, NOW, chosen="n00")
    assert [s.technician_id for s in listed] == ["n00", "n01", "n02", "e0", "e1"]
    assert left_out == {}
    assert listed[-1].reasons == ("lacks skills: printers",)
