"""A load and behaviour simulator that talks to a running stack over HTTP only.

Citizens file grievances (realistic Chinese text, a skewed category mix, the same
places recurring so hotspots appear); operators classify and dispatch; departments
sign for after a random delay, some late, some return (the operator arbitrates), some
ask for an extension (the supervisor decides), some are summoned (吹哨) and report
in; assisting departments complete their part, the lead resolves; citizens give
feedback, mostly satisfied, some not (which reopens the grievance).

Every write carries an ``Idempotency-Key``; a transport error (a connection reset,
refused or timed out) is retried with the same key, so a retry never records twice, and
is counted apart (``transport_retries``): it never ends the run. A 5xx, a transport
failure that outlives its retries, or a grievance that cannot be found afterwards (lost)
is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from api import catalogue
from api.catalogue import Lang

# ------------------------------------------------------------------ the data

DATA_FILE = "simulator.json"

TRANSPORT_ATTEMPTS = 5  # per request, see send_retrying()
RETRY_WAIT = 0.25  # then 0.5, 1, 2 s: the five attempts span ~4 s, an API restart


@dataclass(frozen=True)
class Category:
    code: str
    weight: float
    texts: tuple[str, ...]


@dataclass(frozen=True)
class SimData:
    """What the simulated people say and where they live (``data/simulator.json``).

    A few categories dominate, as on a real hotline; most grievances come from a few
    compounds (hotspots); ``says`` holds what operators, departments and citizens write.
    """

    categories: tuple[Category, ...]
    places: tuple[tuple[float, dict[str, str]], ...]
    surnames: str
    given_names: str
    channels: tuple[str, ...]
    accounts: tuple[str, ...]
    says: dict[str, str]
    # The knowledge base the simulator's operators write first, and what callers ask.
    knowledge: tuple[dict[str, Any], ...] = ()
    consultations: tuple[dict[str, str], ...] = ()


@functools.cache
def sim_data() -> SimData:
    """The packaged data file, read once."""
    text = resources.files("closeloop.dev").joinpath("data", DATA_FILE).read_text("utf-8")
    raw = json.loads(text)
    return SimData(
        categories=tuple(
            Category(c["code"], float(c["weight"]), tuple(c["texts"])) for c in raw["categories"]
        ),
        places=tuple((float(p["weight"]), dict(p["location"])) for p in raw["places"]),
        surnames=raw["surnames"],
        given_names=raw["given_names"],
        channels=tuple(raw["channels"]),
        accounts=tuple(raw["accounts"]),
        says=dict(raw["says"]),
        knowledge=tuple(raw["knowledge"]),
        consultations=tuple(raw["consultations"]),
    )


@dataclass
class Behaviour:
    """How departments and citizens behave: delays in seconds, shares as probabilities."""

    think: float = 1.0  # mean delay before a department acts
    late: float = 6.0  # a late department waits this long (past a drill sign-for deadline)
    p_late: float = 0.1
    p_return: float = 0.05
    p_extension: float = 0.05
    p_summon: float = 0.03
    p_assisting: float = 0.2
    p_progress: float = 0.3
    p_unsatisfied: float = 0.15
    # 咨询 (consultations: most of a real hotline's calls), and the share of them the
    # operator answers at intake from the knowledge base (直接答复), never dispatched.
    p_consultation: float = 0.2
    p_direct_answer: float = 0.8
    feedback_delay: float = 1.0
    p_duplicate: float = 0.05  # another citizen reports an open grievance again


@dataclass
class SimConfig:
    base_url: str
    operator_token: str
    supervisor_token: str
    department_tokens: dict[str, str]
    rate: float = 1.0
    duration: float = 30.0
    seed: int = 12345
    drain: float = 120.0  # after filing stops, how long to wait for open grievances
    behaviour: Behaviour = field(default_factory=Behaviour)
    max_in_flight: int = 5000
    timeout: float = 30.0
    retry_wait: float = RETRY_WAIT  # the first wait before a transport error is retried
    lang: Lang = "zh"  # of the progress lines


def load_dev_tokens(path: Path) -> dict[str, Any]:
    """``var/dev-tokens.json`` as written by ``closeloop up``."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def weighted(rng: random.Random, items: Sequence[tuple[float, Any]]) -> Any:
    return rng.choices([i for _, i in items], weights=[w for w, _ in items], k=1)[0]


