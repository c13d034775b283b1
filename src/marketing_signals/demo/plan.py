"""Customer-level plan: everything decided once per customer or per planted structure.

Built in the parent process, vectorised over all customers (a few arrays of length N):
locations and jurisdictions, personas and persona switches, funnel stage, activity,
referral communities, identity groups, consent, and the "structural" events that realise
the referral graph, identity links and consent changes. Event rows themselves are drawn
later, chunk by chunk, from these arrays (see events.py).

Two kinds of persona change:
  * background switches (always, SWITCH_SHARE of customers): at a day boundary in the last
    SWITCH_WINDOW_DAYS days, to a random other persona (`switch_day`, `persona1`);
  * planted changes (`plant_persona_changes`, only when generate(persona_change_share > 0)):
    at an exact time inside a chosen day before the end, to the farthest persona
    (profiles.PERSONA_CHANGE_TARGET), with a guaranteed recent activity rate (`change_us`,
    `rate_from_day`, `n_mid`, `persona1`, `fav_category1`, `spend1`). Drawn from their own
    random stream, after the base plan, so the base plan does not depend on them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from . import profiles as P
from .util import US_PER_DAY, US_PER_HOUR

MEAN_EVENTS_PER_CUSTOMER = 47.5   # + structural events and post-switch boost ≈ 50
ACTIVITY_SIGMA = 1.0
EXISTING_SHARE = 0.65          # active from the first day; the rest join over the history
MULTI_LOCATION_SHARE = 0.25
SWITCH_SHARE = 0.08
SWITCH_WINDOW_DAYS = 120
REFERRAL_SHARE = 0.15
REFERRAL_NOISE_SHARE = 0.05
IDENTITY_PEOPLE_SHARE = 0.05
WRONG_LINK_SHARE = 0.10
CONSENT_GRANT_SHARE = 0.60
CONSENT_WITHDRAW_SHARE = 0.03
# planted persona changes
CHANGE_MIN_EVENTS_PER_28D = 12.0   # behavioural events per 28 days, before and after the change
CHANGE_RATE_LEAD_DAYS = 56         # the guaranteed rate starts this long before the earliest change
CHANGE_HISTORY_DAYS = 28           # ...and the customer is active at least this long before that


@dataclass
class Plan:
    """Per-customer arrays (index = customer number - 1) and planted structures."""

    n_customers: int
    days: int
    start_us: int
    cust_width: int
    n_locations: int
    loc_jurisdiction: np.ndarray      # [L] int8
    loc_weight: np.ndarray            # [L] float, sums to 1
    home_loc: np.ndarray              # [N] int16
    sec_loc: np.ndarray               # [N, 2] int16, -1 = none
    jurisdiction: np.ndarray          # [N] int8
    persona0: np.ndarray              # [N] int8
    persona1: np.ndarray              # [N] int8 (== persona0 unless switched or changed)
    switch_day: np.ndarray            # [N] int32, -1 = no background switch
    span_start: np.ndarray            # [N] int32 first active day
    span_end: np.ndarray              # [N] int32 last active day + 1
    max_stage: np.ndarray             # [N] int8
    n_pre: np.ndarray                 # [N] int32 behavioural events before the switch (all if none);
                                      # planted change: before rate_from_day
    n_post: np.ndarray                # [N] int32 behavioural events after the switch / change
    spend: np.ndarray                 # [N] float32 spend multiplier
    fav_category: np.ndarray          # [N] int8
    referral_group: np.ndarray        # [N] int32, -1 = none
    identity_group: np.ndarray        # [N] int32, -1 = none
    person_key: np.ndarray            # [N] int64 customer index of the person's smallest id
    consent_state: np.ndarray         # [N, 3] int8 final state: 0 granted, 1 withdrawn
    consent_changed_us: np.ndarray    # [N, 3] int64, -1 = default (no event)
    # planted persona changes (all "none" unless plant_persona_changes ran)
    change_us: np.ndarray             # [N] int64 change time, -1 = none
    change_days_before_end: np.ndarray  # [N] int32 d: change inside day D - d, -1 = none
    rate_from_day: np.ndarray         # [N] int32 first day of the guaranteed rate, -1 = none
    n_mid: np.ndarray                 # [N] int32 events in [rate_from_day, change_us), persona0
    fav_category1: np.ndarray         # [N] int8 favourite category after the change
    spend1: np.ndarray                # [N] float32 spend multiplier after the change
    rate_before: np.ndarray           # [N] float64 planned events / 28 days before the change
    rate_after: np.ndarray            # [N] float64 planned events / 28 days after the change
    boosted: np.ndarray               # [N] bool, rate raised above the customer's own
    # structural events, sorted by customer: customer, type, occurred_at, payload
    s_cust: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    s_type: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    s_time: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    s_a: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    s_b: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def n_events(self) -> np.ndarray:
        return self.n_pre + self.n_post + self.n_mid

    @property
    def current_persona(self) -> np.ndarray:
        """Persona at the end of the data."""
        return np.where((self.switch_day >= 0) | (self.change_us >= 0), self.persona1, self.persona0)


def _choice(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    c = np.cumsum(p)
    return np.minimum(np.searchsorted(c / c[-1], rng.random(size), side="right"), len(p) - 1)


def _exact_shares(rng: np.random.Generator, shares: np.ndarray, n: int) -> np.ndarray:
    """n labels with counts as close as possible to shares (largest remainder), shuffled."""
    raw = shares / shares.sum() * n
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(-(raw - counts))[: n - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(len(shares)), counts))


def _time_in_span(rng, start_day, end_day, start_us, lo=0.0, hi=1.0):
    """Uniform timestamps within [lo, hi) of each customer's active span."""
    span = (end_day - start_day).astype(np.float64) * US_PER_DAY
    frac = lo + (hi - lo) * rng.random(start_day.size)
    return start_us + start_day.astype(np.int64) * US_PER_DAY + (frac * span).astype(np.int64)


