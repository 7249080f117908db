"""The webhook sender: a supervised child of every node; one node at a time sends.

Every node runs one. The one holding the lease (``Webhooks.take_webhook_lease``, renewed
three times per lease period; another node takes it over once it lapses) sends: it POSTs
each due outbox event, at most ``MAX_IN_FLIGHT`` at once, each bounded by the timeout,
marks it delivered after a 2xx, else schedules it again with back-off
(``backoff.py``) until the retry horizon is past. It also runs the
``message.undelivered`` scan and sweeps finished events. The others only count the
outbox for ``/metrics``.

Nothing here is on the chat path: chat writes only add outbox rows, in their own
transactions, so a slow or dead receiver delays nothing but its own events. Delivery is at
least once: an event is marked delivered only after its 2xx, so a crash (or a lost lease)
between the two sends it again; receivers de-duplicate by its id.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import httpx
import trio

from hubbub.config import Settings
from hubbub.metrics import Metrics
from hubbub.storage import Storage, StorageError
from hubbub.storage.webhook_store import OutboxEvent, Webhooks
from hubbub.webhooks.backoff import next_attempt
from hubbub.webhooks.payload import render
from hubbub.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, signature

log = logging.getLogger("hubbub.webhooks")

#: Events being POSTed at once, at most.
MAX_IN_FLIGHT = 16
#: Seconds between looks for due events (while leading).
POLL_INTERVAL = 0.25
#: Seconds between counts of the outbox depth.
COUNT_INTERVAL = 2.0
#: Messages one undelivered scan looks at, and scans in a row when there are more.
SCAN_LIMIT = 200
SCAN_ROUNDS = 10
#: Finished events are kept this long (for inspection), then swept, hourly.
KEEP_FINISHED = timedelta(days=7)
SWEEP_INTERVAL = 3600.0
SWEEP_LIMIT = 10_000
#: How long giving the lease up on the way out may take.
RELEASE_TIMEOUT = 2.0


@attrs.frozen
class WebhookConfig:
    """The webhook settings (``HUBBUB_WEBHOOK_*``)."""

    url: str
    secret: str
    timeout: float = 5.0
    undelivered_after: float = 30.0
    retry_horizon: float = 86400.0
    lease: float = 15.0

    @classmethod
    def of(cls, settings: Settings) -> WebhookConfig | None:
        """The webhook settings, or None if webhooks are off (no URL)."""
        if settings.webhook_url is None or settings.webhook_secret is None:
            return None
        return cls(
            settings.webhook_url,
            settings.webhook_secret,
            settings.webhook_timeout,
            settings.webhook_undelivered_after,
            settings.webhook_retry_horizon,
            settings.webhook_lease,
        )


@attrs.define(kw_only=True, eq=False)
class WebhookSender:
    storage: Storage
    webhooks: Webhooks
    config: WebhookConfig
    metrics: Metrics
    #: This node, as the lease names it.
    holder: str = attrs.field(factory=lambda: secrets.token_hex(8))
    leading: bool = False
    _in_flight: set[int] = attrs.field(factory=set)

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; on the way out, give the lease up (so another node takes
        over at once) unless storage is away."""
        try:
            async with (
                httpx.AsyncClient(timeout=self.config.timeout, follow_redirects=False) as client,
                trio.open_nursery() as nursery,
            ):
                task_status.started()
                await self._loop(client, nursery)
        finally:
            self.leading = False
            # If storage is away, the lease lapses by itself.
            with (
                trio.CancelScope(shield=True),
                trio.move_on_after(RELEASE_TIMEOUT),
                contextlib.suppress(StorageError),
            ):
                await self.webhooks.release_webhook_lease(self.holder)

    async def _loop(self, client: httpx.AsyncClient, nursery: trio.Nursery) -> None:
        lease_at = count_at = scan_at = sweep_at = trio.current_time()
        scan_interval = min(1.0, self.config.undelivered_after / 2)
        while True:
            clock = trio.current_time()
            if clock >= lease_at:
                await self._take_lease()
                lease_at = clock + self.config.lease / 3
            if clock >= count_at:
                await self._count()
                count_at = clock + COUNT_INTERVAL
            if self.leading:
                if clock >= scan_at:
                    await self.scan()
                    scan_at = clock + scan_interval
                if clock >= sweep_at:
                    await self._sweep()
                    sweep_at = clock + SWEEP_INTERVAL
                await self._dispatch(client, nursery)
            await trio.sleep(POLL_INTERVAL)

    async def _take_lease(self) -> None:
        try:
            leading = await self.webhooks.take_webhook_lease(
                self.holder, datetime.now(UTC), self.config.lease
            )
        except StorageError as error:
            # Without storage nothing can be marked sent: stop until it is back.
            leading = False
            log.warning("webhook lease not renewed", extra={"fields": {"error": str(error)}})
        if leading != self.leading:
            log.info(
                "sending webhooks" if leading else "another node sends webhooks",
                extra={"fields": {"holder": self.holder}},
            )
        self.leading = leading

    async def _count(self) -> None:
        # Storage away: the last count stands (the lease renewal logs the outage).
        with contextlib.suppress(StorageError):
            self.metrics.webhook_outbox_depth.set(await self.webhooks.webhook_backlog())

    async def scan(self) -> int:
        """Enqueue the ``message.undelivered`` events due now; how many."""
        now = datetime.now(UTC)
        pending_before = now - timedelta(seconds=self.config.undelivered_after)
        not_before = now - timedelta(seconds=self.config.retry_horizon)
        enqueued = 0
        try:
            for _ in range(SCAN_ROUNDS):
                looked, found = await self.webhooks.scan_undelivered(
                    pending_before, not_before, SCAN_LIMIT, now
                )
                enqueued += found
                if looked < SCAN_LIMIT:
                    break
        except StorageError as error:
            log.warning("undelivered scan failed", extra={"fields": {"error": str(error)}})
        return enqueued

    async def _sweep(self) -> None:
        try:
            swept = await self.webhooks.sweep_webhooks(
                datetime.now(UTC) - KEEP_FINISHED, SWEEP_LIMIT
            )
        except StorageError as error:
            log.warning("webhook sweep failed", extra={"fields": {"error": str(error)}})
            return
        if swept:
            log.info("webhook outbox swept", extra={"fields": {"events": swept}})

    async def _dispatch(self, client: httpx.AsyncClient, nursery: trio.Nursery) -> None:
        """Start a delivery for each due event not being sent already, up to the bound."""
        free = MAX_IN_FLIGHT - len(self._in_flight)
        if free <= 0:
            return
        try:
            due = await self.webhooks.due_webhooks(datetime.now(UTC), free + len(self._in_flight))
        except StorageError as error:
            log.warning("webhook outbox unreadable", extra={"fields": {"error": str(error)}})
            return
        for event in due:
            if len(self._in_flight) >= MAX_IN_FLIGHT:
                break
            if event.seq not in self._in_flight:
                self._in_flight.add(event.seq)
                nursery.start_soon(self._deliver, client, event)

    async def _deliver(self, client: httpx.AsyncClient, event: OutboxEvent) -> None:
        """POST one event and record the outcome. A storage error leaves it pending: it
        is sent again (at least once)."""
        try:
            body = await render(self.storage, event)
            outcome, error = await self._post(client, event, body)
            self.metrics.webhook_attempts.labels(outcome).inc()
            now = datetime.now(UTC)
            if outcome == "delivered":
                await self.webhooks.webhook_delivered(event.seq, now)
                return
            self.metrics.webhook_failures.inc()
            retry_at = next_attempt(
                event.created_at, event.attempts + 1, now, self.config.retry_horizon
            )
            fields = {"id": event.event_id, "type": event.type, "error": error}
            if retry_at is None:
                self.metrics.webhook_given_up.inc()
                log.warning("webhook given up", extra={"fields": fields})
            else:
                log.info("webhook failed, will retry", extra={"fields": fields})
            await self.webhooks.webhook_failed(event.seq, error, retry_at, now)
        except StorageError as storage_error:
            log.warning(
                "webhook outcome not recorded",
                extra={"fields": {"id": event.event_id, "error": str(storage_error)}},
            )
        finally:
            self._in_flight.discard(event.seq)

    async def _post(
        self, client: httpx.AsyncClient, event: OutboxEvent, body: bytes
    ) -> tuple[str, str]:
        """``(outcome, error)`` of one POST: ``delivered`` (a 2xx), ``rejected`` (another
        status), ``timeout`` (no full answer within the timeout) or ``error``. The
        answer's body is never read."""
        headers = {
            "content-type": "application/json",
            "user-agent": "hubbub-webhooks",
            EVENT_ID_HEADER: event.event_id,
            SIGNATURE_HEADER: signature(self.config.secret, body),
        }
        status = 0
        with trio.move_on_after(self.config.timeout) as deadline:
            try:
                async with client.stream(
                    "POST", self.config.url, content=body, headers=headers
                ) as response:
                    status = response.status_code
            except httpx.TimeoutException:
                return "timeout", f"no answer within {self.config.timeout} s"
            except httpx.HTTPError as error:
                return "error", f"{type(error).__name__}: {error}"
        if deadline.cancelled_caught:
            return "timeout", f"no answer within {self.config.timeout} s"
        if 200 <= status < 300:
            return "delivered", ""
        return "rejected", f"HTTP {status}"
