"""Running the projections: catch up synchronously, rebuild from zero, or follow forever.

One loop follows the log on both backends. It reads a batch of notifications once,
decodes the grievance events with the GrievanceApp's own mapper, and hands the views
standing at the same position the batch together (``process_together``: one fold, one
transaction with every view's rows and tracking). A rebuild may split the views between
processes (``rebuild(workers=N)``), each reading the log for its own. When idle, it sleeps until
PostgreSQL NOTIFYs new events (``Wakeup``, LISTEN on the recorder's channel, with a
slow poll as a fallback); SQLite has no notifications (eventsourcing raises
NotImplementedError for its subscriptions), so there it polls every ``interval``.

Standby projectors (PostgreSQL): given a ``Lease``, ``run_forever`` works only while it
holds it — a session-level advisory lock (``pg_try_advisory_lock``, key: a hash of
database, schema and the projection names) on a dedicated connection, built from
settings by ``closeloop/postgres.py``. One projector process per set of projections works;
the others retry every ``lease_interval`` seconds and take over within about that when
the leader dies (its connection closes and PostgreSQL frees the lock). The lock only
avoids wasted work: safety does not depend on it, since a batch is refused when the
view's position moved (``PositionMovedError``), so two active projectors never apply
an event twice. On SQLite (one machine) there is no lock.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.utils import get_topic
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from domain.application import GrievanceApp
from domain.grievance import Grievance
from domain.knowledge import Article
from domain.ratings import RatingRound
from projections.db import APPLICATION_NAME, Datastore, Dialect, open_datastore
from projections.registry import ProjectionSpec, select
from projections.views import (
    GrievanceStates,
    PositionMovedError,
    ReadModelView,
    collector_paused,
    positions_of,
    process_together,
)

DEFAULT_BATCH = 500
# A rebuild has no reader waiting for its next batch: larger batches, fewer commits.
REBUILD_BATCH = 5000
# With LISTEN/NOTIFY, an idle follower still looks at the log this often (seconds).
LISTEN_FALLBACK = 10.0
GRIEVANCE_TOPIC = get_topic(Grievance) + "."
# The events the read models show: grievances', knowledge-base articles' and rating rounds'.
SHOWN_TOPICS = (GRIEVANCE_TOPIC, get_topic(Article) + ".", get_topic(RatingRound) + ".")


class Lease(Protocol):
    """Leadership of one set of projections (an advisory lock, built by the composition
    root from settings: ``closeloop/postgres.py``)."""

    def hold(self) -> bool:
        """True while this process leads (claiming the lease when it is free)."""
        ...

    def close(self) -> None: ...


def build_view(spec: ProjectionSpec, datastore: Datastore, dialect: Dialect) -> ReadModelView:
    view_class: Any = spec.postgres_view if dialect.postgres else spec.sqlite_view
    view: ReadModelView = view_class(datastore=datastore)
    # Processes starting together race on PostgreSQL's catalog even with
    # CREATE TABLE IF NOT EXISTS; the other one created it: check again.
    retrying = Retrying(
        retry=retry_if_exception_type(IntegrityError), stop=stop_after_attempt(3), reraise=True
    )
    retrying(view.create_table)
    return view


class Projector:
    """One GrievanceApp (to read and decode the log) and the views it feeds."""

    def __init__(
        self,
        app_env: Mapping[str, str],
        names: Sequence[str] | None = None,
        *,
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        self.specs = select(list(names) if names else None)
        self.batch_size = batch_size
        self.app = GrievanceApp(dict(app_env))
        self.datastore, self.dialect = open_datastore(app_env)
        tz = self.app.policies.calendar.tz
        # One folded copy of each grievance for every view (the event store's when
        # memory does not have it at the version a batch starts from).
        self.states = GrievanceStates(self.grievance_events)
        self.views: dict[str, ReadModelView] = {}
        for spec in self.specs:
            view = build_view(spec, self.datastore, self.dialect)
            view.tz = tz
            self.views[spec.name] = view

    def __enter__(self) -> Projector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.datastore.close()
        self.app.close()

    def grievance_events(self, grievance_id: Any, version: int) -> list[Any]:
        """A grievance's events up to ``version``, decoded."""
        to_event = self.app.mapper.to_domain_event
        return [to_event(s) for s in self.app.recorder.select_events(grievance_id, lte=version)]

    def positions(self) -> dict[str, int]:
        """Each view's position, read in one statement."""
        views = list(self.views.values())
        with self.datastore.transaction(commit=False) as c:
            found = positions_of(views, c, lock=False)
        return dict(zip(self.views, found, strict=True))

    def max_notification_id(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    def run_once(self, stop: threading.Event | None = None, upto: int | None = None) -> int:
        """Process every notification recorded so far (or up to id ``upto``); answers how
        many events were applied."""
        import structlog

        log = structlog.get_logger("projections")
        positions = self.positions()
        applied = 0
        while positions and not (stop and stop.is_set()):
            lowest = min(positions.values())
            notifications = self.app.recorder.select_notifications(
                start=lowest + 1, limit=self.batch_size, stop=upto
            )
            if not notifications:
                break
            # Only grievance and article events are shown; the others (case numbers)
            # only move the tracking position, so they are not decoded.
            with collector_paused():  # as while a batch is computed (views.compute)
                decoded = [
                    (self.app.mapper.to_domain_event(n), n.id)
                    for n in notifications
                    if n.topic.startswith(SHOWN_TOPICS)
                ]
            last = Tracking(APPLICATION_NAME, notifications[-1].id)
            # Views at the same position (the usual case) take the batch together: one
            # fold, one transaction.
            groups: dict[int, list[str]] = {}
            for name, position in positions.items():
                if position < last.notification_id:
                    groups.setdefault(position, []).append(name)
            for position, names in sorted(groups.items()):
                events = [event for event, nid in decoded if nid > position]
                group = [self.views[name] for name in names]
                try:
                    process_together(
                        group, events, last, [position] * len(group), states=self.states
                    )
                except PositionMovedError:
                    # Another projector got there first: continue from where it is.
                    for name in names:
                        positions[name] = self.views[name].position()
                    log.info("projection moved by another process", projections=names)
                    continue
                except Exception:
                    log.error(
                        "projection batch failed",
                        projections=names,
                        first=position + 1,
                        last=last.notification_id,
                    )
                    raise
                for name in names:
                    positions[name] = last.notification_id
                applied += len(events) * len(names)
            log.debug("projected batch", upto=last.notification_id, size=len(notifications))
        return applied

    def rebuild(self) -> int:
        """Empty the views and replay the whole log into them."""
        for view in self.views.values():
            view.clear()
        self.states.forget()
        batch_size, self.batch_size = self.batch_size, max(self.batch_size, REBUILD_BATCH)
        try:
            return self.run_once()
        finally:
            self.batch_size = batch_size

    def run_forever(
        self,
        stop: threading.Event,
        interval: float = 0.5,
        *,
        lease: Lease | None = None,
        lease_interval: float = 2.0,
    ) -> None:
        """Follow the log until ``stop`` is set, polling every ``interval`` seconds when idle.

        With a ``lease`` (PostgreSQL), only while holding it: a standby waits and retries
        every ``lease_interval`` seconds."""
        import structlog

        log = structlog.get_logger("projections")
        leading = False

        def step() -> int | None:
            """Apply what is pending; None while another projector holds the lease."""
            nonlocal leading
            if lease is not None:
                held = lease.hold()
                if held != leading:
                    leading = held
                    log.info("projector lease", leader=held, projections=sorted(self.views))
                if not held:
                    return None
            return self.run_once(stop)

        def log_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            log.error(
                "projector failed; retrying",
                attempt=state.attempt_number,
                retry_in=delay,
                exc_info=error,
            )

        def pause(seconds: float) -> None:
            stop.wait(seconds)  # returns early when stopped

        # The database may be down or restarting: nothing was half-written (each batch is
        # one transaction), so wait and carry on from the recorded position.
        retrying = Retrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential(multiplier=2 * interval, max=30.0),
            stop=lambda _state: stop.is_set(),
            sleep=pause,
            before_sleep=log_retry,
            reraise=True,
        )
        wakeup = Wakeup.for_recorder(self.app.recorder, stop)
        try:
            while not stop.is_set():
                try:
                    applied = retrying(step)
                except Exception:
                    break  # stopped while retrying
                if applied is None:
                    stop.wait(lease_interval)
                elif applied == 0:
                    if wakeup is None:
                        stop.wait(interval)
                    else:
                        # Woken by PostgreSQL's NOTIFY; the timeout only guards against a
                        # lost LISTEN connection.
                        wakeup.wait(max(interval, LISTEN_FALLBACK))
        finally:
            if wakeup is not None:
                wakeup.close()


