"""Static behaviour profiles of the demo generator: signal types, personas, channels, calendars.

Everything here is a small constant table; the generator indexes these tables with integer
codes so that no Python code ever runs per event or per customer.
"""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- signal types
SIGNAL_TYPES: tuple[str, ...] = (
    "page_view", "product_view", "site_search", "add_to_cart", "remove_from_cart",
    "checkout_start", "purchase", "product_return", "email_open", "email_click",
    "sms_click", "push_open", "app_open", "ad_click", "social_engagement",
    "store_visit", "call_inbound", "loyalty_redeem", "review_submitted", "referral_sent",
    "support_ticket", "identity_link", "identity_unlink", "consent_change", "preference_change",
)
T = {name: i for i, name in enumerate(SIGNAL_TYPES)}
N_TYPES = len(SIGNAL_TYPES)

# Types emitted only by the planted structures (referral graph, identity, consent); the
# behavioural mix never draws them, so their truth tables stay exact.
STRUCTURAL_TYPES = ("referral_sent", "identity_link", "identity_unlink", "consent_change")

# Funnel stages: 0 none, 1 browse, 2 search, 3 cart, 4 purchase.
STAGES: tuple[str, ...] = ("none", "browse", "search", "cart", "purchase")
TYPE_STAGE = np.zeros(N_TYPES, dtype=np.int8)
for _name, _stage in (("page_view", 1), ("product_view", 1), ("site_search", 2),
                      ("add_to_cart", 3), ("remove_from_cart", 3), ("checkout_start", 3),
                      ("purchase", 4), ("product_return", 4)):
    TYPE_STAGE[T[_name]] = _stage
# The type forced once per customer so that the planted max stage is actually reached.
STAGE_ANCHOR = np.array([-1, T["page_view"], T["site_search"], T["add_to_cart"], T["purchase"]],
                        dtype=np.int16)

# --------------------------------------------------------------------------- personas
PERSONAS: tuple[str, ...] = (
    "bargain_hunter", "loyal_regular", "window_shopper", "researcher",
    "app_native", "email_responsive", "store_goer", "lapsing",
)
N_PERSONAS = len(PERSONAS)
PERSONA_SHARE = np.array([0.15, 0.12, 0.18, 0.12, 0.12, 0.11, 0.10, 0.10])
# Relative activity (events per customer) and spend level.
PERSONA_ACTIVITY = np.array([1.1, 1.4, 1.0, 1.2, 1.5, 0.9, 0.7, 0.6])
PERSONA_SPEND = np.array([0.6, 1.3, 0.8, 1.5, 0.9, 1.0, 1.2, 0.8])
# P(max funnel stage) over (none, browse, search, cart, purchase).
PERSONA_FUNNEL = np.array([
    [0.02, 0.08, 0.10, 0.15, 0.65],   # bargain_hunter
    [0.01, 0.03, 0.03, 0.08, 0.85],   # loyal_regular
    [0.05, 0.35, 0.20, 0.25, 0.15],   # window_shopper
    [0.02, 0.10, 0.28, 0.20, 0.40],   # researcher
    [0.03, 0.10, 0.07, 0.20, 0.60],   # app_native
    [0.05, 0.10, 0.05, 0.15, 0.65],   # email_responsive
    [0.10, 0.15, 0.05, 0.05, 0.65],   # store_goer
    [0.10, 0.25, 0.15, 0.20, 0.30],   # lapsing
])

