"""`headwater identity ...` and `headwater profiles ...`: thin commands over
`headwater.services.profiles`."""

from __future__ import annotations

from pathlib import Path

import click

from headwater.entrypoints.cli.files import text_file
from headwater.entrypoints.cli.output import (
    handle_errors,
    json_option,
    opened_app,
    print_json,
    say,
    show_document,
    shown,
    table,
)
from headwater.services.profiles import (
    blocked_from_text,
    current_settings,
    list_profiles,
    rebuild_profiles,
    set_settings,
    show_profile,
)


@click.group("identity")
def identity() -> None:
    """Show or change how identities are merged into profiles."""


@identity.command("show")
@json_option
@handle_errors
def identity_show(as_json: bool) -> None:
    """Show the ordered identifiers and their blocked values."""
    with opened_app() as app:
        doc = current_settings(app).as_dict()
    if as_json:
        print_json(doc)
        return
    say("identifiers: ", ", ".join(doc["identifiers"]))
    for path, values in doc["blocked"].items():
        say(f"blocked {path}: ", ", ".join(str(v) for v in values) or "(none)")


@identity.command("set")
@click.option(
    "--identifiers", required=True, help="Ordered identifiers, comma-separated (email,phone)."
)
@click.option(
    "--blocked",
    "blocked_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON file of blocked values per identifier: {"email": ["info@shop.io"]}.',
)
@json_option
@handle_errors
def identity_set(identifiers: str, blocked_file: Path | None, as_json: bool) -> None:
    """Set the identifiers; every profile is rebuilt under them at once."""
    names = [n.strip() for n in identifiers.split(",") if n.strip()]
    blocked = None
    if blocked_file is not None:
        blocked = blocked_from_text(text_file(blocked_file, "--blocked"), str(blocked_file))
    with opened_app() as app:
        settings = set_settings(app, names, blocked)
    if as_json:  # the API's answer to PUT /identity-resolution
        print_json(settings.as_dict())
        return
    say("identifiers: ", ", ".join(settings.names))
    say("profiles rebuilt under them (if the warehouse was unreachable, the next run does it)")


@click.group("profiles")
def profiles() -> None:
    """Unified customer profiles."""


@profiles.command("list")
@click.option("--search", default=None, help="Only profiles with a value containing TEXT.")
@json_option
@handle_errors
def profiles_list(search: str | None, as_json: bool) -> None:
    """List profiles."""
    with opened_app() as app:
        found = list_profiles(app, search)
    if as_json:
        print_json(found)
        return
    table(
        ["id", "identities", "email", "phone"],
        [
            [p["id"], p["identity_count"], p["values"].get("email"), p["values"].get("phone")]
            for p in found
        ],
    )


@profiles.command("show")
@click.argument("profile_id")
@json_option
@handle_errors
def profiles_show(profile_id: str, as_json: bool) -> None:
    """Show a profile: values, identities with their pipelines, change history."""
    with opened_app() as app:
        doc = show_profile(app, profile_id)
    if as_json:
        print_json(doc)
        return
    show_document({k: doc[k] for k in ("id", "identity_count", "updated_at")}, False)
    say("values:")
    for name, value in doc["values"].items():
        if value is not None:
            say(f"  {name}: ", shown(value))
    say("identities:")
    table(
        ["pipeline", "source id", "source updated at"],
        [
            [i["pipeline"] or i["pipeline_id"], i["source_id"], i["source_updated_at"]]
            for i in doc["identities"]
        ],
        ids=("source id",),
    )
    say("changes:" if doc["changes"] else "changes: none")
    for c in doc["changes"]:
        say(f"  {c['at']} {c['kind']} ", ", ".join(c["before"]), " -> ", ", ".join(c["after"]))


@profiles.command("rebuild")
@json_option
@handle_errors
def profiles_rebuild(as_json: bool) -> None:
    """Recompute every profile from all identities."""
    with opened_app() as app:
        done = rebuild_profiles(app)
    # The API's answer to POST /profiles/rebuild.
    doc = {
        "considered": done.considered,
        "written": done.written,
        "removed": done.removed,
        "changes": len(done.merges) + len(done.splits),
    }
    if as_json:
        print_json(doc)
        return
    say(
        f"considered {doc['considered']} identities: {doc['written']} profiles written, "
        f"{doc['removed']} removed, {doc['changes']} merges and splits"
    )