class Wakeup:
    """Wakes an idle follower as soon as PostgreSQL NOTIFYs that events were recorded.

    A thread LISTENs on the application recorder's channel (the one eventsourcing's
    insert NOTIFYs, as its ``PostgresSubscription`` does) on a connection of its own and
    sets an event; the follower still reads batches and writes tracking itself. SQLite
    has no notifications: there the follower polls.
    """

    def __init__(self, recorder: Any, stop: threading.Event) -> None:
        self._recorder = recorder
        self._stop = stop
        self._event = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="projector-listen", daemon=True)
        self._thread.start()

    @classmethod
    def for_recorder(cls, recorder: Any, stop: threading.Event) -> Wakeup | None:
        from eventsourcing.postgres import PostgresApplicationRecorder

        if isinstance(recorder, PostgresApplicationRecorder):
            return cls(recorder, stop)
        return None

    def _stopping(self) -> bool:
        return self._stop.is_set() or self._closed.is_set()

    def _listen(self) -> None:
        import structlog
        from psycopg.sql import SQL, Identifier

        log = structlog.get_logger("projections")
        while not self._stopping():
            try:
                with self._recorder.datastore.get_connection() as conn:
                    conn.execute(SQL("LISTEN {0}").format(Identifier(self._recorder.channel_name)))
                    self._event.set()  # anything recorded while not listening
                    while not self._stopping():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self._event.set()
            except Exception:
                log.warning("projector LISTEN connection lost; retrying", exc_info=True)
                self._closed.wait(1.0)

    def wait(self, timeout: float) -> None:
        """Until events were recorded (or ``timeout`` seconds, or stop)."""
        deadline = timeout
        while deadline > 0 and not self._stopping():
            if self._event.wait(min(deadline, 0.5)):
                break
            deadline -= 0.5
        self._event.clear()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)


