"""Extraction jobs over HTTP: list them (the failed ones by default) and run one again.

A job that failed for good (the LLM was down for all its attempts) is never retried by the
server itself; these routes let a person, or the inspector, find it and run it again once the
LLM answers. A key limited to some users sees and retries only those users' jobs; another
user's job, like another tenant's, is answered as not found.
"""

from __future__ import annotations

from typing import Literal

from fastapi import Depends, FastAPI, Query

from ..aio import AsyncMemory
from ..errors import NotFoundError
from ..ingest import MAX_PAGE
from ..models import ApiKey, Job, JobPage
from .access import check_user
from .routes import Scoped, Tenant

StateParam = Literal["pending", "done", "failed", "any"]


async def _owned_job(m: AsyncMemory, key: ApiKey, job_id: str) -> Job:
    """The job, if this key may see it (its user is one of the key's)."""
    job = await m.job(job_id)
    if key.user_ids is not None and job.user_id not in key.user_ids:
        raise NotFoundError(f"no job with id {job.id!r}")
    return job


def register_jobs(app: FastAPI, tenant: Tenant) -> None:
    @app.get("/v1/jobs", response_model=JobPage, tags=["jobs"])
    async def list_jobs(
        state: StateParam = Query("failed", description="which jobs; 'any' for all of them"),
        user_id: str | None = None,
        cursor: str | None = None,
        limit: int = Query(50, ge=1, le=MAX_PAGE),
        t: Scoped = Depends(tenant),
    ) -> JobPage:
        """A tenant's extraction jobs, oldest first. A key limited to some users lists only
        their jobs (all of them without ``user_id``), as ``/v1/scopes`` lists only their scopes."""
        m, key = t
        if user_id is not None:
            check_user(key, user_id)
        users = [user_id] if user_id is not None else key.user_ids
        return await m.jobs(state=None if state == "any" else state, user_ids=users, cursor=cursor, limit=limit)

    @app.get("/v1/jobs/{job_id}", response_model=Job, tags=["jobs"])
    async def get_job(job_id: str, t: Scoped = Depends(tenant)) -> Job:
        return await _owned_job(*t, job_id)

    @app.post("/v1/jobs/{job_id}/retry", response_model=Job, tags=["jobs"])
    async def retry_job(job_id: str, t: Scoped = Depends(tenant)) -> Job:
        """Run the job again now, one attempt, and answer with it as it ended: ``done``, or
        ``failed`` with the new error. A done job is answered as it is, never run twice."""
        m, key = t
        await _owned_job(m, key, job_id)
        return await m.retry_job(job_id)
