"""``closeloop up --demo``: a small realistic data set, loaded over HTTP like any client.

Sixteen grievances left at different steps of the loop (just received, classified,
dispatched, signed for, resolved awaiting 回访, closed), so the dashboard, the queues
and the Temporal UI show something at once, and the demo SLA profile's minute-long
windows produce urges and escalations while you watch. Loaded once per var directory
(``<var>/demo-loaded`` marks it).
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx

from closeloop.dev.simulator import SimConfig, Simulator, new_grievance_body, sim_data

# How far each demo grievance gets.
STAGES = (
    "received",
    "classified",
    "dispatched",
    "dispatched",
    "signed_for",
    "signed_for",
    "signed_for",
    "resolved",
    "resolved",
    "closed",
    "closed",
    "closed",
    "closed",
    "reopened",
    "dispatched",
    "signed_for",
)
ORDER = ("received", "classified", "dispatched", "signed_for", "resolved", "closed")
MARKER = "demo-loaded"


async def _advance(sim: Simulator, rng: random.Random, stage: str) -> None:
    cfg = sim.config
    op = cfg.operator_token
    body, category = new_grievance_body(rng)
    created = await sim.request("POST", "/v1/grievances", op, "file", body, ok=(201,))
    gid = str(created.json()["id"])
    target = "closed" if stage == "reopened" else stage
    reached = ORDER.index(target)
    if reached < 1:
        return
    await sim.command(f"/v1/grievances/{gid}/classify", op, {"category": category})
    if reached < 2:
        return
    lead = next((d for d in sim.departments if not d.startswith("cm.")), sim.departments[0])
    await sim.command(f"/v1/grievances/{gid}/dispatch", op, {"lead": lead, "assisting": []})
    rounds = 2 if stage == "reopened" else 1
    for round_no in range(rounds):
        if reached < 3:
            return
        state = await sim.get_grievance(gid)
        mine = [a for a in state["assignments"] if "sign_for" in a["allowed_actions"]]
        for a in mine:
            token = cfg.department_tokens[a["department"]]
            await sim.command(f"/v1/assignments/{a['id']}/sign-for", token)
        if reached < 4:
            return
        state = await sim.get_grievance(gid)
        for a in state["assignments"]:
            if "resolve" in a["allowed_actions"]:
                token = cfg.department_tokens[a["department"]]
                await sim.command(
                    f"/v1/assignments/{a['id']}/resolve",
                    token,
                    {"account": rng.choice(sim_data().accounts)},
                )
        if reached < 5:
            return
        unsatisfied = stage == "reopened" and round_no == 0
        feedback: dict[str, Any] = (
            {"contacted": True, "resolved": False, "satisfaction": "unsatisfied"}
            if unsatisfied
            else {"contacted": True, "resolved": True, "satisfaction": "satisfied"}
        )
        await sim.command(f"/v1/grievances/{gid}/feedback", op, feedback)
        if stage == "reopened" and round_no == 0:
            reached = 3  # the second round stops at signed for: 重办 in progress


async def _load(api_url: str, tokens: dict[str, Any]) -> int:
    config = SimConfig(
        base_url=api_url,
        operator_token=tokens["operator"],
        supervisor_token=tokens["supervisor"],
        department_tokens=dict(tokens["departments"]),
        seed=2026,
    )
    async with httpx.AsyncClient(base_url=api_url, timeout=30.0) as client:
        sim = Simulator(config, client)
        for index, stage in enumerate(STAGES):
            await _advance(sim, random.Random(f"demo/{index}"), stage)
    return len(STAGES)


def load_demo_data(api_url: str, tokens: dict[str, Any], var_dir: Path) -> str:
    """Load the demo set once; returns a line saying what happened."""
    marker = var_dir / MARKER
    if marker.exists():
        return "already loaded (delete " + str(marker) + " to load again)"
    count = asyncio.run(_load(api_url, tokens))
    marker.write_text(str(count), encoding="utf-8")
    return f"{count} grievances at every step of the loop"
