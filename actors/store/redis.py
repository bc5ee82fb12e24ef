"""The Redis store (`redis://HOST:PORT/DB`): run histories in a redis-server (7.0 or later), through
coredis.

Keys, all under `rc:`:
- `rc:run:<run_id>`, a hash: the run's info, `status`, `created_at`, `finished_at`,
  `event_count` (the index its next event must have) and `epoch` (its writer's, the fence);
- `rc:ev:<run_id>`, a stream: the event of index `i` is the entry `<i>-1` with the frame in field
  `f` (stream ids must be above `0-0`); explicit ids mean one entry per index at most;
- `rc:runs:<STATUS>`, sorted sets of run ids by `created_at`, for listing and for the runs a
  stopped server left RUNNING;
- `rc:graph:<graph_id>`, a hash: a graph definition as created;
- `rc:writable`: what `CheckWritable` writes.

A commit is one call of the function `rc_commit` of the library `runcast` (`LIBRARY`, loaded with
`FUNCTION LOAD REPLACE` when the store opens): Redis runs a function atomically, and this one
checks every write against the fence of `actors.store.base` (as `actors.store.fence` states it)
before it makes any change, so a commit is all or none, as in the other stores. A refusal comes
back as an error starting `REFUSED`, and `actors.store.fence` names the write at fault from what
the store holds; any other failure (Redis gone, out of memory) is `StorageFailed`. Floats travel
as the text `repr` gives them, so that Lua's number formatting never rounds a timestamp.

The client does not retry a command on a connection error (coredis does by default): a commit
that may or may not have landed is reported as failed, and the fence refuses its writes if it
is sent again after all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import coredis
import orjson
from coredis.exceptions import RedisError, ResponseError
from coredis.retry import NoRetryPolicy

from actors.events import RunInfo, RunStatus
from actors.store.base import (
    AppendEvents,
    CheckWritable,
    ClaimRun,
    CreateRun,
    FinishRun,
    GraphRecord,
    RunRecord,
    SaveGraph,
    StorageFailed,
    Write,
    WriteRefused,
)
from actors.store.fence import first_refusal, runs_written
from actors.supervisor import root_cause

LIBRARY = """#!lua name=runcast

-- rc_commit(payload): the writes of one commit, as JSON, checked all first, then applied.
local function refuse(what)
  return redis.error_reply('REFUSED ' .. what)
end