def citizen(rng: random.Random) -> tuple[str, str]:
    data = sim_data()
    name = rng.choice(data.surnames) + "".join(rng.sample(data.given_names, rng.choice((1, 2))))
    phone = "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))
    return name, phone


def new_grievance_body(rng: random.Random) -> tuple[dict[str, Any], str]:
    """A realistic grievance and its category (the simulator's operator classifies it)."""
    data = sim_data()
    category: Category = weighted(rng, [(c.weight, c) for c in data.categories])
    place = dict(weighted(rng, data.places))
    name, phone = citizen(rng)
    text = f"{place['address']}：{rng.choice(category.texts)}"
    body = {
        "channel": rng.choice(data.channels),
        "citizen_name": name,
        "citizen_phone": phone,
        "text": text,
        "location": place,
    }
    return body, category.code


# ------------------------------------------------------------------ known duplicates


def incident_reports(
    rng: random.Random, start: datetime, *, days: float, per_day: float
) -> list[tuple[int, datetime, dict[str, str], str]]:
    """Reports of incidents with known duplicates, for measuring duplicate suggestions:
    ``(incident, at, location, category)``, in time order.

    An incident (one problem at one of the recurring places, of one category) starts at
    a random moment of ``days`` (``per_day`` on average) and is reported by one citizen
    or more: most repeats within hours, some days later; a neighbour sometimes files from
    the next grid of the same community.
    """
    data = sim_data()
    reports = []
    for incident in range(int(days * per_day)):
        category: Category = weighted(rng, [(c.weight, c) for c in data.categories])
        place = dict(weighted(rng, data.places))
        neighbours = [
            dict(p) for _, p in data.places if p["community"] == place["community"] and p != place
        ]
        at = start + timedelta(days=rng.uniform(0, days))
        count = 1
        while count < 8 and rng.random() < 0.45:
            count += 1
        for n in range(count):
            later = rng.expovariate(1 / 4) if rng.random() < 0.9 else rng.uniform(72, 168)
            when = at if n == 0 else at + timedelta(hours=later)
            where = rng.choice(neighbours) if n and neighbours and rng.random() < 0.15 else place
            reports.append((incident, when, where, category.code))
    return sorted(reports, key=lambda r: r[1])


# ------------------------------------------------------------------ retries


async def send_retrying(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    json: Any = None,
    params: dict[str, Any] | None = None,
    on_transport_error: Callable[[BaseException], None] | None = None,
    first_wait: float = RETRY_WAIT,
) -> httpx.Response:
    """Send a request, and send it again after a transport error (up to TRANSPORT_ATTEMPTS).

    Safe for writes only with an ``Idempotency-Key`` in ``headers``: every attempt sends
    the same one, so the API records the command once and answers a retry with the first
    result (even when the first attempt was recorded and only its answer was lost).
    ``on_transport_error`` is told of each error that is retried; the last is raised.
    """

    def before_sleep(state: RetryCallState) -> None:
        if on_transport_error is not None and state.outcome is not None:
            error = state.outcome.exception()
            if error is not None:
                on_transport_error(error)

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(httpx.TransportError),
        stop=stop_after_attempt(TRANSPORT_ATTEMPTS),
        wait=wait_exponential(multiplier=first_wait, max=8 * first_wait),
        before_sleep=before_sleep,
        reraise=True,
    )
    response: httpx.Response = await retrying(
        client.request, method, path, json=json, params=params, headers=headers
    )
    return response


# ------------------------------------------------------------------ the tally


