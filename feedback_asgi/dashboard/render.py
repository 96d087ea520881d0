"""The dashboard's HTML: :func:`dashboard_page` and :func:`login_page`.

Plain string building in which every value that did not come from this module goes
through :func:`esc` (``html.escape`` with quotes), in text and in attributes alike. The
pages load one stylesheet from the kit and no script at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from feedback_asgi.core.records import FeedbackItem, FeedbackType
from feedback_asgi.dashboard.charts import MAX_SERIES, Series, bar_chart, buckets, line_chart
from feedback_asgi.dashboard.data import WINDOWS, DashboardData
from feedback_asgi.storage.stats import GroupStats

__all__ = ["Links", "dashboard_page", "esc", "login_page"]

TEXT_LIMIT = 2000
"""Characters of an input, output or correction shown before it is cut."""
NO_MODEL = "(no model)"
_WINDOW_NAMES = {"24h": "24 hours", "7d": "7 days", "30d": "30 days", "90d": "90 days"}


def esc(value: object) -> str:
    """``value`` as text safe in HTML text and in quoted attributes."""
    return escape(str(value), quote=True)


@dataclass(frozen=True, slots=True)
class Links:
    """Where the page's links and forms go (absolute paths below the feedback path)."""

    base: str
    """The feedback path as the browser reached it, e.g. ``/feedback``."""
    export: str | None = None
    """The fine-tuning export route (``POST``, NDJSON), ``None`` when there is none."""
    login_url: str | None = None
    """The host app's own sign-in page (Django's ``LOGIN_URL``), if any."""
    form_fields: tuple[tuple[str, str], ...] = ()
    """Hidden ``(name, value)`` fields of the page's POST forms (Django's CSRF token)."""

    def hidden_fields(self) -> str:
        """:attr:`form_fields` as hidden inputs."""
        return "".join(f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">'
                       for name, value in self.form_fields)

    @property
    def dashboard(self) -> str:
        """The dashboard page."""
        return f"{self.base}/dashboard"

    def asset(self, name: str) -> str:
        """A file served with the dashboard."""
        return f"{self.base}/dashboard/{name}"


def _head(links: Links, title: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="same-origin">'
        f"<title>{esc(title)}</title>"
        f'<link rel="stylesheet" href="{esc(links.asset("dashboard.css"))}">'
        f'<link rel="icon" href="{esc(links.asset("icon.svg"))}" type="image/svg+xml">'
        "</head>"
    )


_NONE = "\u2013"  # an en dash: no figure


def _percent(value: float | None) -> str:
    return _NONE if value is None else f"{value:.0%}"


def _rating(value: float | None) -> str:
    return _NONE if value is None else f"{value:.2f}"


def _when(moment: datetime) -> str:
    return (f'<time datetime="{esc(moment.isoformat())}">'
            f'{esc(moment.strftime("%Y-%m-%d %H:%M"))} UTC</time>')


def _text_of(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(
        value, ensure_ascii=False, indent=2, default=str)
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT] + "…"


# the dashboard


def _figure(name: str, label: str, value: str) -> str:
    return (f'<div class="figure"><dt>{esc(label)}</dt>'
            f'<dd data-figure="{esc(name)}">{esc(value)}</dd></div>')


def _totals(data: DashboardData) -> str:
    totals = data.totals
    figures = [
        _figure("total_count", "Feedback", str(totals.total_count)),
        _figure("thumbs_up_rate", "Thumbs-up rate", _percent(totals.thumbs_up_rate)),
        _figure("thumbs_up", "Thumbs up", str(totals.thumbs_up)),
        _figure("thumbs_down", "Thumbs down", str(totals.thumbs_down)),
        _figure("average_rating", "Average rating", _rating(totals.average_rating)),
        _figure("rating_count", "Ratings", str(totals.rating_count)),
    ]
    return f'<dl class="totals">{"".join(figures)}</dl>'


def _model_name(key: str | None) -> str:
    return NO_MODEL if key is None else key


def _rate_series(data: DashboardData) -> tuple[list[datetime], list[Series]]:
    interval = WINDOWS[data.window]
    times = buckets(data.series.since, data.series.until, interval)
    position = {moment: index for index, moment in enumerate(times)}
    votes: dict[str, int] = {}
    rates: dict[str, list[float | None]] = {}
    for point in data.series.groups:
        name = _model_name(point.key)
        rate = point.thumbs_up_rate
        if rate is None or point.bucket not in position:
            continue
        rates.setdefault(name, [None] * len(times))[position[point.bucket]] = rate
        votes[name] = votes.get(name, 0) + point.thumbs_up + point.thumbs_down
    ranked = sorted(rates, key=lambda name: (-votes[name], name))
    return times, [Series(name, rates[name]) for name in ranked]