# Behavioural signal-type mix per persona (relative weights; structural types are 0).
_MIX_COLUMNS = (
    "page_view", "product_view", "site_search", "add_to_cart", "remove_from_cart",
    "checkout_start", "purchase", "product_return", "email_open", "email_click", "sms_click",
    "push_open", "app_open", "ad_click", "social_engagement", "store_visit", "call_inbound",
    "loyalty_redeem", "review_submitted", "support_ticket", "preference_change",
)
_MIX_ROWS = {
    #                  pv   prv  srch atc  rfc  chk  pur  ret  eo   ec   sms  push app  ad   soc  sto  call loy  rev  sup  pref
    "bargain_hunter":   (18, 20, 10, 8.0, 5.0, 3.0, 2.5, 0.5, 8.0, 5.0, 3.0, 1.0, 1.0, 8.0, 2.0, 1.0, 0.3, 2.0, 0.5, 0.5, 0.3),
    "loyal_regular":    (15, 14, 4.0, 6.0, 1.0, 4.0, 5.0, 0.8, 10, 4.0, 1.0, 2.0, 4.0, 1.0, 2.0, 8.0, 1.0, 8.0, 3.0, 1.0, 0.5),
    "window_shopper":   (30, 30, 6.0, 4.0, 3.0, 0.8, 0.5, 0.1, 4.0, 1.0, 0.5, 1.0, 2.0, 6.0, 8.0, 1.0, 0.2, 0.2, 0.3, 0.2, 0.3),
    "researcher":       (20, 28, 22, 3.0, 1.0, 1.2, 1.5, 0.3, 3.0, 1.0, 0.2, 0.3, 1.0, 2.0, 1.0, 1.0, 2.0, 0.3, 6.0, 2.0, 0.3),
    "app_native":       (8.0, 14, 6.0, 6.0, 2.0, 2.5, 3.0, 0.5, 1.0, 0.5, 0.5, 18, 25, 2.0, 6.0, 0.5, 0.2, 2.0, 1.0, 0.5, 1.0),
    "email_responsive": (14, 12, 3.0, 4.0, 1.0, 2.5, 3.0, 0.5, 28, 16, 3.0, 0.5, 0.5, 1.0, 0.5, 2.0, 0.5, 2.0, 1.0, 0.5, 2.0),
    "store_goer":       (8.0, 6.0, 2.0, 1.0, 0.3, 0.5, 4.0, 1.0, 5.0, 1.0, 6.0, 0.5, 0.5, 0.5, 1.0, 40, 8.0, 6.0, 1.0, 2.0, 0.3),
    "lapsing":          (25, 18, 6.0, 4.0, 2.0, 1.5, 2.0, 1.5, 12, 2.0, 1.0, 1.0, 2.0, 2.0, 1.0, 2.0, 3.0, 1.0, 0.5, 6.0, 4.0),
}
PERSONA_MIX = np.zeros((N_PERSONAS, N_TYPES))
for _p, _name in enumerate(PERSONAS):
    for _col, _w in zip(_MIX_COLUMNS, _MIX_ROWS[_name], strict=True):
        PERSONA_MIX[_p, T[_col]] = _w
PERSONA_MIX[:, T["page_view"]] *= 1.15
PERSONA_MIX /= PERSONA_MIX.sum(axis=1, keepdims=True)

# Share of web/app interactions that happen in the app, and of purchases made in store.
PERSONA_APP_SHARE = np.array([0.25, 0.35, 0.20, 0.15, 0.85, 0.15, 0.15, 0.20])
PERSONA_STORE_PURCHASE = np.array([0.15, 0.35, 0.10, 0.10, 0.05, 0.15, 0.75, 0.20])

# --------------------------------------------------------------------------- categories
CATEGORIES: tuple[str, ...] = (
    "apparel", "footwear", "outdoor", "electronics", "home_garden", "kitchen", "beauty",
    "toys", "kids", "sports", "books", "grocery", "pet", "jewelry", "furniture",
    "automotive", "health", "office", "music", "travel",
)
N_CATEGORIES = len(CATEGORIES)
_FAVOURITES = {
    "bargain_hunter": ("grocery", "apparel", "home_garden"),
    "loyal_regular": ("grocery", "beauty", "kitchen"),
    "window_shopper": ("apparel", "jewelry", "furniture"),
    "researcher": ("electronics", "books", "automotive"),
    "app_native": ("electronics", "music", "footwear"),
    "email_responsive": ("beauty", "apparel", "travel"),
    "store_goer": ("grocery", "health", "pet"),
    "lapsing": ("toys", "kids", "sports"),
}
PERSONA_CATEGORY = np.full((N_PERSONAS, N_CATEGORIES), 0.5)
for _p, _name in enumerate(PERSONAS):
    for _rank, _cat in enumerate(_FAVOURITES[_name]):
        PERSONA_CATEGORY[_p, CATEGORIES.index(_cat)] = (8.0, 5.0, 3.0)[_rank]
PERSONA_CATEGORY /= PERSONA_CATEGORY.sum(axis=1, keepdims=True)
# Types whose properties carry {"sku": ..., "category": ...}.
COMMERCE_TYPES = ("page_view", "product_view", "site_search", "add_to_cart", "remove_from_cart",
                  "checkout_start", "purchase", "product_return", "review_submitted")
IS_COMMERCE = np.isin(np.arange(N_TYPES), [T[x] for x in COMMERCE_TYPES])
# Types that multi-location customers also emit at a secondary location.
IS_ROAMING = np.isin(np.arange(N_TYPES), [T["store_visit"], T["call_inbound"]])