local function commit(keys, args)
  local writes = cjson.decode(args[1])
  local runs = {}
  local function run(id)
    if runs[id] == nil then
      local r = redis.call('HMGET', 'rc:run:' .. id, 'status', 'epoch', 'event_count')
      if r[1] then
        runs[id] = {status = r[1], epoch = tonumber(r[2]), count = tonumber(r[3])}
      else
        runs[id] = false
      end
    end
    return runs[id]
  end
  local graphs = {}
  for _, w in ipairs(writes) do
    if w.k == 'create' then
      if run(w.id) then return refuse('run ' .. w.id .. ' exists') end
      runs[w.id] = {status = 'RUNNING', epoch = w.epoch, count = 0}
    elseif w.k == 'graph' then
      if graphs[w.id] or redis.call('EXISTS', 'rc:graph:' .. w.id) == 1 then
        return refuse('graph ' .. w.id .. ' already exists')
      end
      graphs[w.id] = true
    elseif w.k ~= 'check' then
      local r = run(w.id)
      if not r or r.status ~= 'RUNNING' then return refuse('run ' .. w.id) end
      if w.k == 'claim' then
        if w.epoch ~= r.epoch + 1 then return refuse('run ' .. w.id) end
        r.epoch = w.epoch
      elseif w.epoch ~= r.epoch then
        return refuse('run ' .. w.id)
      elseif w.k == 'append' then
        if w.first ~= r.count then return refuse('run ' .. w.id) end
        r.count = r.count + #w.frames
      else
        if w.count ~= r.count then return refuse('run ' .. w.id) end
        r.status = w.status
      end
    end
  end
  for _, w in ipairs(writes) do
    local key = 'rc:run:' .. (w.id or '')
    if w.k == 'create' then
      redis.call('HSET', key, 'workflow_id', w.workflow_id, 'workflow_name', w.workflow_name,
        'session_id', w.session_id, 'message', w.message, 'status', 'RUNNING',
        'created_at', w.created_at, 'event_count', 0, 'epoch', w.epoch)
      if w.user_id ~= cjson.null then redis.call('HSET', key, 'user_id', w.user_id) end
      redis.call('ZADD', 'rc:runs:RUNNING', w.created_at, w.id)
    elseif w.k == 'append' then
      for i, frame in ipairs(w.frames) do
        redis.call('XADD', 'rc:ev:' .. w.id, (w.first + i - 1) .. '-1', 'f', frame)
      end
      redis.call('HINCRBY', key, 'event_count', #w.frames)
    elseif w.k == 'finish' then
      local created = redis.call('HGET', key, 'created_at')
      redis.call('HSET', key, 'status', w.status, 'finished_at', w.finished_at)
      redis.call('ZREM', 'rc:runs:RUNNING', w.id)
      redis.call('ZADD', 'rc:runs:' .. w.status, created, w.id)
    elseif w.k == 'claim' then
      redis.call('HSET', key, 'epoch', w.epoch)
    elseif w.k == 'graph' then
      redis.call('HSET', 'rc:graph:' .. w.id, 'name', w.name, 'definition', w.definition,
        'created_at', w.created_at)
    else
      redis.call('SET', 'rc:writable', w.at)
    end
  end
  return 'OK'
end

redis.register_function('rc_commit', commit)
"""


def _payload(write: Write) -> dict[str, Any]:
    """One write as `rc_commit` takes it; floats as text (see the module's docstring)."""
    if isinstance(write, AppendEvents):
        return {"k": "append", "id": write.run_id, "first": write.first, "epoch": write.epoch,
                "frames": list(write.frames)}
    if isinstance(write, CreateRun):
        record, info = write.record, write.record.info
        return {"k": "create", "id": info.run_id, "workflow_id": info.workflow_id,
                "workflow_name": info.workflow_name, "session_id": info.session_id,
                "user_id": info.user_id, "message": info.message,
                "created_at": repr(record.created_at), "epoch": record.epoch}
    if isinstance(write, FinishRun):
        return {"k": "finish", "id": write.run_id, "status": write.status.value,
                "finished_at": repr(write.finished_at), "count": write.event_count,
                "epoch": write.epoch}
    if isinstance(write, ClaimRun):
        return {"k": "claim", "id": write.run_id, "epoch": write.epoch}
    if isinstance(write, SaveGraph):
        graph = write.graph
        return {"k": "graph", "id": graph.graph_id, "name": graph.name,
                "definition": graph.definition, "created_at": repr(graph.created_at)}
    assert isinstance(write, CheckWritable)
    return {"k": "check", "at": repr(write.checked_at)}


def _record(run_id: str, fields: Mapping[str, str]) -> RunRecord:
    finished_at = fields.get("finished_at")
    return RunRecord(
        info=RunInfo(
            run_id, fields["workflow_id"], fields["workflow_name"], fields["session_id"],
            fields.get("user_id"), fields["message"],
        ),
        status=RunStatus(fields["status"]),
        created_at=float(fields["created_at"]),
        finished_at=None if finished_at is None else float(finished_at),
        event_count=int(fields["event_count"]),
        epoch=int(fields["epoch"]),
    )


class RedisStore:
    def __init__(self, client: coredis.Redis[str], url: str) -> None:
        self._redis = client
        self.url = url
        self._closed = False

    async def commit(self, writes: Sequence[Write]) -> None:
        if self._closed:
            raise StorageFailed(f"the store {self.url} is closed")
        payload = orjson.dumps([_payload(write) for write in writes]).decode()
        try:
            await self._redis.fcall("rc_commit", [], [payload])
        except ResponseError as error:
            if str(error).startswith("REFUSED"):
                raise WriteRefused(await self._refusal(writes, str(error))) from None
            raise StorageFailed(f"{error} (Redis, {self.url})") from None
        except RedisError as error:
            raise StorageFailed(f"{error} (Redis, {self.url})") from None

    def refuse_commits(self) -> None:
        """From now on `commit` raises StorageFailed."""
        self._closed = True

    async def _refusal(self, writes: Sequence[Write], reply: str) -> str:
        """The fence's words for the first write that does not fit, from the records as they
        are now; else the function's (a graph id that exists already)."""
        records = {run_id: await self.get_run(run_id) for run_id in runs_written(writes)}
        return first_refusal(writes, records.__getitem__) or reply.removeprefix("REFUSED ")

    async def _read(self, what: str, command: Any) -> Any:
        try:
            return await command
        except RedisError as error:
            raise StorageFailed(f"{error} (Redis, {self.url}, reading {what})") from None

    async def get_run(self, run_id: str) -> RunRecord | None:
        fields = await self._read(run_id, self._redis.hgetall(f"rc:run:{run_id}"))
        return _record(run_id, fields) if fields else None

    async def list_runs(self, limit: int, status: RunStatus | None = None) -> list[RunRecord]:
        statuses = [status] if status is not None else list(RunStatus)
        ids: list[tuple[float, str]] = []
        for each in statuses:
            scored = await self._read(
                "the runs", self._redis.zrange(f"rc:runs:{each.value}", 0, limit - 1, rev=True,
                                               withscores=True)
            ) if limit > 0 else ()
            ids += [(float(member.score), str(member.member)) for member in scored]
        ids.sort(key=lambda pair: pair[0], reverse=True)
        records = [await self.get_run(run_id) for _, run_id in ids[:limit]]
        return [record for record in records if record is not None]

    async def read_events(self, run_id: str, start: int, limit: int) -> list[str]:
        if limit <= 0:
            return []
        entries = await self._read(
            run_id, self._redis.xrange(f"rc:ev:{run_id}", f"{start}-1", "+", count=limit)
        )
        return [entry.field_values["f"] for entry in entries]

    async def count_events(self, run_id: str) -> int:
        count = await self._read(run_id, self._redis.hget(f"rc:run:{run_id}", "event_count"))
        return 0 if count is None else int(count)

    async def unfinished_runs(self) -> list[RunRecord]:
        ids = await self._read(
            "the running runs", self._redis.zrange("rc:runs:RUNNING", 0, -1)
        )
        records = [await self.get_run(str(run_id)) for run_id in ids]
        return [record for record in records if record is not None]

    async def get_graph(self, graph_id: str) -> GraphRecord | None:
        fields = await self._read(graph_id, self._redis.hgetall(f"rc:graph:{graph_id}"))
        if not fields:
            return None
        return GraphRecord(graph_id, fields["name"], fields["definition"], float(fields["created_at"]))


@asynccontextmanager
async def open_redis_store(url: str) -> AsyncIterator[RedisStore]:
    """Connect to the redis-server of `url` (`redis://HOST:PORT/DB`), load the function library,
    and close the connections on exit. Raises StorageFailed when Redis cannot be reached."""
    parts = urlsplit(url)
    db = int(parts.path.lstrip("/") or 0)
    client: coredis.Redis[str] = coredis.Redis(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=db,
        password=parts.password,
        ssl=parts.scheme == "rediss",
        decode_responses=True,
        retry_policy=NoRetryPolicy(),
    )
    try:
        async with client:  # coredis's connections live in a task group of the client's
            await client.function_load(LIBRARY, replace=True)
            store = RedisStore(client, url)
            try:
                yield store
            finally:
                store.refuse_commits()
    except* RedisError as group:
        raise StorageFailed(f"{root_cause(group)} (Redis, {url})") from None