def _groups(rng, members: np.ndarray, size_lo: int, size_hi: int, p_sizes=None):
    """Cut an already shuffled member array into consecutive groups of random sizes.

    Returns (kept members, group id per kept member, group start offsets, group sizes); a
    tail shorter than size_lo is dropped, so every group has size_lo..size_hi members.
    """
    n = members.size
    k = n // size_lo + 2
    if p_sizes is None:
        sizes = rng.integers(size_lo, size_hi + 1, size=k)
    else:
        sizes = size_lo + _choice(rng, np.asarray(p_sizes, float), k)
    ends = np.cumsum(sizes)
    sizes = sizes[ends <= n]
    kept = members[: int(sizes.sum())]
    starts = np.cumsum(sizes) - sizes
    gid = np.repeat(np.arange(sizes.size), sizes)
    return kept, gid, starts.astype(np.int64), sizes.astype(np.int64)


def build_plan(rng: np.random.Generator, n_customers: int, days: int, start_us: int) -> Plan:
    N, D = int(n_customers), int(days)
    idx = np.arange(N, dtype=np.int64)

    # ---- locations and jurisdictions
    L = int(min(max(N // 5000, 10), 500))
    loc_jur = _exact_shares(rng, P.JURISDICTION_SHARE, L).astype(np.int8)
    loc_w = rng.lognormal(0.0, 0.6, L)
    loc_w /= loc_w.sum()
    home = _choice(rng, loc_w, N).astype(np.int16)
    multi = rng.random(N) < MULTI_LOCATION_SHARE
    sec = np.full((N, 2), -1, dtype=np.int16)
    n_sec = np.where(multi, 1 + (rng.random(N) < 0.5), 0)
    for k in range(2):  # two secondary slots: at most 2 passes, not a per-customer loop
        cand = (home + 1 + rng.integers(0, L - 1, N)) % L
        sec[:, k] = np.where(n_sec > k, cand, -1)
    dup = (sec[:, 1] == sec[:, 0]) & (sec[:, 1] >= 0)
    sec[dup, 1] = -1

    # ---- personas, activity, spans, funnel
    persona0 = _exact_shares(rng, P.PERSONA_SHARE, N).astype(np.int8)
    existing = rng.random(N) < EXISTING_SHARE
    span_start = np.where(existing, 0, rng.integers(0, max(D - 60, 1), N)).astype(np.int32)
    lapsing = persona0 == P.PERSONAS.index("lapsing")
    span_end = np.full(N, D, dtype=np.int32)
    lapse_end = span_start + np.ceil((D - span_start) * rng.uniform(0.2, 0.6, N)).astype(np.int32)
    span_end = np.where(lapsing, np.maximum(lapse_end, span_start + 7), span_end).astype(np.int32)
    span_end = np.minimum(span_end, D)

    act = rng.lognormal(-ACTIVITY_SIGMA**2 / 2, ACTIVITY_SIGMA, N)
    act_p = P.PERSONA_ACTIVITY / np.dot(P.PERSONA_SHARE / P.PERSONA_SHARE.sum(), P.PERSONA_ACTIVITY)
    # expected events grow with the active span (constant intensity per persona), mean 50
    span_w = (span_end - span_start) / np.mean(span_end - span_start)
    lam = MEAN_EVENTS_PER_CUSTOMER * act * act_p[persona0] * span_w
    n_total = np.maximum(rng.poisson(lam), 1).astype(np.int32)

    cum_funnel = np.cumsum(P.PERSONA_FUNNEL, axis=1)
    max_stage = (rng.random(N)[:, None] >= cum_funnel[persona0]).sum(axis=1).astype(np.int8)
    max_stage = np.minimum(max_stage, 4)

    # ---- persona switches in the last SWITCH_WINDOW_DAYS days
    eligible = np.flatnonzero((span_end == D) & (span_start < D - SWITCH_WINDOW_DAYS - 30))
    n_switch = min(int(round(SWITCH_SHARE * N)), eligible.size)
    switchers = np.sort(rng.choice(eligible, n_switch, replace=False)) if n_switch else eligible[:0]
    switch_day = np.full(N, -1, dtype=np.int32)
    switch_day[switchers] = rng.integers(D - SWITCH_WINDOW_DAYS, D - 14, n_switch)
    persona1 = persona0.copy()
    persona1[switchers] = (persona0[switchers] + rng.integers(1, P.N_PERSONAS, n_switch)) % P.N_PERSONAS
    n_pre = n_total.copy()
    n_post = np.zeros(N, dtype=np.int32)
    if n_switch:
        s = switchers
        frac_post = (D - switch_day[s]) / (D - span_start[s])
        pre = rng.binomial(n_total[s], 1 - frac_post)
        n_pre[s] = np.maximum(pre, 1)
        # Post-switch activity is boosted so the new behaviour is visible in recent windows.
        n_post[s] = rng.poisson(n_total[s] * frac_post * 2.5) + 5

    spend = (P.PERSONA_SPEND[persona0] * rng.lognormal(0, 0.3, N)).astype(np.float32)
    fav = _choice_rows(rng, P.PERSONA_CATEGORY, persona0).astype(np.int8)

    # ---- referral communities (groups of 3..12), members mostly share a home location
    members = rng.permutation(N)[: int(round(REFERRAL_SHARE * N))]
    members, r_gid, r_start, r_size = _groups(rng, members, 3, 12)
    referral_group = np.full(N, -1, dtype=np.int32)
    referral_group[members] = r_gid
    if members.size:
        group_loc = home[members[r_start]]
        move = rng.random(members.size) < 0.7
        home[members[move]] = group_loc[r_gid[move]]

    # ---- identity: ~5% of people own 2-3 raw ids
    n_groups_target = int(round(IDENTITY_PEOPLE_SHARE * N / (1 + IDENTITY_PEOPLE_SHARE * 1.3)))
    n_id_members = int(min(N, n_groups_target * 2.3))
    id_members = rng.permutation(N)[:n_id_members]
    id_members, i_gid, i_start, i_size = _groups(rng, id_members, 2, 3, p_sizes=[0.7, 0.3])
    identity_group = np.full(N, -1, dtype=np.int32)
    identity_group[id_members] = i_gid
    person_key = idx.copy()
    if id_members.size:
        gmin = np.minimum.reduceat(id_members, i_start)
        person_key[id_members] = gmin[i_gid]
        home[id_members] = home[id_members[i_start]][i_gid]  # one person, one home

    jurisdiction = loc_jur[home]
    sec[sec == home[:, None]] = -1
    sec[:, 0] = np.where(sec[:, 0] < 0, sec[:, 1], sec[:, 0])
    sec[:, 1] = np.where(sec[:, 1] == sec[:, 0], -1, sec[:, 1])

    plan = Plan(
        n_customers=N, days=D, start_us=start_us, cust_width=max(7, len(str(N))),
        n_locations=L, loc_jurisdiction=loc_jur, loc_weight=loc_w, home_loc=home,
        sec_loc=sec, jurisdiction=jurisdiction, persona0=persona0, persona1=persona1,
        switch_day=switch_day, span_start=span_start, span_end=span_end, max_stage=max_stage,
        n_pre=n_pre.astype(np.int32), n_post=n_post, spend=spend, fav_category=fav,
        referral_group=referral_group, identity_group=identity_group, person_key=person_key,
        consent_state=np.zeros((N, 3), np.int8), consent_changed_us=np.full((N, 3), -1, np.int64),
        change_us=np.full(N, -1, np.int64), change_days_before_end=np.full(N, -1, np.int32),
        rate_from_day=np.full(N, -1, np.int32), n_mid=np.zeros(N, np.int32),
        fav_category1=fav.copy(), spend1=spend.copy(), rate_before=np.zeros(N),
        rate_after=np.zeros(N), boosted=np.zeros(N, bool),
    )
    _structural_events(rng, plan, members, r_gid, r_start, r_size, id_members, i_gid, i_start, i_size)
    return plan


def plant_persona_changes(rng: np.random.Generator, plan: Plan, share: float,
                          days_before_end) -> int:
    """Plant persona changes in place; returns how many customers change.

    round(share * N) customers (fewer, with a warning, if not enough are eligible) change
    persona once, at a uniform time strictly inside day D - d (i.e. in (end - d, end - d + 1]
    days), with d assigned round-robin over `days_before_end` in random order (equal groups).
    Eligible: no background switch, active to the end, planted max funnel stage "purchase"
    (so their type mix is the persona's full mix before and after), not "lapsing", and active
    since at least CHANGE_HISTORY_DAYS before the guaranteed-rate period. The new persona is
    profiles.PERSONA_CHANGE_TARGET (the farthest one).

    Events: the customer's own history up to rate_from_day = D - max(d) - CHANGE_RATE_LEAD_DAYS
    is unchanged in kind (persona0, its own rate); from rate_from_day to the change it follows
    persona0 at rate a * activity(persona0), from the change to the end persona1 at
    a * activity(persona1), where a = max(own rate per unit of activity, the rate that gives
    both sides >= CHANGE_MIN_EVENTS_PER_28D events per 28 days). `boosted` marks customers
    whose rate was raised. After the change the favourite category is redrawn from persona1's
    category mix and the spend multiplier rescaled to persona1's spend level.
    """
    N, D = plan.n_customers, plan.days
    ds = np.asarray(days_before_end, dtype=np.int64).reshape(-1)
    n_want = int(round(share * N))
    if n_want == 0 or ds.size == 0:
        return 0
    rate_day = D - int(ds.max()) - CHANGE_RATE_LEAD_DAYS
    eligible = np.flatnonzero(
        (plan.switch_day < 0) & (plan.span_end == D) & (plan.max_stage == len(P.STAGES) - 1)
        & (plan.persona0 != P.PERSONAS.index("lapsing"))
        & (plan.span_start <= rate_day - CHANGE_HISTORY_DAYS))
    n = min(n_want, eligible.size)
    if n < n_want:
        warnings.warn(f"persona changes: only {eligible.size} eligible customers for the "
                      f"{n_want} requested; planting {n}", stacklevel=2)
    if n == 0:
        return 0
    chosen = rng.choice(eligible, n, replace=False)          # random order
    d = ds[np.arange(n) % ds.size]                           # round-robin groups
    order = np.argsort(chosen)
    c, d = chosen[order], d[order]

    p0 = plan.persona0[c].astype(np.int64)
    p1 = P.PERSONA_CHANGE_TARGET[p0].astype(np.int64)
    change_day = D - d
    change_us = plan.start_us + change_day * US_PER_DAY + rng.integers(1, US_PER_DAY, n)
    rate_us = plan.start_us + rate_day * US_PER_DAY
    end_us = plan.start_us + D * US_PER_DAY
    act0, act1 = P.PERSONA_ACTIVITY[p0], P.PERSONA_ACTIVITY[p1]
    n_total = plan.n_pre[c].astype(np.int64)                 # no background switch: all events
    span0 = plan.span_start[c].astype(np.int64)
    own = n_total / (D - span0) / act0                       # events / day / unit of activity
    floor = CHANGE_MIN_EVENTS_PER_28D / 28.0 / np.minimum(act0, act1)
    a = np.maximum(own, floor)
    n_pre = np.maximum(rng.binomial(n_total, (rate_day - span0) / (D - span0)), 1)
    n_mid = rng.poisson(a * act0 * (change_us - rate_us) / US_PER_DAY)
    n_post = rng.poisson(a * act1 * (end_us - change_us) / US_PER_DAY)

    plan.persona1[c] = p1
    plan.change_us[c] = change_us
    plan.change_days_before_end[c] = d
    plan.rate_from_day[c] = rate_day
    plan.n_pre[c] = n_pre
    plan.n_mid[c] = n_mid
    plan.n_post[c] = n_post
    plan.fav_category1[c] = _choice_rows(rng, P.PERSONA_CATEGORY, p1)
    plan.spend1[c] = plan.spend[c] * (P.PERSONA_SPEND[p1] / P.PERSONA_SPEND[p0])
    plan.rate_before[c] = 28.0 * a * act0
    plan.rate_after[c] = 28.0 * a * act1
    plan.boosted[c] = floor > own
    return n


def _choice_rows(rng, table: np.ndarray, row: np.ndarray) -> np.ndarray:
    from .util import cum_tables, sample_rows
    return sample_rows(cum_tables(table), row.astype(np.int64), rng.random(row.size))


def _structural_events(rng, plan: Plan, members, r_gid, r_start, r_size,
                       id_members, i_gid, i_start, i_size) -> None:
    """Referral, identity and consent events (customer, type, time, payload a/b)."""
    N, start_us = plan.n_customers, plan.start_us
    s0, s1 = plan.span_start, plan.span_end
    parts = []  # (cust, type, time, a, b)

    # ---- referral_sent: a cycle inside each group (connected) + Poisson extras + 5% noise
    if members.size:
        pos = np.arange(members.size) - r_start[r_gid]
        size = r_size[r_gid]
        n_extra = rng.poisson(0.6, members.size)
        src_pos = np.concatenate([np.arange(members.size), np.repeat(np.arange(members.size), n_extra)])
        step = np.concatenate([np.ones(members.size, np.int64),
                               1 + rng.integers(0, 1 << 30, n_extra.sum()) % (size[np.repeat(np.arange(members.size), n_extra)] - 1)])
        g = r_gid[src_pos]
        tgt_pos = r_start[g] + (pos[src_pos] + step) % r_size[g]
        noise = rng.random(src_pos.size) < REFERRAL_NOISE_SHARE
        if r_size.size > 1:
            # the first member after the source's group end belongs to another group
            other = (r_start[g] + r_size[g] + rng.integers(0, 3, src_pos.size)) % members.size
            other = np.where(r_gid[other] == g, (r_start[g] + r_size[g]) % members.size, other)
            tgt_pos = np.where(noise, other, tgt_pos)
        src, tgt = members[src_pos], members[tgt_pos]
        t = _time_in_span(rng, s0[src], s1[src], start_us)
        parts.append((src, np.full(src.size, P.T["referral_sent"]), t, tgt, np.zeros(src.size, np.int64)))

    # ---- identity_link: chain inside each group; 10% of groups get a wrong link + unlink
    if id_members.size:
        pos = np.arange(id_members.size) - i_start[i_gid]
        has_prev = pos > 0
        a_src = id_members[has_prev]                      # newer id links to the previous one
        a_tgt = id_members[np.flatnonzero(has_prev) - 1]
        match = _choice(rng, np.array([0.7, 0.2, 0.1]), a_src.size)
        t_link = _time_in_span(rng, s0[a_src], s1[a_src], start_us)
        parts.append((a_src, np.full(a_src.size, P.T["identity_link"]), t_link, a_tgt, match))

        n_grp = i_size.size
        wrong_groups = np.flatnonzero(rng.random(n_grp) < WRONG_LINK_SHARE)
        outside = np.flatnonzero(plan.identity_group < 0)
        if wrong_groups.size and outside.size:
            w_src = id_members[i_start[wrong_groups] + rng.integers(0, 1 << 30, wrong_groups.size) % i_size[wrong_groups]]
            w_tgt = outside[rng.integers(0, outside.size, wrong_groups.size)]
            w_match = _choice(rng, np.array([0.7, 0.2, 0.1]), w_src.size)
            t_wrong = _time_in_span(rng, s0[w_src], s1[w_src], start_us, 0.0, 0.7)
            end_us = start_us + s1[w_src].astype(np.int64) * US_PER_DAY
            gap = ((end_us - t_wrong) * rng.uniform(0.05, 0.9, w_src.size)).astype(np.int64)
            t_unlink = t_wrong + np.maximum(gap, US_PER_HOUR)
            parts.append((w_src, np.full(w_src.size, P.T["identity_link"]), t_wrong, w_tgt, w_match))
            parts.append((w_src, np.full(w_src.size, P.T["identity_unlink"]), t_unlink, w_tgt, w_match))

    # ---- consent: EU/UK opt-in grants (~60%); everybody may withdraw (~3%)
    opt_in = np.isin(plan.jurisdiction, P.OPT_IN_JURISDICTIONS)
    for purpose in range(len(P.CONSENT_PURPOSES)):
        granted = opt_in & (rng.random(N) < CONSENT_GRANT_SHARE)
        gc = np.flatnonzero(granted)
        first_days = np.minimum(s0[gc] + 2, s1[gc])
        t_grant = _time_in_span(rng, s0[gc], first_days, start_us)
        parts.append((gc, np.full(gc.size, P.T["consent_change"]), t_grant,
                      np.full(gc.size, purpose), np.zeros(gc.size, np.int64)))
        plan.consent_state[:, purpose] = np.where(opt_in, 1, 0)
        plan.consent_state[gc, purpose] = 0
        plan.consent_changed_us[gc, purpose] = t_grant
        # withdrawals only from customers currently holding consent
        holds = (~opt_in) | granted
        wc = np.flatnonzero(holds & (rng.random(N) < CONSENT_WITHDRAW_SHARE))
        lo = np.where(opt_in[wc], 0.5, 0.1)
        span = (s1[wc] - s0[wc]).astype(np.float64) * US_PER_DAY
        t_w = start_us + s0[wc].astype(np.int64) * US_PER_DAY + (
            (lo + (1 - lo) * rng.random(wc.size)) * span).astype(np.int64)
        prev = plan.consent_changed_us[wc, purpose]
        t_w = np.maximum(t_w, prev + US_PER_HOUR)
        parts.append((wc, np.full(wc.size, P.T["consent_change"]), t_w,
                      np.full(wc.size, purpose), np.ones(wc.size, np.int64)))
        plan.consent_state[wc, purpose] = 1
        plan.consent_changed_us[wc, purpose] = t_w

    cust = np.concatenate([p[0] for p in parts]).astype(np.int64)
    order = np.argsort(cust, kind="stable")
    plan.s_cust = cust[order]
    plan.s_type = np.concatenate([p[1] for p in parts]).astype(np.int16)[order]
    plan.s_time = np.concatenate([p[2] for p in parts]).astype(np.int64)[order]
    plan.s_a = np.concatenate([p[3] for p in parts]).astype(np.int64)[order]
    plan.s_b = np.concatenate([p[4] for p in parts]).astype(np.int64)[order]