# --------------------------------------------------------------------------- channels
CHANNELS: tuple[str, ...] = ("web", "app", "email", "sms", "push", "store", "call", "ads",
                             "social", "system")
SOURCES: tuple[str, ...] = (
    "web_sdk", "mobile_sdk", "esp", "sms_gateway", "push_service", "pos", "store_wifi",
    "call_center", "ad_platform", "social_listener", "helpdesk", "loyalty_platform",
    "reviews_platform", "referral_program", "identity_graph", "consent_platform",
    "preference_center", "redelivery_queue",
)
_C = {c: i for i, c in enumerate(CHANNELS)}
_S = {s: i for i, s in enumerate(SOURCES)}
# Up to three (channel, source) options per type; option probabilities per persona below.
_WEB, _APP = ("web", "web_sdk"), ("app", "mobile_sdk")
_OPTIONS = {
    "page_view": (_WEB, _APP), "product_view": (_WEB, _APP), "site_search": (_WEB, _APP),
    "add_to_cart": (_WEB, _APP), "remove_from_cart": (_WEB, _APP), "checkout_start": (_WEB, _APP),
    "purchase": (_WEB, _APP, ("store", "pos")),
    "product_return": (_WEB, ("store", "pos")),
    "email_open": (("email", "esp"),), "email_click": (("email", "esp"),),
    "sms_click": (("sms", "sms_gateway"),), "push_open": (("push", "push_service"),),
    "app_open": (_APP,), "ad_click": (("ads", "ad_platform"),),
    "social_engagement": (("social", "social_listener"),),
    "store_visit": (("store", "store_wifi"),), "call_inbound": (("call", "call_center"),),
    "loyalty_redeem": (("store", "loyalty_platform"), ("app", "loyalty_platform")),
    "review_submitted": (("web", "reviews_platform"), ("app", "reviews_platform")),
    "referral_sent": (("web", "referral_program"), ("app", "referral_program")),
    "support_ticket": (("web", "helpdesk"), ("email", "helpdesk"), ("call", "helpdesk")),
    "identity_link": (("system", "identity_graph"),),
    "identity_unlink": (("system", "identity_graph"),),
    "consent_change": (("web", "consent_platform"), ("app", "consent_platform")),
    "preference_change": (("web", "preference_center"), ("app", "preference_center")),
}
OPTION_CHANNEL = np.zeros((N_TYPES, 3), dtype=np.int8)
OPTION_SOURCE = np.zeros((N_TYPES, 3), dtype=np.int8)
# Cumulative option probabilities [type, persona, option]; the option is the number of
# thresholds a uniform draw exceeds.
OPTION_CUM = np.ones((N_TYPES, N_PERSONAS, 3))
for _name, _opts in _OPTIONS.items():
    _t = T[_name]
    for _k in range(3):
        _ch, _src = _opts[min(_k, len(_opts) - 1)]
        OPTION_CHANNEL[_t, _k], OPTION_SOURCE[_t, _k] = _C[_ch], _S[_src]
    for _p in range(N_PERSONAS):
        app = PERSONA_APP_SHARE[_p]
        if _name == "purchase":
            store = PERSONA_STORE_PURCHASE[_p]
            probs = ((1 - store) * (1 - app), (1 - store) * app, store)
        elif _name == "product_return":
            store = min(0.9, 0.3 + PERSONA_STORE_PURCHASE[_p])
            probs = (1 - store, store, 0.0)
        elif _name == "support_ticket":
            probs = (0.5, 0.3, 0.2)
        elif _name == "loyalty_redeem":
            probs = (1 - app, app, 0.0)
        elif len(_opts) == 2:
            probs = (1 - app, app, 0.0)
        else:
            probs = (1.0, 0.0, 0.0)
        OPTION_CUM[_t, _p] = np.cumsum(probs)
OPTION_CUM[:, :, 2] = 2.0  # never exceeded

# --------------------------------------------------------------------------- persona distances
def _persona_channel_mix() -> np.ndarray:
    """Expected channel distribution of each persona's behavioural events [persona, channel]."""
    out = np.zeros((N_PERSONAS, len(CHANNELS)))
    for p in range(N_PERSONAS):
        probs = np.diff(np.minimum(OPTION_CUM[:, p, :], 1.0), axis=1, prepend=0.0)  # [type, option]
        for k in range(3):
            np.add.at(out[p], OPTION_CHANNEL[:, k].astype(np.int64), PERSONA_MIX[p] * probs[:, k])
    return out


