"""The registry actor: which runs are live on this node, and routing of start / lookup / cancel.

It starts each run actor as a transient child of the runs supervisor and forgets it when the
supervisor reports it done. Lookups of runs it does not know are answered with None: the caller
then reads the store, which holds every finished run.
"""

from __future__ import annotations

import logging

import attrs
import trio

from actors.actor import ActorGone, Address, Mailbox, Reply, serve_mailbox
from actors.events import RunInfo
from actors.publisher import Publisher
from actors.run import Cancel, RunActor, RunMessage, Snapshot
from actors.store.base import Store
from actors.supervisor import ChildSpec, Restart, Supervisor
from actors.workflows.catalog import WorkflowDefinition

log = logging.getLogger(__name__)


class RegistryClosed(Exception):
    """The registry starts no more runs: the runtime is shutting down."""


@attrs.frozen
class StartRun:
    """Answered, if `subscribe`, with a subscription from the run's first event, taken before
    the run begins; else with None."""

    info: RunInfo
    workflow: WorkflowDefinition
    subscribe: bool
    reply: Reply[Snapshot | None]


@attrs.frozen
class Lookup:
    run_id: str
    reply: Reply[Address[RunMessage] | None]


@attrs.frozen
class CancelAll:
    reason: str
    reply: Reply[int]


@attrs.frozen
class RunEnded:
    run_id: str


@attrs.frozen
class StopAccepting:
    """From now on StartRun is refused; runs asked for before this message still start (the
    mailbox is FIFO), so none slips past the shutdown that sends it."""

    reply: Reply[None]


RegistryMessage = StartRun | Lookup | CancelAll | RunEnded | StopAccepting


class Registry:
    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        runs: Supervisor,
        *,
        feed_capacity: int,
        max_run_events: int,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.runs_supervisor = runs
        self.feed_capacity = feed_capacity
        self.max_run_events = max_run_events
        self.stats = publisher.stats
        self.mailbox: Mailbox[RegistryMessage] = Mailbox.open("registry")
        self.live: dict[str, RunActor] = {}
        self._changed = trio.Event()
        self.accepting = True

    @property
    def address(self) -> Address[RegistryMessage]:
        return self.mailbox.address

    async def run(self) -> None:
        await serve_mailbox(self.mailbox, self._handle)

    async def wait_until_idle(self) -> None:
        """Return once no run is live."""
        while self.live:
            await self._changed.wait()

    async def _handle(self, message: RegistryMessage) -> None:
        if isinstance(message, StartRun):
            if self.accepting:
                message.reply.set(self._start(message.info, message.workflow, message.subscribe))
            else:
                message.reply.fail(RegistryClosed())
        elif isinstance(message, StopAccepting):
            self.accepting = False
            message.reply.set(None)
        elif isinstance(message, Lookup):
            actor = self.live.get(message.run_id)
            message.reply.set(None if actor is None else actor.mailbox.address)
        elif isinstance(message, CancelAll):
            message.reply.set(self._cancel_all(message.reason))
        elif isinstance(message, RunEnded):
            self.live.pop(message.run_id, None)
            self._changed.set()
            self._changed = trio.Event()
        else:
            raise TypeError(f"registry got a message it does not understand: {message!r}")

    def _start(
        self, info: RunInfo, workflow: WorkflowDefinition, subscribe: bool
    ) -> Snapshot | None:
        actor = RunActor(
            info,
            workflow,
            self.store,
            self.publisher,
            feed_capacity=self.feed_capacity,
            max_run_events=self.max_run_events,
        )
        self.live[info.run_id] = actor
        snapshot = actor.subscribe_before_start() if subscribe else None

        def on_exit(error: Exception | None) -> None:
            try:
                self.address.tell(RunEnded(info.run_id))
            except ActorGone:
                log.debug("registry gone before run %s ended", info.run_id)

        self.runs_supervisor.start_child(
            ChildSpec(
                name=f"run {info.run_id}",
                start=actor.run,
                restart=Restart.TRANSIENT,
                recover=actor.recover,
                give_up=actor.give_up,
                on_exit=on_exit,
            )
        )
        return snapshot

    def _cancel_all(self, reason: str) -> int:
        cancelled = 0
        for actor in self.live.values():
            try:
                actor.mailbox.address.tell(Cancel(reason, Reply()))
            except ActorGone:
                continue
            cancelled += 1
        return cancelled
