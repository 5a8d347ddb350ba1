"""``closeloop token create|list|revoke``: API bearer tokens (printed once, stored hashed)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from api.catalogue import Lang, describe, role_label, t
from api.stores import DuplicateTokenNameError
from closeloop.commands import add_output_options, table

if TYPE_CHECKING:
    from api.stores import TokenStore

ROLES = ("operator", "supervisor", "department", "open311")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("token", help="create, list or revoke API bearer tokens")
    actions = parser.add_subparsers(dest="token_action", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="create a token and print it once")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--department", help="department code (required for --role department)")
    create.add_argument(
        "--name",
        help="who uses it; recorded as the principal in every event; unique among active tokens",
    )
    create.add_argument(
        "--same-client",
        action="store_true",
        help="the token belongs to the client of the active token with this --name "
        "(a second key, a rotation): it shares its client id and what it filed",
    )
    add_output_options(create, "print JSON instead of text")
    create.set_defaults(handler=run_create)

    listing = actions.add_parser("list", help="list tokens (never their secrets)")
    add_output_options(listing, "print JSON instead of a table")
    listing.set_defaults(handler=run_list)

    revoke = actions.add_parser("revoke", help="revoke a token by id or id prefix")
    revoke.add_argument("id", metavar="ID-or-prefix")
    add_output_options(revoke)
    revoke.set_defaults(handler=run_revoke)


def _store() -> TokenStore:
    from closeloop.api_wiring import build_token_store

    return build_token_store()


def _error(message: str, lang: Lang) -> None:
    print(t("cli.error", lang, message=message), file=sys.stderr)


def run_create(args: argparse.Namespace) -> int:
    lang = args.lang
    if args.role == "department" and not args.department:
        _error(t("cli.token-needs-department", lang), lang)
        return 2
    if args.role != "department" and args.department:
        _error(t("cli.token-department-only", lang), lang)
        return 2
    if args.department:
        from domain.errors import ValidationError
        from domain.policies import load_policies

        try:
            load_policies().directory.department(args.department)
        except ValidationError as exc:
            _error(describe(exc, lang), lang)
            return 2
    if args.same_client and not args.name:
        _error(t("cli.token-same-client-needs-name", lang), lang)
        return 2
    store = _store()
    try:
        record, token = store.create(
            args.role, department=args.department, name=args.name, same_client=args.same_client
        )
    except DuplicateTokenNameError as exc:
        key = "cli.token-name-taken" if exc.joinable else "cli.token-same-client-mismatch"
        _error(t(key, lang, name=exc.name), lang)
        return 2
    except ValueError as exc:
        _error(str(exc), lang)
        return 2
    if args.json:
        print(
            json.dumps(
                {
                    "id": record.id,
                    "role": record.role,
                    "department": record.department,
                    "name": record.name,
                    "client_id": record.client_id,
                    "token": token,
                },
                ensure_ascii=False,
            )
        )
    else:
        print(token)
        unit = t("cli.token-department", lang, code=record.department) if record.department else ""
        summary = t(
            "cli.token-created", lang, id=record.id, role=record.role, unit=unit, name=record.name
        )
        print(summary, file=sys.stderr)
        print(t("cli.token-shown-once", lang), file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace) -> int:
    records = _store().list()
    if args.json:
        print(json.dumps([r.__dict__ for r in records], ensure_ascii=False, indent=2))
        return 0
    columns = ("id", "role", "department", "name", "client", "created", "revoked")
    rows = [
        (
            r.id,
            role_label(r.role, args.lang),
            r.department or "-",
            r.name,
            r.client_id,
            r.created_at[:26],
            (r.revoked_at or "-")[:26],
        )
        for r in records
    ]
    print(table([t(f"cli.column-{c}", args.lang) for c in columns], rows))
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    lang = args.lang
    try:
        record = _store().revoke(args.id)
    except LookupError:
        _error(t("cli.token-not-found", lang, id=args.id), lang)
        return 1
    at = record.revoked_at
    print(t("cli.token-revoked", lang, id=record.id, role=record.role, name=record.name, at=at))
    return 0