def catch_up(
    app_env: Mapping[str, str],
    names: Sequence[str] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH,
) -> int:
    """Process every pending notification synchronously (tests, rebuild, CLI)."""
    with Projector(app_env, names, batch_size=batch_size) as projector:
        return projector.run_once()


def rebuild(
    app_env: Mapping[str, str], names: Sequence[str] | None = None, *, workers: int = 1
) -> int:
    """Rebuild the named projections (all by default) from zero.

    With ``workers`` > 1 the views are split in that many groups of about the same cost
    (``ReadModelView.cost``) and each group is rebuilt by a process of its own (this one
    and ``workers - 1`` spawned ones), each reading, decoding and folding the log for its
    views: on a machine with that many idle cores the rebuild takes about as long as its
    costliest group. Each process writes its views' batches like any projector (one
    transaction per batch with the tracking), so an interrupted rebuild leaves every view
    at a batch boundary."""
    groups = rebuild_groups(select(list(names) if names else None), workers)
    if len(groups) == 1:
        return _rebuild_group(dict(app_env), groups[0])
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    settings = json.dumps(dict(app_env))
    with tempfile.TemporaryDirectory() as tmp:
        counts = [Path(tmp) / f"group-{i}" for i in range(1, len(groups))]
        # Processes of their own (``python -m projections.runner``), not multiprocessing's
        # spawn, which would import the caller's main module again. They log where this
        # process logs (no pipe to fill while this one works); each writes its count to a
        # file; the settings (secrets included) go on stdin, not on the command line.
        children = []
        for group, count in zip(groups[1:], counts, strict=True):
            child = subprocess.Popen(
                [sys.executable, "-m", "projections.runner", str(count), *group],
                stdin=subprocess.PIPE,
                text=True,
            )
            assert child.stdin is not None
            child.stdin.write(settings)
            child.stdin.close()
            children.append(child)
        try:
            applied = _rebuild_group(dict(app_env), groups[0])
        except BaseException:
            for child in children:
                child.kill()
            raise
        finally:
            for child in children:
                child.wait()
        failed = [" ".join(g) for g, c in zip(groups[1:], children, strict=True) if c.returncode]
        if failed:
            raise RuntimeError(f"rebuilding {'; '.join(failed)} failed (its error is above)")
        return applied + sum(int(count.read_text()) for count in counts)


def rebuild_groups(specs: Sequence[ProjectionSpec], workers: int) -> list[list[str]]:
    """The projections split in at most ``workers`` groups of about the same cost: the
    costliest first, each into the cheapest group so far."""
    groups: list[tuple[float, list[str]]] = [(0.0, []) for _ in range(max(1, workers))]
    for spec in sorted(specs, key=lambda s: -s.sqlite_view.cost):
        cost, names = min(groups, key=lambda g: g[0])
        groups.remove((cost, names))
        groups.append((cost + spec.sqlite_view.cost, [*names, spec.name]))
    return [names for _cost, names in groups if names]


def _rebuild_group(app_env: dict[str, str], names: list[str]) -> int:
    with Projector(app_env, names) as projector:
        return projector.rebuild()


def run_forever(
    app_env: Mapping[str, str],
    stop: threading.Event,
    names: Sequence[str] | None = None,
    *,
    interval: float = 0.5,
    batch_size: int = DEFAULT_BATCH,
    lease: Lease | None = None,
    lease_interval: float = 2.0,
) -> None:
    """The long-running mode of ``closeloop project``: until ``stop`` is set; with a
    ``lease`` (PostgreSQL) one leader per set of projections, the others on standby."""
    with Projector(app_env, names, batch_size=batch_size) as projector:
        try:
            projector.run_forever(stop, interval, lease=lease, lease_interval=lease_interval)
        finally:
            if lease is not None:
                lease.close()


if __name__ == "__main__":
    # One group of a parallel rebuild (``rebuild(workers=...)``): the settings as JSON on
    # stdin; arguments: the file to write how many events it applied to, then the
    # projections' names.
    import json
    import sys
    from pathlib import Path

    result, *group = sys.argv[1:]
    Path(result).write_text(str(_rebuild_group(json.loads(sys.stdin.read()), group)))
