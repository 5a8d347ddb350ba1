"""A round trip with a real third-party Open311 client, over a real local port.

The PyPI package ``georeport`` (a GeoReport v2 client that only reads) lists the services
and reads requests back in JSON and XML; the request itself is POSTed form-encoded the
way the spec's example shows. The loop is then driven through the GrievanceApp (梳理, 派单,
签收, 阶段反馈, 办结, 回访 satisfied): the client reads ``open`` all along, with the latest
public note, and ``closed`` at the end.

georeport sends no api_key on reads, and needs none: reads are public, as GeoReport v2
says (public fields only). The filing client sees its own description by giving its key as
the password of the endpoint URL (``http://open311:<key>@host/open311/v2``, HTTP Basic).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from georeport import GeoReport

from api.app import create_app
from api.deps import Services
from domain.model import Status
from tests.conftest import OPERATOR, FakeClock, department
from tests.support.api import build_services, sqlite_env
from tests.support.open311 import SPEC_CONTENT_TYPE, form_body, personal_values, spec_like_fields


class LiveServer:
    """The real app factory under uvicorn in a thread, on a port the OS picked."""

    def __init__(self, tmp_path: Path, clock: FakeClock) -> None:
        self.env = sqlite_env(tmp_path)
        self.app = create_app(lambda: build_services(self.env, tmp_path, clock))
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    def url(self, api_key: str | None = None) -> str:
        auth = f"open311:{api_key}@" if api_key else ""
        return f"http://{auth}127.0.0.1:{self.port}/open311/v2"


@pytest.fixture
def live(tmp_path: Path, clock: FakeClock) -> Iterator[LiveServer]:
    with LiveServer(tmp_path, clock) as server:
        yield server


def catch_up(server: LiveServer) -> None:
    """Bring the read models up to date (what the projector process does)."""
    from projections.runner import catch_up as run

    run(server.env)


def test_georeport_client_lists_services_and_follows_a_request(
    live: LiveServer, clock: FakeClock
) -> None:
    _, api_key = live.services.tokens.create("open311", name="fixmystreet")
    # Reads without any key: the client as it comes, no environment tricks.
    as_json = GeoReport(live.url(), jurisdiction="haidian.12345")
    as_xml = GeoReport(live.url(), jurisdiction="haidian.12345", output_format="xml")

    # The catalogue, both ways (public: no key needed for it).
    public = GeoReport(live.url())
    services = public.get_service_list()
    services_xml = as_xml.get_service_list()
    leaves = [leaf.code for leaf in live.services.app.policies.categories.leaves()]
    assert [s["service_code"] for s in services] == leaves
    assert [s["service_code"] for s in services_xml] == leaves
    power = next(s for s in services if s["service_code"] == "PU02")
    assert power["metadata"] is True and power["group"] == "公用事业"
    assert next(s for s in services_xml if s["service_code"] == "PU02")["metadata"] == "true"
    definition = as_json.get_service_definition("PU02")
    assert [a["code"] for a in definition["attributes"]] == ["since", "households"]
    definition_xml = as_xml.get_service_definition("PU02")
    assert [a["code"] for a in definition_xml["attributes"]["attribute"]] == [
        "since",
        "households",
    ]

    # File, form-encoded exactly as the spec's example request.
    posted = requests.post(
        f"{live.url()}/requests.json",
        data=form_body(spec_like_fields(api_key)).encode("utf-8"),
        headers={"Content-Type": SPEC_CONTENT_TYPE},
        timeout=10,
    )
    assert posted.status_code == 201, posted.text
    number = posted.json()[0]["service_request_id"]

    # Read back: open, in JSON and XML, one by id and in lists.
    one = as_json.get_service_request(number)
    assert one["service_request_id"] == number and one["status"] == "open"
    assert one["service_code"] == "PU02" and one["lat"] == 39.993  # rounded for the public
    assert one["description"] is None
    one_xml = as_xml.get_service_request(number)
    assert one_xml["service_request_id"] == number and one_xml["status"] == "open"
    assert one_xml["long"] == "116.349"
    own = GeoReport(live.url(api_key)).get_service_request(number)
    assert own["description"] == "整栋楼停电两个小时了，电梯也停了" and own["lat"] == 39.9931
    by_id = as_json.get_service_requests(service_request_id=number)
    assert [r["status"] for r in by_id] == ["open"]
    catch_up(live)
    listed = as_json.get_service_requests(status="open", start_date="2026-11-23T00:00:00Z")
    assert [r["service_request_id"] for r in listed] == [number]
    assert as_json.get_service_requests(status="closed") == []

    # A wrong key is the spec's 403, an unknown request 404 (georeport raises on them);
    # another client's key reads the public fields only.
    with pytest.raises(requests.HTTPError) as refused:
        GeoReport(live.url("cl_nope_nope")).get_service_request(number)
    assert refused.value.response.status_code == 403
    with pytest.raises(requests.HTTPError) as unknown:
        as_json.get_service_request("1")
    assert unknown.value.response.status_code == 404
    _, other = live.services.tokens.create("open311", name="seeclickfix")
    assert GeoReport(live.url(other)).get_service_request(number)["description"] is None

    # The loop, through the application service.
    app = live.services.app
    gid = app.get_by_number(number).id
    app.classify_grievance(gid, OPERATOR, category="PU02")
    assignment = app.dispatch_grievance(gid, OPERATOR).extra["assignments"][0]
    power_company = department("ent.power")
    clock.advance(minutes=20)
    app.sign_for(assignment, power_company)
    app.report_progress(assignment, power_company, note="抢修人员已到场，正在更换电缆")
    step = as_json.get_service_request(number)
    assert step["status"] == "open" and step["status_notes"] == "抢修人员已到场，正在更换电缆"
    assert step["agency_responsible"] == "供电公司"
    lead = app.get_grievance(gid).lead_assignment()
    assert lead is not None and lead.resolve_deadline is not None
    assert datetime.fromisoformat(step["expected_datetime"]) == lead.resolve_deadline
    clock.advance(hours=2)
    app.resolve(assignment, power_company, account="已更换受损电缆，全楼恢复供电")
    resolved = as_xml.get_service_request(number)
    assert resolved["status"] == "open"  # 办结, waiting for the citizen's 回访
    assert resolved["status_notes"] == "已更换受损电缆，全楼恢复供电"
    clock.advance(hours=1)
    app.record_feedback(gid, OPERATOR, contacted=True, resolved=True, satisfaction="satisfied")
    assert app.get_grievance(gid).status is Status.CLOSED

    closed = as_json.get_service_request(number)
    closed_xml = as_xml.get_service_request(number)
    assert closed["status"] == closed_xml["status"] == "closed"
    assert closed["status_notes"] == closed_xml["status_notes"] == "已办结，市民满意"
    assert datetime.fromisoformat(closed["updated_datetime"]) == clock.now
    assert closed["requested_datetime"] == closed_xml["requested_datetime"]
    catch_up(live)
    # xmltodict gives one request as a mapping (several would be a list).
    finished: Any = as_xml.get_service_requests(status="closed")
    assert isinstance(finished, dict) and finished["service_request_id"] == number

    everything = requests.get(
        f"{live.url()}/requests.xml", params={"api_key": api_key}, timeout=10
    ).text + str(closed)
    for value in personal_values():
        assert value not in everything
