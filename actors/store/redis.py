"""The Redis store (`redis://HOST:PORT/DB`): run histories in a redis-server (7.0 or later), through
coredis, shared by every node started on the same URL.

Keys, all under `rc:`:
- `rc:run:<run_id>`, a hash: the run's info, `status`, `created_at`, `finished_at`,
  `event_count` (the index its next event must have), `epoch` (its writer's, the fence), `owner`
  (the lease token of the node incarnation that writes it), `node` (that node's id) and, once
  another node asked for it, `cancel` (the reason);
- `rc:ev:<run_id>`, a stream: the event of index `i` is the entry `<i>-1` with the frame in field
  `f` (stream ids must be above `0-0`); explicit ids mean one entry per index at most; it expires
  `retention` seconds after the run finished, when a retention is set;
- `rc:runs:<STATUS>`, sorted sets of run ids by `created_at`, for listing (`rc_list`, a
  read-only function, pages through them) and counting; `rc:wf:<workflow_id>`, the same of
  each workflow, every status in one; `rc:ids`, every run id at score 0, for a prefix
  (`ZRANGE BYLEX`); `rc:indexed`, set once the runs of a Redis written before the last two
  existed are in them (`index_runs`, when a store opens);
- `rc:node:<node_id>`: the node's lease, holding its current token (`actors.store.redis_lease`);
- `rc:owned:<token>`, the running runs of a node incarnation, and `rc:owners`, the tokens that
  have some: where every node looks for runs whose owner's lease is gone (`unfinished_runs`);
- `rc:graph:<graph_id>`, a hash: a graph definition as created;
- `rc:writable`: what `CheckWritable` writes.

A commit is one call of the function `rc_commit` of the library `runcast` (`LIBRARY`, loaded with
`FUNCTION LOAD REPLACE` when the store opens): Redis runs a function atomically, and this one
checks every write before it makes any change, so a commit is all or none, as in the other
stores. It checks the fence of `actors.store.base` (as `actors.store.fence` states it) and the
ownership of each run: an append or finish only by the run's owner while the owner's lease
lives; a claim only by the owner or once the owner's lease is gone. An identical retry of a
run's last batch is taken and changes nothing (a commit whose reply was lost may be sent
again). Then it publishes each run's events on the run's channel (`actors.store.redis_channels`)
in the same atomic step. A refusal comes back as an error starting `REFUSED`, and
`actors.store.fence` names the write at fault from what the store holds (an ownership refusal is
`OwnershipLost`); any other failure (Redis gone, out of memory) is `StorageFailed`. Floats travel
as the text `repr` gives them, so that Lua's number formatting never rounds a timestamp.

The client does not retry a command on a connection error (coredis does by default): a commit
that may or may not have landed is reported as failed, and the run is recovered from what the
store holds.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import coredis
import orjson
import trio
from coredis.exceptions import RedisError, ResponseError
from coredis.retry import NoRetryPolicy
from coredis.tokens import PureToken

from actors.events import RunInfo, RunStatus
from actors.feed import Feed
from actors.store.base import (
    AppendEvents,
    CancelRequested,
    CheckWritable,
    ClaimRun,
    CreateRun,
    FinishRun,
    GraphRecord,
    HistoryGone,
    LeaseLost,
    Notice,
    OwnershipLost,
    RecheckCancels,
    RunCursor,
    RunRecord,
    SaveGraph,
    StorageFailed,
    Write,
    WriteRefused,
    prefix_end,
)
from actors.store.fence import first_refusal, runs_written
from actors.store.redis_channels import RunChannels
from actors.store.redis_lease import NodeLease, NodeSettings
from actors.supervisor import root_cause

T = TypeVar("T")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6379

LIST_BATCH = 1000  # sorted set entries `rc_list` reads at a time
PREFIX_MATCHES = 500  # run ids of a prefix read from `rc:ids`, at most; more: `rc_list` walks
INDEXED = "rc:indexed"  # set once the runs of an earlier version are in rc:wf:* and rc:ids

LIBRARY = """#!lua name=runcast

local LIST_BATCH = %d

local function refuse(what)
  return redis.error_reply('REFUSED ' .. what)
end