@dataclass
class Tally:
    filed: int = 0
    dispatched: int = 0
    signed_for: int = 0
    returned: int = 0
    extensions: int = 0
    summoned: int = 0
    resolved: int = 0
    reopened: int = 0
    answered: int = 0  # 咨询 answered at intake (直接答复): closed, never dispatched
    closed: int = 0
    escalated: int = 0
    corrected: int = 0  # dispatches the domain refused (negative list) and redone
    conflicts: int = 0  # 409/412: a race with the workflow, handled by re-reading
    client_errors: int = 0  # other 4xx: the simulator's own mistake, reported
    server_errors: int = 0  # 5xx: always a failure
    transport_errors: int = 0  # gave up after TRANSPORT_ATTEMPTS
    transport_retries: int = 0  # retried (same Idempotency-Key) and answered in the end
    lost: int = 0
    unfinished: int = 0
    duplicates: int = 0  # reports of an open grievance filed again (known duplicates)
    merged: int = 0  # of those, merged through the suggestion's merge link
    latencies: dict[str, list[float]] = field(default_factory=dict)
    loop_seconds: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)  # the first few error messages

    def note(self, message: str) -> str:
        if len(self.samples) < 10:
            self.samples.append(message)
        return message

    @property
    def errors(self) -> int:
        return self.server_errors + self.transport_errors + self.lost + self.client_errors

    def all_latencies(self) -> list[float]:
        return [v for values in self.latencies.values() for v in values]

    def counts(self) -> dict[str, int]:
        """Every counter of the tally, by name, and ``errors`` (their failures together)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        counters = {name: value for name, value in values.items() if type(value) is int}
        return {**counters, "errors": self.errors}

    def summary(self) -> dict[str, Any]:
        lat = self.all_latencies()

        def ms(values: list[float], *qs: float) -> dict[str, float]:
            return {f"p{q:g}": round(percentile(values, q) * 1000, 1) for q in qs}

        return {
            **self.counts(),
            "requests": len(lat),
            "latency_ms": {**ms(lat, 50, 90, 99), "max": round(max(lat, default=0.0) * 1000, 1)},
            "latency_ms_by_kind": {
                kind: {"n": len(values), **ms(values, 50, 99)}
                for kind, values in sorted(self.latencies.items())
            },
            "loop_seconds": {
                "n": len(self.loop_seconds),
                "p50": round(percentile(self.loop_seconds, 50), 2),
                "p99": round(percentile(self.loop_seconds, 99), 2),
            },
            "final_statuses": dict(self.statuses),
            "error_samples": list(self.samples),
        }


def steps(assignment: dict[str, Any]) -> list[str]:
    """The actions that move an assignment on (attaching evidence is allowed throughout)."""
    return [a for a in assignment["allowed_actions"] if a not in ("attach", "attach_to_assignment")]


class SimulationError(RuntimeError):
    """A request the simulator cannot continue after (already counted in the tally)."""


# ------------------------------------------------------------------ the actors


class Simulator:
    def __init__(self, config: SimConfig, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.tally = Tally()
        self.ids: list[str] = []
        self._client = client
        self._own_client = client is None
        self.departments = list(config.department_tokens)
        if not self.departments:
            raise ValueError("the simulator needs at least one department token")
        self.in_flight = 0
        self._knowledge: asyncio.Future[None] | None = None  # written before the first answer
        self.recent: dict[str, tuple[dict[str, Any], str]] = {}  # open ones: body, category

    # ---------------------------------------------------------------- http

    def _headers(self, token: str, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    async def request(
        self,
        method: str,
        path: str,
        token: str,
        kind: str,
        json_body: dict[str, Any] | None = None,
        ok: tuple[int, ...] = (200, 201),
        tolerate: tuple[int, ...] = (),
        params: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> httpx.Response:
        """Send one request (writes with an Idempotency-Key: ``key``, or a new one),
        retrying transport errors."""
        assert self._client is not None
        if method == "POST":
            key = key or str(uuid.uuid4())
        started = time.perf_counter()

        def retried(error: BaseException) -> None:
            nonlocal started
            self.tally.transport_retries += 1
            self.tally.note(f"{method} {path}: {error!r} (retried)")
            started = time.perf_counter()  # the latency of the attempt that answered

        try:
            response = await send_retrying(
                self._client,
                method,
                path,
                json=json_body,
                params=params,
                headers=self._headers(token, key),
                on_transport_error=retried,
                first_wait=self.config.retry_wait,
            )
        except httpx.TransportError as error:
            self.tally.transport_errors += 1
            raise SimulationError(self.tally.note(f"{method} {path}: {error!r}")) from None
        self.tally.latencies.setdefault(kind, []).append(time.perf_counter() - started)
        if response.status_code >= 500:
            self.tally.server_errors += 1
            raise SimulationError(
                self.tally.note(f"{method} {path} → {response.status_code}: {response.text[:300]}")
            )
        if response.status_code in ok or response.status_code in tolerate:
            return response
        if response.status_code in (409, 412):
            self.tally.conflicts += 1
            return response
        self.tally.client_errors += 1
        raise SimulationError(
            self.tally.note(f"{method} {path} → {response.status_code}: {response.text[:300]}")
        )

    async def command(
        self,
        path: str,
        token: str,
        body: dict[str, Any] | None = None,
        *,
        tolerate: tuple[int, ...] = (),
    ) -> httpx.Response:
        """POST one command (a write: it gets its own Idempotency-Key)."""
        return await self.request("POST", path, token, "command", body or {}, tolerate=tolerate)

    async def get_grievance(self, gid: str) -> dict[str, Any]:
        response = await self.request(
            "GET", f"/v1/grievances/{gid}", self.config.operator_token, "read"
        )
        data: dict[str, Any] = response.json()
        return data

    # ---------------------------------------------------------------- one grievance

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def _delay(self, rng: random.Random) -> float:
        b = self.config.behaviour
        if rng.random() < b.p_late:
            return b.late * rng.uniform(1.0, 1.3)
        return rng.expovariate(1.0 / b.think) if b.think > 0 else 0.0

    async def grievance(self, index: int) -> None:
        """One grievance from filing to closing, as its people would act."""
        says = sim_data().says
        rng = random.Random(f"{self.config.seed}/{index}")
        started = time.monotonic()
        body, category = new_grievance_body(rng)
        ask = self.request_kind(index, body)
        original = self.repeat_of(rng)
        if original is not None:
            first, first_body, category = original
            body = {**body, "location": first_body["location"], "text": first_body["text"]}
        op = self.config.operator_token
        response = await self.request("POST", "/v1/grievances", op, "file", body, ok=(201,))
        gid = str(response.json()["id"])
        self.ids.append(gid)
        self.tally.filed += 1
        if original is None:
            self.recent[gid] = (body, category)
        await self.command(f"/v1/grievances/{gid}/classify", op, {"category": category})
        if original is not None:
            self.tally.duplicates += 1
            if await self.merge_suggested(gid, first):
                self.tally.merged += 1
                self.tally.statuses["merged"] += 1
                return
        if ask is not None:
            await self.answer_at_intake(gid, ask)
            self.recent.pop(gid, None)
            return
        lead = rng.choice(self.departments)
        others = [d for d in self.departments if d != lead]
        assisting = (
            [rng.choice(others)]
            if others and rng.random() < self.config.behaviour.p_assisting
            else []
        )
        r = await self.command(
            f"/v1/grievances/{gid}/dispatch",
            op,
            {"lead": lead, "assisting": assisting},
            tolerate=(422,),
        )
        if r.status_code == 422:
            # e.g. the community negative list (社区负面清单): the operator corrects the
            # dispatch to a department above community level, as a real one would.
            if r.json().get("code") != "negative-list":
                self.tally.client_errors += 1
                raise SimulationError(self.tally.note(f"dispatch {gid} → 422: {r.text[:300]}"))
            self.tally.corrected += 1
            lead = next((d for d in self.departments if not d.startswith("cm.")), lead)
            others = [d for d in self.departments if d != lead]
            await self.command(
                f"/v1/grievances/{gid}/dispatch", op, {"lead": lead, "assisting": []}
            )
        self.tally.dispatched += 1
        flags = {
            "return": rng.random() < self.config.behaviour.p_return,
            "extension": rng.random() < self.config.behaviour.p_extension,
            "summon": rng.random() < self.config.behaviour.p_summon and bool(others),
        }
        while True:
            state = await self.work(gid, rng, flags)
            if state["status"] != "resolved":
                break
            await self._sleep(rng.uniform(0, 2 * self.config.behaviour.feedback_delay))
            unsatisfied = (
                state["reopen_count"] == 0 and rng.random() < self.config.behaviour.p_unsatisfied
            )
            feedback = (
                {
                    "contacted": True,
                    "resolved": False,
                    "satisfaction": "unsatisfied",
                    "comment": says["feedback_unsatisfied"],
                }
                if unsatisfied
                else {
                    "contacted": True,
                    "resolved": True,
                    "satisfaction": rng.choice(("satisfied", "satisfied", "basically_satisfied")),
                    "comment": says["feedback_satisfied"],
                }
            )
            answer = await self.command(f"/v1/grievances/{gid}/feedback", op, feedback)
            if answer.status_code in (409, 412):
                continue  # e.g. the feedback window lapsed and the workflow closed it
            if unsatisfied:
                self.tally.reopened += 1
                continue
            break
        self.recent.pop(gid, None)
        final = await self.get_grievance(gid)
        self.tally.statuses[final["status"]] += 1
        if final["status"] == "closed":
            self.tally.closed += 1
            self.tally.loop_seconds.append(time.monotonic() - started)
        if final.get("escalation_level", 0) > 0:
            self.tally.escalated += 1

    def repeat_of(self, rng: random.Random) -> tuple[str, dict[str, Any], str] | None:
        """Now and then a citizen reports a grievance still open: (its id, body, category)."""
        if not self.recent or rng.random() >= self.config.behaviour.p_duplicate:
            return None
        gid = rng.choice(sorted(self.recent))
        return (gid, *self.recent[gid])

    async def merge_suggested(self, gid: str, original: str) -> bool:
        """The operator looks at the suggested duplicates (重复件提示) and, when the earlier
        report is among them, merges through the link the API names."""
        op = self.config.operator_token
        response = await self.request("GET", f"/v1/grievances/{gid}/similar", op, "similar")
        for item in response.json()["items"]:
            link = item["merge"] or {}
            if (
                item["grievance_id"] == original
                and link.get("href") == f"/v1/grievances/{gid}/merge"
            ):
                body = {**link["body"], "reason": sim_data().says["duplicate"]}
                answer = await self.command(link["href"], op, body)
                return answer.status_code == 200
        return False

    async def work(self, gid: str, rng: random.Random, flags: dict[str, bool]) -> dict[str, Any]:
        """The departments' part, until the grievance is resolved or final."""
        says = sim_data().says
        sup = self.config.supervisor_token
        deadline = time.monotonic() + self.config.duration + self.config.drain
        while time.monotonic() < deadline:
            state = await self.get_grievance(gid)
            if state["status"] in ("resolved", "closed", "rejected", "merged", "withdrawn"):
                return state
            mine = [
                a
                for a in state["assignments"]
                if a["department"] in self.config.department_tokens and steps(a)
            ]
            if state["status"] == "returned" or any(
                a["state"] == "returned" for a in state["assignments"]
            ):
                await self.arbitrate(gid, state, rng)
                continue
            if not mine:
                await self._sleep(0.3)
                continue
            acted = False
            for a in mine:
                token = self.config.department_tokens[a["department"]]
                aid = a["assignment_id"] if "assignment_id" in a else a["id"]
                path = f"/v1/assignments/{aid}"
                actions = steps(a)
                if "report_in" in actions:
                    await self._sleep(self._delay(rng))
                    await self.command(f"{path}/report-in", token)
                    acted = True
                elif "sign_for" in actions:
                    if flags["return"] and a["role"] == "lead":
                        flags["return"] = False
                        await self._sleep(self._delay(rng))
                        r = await self.command(f"{path}/return", token, {"reason": says["return"]})
                        if r.status_code == 200:
                            self.tally.returned += 1
                        acted = True
                        break
                    await self._sleep(self._delay(rng))
                    r = await self.command(f"{path}/sign-for", token)
                    if r.status_code == 200:
                        self.tally.signed_for += 1
                    acted = True
                elif "complete_part" in actions:
                    await self._sleep(self._delay(rng))
                    await self.command(
                        f"{path}/complete-part", token, {"account": rng.choice(sim_data().accounts)}
                    )
                    acted = True
                elif "resolve" in actions:
                    if rng.random() < self.config.behaviour.p_progress:
                        await self.command(f"{path}/progress", token, {"note": says["progress"]})
                    if flags["summon"]:
                        flags["summon"] = False
                        called = [d for d in self.departments if d != a["department"]][:1]
                        summon = f"/v1/grievances/{gid}/summon"
                        body = {"departments": called, "reason": says["summon"]}
                        r = await self.command(summon, sup, body, tolerate=(422,))
                        if r.status_code == 422:
                            if r.json().get("code") != "negative-list":
                                self.tally.client_errors += 1
                                raise SimulationError(self.tally.note(f"summon → {r.text[:300]}"))
                            # A community cannot be called to this duty: call a bureau
                            # instead, or nobody when there is none to call.
                            self.tally.corrected += 1
                            body["departments"] = [
                                d
                                for d in self.departments
                                if d != a["department"] and not d.startswith("cm.")
                            ][:1]
                            if body["departments"]:
                                r = await self.command(summon, sup, body)
                        if r.status_code == 200:
                            self.tally.summoned += 1
                        acted = True
                        break
                    if flags["extension"] and a.get("extension_requested") is None:
                        flags["extension"] = False
                        await self.extension(gid, a, token, rng)
                        acted = True
                        break
                    pending_parts = [
                        b
                        for b in state["assignments"]
                        if b["role"] in ("assisting", "summoned") and steps(b)
                    ]
                    if pending_parts:
                        continue
                    await self._sleep(self._delay(rng))
                    r = await self.command(
                        f"{path}/resolve", token, {"account": rng.choice(sim_data().accounts)}
                    )
                    if r.status_code == 200:
                        self.tally.resolved += 1
                    acted = True
            if not acted:
                await self._sleep(0.3)
        self.tally.unfinished += 1
        return await self.get_grievance(gid)

    async def arbitrate(self, gid: str, state: dict[str, Any], rng: random.Random) -> None:
        says = sim_data().says
        returned = [a for a in state["assignments"] if a["state"] == "returned"]
        if not returned:
            await self._sleep(0.2)
            return
        a = returned[0]
        aid = a.get("assignment_id") or a["id"]
        path = f"/v1/grievances/{gid}/arbitrate"
        op = self.config.operator_token
        busy = {b["department"] for b in state["assignments"] if steps(b)}
        others = [d for d in self.departments if d != a["department"] and d not in busy]
        await self._sleep(rng.uniform(0, self.config.behaviour.think))
        if others and rng.random() < 0.5:
            body = {
                "assignment_id": aid,
                "decision": "redispatch",
                "department": others[0],
                "reason": says["redispatch"],
            }
            r = await self.command(path, op, body, tolerate=(422,))
            if r.status_code != 422:
                return
            # e.g. the community negative list: the operator confirms instead.
            self.tally.corrected += 1
        confirm = {"assignment_id": aid, "decision": "confirm", "reason": says["confirm"]}
        await self.command(path, op, confirm)

    async def extension(
        self, gid: str, assignment: dict[str, Any], token: str, rng: random.Random
    ) -> None:
        aid = assignment.get("assignment_id") or assignment["id"]
        says = sim_data().says
        current = assignment.get("resolve_deadline")
        base = datetime.fromisoformat(current) if current else datetime.now(UTC)
        # A little after the current resolve deadline (within every profile's maximum).
        new_deadline = base + timedelta(seconds=max(5.0, 4 * self.config.behaviour.think))
        r = await self.command(
            f"/v1/assignments/{aid}/extension-request",
            token,
            {"new_deadline": new_deadline.isoformat(), "reason": says["extension_request"]},
            tolerate=(422,),
        )
        if r.status_code != 200:
            return
        self.tally.extensions += 1
        await self._sleep(rng.uniform(0, self.config.behaviour.think))
        await self.command(
            f"/v1/grievances/{gid}/extension-decision",
            self.config.supervisor_token,
            {"assignment_id": aid, "granted": True, "reason": says["extension_granted"]}
            if rng.random() < 0.8
            else {"assignment_id": aid, "granted": False, "reason": says["extension_denied"]},
        )

    # ---------------------------------------------------------------- the run

    def request_kind(self, index: int, body: dict[str, Any]) -> dict[str, str] | None:
        """The call's request type (咨询, 投诉 …), set in ``body``; for a 咨询 the operator
        can answer, what the caller asks. Its own random stream: the other choices of the
        grievance stay what they were."""
        rng = random.Random(f"{self.config.seed}/{index}/request-type")
        b, asks = self.config.behaviour, sim_data().consultations
        if not asks or rng.random() >= b.p_consultation:
            body["request_type"] = rng.choice(("complaint", "complaint", "help", "report"))
            return None
        ask = rng.choice(asks)
        body["request_type"] = "consultation"
        body["text"] = f"{body['location']['address']}：{ask['text']}"
        return ask if rng.random() < b.p_direct_answer else None

    async def answer_at_intake(self, gid: str, ask: dict[str, str]) -> None:
        """直接答复: the operator searches the knowledge base, quotes the best article (when
        the read model already has it) and closes the grievance on the call."""
        if self._knowledge is None:
            self._knowledge = asyncio.ensure_future(self.write_knowledge())
        await asyncio.shield(self._knowledge)
        op = self.config.operator_token
        found = await self.request(
            "GET", "/v1/knowledge/search", op, "search", params={"q": ask["q"], "limit": 1}
        )
        hits = found.json()["items"]
        body = {
            "answer": hits[0]["snippet"] if hits else sim_data().says["direct_answer"],
            "articles": [{"article_id": h["id"], "revision": h["revision"]} for h in hits],
        }
        await self.command(f"/v1/grievances/{gid}/answer", op, body)
        self.tally.answered += 1
        self.tally.closed += 1
        self.tally.statuses["closed"] += 1

    async def write_knowledge(self) -> None:
        """The knowledge base, before the first answer: operators write, a supervisor
        approves (the same keys on every run: a second run against the same stack adds
        nothing)."""
        for n, article in enumerate(sim_data().knowledge):
            key = f"sim-knowledge-{self.config.seed}-{n}"
            written = await self.request(
                "POST",
                "/v1/knowledge/articles",
                self.config.operator_token,
                "command",
                article,
                key=key,
            )
            await self.request(
                "POST",
                f"/v1/knowledge/articles/{written.json()['id']}/approve",
                self.config.supervisor_token,
                "command",
                {},
                key=key,
                tolerate=(409,),  # approved by an earlier run
            )

    async def _one(self, index: int) -> None:
        self.in_flight += 1
        try:
            await self.grievance(index)
        except SimulationError:
            pass  # counted where it happened
        finally:
            self.in_flight -= 1

    async def run(self, progress: Callable[[str], None] | None = None) -> Tally:
        cfg = self.config
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=cfg.base_url,
                timeout=cfg.timeout,
                # Idle connections expire here (5 s) long before the API's keep-alive
                # (75 s) or nginx's (75 s): the client closes them, never the server.
                limits=httpx.Limits(
                    max_connections=64, max_keepalive_connections=64, keepalive_expiry=5.0
                ),
            )
        arrivals = random.Random(f"{cfg.seed}/arrivals")
        tasks: set[asyncio.Task[None]] = set()
        started = time.monotonic()
        reporter = asyncio.create_task(self._report(progress, started)) if progress else None
        try:
            index = 0
            next_at = started
            while True:
                next_at += arrivals.expovariate(cfg.rate) if cfg.rate > 0 else cfg.duration
                if next_at - started >= cfg.duration:
                    break
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                if self.in_flight >= cfg.max_in_flight:
                    continue
                task = asyncio.create_task(self._one(index))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                index += 1
            if tasks:
                await asyncio.wait(set(tasks), timeout=cfg.drain)
            for task in list(tasks):
                task.cancel()
                self.tally.unfinished += 1
            with contextlib.suppress(SimulationError):  # counted where it happened
                await self.check_lost()
        finally:
            if reporter is not None:
                reporter.cancel()
            if self._own_client:
                await self._client.aclose()
        return self.tally

    async def check_lost(self, projection_wait: float = 20.0) -> None:
        """Every grievance the API accepted must still be there: by id (the event store)
        and, once the projections caught up, in the list (the read models).
        """
        missing: set[str] = set()
        received: list[str] = []
        for gid in list(self.ids):
            try:
                response = await self.request(
                    "GET",
                    f"/v1/grievances/{gid}",
                    self.config.operator_token,
                    "read",
                    tolerate=(404,),
                )
            except SimulationError:
                continue
            if response.status_code == 404:
                missing.add(gid)
            else:
                received.append(str(response.json()["received_at"]))
        since = min(received, default=None)
        unlisted = set(self.ids) - missing
        deadline = time.monotonic() + projection_wait
        while unlisted and time.monotonic() < deadline:
            unlisted -= await self.listed_ids(since)
            if unlisted:
                await asyncio.sleep(0.5)
        self.tally.lost += len(missing) + len(unlisted)
        for gid in sorted(missing | unlisted)[:5]:
            self.tally.note(f"lost grievance {gid}")

    async def listed_ids(self, since: str | None) -> set[str]:
        """Ids in the read models' list, received at or after ``since`` (server clock)."""
        seen: set[str] = set()
        params: dict[str, Any] = {"limit": 200}
        if since:
            params["received_from"] = since
        while True:
            response = await self.request(
                "GET", "/v1/grievances", self.config.operator_token, "list", params=params
            )
            page = response.json()
            seen.update(str(item["id"]) for item in page["items"])
            if not page.get("next_cursor"):
                return seen
            params["cursor"] = page["next_cursor"]

    async def _report(self, progress: Callable[[str], None], started: float) -> None:
        while True:
            await asyncio.sleep(1.0)
            progress(self.progress_line(time.monotonic() - started))

    def progress_line(self, elapsed: float) -> str:
        t = self.tally
        lat = t.all_latencies()[-2000:]
        return catalogue.t(
            "cli.sim-progress",
            self.config.lang,
            elapsed=f"{elapsed:.0f}",
            in_flight=self.in_flight,
            p50=f"{percentile(lat, 50) * 1000:.0f}",
            p99=f"{percentile(lat, 99) * 1000:.0f}",
            **{name: getattr(t, name) for name in _PROGRESS_COUNTS},
        )


