"""Sources: the list, the connector catalogue, adding a Stripe source, and a
connection's Identities tab (Pipelines, Runs and Settings have modules of their own)."""

from __future__ import annotations

import secrets
import threading
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from headwater.entrypoints.console import views
from headwater.entrypoints.console.web import (
    CurrentViewer,
    redirect,
    render,
)
from headwater.kernel.errors import HeadwaterError, InvalidInput
from headwater.services import connections, warehouse
from headwater.services.pipelines import manage

router = APIRouter()

#: The connectors of the catalogue: (key, name, what it does, overview).
CATALOGUE = (
    (
        "stripe",
        "Stripe",
        "Import customers",
        "Reads your Stripe customers (all of them, or those a filter keeps), maps them "
        "to your Customer Model and keeps them current: incremental imports follow "
        "Stripe's events, and customers deleted in Stripe leave the warehouse too.",
    ),
)


@router.get("/")
def home(_who: CurrentViewer) -> Response:
    return redirect("/sources")


@router.get("/sources")
def sources(request: Request, who: CurrentViewer) -> Response:
    rows = []
    for conn in connections.list_connections(who.app):
        pipelines = manage.list_pipelines(who.app, conn.id)
        rows.append(
            {
                "connection": conn,
                "pipelines": len(pipelines),
                "last": views.last_run(who.app, pipelines),
            }
        )
    return render(request, "sources.html", who, rows=rows)


@router.get("/sources/new")
def catalogue(request: Request, who: CurrentViewer, q: str = "") -> Response:
    words = q.strip().lower()
    cards = [c for c in CATALOGUE if not words or words in " ".join(c).lower()]
    return render(request, "catalogue.html", who, cards=cards, q=q)


# Double clicks: each form carries a one-time id; a second post of the same form waits
# for the first and lands on the connection it created instead of creating another.
_FORMS: dict[str, str] = {}
_FORMS_LOCK = threading.Lock()
_FORM_LOCKS: dict[str, threading.Lock] = {}


def _form_lock(form_id: str) -> threading.Lock:
    with _FORMS_LOCK:
        return _FORM_LOCKS.setdefault(form_id, threading.Lock())


#: Forms remembered at most (a double click comes within seconds of the first post).
_REMEMBERED = 1000


def _forget_old_forms() -> None:
    with _FORMS_LOCK:
        for remembered in (_FORMS, _FORM_LOCKS):
            while len(remembered) > _REMEMBERED:
                del remembered[next(iter(remembered))]


@router.get("/sources/new/stripe")
def add_stripe_page(request: Request, who: CurrentViewer) -> Response:
    return render(
        request,
        "add_stripe.html",
        who,
        form=views.StripeForm(),
        errors={},
        form_id=secrets.token_urlsafe(16),
    )


@router.post("/sources/new/stripe")
def add_stripe(
    request: Request,
    who: CurrentViewer,
    form_id: Annotated[str, Form()],
    name: Annotated[str, Form()] = "",
    api_key: Annotated[str, Form()] = "",
    base_url: Annotated[str, Form()] = connections.STRIPE_API,
    requests_per_second: Annotated[str, Form()] = "20",
) -> Response:
    form = views.StripeForm(name, base_url, requests_per_second)
    with _form_lock(form_id):
        done = _FORMS.get(form_id)
        if done:
            return redirect(f"/connections/{done}/pipelines")
        try:
            rate = views.parse_float(requests_per_second, "requests_per_second")
            conn = connections.add_stripe(
                who.app, name, api_key, base_url or connections.STRIPE_API, rate
            )
        except HeadwaterError as exc:
            # Stripe not reached, or failing (transient): the URL is what to look at.
            fallback = "base_url" if exc.transient else "api_key"
            field = exc.location if isinstance(exc, InvalidInput) else fallback
            return render(
                request,
                "add_stripe.html",
                who,
                status=400,
                form=form,
                errors={field or "api_key": exc.message},
                form_id=form_id,
            )
        _FORMS[form_id] = conn.id
        _forget_old_forms()
    return redirect(f"/connections/{conn.id}/pipelines")


@router.get("/connections/{connection_id}/identities")
def identities_tab(request: Request, connection_id: str, who: CurrentViewer) -> Response:
    conn = connections.get_connection(who.app, connection_id)
    pipelines = manage.list_pipelines(who.app, conn.id)
    counts = warehouse.identity_counts(who.app, [p.id for p in pipelines])
    return render(
        request,
        "connection_identities.html",
        who,
        connection=conn,
        tab="identities",
        pipelines=pipelines,
        counts=counts,
    )