def _rate_chart(data: DashboardData) -> str:
    times, series = _rate_series(data)
    if not series:
        return '<p class="empty">No thumbs votes in this window.</p>'
    title = "Thumbs-up rate per model over time"
    legend = "".join(
        f'<li><span class="swatch series-{number}" aria-hidden="true"></span>{esc(line.name)}</li>'
        for number, line in enumerate(series[:MAX_SERIES])
    )
    more = "" if len(series) <= MAX_SERIES else (
        f'<p class="note">The {MAX_SERIES} models with the most votes are drawn; '
        "the table below lists every model.</p>")
    return (f'<figure class="chart-box">{line_chart(title, times, series, WINDOWS[data.window])}'
            f'<figcaption><ul class="legend">{legend}</ul></figcaption></figure>{more}')


def _type_rows(totals: GroupStats) -> list[tuple[str, int]]:
    return sorted(totals.count_by_type.items(), key=lambda row: (-row[1], row[0]))


def _type_chart(data: DashboardData) -> str:
    rows = _type_rows(data.totals)
    if not rows:
        return '<p class="empty">No feedback in this window.</p>'
    cells = "".join(
        f'<tr><th scope="row">{esc(kind)}</th><td data-count="{esc(kind)}">{count}</td></tr>'
        for kind, count in rows
    )
    return (f'<figure class="chart-box">{bar_chart("Feedback by type", rows)}</figure>'
            f'<table class="visually-hidden"><caption>Feedback by type</caption>'
            f"<tbody>{cells}</tbody></table>")


def _models_table(data: DashboardData) -> str:
    groups = sorted(data.stats.groups, key=lambda g: (-g.total_count, g.key is None, g.key or ""))
    if not groups:
        return '<p class="empty">No feedback in this window.</p>'
    rows = "".join(
        f'<tr data-model="{esc(_model_name(g.key))}"><th scope="row">{esc(_model_name(g.key))}'
        f'</th><td data-figure="total_count">{g.total_count}</td>'
        f'<td data-figure="thumbs_up_rate">{esc(_percent(g.thumbs_up_rate))}</td>'
        f'<td data-figure="thumbs_up">{g.thumbs_up}</td>'
        f'<td data-figure="thumbs_down">{g.thumbs_down}</td>'
        f'<td data-figure="average_rating">{esc(_rating(g.average_rating))}</td></tr>'
        for g in groups
    )
    return ('<div class="table-wrap"><table class="models"><caption class="visually-hidden">Figures per model</caption><thead>'
            '<tr><th scope="col">Model</th><th scope="col">Feedback</th>'
            '<th scope="col">Thumbs-up rate</th><th scope="col">Up</th><th scope="col">Down</th>'
            f'<th scope="col">Avg rating</th></tr></thead><tbody>{rows}</tbody></table></div>')


def _verdict(item: FeedbackItem) -> tuple[str, str]:
    if item.feedback_type == FeedbackType.THUMBS:
        return "thumbs", "Thumbs down"
    if item.feedback_type == FeedbackType.RATING:
        value = item.value
        shown = int(value) if isinstance(value, float) and value.is_integer() else value
        return "rating", f"Rated {shown}"
    return "correction", "Correction"


def _block(label: str, css: str, value: Any) -> str:
    if value is None or value == "":
        return ""
    return (f'<div class="{css}"><dt>{esc(label)}</dt><dd><pre>{esc(_text_of(value))}</pre>'
            "</dd></div>")


def _negative(item: FeedbackItem) -> str:
    css, verdict = _verdict(item)
    context = item.context
    corrected = None
    if item.feedback_type == FeedbackType.CORRECTION:
        value = item.value
        corrected = value.get("corrected", value) if isinstance(value, dict) else value
    comment = item.comment
    model = context.get("model")
    header = (f'<header><span class="badge {css}">{esc(verdict)}</span>'
              f'<span class="model">{esc(_model_name(model if isinstance(model, str) else None))}'
              f"</span>{_when(item.created_at)}</header>")
    body = "".join((
        _block("Input", "input", context.get("input")),
        _block("Output", "output", context.get("output")),
        _block("Correction", "correction", corrected),
    ))
    note = (f'<p class="comment"><span class="visually-hidden">Comment: </span>{esc(comment)}</p>'
            if comment else "")
    return (f'<li class="negative" data-feedback-id="{esc(item.id)}">'
            f'{header}{note}<dl class="exchange">{body}</dl></li>')