PERSONA_CHANNEL_MIX = _persona_channel_mix()
# Behavioural distance between personas: mean total-variation distance of the signal-type,
# channel and category mixes (0 = same behaviour, 1 = disjoint).
PERSONA_DISTANCE = np.mean([
    0.5 * np.abs(m[:, None, :] - m[None, :, :]).sum(-1)
    for m in (PERSONA_MIX, PERSONA_CHANNEL_MIX, PERSONA_CATEGORY)
], axis=0)
# Target of a planted persona change (generate(persona_change_share=...)): the farthest other
# persona, never "lapsing" (a changed customer stays active to the end). Distances:
# bargain_hunter -> app_native 0.57, loyal_regular -> app_native 0.54, window_shopper ->
# store_goer 0.65, researcher -> store_goer 0.63, app_native -> store_goer 0.70,
# email_responsive -> app_native 0.65, store_goer -> app_native 0.70.
_far = PERSONA_DISTANCE.copy()
np.fill_diagonal(_far, -1.0)
_far[:, PERSONAS.index("lapsing")] = -1.0
PERSONA_CHANGE_TARGET = _far.argmax(axis=1).astype(np.int8)
del _far

# --------------------------------------------------------------------------- calendars
# Day-of-week multipliers, Monday first, per calendar group.
_DOW = {
    "web": (1.0, 0.98, 0.98, 1.0, 1.02, 1.12, 1.15),
    "purchase": (0.95, 0.95, 0.97, 1.0, 1.08, 1.2, 1.1),
    "return": (1.2, 1.1, 1.0, 1.0, 1.0, 0.9, 0.7),
    "email": (1.1, 1.25, 1.1, 1.2, 1.0, 0.7, 0.7),
    "app": (0.95, 0.95, 0.95, 0.98, 1.05, 1.15, 1.15),
    "store": (0.8, 0.8, 0.85, 0.9, 1.1, 1.9, 1.4),
    "business": (1.3, 1.2, 1.15, 1.15, 1.1, 0.5, 0.35),
    "flat": (1.0,) * 7,
}
CAL_GROUPS: tuple[str, ...] = tuple(_DOW)
_TYPE_GROUP = {
    "page_view": "web", "product_view": "web", "site_search": "web", "add_to_cart": "web",
    "remove_from_cart": "web", "checkout_start": "web", "purchase": "purchase",
    "product_return": "return", "email_open": "email", "email_click": "email",
    "sms_click": "email", "push_open": "app", "app_open": "app", "ad_click": "app",
    "social_engagement": "app", "store_visit": "store", "call_inbound": "business",
    "loyalty_redeem": "store", "review_submitted": "web", "referral_sent": "web",
    "support_ticket": "business", "identity_link": "flat", "identity_unlink": "flat",
    "consent_change": "flat", "preference_change": "web",
}
TYPE_CAL_GROUP = np.array([CAL_GROUPS.index(_TYPE_GROUP[n]) for n in SIGNAL_TYPES], dtype=np.int8)


def calendar_weights(day_dates: np.ndarray) -> np.ndarray:
    """Daily intensity multipliers [type, day] for the given datetime64[D] days.

    Weekly (per calendar group), monthly (paydays on the 1st and 15th lift purchases and
    checkouts) and annual (November–December peak, January returns) seasonality plus a slow
    upward trend.
    """
    days = np.asarray(day_dates, dtype="datetime64[D]")
    n = days.size
    dow = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    months = days.astype("datetime64[M]")
    month = (months.astype(np.int64) % 12) + 1
    dom = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    trend = 1.0 + 0.15 * np.arange(n) / max(n - 1, 1)
    w = np.empty((N_TYPES, n))
    for t, name in enumerate(SIGNAL_TYPES):
        grp = _TYPE_GROUP[name]
        f = np.asarray(_DOW[grp])[dow] * trend
        if name in ("purchase", "checkout_start", "add_to_cart"):
            lift = 1.6 if name == "purchase" else 1.25
            f = f * np.where((dom == 1) | (dom == 15), lift,
                             np.where((dom == 2) | (dom == 16), 1 + (lift - 1) / 2, 1.0))
        if name == "purchase":
            black_friday = (month == 11) & (dom >= 24)
            f = f * np.select([black_friday, month == 11, (month == 12) & (dom <= 24), month == 1],
                              [2.2, 1.5, 1.7, 0.8], 1.0)
        elif name == "product_return":
            f = f * np.select([month == 1, month == 12], [1.8, 1.2], 1.0)
        elif grp in ("web", "app", "email"):
            f = f * np.select([month == 11, month == 12, month == 1], [1.3, 1.35, 0.9], 1.0)
        elif grp == "store":
            f = f * np.select([month == 11, month == 12], [1.2, 1.4], 1.0)
        w[t] = f
    return w


