"""``closeloop api``: serve the HTTP API with uvicorn on settings.api_host:api_port."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("api", help="serve the HTTP API (uvicorn)")
    parser.add_argument("--host", help="default: CLOSELOOP_API_HOST")
    parser.add_argument("--port", type=int, help="default: CLOSELOOP_API_PORT")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from closeloop.api_wiring import build_api_services
    from closeloop.commands import configured_settings
    from closeloop.serving import uvicorn_options
    from closeloop.telemetry import configure_tracing

    settings = configured_settings()
    configure_tracing(settings, "api")  # CLOSELOOP_TRACING; off by default
    app = create_app(
        lambda: build_api_services(settings),
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.attachment_max_bytes,
        public_base_url=settings.public_base_url
        or f"http://{args.host or settings.api_host}:{args.port or settings.api_port}",
    )
    uvicorn.run(
        app,
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        **uvicorn_options(settings),  # keep-alive and shutdown timeouts: closeloop/serving.py
    )
    return 0