local function node_of(token)
  return string.match(token, '^(.*)#[^#]*$')
end

-- rc_commit(payload): the writes of one commit, as JSON, checked all first, then applied; the
-- events of each run are then published on its channel.
local function commit(keys, args)
  local call = cjson.decode(args[1])
  local me, writes = call.token, call.writes
  local leases = {}
  local function alive(token)
    if not token then return false end
    if leases[token] == nil then
      leases[token] = redis.call('GET', 'rc:node:' .. node_of(token)) == token
    end
    return leases[token]
  end
  local runs = {}
  local function run(id)
    if runs[id] == nil then
      local r = redis.call('HMGET', 'rc:run:' .. id, 'status', 'epoch', 'event_count', 'owner')
      if r[1] then
        runs[id] = {status = r[1], epoch = tonumber(r[2]), count = tonumber(r[3]), owner = r[4] or nil}
      else
        runs[id] = false
      end
    end
    return runs[id]
  end
  local function stored(w)  -- an identical retry of the events just before the run's next one
    local got = redis.call('XRANGE', 'rc:ev:' .. w.id, w.first .. '-1', '+', 'COUNT', #w.frames)
    if #got ~= #w.frames then return false end
    for i, entry in ipairs(got) do
      if entry[2][2] ~= w.frames[i] then return false end
    end
    return true
  end
  local graphs = {}
  for _, w in ipairs(writes) do
    if w.k == 'create' then
      if run(w.id) then return refuse('run ' .. w.id .. ' exists') end
      if not alive(me) then return refuse('lease') end
      runs[w.id] = {status = 'RUNNING', epoch = w.epoch, count = 0, owner = me, claimed = true}
    elseif w.k == 'graph' then
      if graphs[w.id] or redis.call('EXISTS', 'rc:graph:' .. w.id) == 1 then
        return refuse('graph ' .. w.id .. ' already exists')
      end
      graphs[w.id] = true
    elseif w.k == 'check' then
      if not alive(me) then return refuse('lease') end
    else
      local r = run(w.id)
      if not r or r.status ~= 'RUNNING' then return refuse('run ' .. w.id) end
      if w.k == 'claim' then
        if w.epoch ~= r.epoch + 1 then return refuse('run ' .. w.id) end
        if r.owner ~= me and alive(r.owner) then return refuse('held ' .. w.id) end
        r.epoch, r.from, r.owner, r.claimed = w.epoch, r.owner, me, true
      elseif r.owner ~= me or not (r.claimed or alive(me)) then
        return refuse('lease ' .. w.id)
      elseif w.epoch ~= r.epoch then
        return refuse('run ' .. w.id)
      elseif w.k == 'append' then
        if w.first == r.count then
          r.count = r.count + #w.frames
        elseif w.first >= 0 and #w.frames > 0 and w.first + #w.frames == r.count and stored(w) then
          w.retry = true
        else
          return refuse('run ' .. w.id)
        end
      else
        if w.count ~= r.count then return refuse('run ' .. w.id) end
        r.status = w.status
      end
    end
  end
  local published, order = {}, {}
  local function batch(id, first)
    if not published[id] then
      published[id] = {first = first, frames = {}, ended = 0}
      table.insert(order, id)
    end
    return published[id]
  end
  for _, w in ipairs(writes) do
    local key = 'rc:run:' .. (w.id or '')
    if w.k == 'create' then
      redis.call('HSET', key, 'workflow_id', w.workflow_id, 'workflow_name', w.workflow_name,
        'session_id', w.session_id, 'message', w.message, 'status', 'RUNNING',
        'created_at', w.created_at, 'event_count', 0, 'epoch', w.epoch,
        'owner', me, 'node', node_of(me))
      if w.user_id ~= cjson.null then redis.call('HSET', key, 'user_id', w.user_id) end
      redis.call('ZADD', 'rc:runs:RUNNING', w.created_at, w.id)
      redis.call('ZADD', 'rc:wf:' .. w.workflow_id, w.created_at, w.id)
      redis.call('ZADD', 'rc:ids', 0, w.id)
      redis.call('SADD', 'rc:owned:' .. me, w.id)
      redis.call('SADD', 'rc:owners', me)
    elseif w.k == 'append' then
      if not w.retry then
        local frames = batch(w.id, w.first).frames
        for i, frame in ipairs(w.frames) do
          redis.call('XADD', 'rc:ev:' .. w.id, (w.first + i - 1) .. '-1', 'f', frame)
          table.insert(frames, frame)
        end
        redis.call('HINCRBY', key, 'event_count', #w.frames)
      end
    elseif w.k == 'finish' then
      local created = redis.call('HGET', key, 'created_at')
      redis.call('HSET', key, 'status', w.status, 'finished_at', w.finished_at)
      redis.call('ZREM', 'rc:runs:RUNNING', w.id)
      redis.call('ZADD', 'rc:runs:' .. w.status, created, w.id)
      redis.call('SREM', 'rc:owned:' .. runs[w.id].owner, w.id)
      if call.retention_ms > 0 then
        redis.call('PEXPIRE', 'rc:ev:' .. w.id, call.retention_ms)
      end
      batch(w.id, w.count).ended = 1
    elseif w.k == 'claim' then
      redis.call('HSET', key, 'epoch', w.epoch, 'owner', me, 'node', node_of(me))
      if runs[w.id].from then redis.call('SREM', 'rc:owned:' .. runs[w.id].from, w.id) end
      redis.call('SADD', 'rc:owned:' .. me, w.id)
      redis.call('SADD', 'rc:owners', me)
    elseif w.k == 'graph' then
      redis.call('HSET', 'rc:graph:' .. w.id, 'name', w.name, 'definition', w.definition,
        'created_at', w.created_at)
    else
      redis.call('SET', 'rc:writable', w.at)
    end
  end
  for _, id in ipairs(order) do
    local b = published[id]
    redis.call('PUBLISH', 'rc:ch:' .. id,
      b.first .. ' ' .. b.ended .. '\\n' .. table.concat(b.frames, '\\n'))
  end
  return 'OK'
end

-- rc_cancel(run_id, reason): ask the owner of a running run to cancel it.
local function cancel(keys, args)
  local id, reason = args[1], args[2]
  local key = 'rc:run:' .. id
  local r = redis.call('HMGET', key, 'status', 'owner')
  if not r[1] then return 'UNKNOWN' end
  if r[1] ~= 'RUNNING' then return r[1] end
  if redis.call('HSETNX', key, 'cancel', reason) == 0 then return 'RUNNING' end
  if r[2] then redis.call('PUBLISH', 'rc:ctl:' .. r[2], id .. '\\n' .. reason) end
  return 'CANCELLING'
end

-- rc_lease(mode, node, token, ttl_ms): a node's lease, `rc:node:<node>` holding its token.
local function lease(keys, args)
  local mode, key, token = args[1], 'rc:node:' .. args[2], args[3]
  if mode == 'acquire' then
    if redis.call('SET', key, token, 'NX', 'PX', args[4]) then return 'OK' end
    return 'HELD'
  end
  if redis.call('GET', key) ~= token then return 'LOST' end
  if mode == 'renew' then
    redis.call('PEXPIRE', key, args[4])
  else
    redis.call('DEL', key)
  end
  return 'OK'
end

-- The byte order of sorted set members (Lua's own '<' on strings follows the server's locale).
local function bytes_below(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- rc_list(keys: the sets to walk (of statuses, or one workflow's); args: limit, the cursor's
-- score or '+inf', the cursor's run id or '', a run id prefix or '', a status or ''): per set,
-- the first `limit` runs after the cursor in the order (score, run id) descending that pass the
-- filters, as id, score, id, score... A set is read in batches from the cursor's score down, so
-- a page without filters reads little more than its own runs; the filters look at each run in
-- turn.
local function list_runs(keys, args)
  local limit, top, after, prefix, status = tonumber(args[1]), args[2], args[3], args[4], args[5]
  local top_score = tonumber(top)
  local found = {}
  for _, key in ipairs(keys) do
    local taken, offset = 0, 0
    while taken < limit do
      local batch = redis.call('ZRANGE', key, top, '-inf', 'BYSCORE', 'REV',
        'LIMIT', offset, LIST_BATCH, 'WITHSCORES')
      for i = 1, #batch, 2 do
        local id, score = batch[i], batch[i + 1]
        if taken < limit
            and (after == '' or tonumber(score) ~= top_score or bytes_below(id, after))
            and (prefix == '' or string.sub(id, 1, #prefix) == prefix)
            and (status == '' or redis.call('HGET', 'rc:run:' .. id, 'status') == status) then
          table.insert(found, id)
          table.insert(found, score)
          taken = taken + 1
        end
      end
      if #batch < 2 * LIST_BATCH then break end
      offset = offset + LIST_BATCH
    end
  end
  return found
end

redis.register_function('rc_commit', commit)
redis.register_function{function_name = 'rc_list', callback = list_runs, flags = {'no-writes'}}
redis.register_function('rc_cancel', cancel)
redis.register_function('rc_lease', lease)
""" % LIST_BATCH


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
        node=fields.get("node"),
    )


class RedisStore:
    def __init__(
        self,
        client: coredis.Redis[str],
        url: str,
        lease: NodeLease,
        retention: float | None,
    ) -> None:
        self._redis = client
        self.url = url
        self.lease = lease
        parts = urlsplit(url)
        self.channels = RunChannels(
            parts.hostname or DEFAULT_HOST, parts.port or DEFAULT_PORT, parts.password,
            self._cancel_requested, lambda: self._notices.send_nowait(RecheckCancels()),
        )
        self.retention = retention
        self._closed = False
        self._notices, self._notices_out = trio.open_memory_channel[Notice](math.inf)

    @property
    def node_id(self) -> str:
        return self.lease.settings.node_id

    @property
    def sweep_period(self) -> float:
        return self.lease.settings.lease_renew

    @property
    def failure(self) -> str | None:
        return self.lease.failure or self.channels.failure

    async def commit(self, writes: Sequence[Write]) -> None:
        if self._closed:
            raise StorageFailed(f"the store {self.url} is closed")
        retention_ms = 0 if self.retention is None else max(round(self.retention * 1000), 1)
        payload = orjson.dumps({
            "token": self.lease.token,
            "retention_ms": retention_ms,
            "writes": [_payload(write) for write in writes],
        }).decode()
        try:
            await self._redis.fcall("rc_commit", [], [payload])
        except ResponseError as error:
            reply = str(error)
            if reply == "REFUSED lease":
                raise OwnershipLost(
                    f"node {self.node_id} holds no live lease in Redis, so it starts no run"
                    " until it has one again"
                ) from None
            if reply.startswith("REFUSED lease"):
                raise OwnershipLost(
                    f"node {self.node_id} no longer holds run {reply.removeprefix('REFUSED lease ')}"
                    f" (its lease lapsed, or another node took the run over)"
                ) from None
            if reply.startswith("REFUSED held"):
                run_id = reply.removeprefix("REFUSED held ")
                raise WriteRefused(f"run {run_id} is held by a live node") from None
            if reply.startswith("REFUSED"):
                raise WriteRefused(await self._refusal(writes, reply)) from None
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

    async def _read(self, what: str, command: Awaitable[T]) -> T:
        try:
            return await command
        except RedisError as error:
            raise StorageFailed(f"{error} (Redis, {self.url}, reading {what})") from None

    async def get_run(self, run_id: str) -> RunRecord | None:
        fields = await self._read(run_id, self._redis.hgetall(f"rc:run:{run_id}"))
        return _record(run_id, fields) if fields else None

    async def _get_runs(self, run_ids: Iterable[str]) -> list[RunRecord]:
        """The records of `run_ids` that exist, in that order, in one round trip."""
        ids = list(run_ids)
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            replies = [pipe.hgetall(f"rc:run:{run_id}") for run_id in ids]
        fields = [await self._read("the runs", reply) for reply in replies]
        return [_record(run_id, each) for run_id, each in zip(ids, fields) if each]

    async def list_runs(
        self,
        limit: int,
        status: RunStatus | None = None,
        *,
        workflow_id: str | None = None,
        run_id_prefix: str | None = None,
        before: RunCursor | None = None,
    ) -> list[RunRecord]:
        """A prefix that few run ids start with: those runs, from `rc:ids`, filtered and sorted
        here. Else one call of `rc_list` (atomic: a run that changes status meanwhile is in one
        set) on the workflow's set, or on every status's set, their answers merged; then the
        records in one round trip."""
        if limit <= 0:
            return []
        if run_id_prefix:
            matches = await self._runs_starting(run_id_prefix)
            if matches is not None:
                kept = [
                    r for r in matches
                    if (status is None or r.status is status)
                    and (workflow_id is None or r.info.workflow_id == workflow_id)
                    and (before is None or before.precedes(r))
                ]
                kept.sort(key=lambda r: (r.created_at, r.info.run_id), reverse=True)
                return kept[:limit]
        if workflow_id is not None:
            keys, status_filter = [f"rc:wf:{workflow_id}"], "" if status is None else status.value
        else:
            statuses = [status] if status is not None else list(RunStatus)
            keys, status_filter = [f"rc:runs:{each.value}" for each in statuses], ""
        reply = await self._read("the runs", self._redis.fcall_ro(
            "rc_list",
            keys,
            [limit, "+inf" if before is None else repr(before.created_at),
             "" if before is None else before.run_id, run_id_prefix or "", status_filter],
        ))
        found = cast(list[str], reply)
        scored = sorted(
            ((float(score), run_id) for run_id, score in zip(found[::2], found[1::2])),
            reverse=True,
        )
        return await self._get_runs(run_id for _, run_id in scored[:limit])

    async def _runs_starting(self, prefix: str) -> list[RunRecord] | None:
        """The runs whose id starts with `prefix`, from the lexical index `rc:ids`; None if
        more than `PREFIX_MATCHES` do (walking the runs newest first then finds a page sooner)."""
        end = prefix_end(prefix)
        ids = await self._read("the run ids", self._redis.zrange(
            "rc:ids", f"[{prefix}", "+" if end is None else f"({end}",
            sortby=PureToken.BYLEX, offset=0, count=PREFIX_MATCHES + 1,
        ))
        if len(ids) > PREFIX_MATCHES:
            return None
        return await self._get_runs(map(str, ids))

    async def count_runs(self) -> dict[RunStatus, int]:
        """ZCARD of each status's set, in one transaction (a run is in exactly one of them)."""


        async def zcards() -> list[int]:
            async with self._redis.pipeline(transaction=True) as pipe:
                replies = [pipe.zcard(f"rc:runs:{status.value}") for status in RunStatus]
            return [await reply for reply in replies]

        return dict(zip(RunStatus, await self._read("the run counts", zcards())))

    async def read_events(self, run_id: str, start: int, limit: int) -> list[str]:
        if limit <= 0:
            return []
        key = f"rc:ev:{run_id}"
        entries = await self._read(run_id, self._redis.xrange(key, f"{start}-1", "+", count=limit))
        if not entries and not await self._read(
            run_id, self._redis.exists([key])
        ) and start < await self.count_events(run_id):
            raise HistoryGone(run_id)
        return [str(entry.field_values["f"]) for entry in entries]

    async def count_events(self, run_id: str) -> int:
        count = await self._read(run_id, self._redis.hget(f"rc:run:{run_id}", "event_count"))
        return 0 if count is None else int(count)

    async def unfinished_runs(self) -> list[RunRecord]:
        """The running runs whose owner's lease is gone."""
        orphans: list[str] = []
        for token in await self._read("the owners", self._redis.smembers("rc:owners")):
            node = token.rpartition("#")[0]
            if await self._read("a lease", self._redis.get(f"rc:node:{node}")) == token:
                continue
            owned = await self._read("the runs owned", self._redis.smembers(f"rc:owned:{token}"))
            if owned:
                orphans += map(str, owned)
            else:  # a dead owner's set never grows again: forget it
                await self._read("the owners", self._redis.srem("rc:owners", [token]))
        records = await self._get_runs(orphans)
        return [record for record in records if record.status is RunStatus.RUNNING]

    async def get_graph(self, graph_id: str) -> GraphRecord | None:
        fields = await self._read(graph_id, self._redis.hgetall(f"rc:graph:{graph_id}"))
        if not fields:
            return None
        return GraphRecord(graph_id, fields["name"], fields["definition"], float(fields["created_at"]))

    async def watch(self, run_id: str, capacity: int) -> Feed:
        return await self.channels.watch(run_id, capacity)

    async def request_cancel(self, run_id: str, reason: str) -> bool:
        answer = await self._read(run_id, self._redis.fcall("rc_cancel", [], [run_id, reason]))
        return bool(answer == "CANCELLING")

    async def requested_cancels(self, run_ids: Sequence[str]) -> dict[str, str]:
        if not run_ids:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            replies = [pipe.hmget(f"rc:run:{run_id}", ["status", "cancel"]) for run_id in run_ids]
        requested = {}
        for run_id, reply in zip(run_ids, replies):
            status, reason = await self._read(run_id, reply)
            if status == RunStatus.RUNNING.value and reason is not None:
                requested[run_id] = str(reason)
        return requested

    def notices(self) -> trio.MemoryReceiveChannel[Notice]:
        return self._notices_out

    def _cancel_requested(self, run_id: str, reason: str) -> None:
        self._notices.send_nowait(CancelRequested(run_id, reason))

    async def _lease_lost(self, token: str, why: str) -> None:
        await self.channels.follow_control(token)
        self._notices.send_nowait(LeaseLost(why))


async def index_runs(client: coredis.Redis[str]) -> None:
    """Put the runs a Redis holds from before `rc:wf:*` and `rc:ids` into them, once (`INDEXED`
    then says so). Every run hash is visited (SCAN returns each key that exists all along), and
    `rc_commit` indexes each run it creates, so none is missed; adding one twice changes
    nothing."""
    if await client.exists([INDEXED]):
        return
    async for batch in _batches(client.scan_iter(match="rc:run:*", count=LIST_BATCH)):
        async with client.pipeline(transaction=False) as pipe:
            replies = [pipe.hmget(key, ["workflow_id", "created_at"]) for key in batch]
        async with client.pipeline(transaction=False) as pipe:
            for key, reply in zip(batch, replies):
                workflow_id, created_at = await reply
                run_id = str(key).removeprefix("rc:run:")
                if workflow_id is not None and created_at is not None:
                    pipe.zadd(f"rc:wf:{workflow_id}", {run_id: float(created_at)})
                    pipe.zadd("rc:ids", {run_id: 0})
    await client.set(INDEXED, "1")


async def _batches(keys: AsyncIterator[str]) -> AsyncIterator[list[str]]:
    batch: list[str] = []
    async for key in keys:
        batch.append(key)
        if len(batch) == LIST_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@asynccontextmanager
async def open_redis_store(
    url: str, node: NodeSettings | None = None, *, retention: float | None = None
) -> AsyncIterator[RedisStore]:
    """Connect to the redis-server of `url` (`redis://HOST:PORT/DB`), load the function library,
    take the lease of `node`, and keep it, with the node's pub/sub connection, until exit; then
    give it up and close the connections. A finished run's history is kept `retention` seconds
    (None: for ever). Raises StorageFailed when Redis cannot be reached, StoreInUse when a live
    node has the same node id."""
    parts = urlsplit(url)
    db = int(parts.path.lstrip("/") or 0)
    client: coredis.Redis[str] = coredis.Redis(
        host=parts.hostname or DEFAULT_HOST,
        port=parts.port or DEFAULT_PORT,
        db=db,
        password=parts.password,
        ssl=parts.scheme == "rediss",
        decode_responses=True,
        retry_policy=NoRetryPolicy(),
    )
    try:
        async with client:  # coredis's connections live in a task group of the client's
            await client.function_load(LIBRARY, replace=True)
            await index_runs(client)
            lease = NodeLease(client, node or NodeSettings())
            await lease.acquire()
            store = RedisStore(client, url, lease, retention)
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(store.channels.run)
                    await store.channels.follow_control(lease.token)
                    nursery.start_soon(lease.keep, store._lease_lost)
                    yield store
                    nursery.cancel_scope.cancel()
            finally:
                store.refuse_commits()
                with trio.CancelScope(shield=True):
                    await lease.release()
    except* RedisError as group:
        raise StorageFailed(f"{root_cause(group)} (Redis, {url})") from None
