"""``closeloop token create|list|revoke``: API bearer tokens (printed once, stored hashed)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.stores import TokenStore

ROLES = ("operator", "supervisor", "department", "open311")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("token", help="create, list or revoke API bearer tokens")
    actions = parser.add_subparsers(dest="token_action", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="create a token and print it once")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--department", help="department code (required for --role department)")
    create.add_argument("--name", help="who uses it; recorded as the principal in every event")
    create.add_argument("--json", action="store_true", help="print JSON instead of text")
    create.set_defaults(handler=run_create)

    listing = actions.add_parser("list", help="list tokens (never their secrets)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(handler=run_list)

    revoke = actions.add_parser("revoke", help="revoke a token by id or id prefix")
    revoke.add_argument("id", metavar="ID-or-prefix")
    revoke.set_defaults(handler=run_revoke)


def _store() -> TokenStore:
    from closeloop.api_wiring import build_token_store

    return build_token_store()


def run_create(args: argparse.Namespace) -> int:
    if args.role == "department" and args.department:
        from domain.errors import ValidationError
        from domain.policies import load_policies

        try:
            load_policies().directory.department(args.department)
        except ValidationError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    store = _store()
    try:
        record, token = store.create(args.role, department=args.department, name=args.name)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps(
                {
                    "id": record.id,
                    "role": record.role,
                    "department": record.department,
                    "name": record.name,
                    "token": token,
                },
                ensure_ascii=False,
            )
        )
    else:
        print(token)
        print(
            f"id {record.id} · role {record.role}"
            + (f" · department {record.department}" if record.department else "")
            + f" · name {record.name}\n"
            "This is the only time the token is shown; only its hash is stored.",
            file=sys.stderr,
        )
    return 0


def run_list(args: argparse.Namespace) -> int:
    records = _store().list()
    if args.json:
        print(json.dumps([r.__dict__ for r in records], ensure_ascii=False, indent=2))
        return 0
    print(f"{'ID':<14}{'ROLE':<12}{'DEPARTMENT':<22}{'NAME':<24}{'CREATED':<27}REVOKED")
    for r in records:
        print(
            f"{r.id:<14}{r.role:<12}{r.department or '-':<22}{r.name:<24}"
            f"{r.created_at[:26]:<27}{(r.revoked_at or '-')[:26]}"
        )
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    try:
        record = _store().revoke(args.id)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"revoked {record.id} ({record.role}, {record.name}) at {record.revoked_at}")
    return 0