# Hour-of-day profiles (24 weights) per hour group.
_HOURS = {
    "online": (0.5, 0.3, 0.2, 0.15, 0.15, 0.2, 0.4, 0.7, 0.9, 1.0, 1.0, 1.1,
               1.2, 1.1, 1.0, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 1.7, 1.3, 0.8),
    "email": (0.2, 0.1, 0.1, 0.1, 0.1, 0.3, 0.8, 1.6, 1.9, 1.5, 1.2, 1.2,
              1.5, 1.3, 1.0, 0.9, 0.9, 1.0, 1.1, 1.2, 1.1, 0.9, 0.6, 0.4),
    "store": (0, 0, 0, 0, 0, 0, 0, 0, 0.3, 0.8, 1.0, 1.2, 1.4, 1.3, 1.2, 1.2,
              1.3, 1.5, 1.6, 1.4, 1.0, 0.5, 0, 0),
    "business": (0, 0, 0, 0, 0, 0, 0, 0.2, 0.8, 1.4, 1.5, 1.4, 1.0, 1.2, 1.4,
                 1.3, 1.1, 0.8, 0.4, 0.2, 0.1, 0, 0, 0),
}
HOUR_GROUPS: tuple[str, ...] = tuple(_HOURS)
HOUR_WEIGHTS = np.array([_HOURS[g] for g in HOUR_GROUPS], dtype=np.float64)
_TYPE_HOUR = {"email_open": "email", "email_click": "email", "sms_click": "email",
              "store_visit": "store", "loyalty_redeem": "store", "call_inbound": "business",
              "support_ticket": "business"}
TYPE_HOUR_GROUP = np.array([HOUR_GROUPS.index(_TYPE_HOUR.get(n, "online")) for n in SIGNAL_TYPES],
                           dtype=np.int8)

# --------------------------------------------------------------------------- locations, consent
JURISDICTIONS: tuple[str, ...] = ("EU", "UK", "US-CA", "US-CO", "US-OTHER")
JURISDICTION_SHARE = np.array([0.20, 0.10, 0.20, 0.10, 0.40])
OPT_IN_JURISDICTIONS = (0, 1)  # EU, UK: consent must be granted explicitly
CONSENT_PURPOSES: tuple[str, ...] = ("marketing", "profiling", "sale_share")
CONSENT_STATES: tuple[str, ...] = ("granted", "withdrawn")
PREF_CHANNELS: tuple[str, ...] = ("email", "sms", "push")
PREF_FREQUENCIES: tuple[str, ...] = ("daily", "weekly", "monthly")
MATCH_TYPES: tuple[str, ...] = ("email_hash", "phone_hash", "device_id")

SUBSCRIBERS: tuple[str, ...] = (
    "offer_optimizer", "journey_orchestrator", "communication_broadcast", "loyalty",
    "measurement_attribution", "local_context", "local_sem", "page_generator",
)

# --------------------------------------------------------------------------- defects
DEFECTS: tuple[str, ...] = (
    "missing_event_id", "malformed_event_id", "missing_customer_id", "malformed_customer_id",
    "unknown_signal_type", "missing_occurred_at", "occurred_in_future", "occurred_before_floor",
    "unparseable_properties", "negative_amount", "duplicate_event_id",
)
# Misspellings of real types (the capture layer trims and lower-cases, so these stay unknown).
MISSPELLINGS: dict[str, str] = {
    "page_view": "page_veiw", "purchase": "purchace", "add_to_cart": "add_to_crt",
    "product_view": "prodcut_view", "email_open": "emial_open", "store_visit": "store_vist",
    "app_open": "app_opn", "site_search": "site_serch",
}
MISSPELLED_TYPES: tuple[str, ...] = tuple(MISSPELLINGS.values())
# misspelled type code (N_TYPES + k) for each real type, -1 where none is defined
MISSPELLING_CODE = np.array([N_TYPES + list(MISSPELLINGS).index(n) if n in MISSPELLINGS else -1
                             for n in SIGNAL_TYPES], dtype=np.int64)