_PROGRESS_COUNTS = ("filed", "resolved", "reopened", "closed", "errors")
_SUMMARY_COUNTS = (
    "filed",
    "resolved",
    "escalated",
    "reopened",
    "closed",
    "answered",
    "duplicates",
    "merged",
    "unfinished",
)
_SUMMARY_ERRORS = (
    "errors",
    "server_errors",
    "transport_errors",
    "client_errors",
    "lost",
    "conflicts",
    "transport_retries",
)


def format_summary(summary: dict[str, Any], lang: Lang = "zh") -> str:
    """The summary for a person, every word from the catalogue."""
    lines = [catalogue.t("cli.sim-summary", lang)]
    lines += [
        catalogue.t(
            "cli.sim-count", lang, label=catalogue.t(f"cli.sim-{name}", lang), value=summary[name]
        )
        for name in _SUMMARY_COUNTS
    ]
    lines.append(
        catalogue.t(
            "cli.sim-errors", lang, **{name: summary.get(name, 0) for name in _SUMMARY_ERRORS}
        )
    )
    lines.append(
        catalogue.t("cli.sim-latency", lang, requests=summary["requests"], **summary["latency_ms"])
    )
    lines.append(catalogue.t("cli.sim-loop", lang, **summary["loop_seconds"]))
    lines += [f"  ! {sample}" for sample in summary.get("error_samples", [])]
    return "\n".join(lines)
