"""Read models built from the grievance event log (see README, "Read models and the dashboard").

- ``registry``: the five projections (eventsourcing ``Projection`` classes) by name;
- ``views``: their materialised views, tracking recorders that write rows and the
  tracking position in one transaction (SQLite and PostgreSQL);
- ``fold``: the domain's own aggregate, advanced with each event's ``mutate``, and
  the data its rows show (no second state machine);
- ``models``: each model's rows, from what a grievance showed before and after an event;
- ``runner``: catch up, rebuild, or follow the log (``closeloop project``);
- ``queries``: ``ReadModels``, what the API and the dashboard read;
- ``kpis``: the 三率 formulas.

Imports only ``domain`` and eventsourcing (import-linter contract).
"""
