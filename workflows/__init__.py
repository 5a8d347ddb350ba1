"""Durable orchestration with Temporal: the relay, GrievanceWorkflow, activities, worker.

Design note for the next engineers
==================================

Flow: command → event store → **relay** (``relay.py``) → ``signal_with_start`` of
``grievance-<uuid>`` with a ``GrievanceUpdate`` (``messages.py``) → **GrievanceWorkflow**
(``grievance.py``) waits on durable timers → **activities** (``activities.py``) call
``GrievanceApp`` (urge / escalate / close / webhook) → new events → relay → …

Exactly once in effect
    The relay tracks its position with eventsourcing's ``TrackingRecorder`` on the
    event store's own backend (key ``Grievances/relay`` or ``…/relay-<i>of<N>``) and
    records it only after Temporal accepted every signal of a batch (at-least-once).
    Each update carries the aggregate version; the workflow ignores versions it has
    applied. Activities use command ids derived from workflow state
    (``grievance-<id>/<step>/<assignment>/<kind>/<due iso>``) with ``only_if_open`` and
    ``due``, so a retried activity, or a timer firing after the department acted,
    records nothing.

The envelope is a snapshot, not a diff
    ``GrievanceUpdate`` holds the grievance's *open deadlines* and current-round
    assignments as of the newest relayed event (read from the aggregate at that
    version), plus ``urge_at``/``level2_at`` computed by the relay from the same SLA
    policy. The workflow replaces its schedule with each newer snapshot: a granted
    extension or a reopening simply arrives as new deadlines and re-arms the ladder;
    a met deadline disappears. Several events of one grievance in one relay batch
    become one signal (every signal costs a workflow task). A workflow starts with the
    grievance's first deadline (dispatch), not at intake: a grievance received,
    rejected or answered at intake never has one. The workflow keeps one timer, for
    its next step's instant, re-armed only when that instant changes. Events that change no
    deadline (Classified, ProgressReported, ExtensionRequested/Denied, the workflow's
    own Urged/Escalated, …) are not relayed.

Per-assignment structure
    No child workflows: each open deadline (per assignment: sign-for, resolve,
    report-in, re-dispatch; per grievance: feedback) gets its own ladder of steps —
    urge at the profile's ``urge_share``, level-1 escalation at the deadline, level 2
    after ``level2_after``; the feedback window gets an urge to the dispatch centre
    (the callback reminder) and a close with outcome ``no_response``. Lead, assisting
    and summoned assignments are tracked separately (``state`` query). The rule that
    the lead's resolution waits for every assisting part is the domain's; level 3 on
    the third reopening is recorded by ``Grievance.record_feedback`` itself.

History and versioning
    The workflow continues as new after each reopening and when Temporal suggests it
    (or past ``HISTORY_LIMIT`` events), carrying ``WorkflowState`` — but only when no
    webhook activity is in flight (an attempt must not outlive its run; the
    time-skipping test server even stalls on such orphans), the loop meanwhile going on
    in the current run. Any change to the
    commands the workflow issues (timers, activities, their order) must be guarded
    with ``workflow.patched(...)``; the Replayer tests in
    ``tests/integration/test_workflow_*.py`` replay every scenario's histories and fail
    on nondeterminism; ``tests/integration/data/histories`` keeps histories recorded by
    earlier code (``CLOSELOOP_RECORD_HISTORIES=1`` adds new ones; never re-record to
    paper over a replay failure). Workflow ids use ``ALLOW_DUPLICATE_FAILED_ONLY``: a completed
    grievance is never restarted (the relay treats "already started" as delivered).

Webhooks
    ``notify`` POSTs a JSON body signed with HMAC-SHA256 over ``"<timestamp>.<body>"``
    (``webhooks.py``), per-department secrets from ``CLOSELOOP_WEBHOOK_SECRETS_FILE``;
    notifications run as separate activities beside the loop (retried with backoff,
    given up after ``NOTIFY_SCHEDULE_TO_CLOSE``), so a department that is down never
    delays a deadline step. The relay flags assignments whose department has a
    webhook, so departments without one cost no activity.

Processes
    ``closeloop worker`` (``worker.py``; sync activities in a thread pool) and
    ``closeloop relay [--partition i/N]``; both stop gracefully on SIGTERM/SIGINT.
    The worker caches at most ``MAX_CACHED_WORKFLOWS`` (256) workflows, the ones
    busy lately; a grievance idle until its next deadline is evicted and replayed
    from its history at its next timer or signal (memory per open workflow vs a
    replay's CPU: ``bench/README.md`` (6)).
    ``closeloop/temporal.py`` connects clients from settings (TLS, pydantic
    converter) and offers ``temporal_reachable(settings)`` for ``/readyz``.

Known limits
    Deadline instants in the envelope are computed when the relay reads the event:
    an SLA-policy change between the event and the relay affects urge/level-2 times
    (never the deadlines themselves). Changing the relay partition count starts new
    tracking keys (workflows dedupe whatever is re-sent).
"""
