"""Runs extraction jobs inline or on a worker thread, and retries the ones that failed.

Every job is durable before it runs (stored with its messages), so the worker may die with
the process: ``process_pending`` — called by a new process, or by the worker when it starts —
finishes what was left.

A job is the unit of failure: whatever goes wrong while it runs is recorded on it as a failed
attempt, so one job can neither make ``add`` raise after its messages were committed, nor
stop ``process_pending`` at itself, nor end the worker thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from typing import Any, get_args

from ..errors import EngramError, ProviderError, ValidationError
from ..ingest import check_limit
from ..models import ExtractionStatus, Job, JobPage, JobPayload, JobState, Scope, Usage
from ..stores.base import Store
from .pipeline import Deriver

log = logging.getLogger("engramdb.extraction")


class ExtractionRunner:
    def __init__(self, deriver: Deriver, store: Store, *, max_attempts: int) -> None:
        self.deriver = deriver
        self.store = store
        self.max_attempts = max_attempts
        self._queue: queue.Queue[tuple[str, str, Scope, JobPayload] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def extractor_name(self) -> str:
        return str(self.deriver.extractor.name)

    @property
    def blocking(self) -> bool:
        """Whether a job waits on an outside service: then ``add(wait=False)`` hands it to the worker."""
        return self.deriver.extractor.blocking

    def run(
        self, tenant_id: str, job_id: str, scope: Scope, payload: JobPayload, *, max_attempts: int | None = None
    ) -> tuple[ExtractionStatus, list[Any]]:
        """Run one job now; an LLM failure leaves it pending (or failed after max attempts)."""
        try:
            results, usage = self.deriver.run(tenant_id, scope, payload, job_id)
        except Exception as exc:  # a job is the unit of failure (module docstring)
            error = str(exc)
            if not isinstance(exc, EngramError):
                log.exception("extraction job %s failed unexpectedly", job_id)
                error = f"{type(exc).__name__}: {exc}"
            job = self.store.fail_job(tenant_id, job_id, error, max_attempts=max_attempts or self.max_attempts)
            spent = (exc.usage if isinstance(exc, ProviderError) else None) or Usage()
            state = "failed" if job.state == "failed" else "pending"
            return ExtractionStatus(extractor=self.extractor_name, state=state, job_id=job_id, error=error,
                                    usage=spent), []  # fmt: skip
        if results is None:  # another process finished it first
            job = self.store.get_job(tenant_id, job_id)
            return ExtractionStatus(extractor=self.extractor_name, state="done", job_id=job_id, usage=job.usage), []
        return ExtractionStatus(extractor=self.extractor_name, state="done", job_id=job_id, usage=usage), results

    def submit(self, tenant_id: str, job_id: str, scope: Scope, payload: JobPayload) -> None:
        """Queue a job for the worker thread, starting it on first use."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="engramdb-extraction", daemon=True)
                self._thread.start()
        self._queue.put((tenant_id, job_id, scope, payload))

    def _work(self) -> None:
        while True:
            task = self._queue.get()
            try:
                if task is None:
                    return
                self.run(*task)
            except Exception:  # the store failed while recording the failure: the job stays pending
                log.exception("extraction job %s could not be run", task[1] if task else None)
            finally:
                self._queue.task_done()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until queued jobs have run; True if the queue emptied in time."""
        done = threading.Event()

        def waiter() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=waiter, daemon=True).start()
        return done.wait(timeout)

    def retry(self, tenant_id: str, job_id: str) -> ExtractionStatus:
        """Run one job now, as a single attempt: if it fails, it is failed again at once (a
        person asked for this try; the worker's attempts were spent before)."""
        task = self.store.job_task(tenant_id, job_id)
        return self.run(tenant_id, job_id, task.scope, task.payload, max_attempts=1)[0]

    def retry_now(self, tenant_id: str, job_id: str) -> Job:
        """``retry`` for a caller: the job as it ended (done, or failed with the new error); a
        done job is returned as it is, as its results are applied once only."""
        job = self.store.get_job(tenant_id, job_id)
        if job.state == "done":
            return job
        self.store.reopen_job(tenant_id, job.id)
        self.retry(tenant_id, job.id)
        return self.store.get_job(tenant_id, job.id)

    def page(
        self, tenant_id: str, *, state: JobState | None, user_ids: Sequence[str] | None, cursor: str | None, limit: int
    ) -> JobPage:
        """A tenant's jobs in one state (None: any), oldest first, a page at a time."""
        if state is not None and state not in get_args(JobState):
            raise ValidationError(f"state must be one of {', '.join(get_args(JobState))}, got {state!r}")
        check_limit(limit)
        found, after = self.store.list_jobs(tenant_id, state=state, user_ids=user_ids, cursor=cursor, limit=limit)
        return JobPage(results=[p.job for p in found], next_cursor=after)

    def process_pending(self, tenant_id: str | None, *, limit: int) -> int:
        """Retry pending jobs now (oldest first); returns how many completed."""
        completed = 0
        for pending in self.store.pending_jobs(tenant_id, limit=limit):
            status, _ = self.run(pending.tenant_id, pending.job.id, pending.scope, pending.payload)
            completed += status.state == "done"
        return completed

    def close(self, timeout: float = 5.0) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)