def _negatives(items: Iterable[FeedbackItem]) -> str:
    entries = "".join(_negative(item) for item in items)
    if not entries:
        return '<p class="empty">No negative feedback in this window.</p>'
    return f'<ol class="negatives">{entries}</ol>'


def _window_nav(links: Links, current: str) -> str:
    items = []
    for window in WINDOWS:
        href = f"{links.dashboard}?{urlencode({'window': window})}"
        mark = ' aria-current="page"' if window == current else ""
        items.append(f'<li><a href="{esc(href)}"{mark}>{esc(window)}</a></li>')
    return f'<nav class="windows" aria-label="Window"><ul>{"".join(items)}</ul></nav>'


def _export(links: Links, data: DashboardData) -> str:
    # a form POST (the export route's method), its options in the query string, its only
    # fields the hidden ones an adapter asks for (Django: the CSRF token staff rights need);
    # the sign-in cookie passes because the form posts from this origin
    if links.export is None:
        return ""
    action = f"{links.export}?{urlencode({'since': data.since.isoformat()})}"
    return (f'<form method="post" action="{esc(action)}" class="export">{links.hidden_fields()}'
            '<button type="submit">Download the fine-tuning export</button></form>')


def dashboard_page(data: DashboardData, links: Links, *, signed_in: bool) -> str:
    """The whole dashboard page for ``data``."""
    window_name = _WINDOW_NAMES.get(data.window, data.window)
    sign_out = (f'<form method="post" action="{esc(links.asset("logout"))}" class="sign-out">'
                f'{links.hidden_fields()}<button type="submit">Sign out</button></form>'
                ) if signed_in else ""
    return "".join((
        _head(links, "Feedback dashboard"),
        '<body class="fbd"><header class="top"><h1>Feedback dashboard</h1>',
        _window_nav(links, data.window), _export(links, data), sign_out, "</header><main>",
        f'<p class="period">Last {esc(window_name)}: {_when(data.since)} to {_when(data.until)}'
        "</p>",
        f'<section aria-labelledby="h-totals"><h2 id="h-totals">Totals</h2>{_totals(data)}'
        "</section>",
        '<div class="columns">',
        '<section aria-labelledby="h-rate"><h2 id="h-rate">Thumbs-up rate per model</h2>',
        _rate_chart(data), "</section>",
        '<section aria-labelledby="h-types"><h2 id="h-types">Feedback by type</h2>',
        _type_chart(data), "</section></div>",
        f'<section aria-labelledby="h-models"><h2 id="h-models">Models</h2>{_models_table(data)}'
        "</section>",
        '<section aria-labelledby="h-negative"><h2 id="h-negative">Latest negative feedback</h2>',
        _negatives(data.negatives), "</section>",
        "</main></body></html>",
    ))


# the sign-in page


def login_page(links: Links, *, error: str | None = None, enabled: bool = True) -> str:
    """The sign-in form (admin token), with ``error`` shown above it."""
    alert = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    if enabled:
        form = (f'<form method="post" action="{esc(links.asset("login"))}" class="login-form">'
                '<label for="token">Admin token</label>'
                '<input id="token" name="token" type="password" autocomplete="current-password"'
                ' required maxlength="1024">'
                '<button type="submit">Sign in</button></form>')
    else:
        form = ('<p>Sign-in with a token is off: set <code>FEEDBACK_ASGI_ADMIN_TOKEN</code> '
                "to enable it.</p>")
    account = ""
    if links.login_url is not None:
        target = f"{links.login_url}?{urlencode({'next': links.dashboard})}"
        account = (f'<p class="account"><a href="{esc(target)}">Sign in with your account</a>'
                   " (staff)</p>")
    return "".join((
        _head(links, "Sign in: feedback dashboard"),
        '<body class="fbd login"><main class="login-box"><h1>Feedback dashboard</h1>',
        alert, form, account, "</main></body></html>",
    ))
