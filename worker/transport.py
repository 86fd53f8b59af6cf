"""kombu's Redis transport, with a message taken off its queue and recorded as unacked in one
atomic step, so a worker killed at any moment loses no message.

Stock kombu (5.7) takes a message with BRPOP, which removes it from the queue on the server,
and records it in the `unacked` hash and `unacked_index` only afterwards, from the worker,
once the reply has been read (QoS.append, a second round trip). A worker SIGKILLed in
between (the reply in flight or unread in its socket, a CPU-starved main process, or the
pipeline not yet sent) takes the message with it: it is in no queue and not unacked, so
nothing ever restores it. The fault suite saw exactly that: one batch of five events, never
applied (tests/faults/test_faults.py, worker killed mid-stream).

Here the worker instead:
- pops with a Lua script that RPOPs the first non-empty queue (the same keys, in the same
  order, as kombu's BRPOP) and, in the same script, adds the message to `unacked` and
  `unacked_index` exactly as QoS.append would. Redis runs a script atomically: a message is
  always in a queue or unacked, and an unacked one comes back after the visibility timeout
  whatever happened to the worker that took it;
- when every queue was empty, waits with `BLMOVE q q RIGHT RIGHT`, which moves a queue's last
  message to the same place (the list is unchanged: a blocking "wait until not empty" that
  takes nothing), then pops again. The wait watches one queue at a time (rotating) and lasts
  at most `empty_wait` seconds (0.1 s, when the worker consumes several queues) or
  `brpop_timeout` (one queue), so a message on an unwatched queue waits at most that long.

Everything else (ack, reject, restore, the visibility timeout, the event loop, the prefetch
credit, health checks) is kombu's own. Needs Redis 6.2 or later (BLMOVE) that lets the worker's
user run scripts: where its ACL denies EVAL or BLMOVE, or they are renamed away, the channel
says so in a warning once and takes messages with kombu's BRPOP, as stock kombu does (with its
window).
"""

from __future__ import annotations

import logging
from time import monotonic, time
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads
from redis.exceptions import NoPermissionError, ResponseError

log = logging.getLogger(__name__)

POP_AND_RECORD = """
local n = #KEYS - 2
for i = 1, n do
  local item = redis.call('RPOP', KEYS[i])
  if item then
    local ok, message = pcall(cjson.decode, item)
    if ok and type(message) == 'table' and type(message['properties']) == 'table' then
      local properties = message['properties']
      local tag = properties['delivery_tag']
      local info = properties['delivery_info']
      if type(tag) == 'string' and type(info) == 'table' then
        local exchange = info['exchange']
        local routing_key = info['routing_key']
        if type(exchange) ~= 'string' then exchange = '' end
        if type(routing_key) ~= 'string' then routing_key = '' end
        redis.call('ZADD', KEYS[n + 2], ARGV[1], tag)
        redis.call('HSET', KEYS[n + 1], tag,
          '[' .. item .. ', ' .. cjson.encode(exchange) .. ', ' .. cjson.encode(routing_key) .. ']')
        return {KEYS[i], item, tag}
      end
    end
    return {KEYS[i], item}
  end
end
return false
"""
"""KEYS: the queues (priority keys included) in kombu's BRPOP order, then `unacked` and
`unacked_index`; ARGV[1]: now (the index's score). Returns [queue key, message, tag] (tag
present when recorded), or nil when every queue is empty. The `unacked` value is the same
JSON as kombu's `dumps([message, exchange, routing_key])`, with the message text verbatim."""


class QoS(kombu_redis.QoS):
    def append(self, message: Any, delivery_tag: str) -> None:
        """The pop script recorded it already: only track it locally (no second write)."""
        if delivery_tag == self.channel._recorded_tag:
            self.channel._recorded_tag = None
            virtual.QoS.append(self, message, delivery_tag)
        else:
            super().append(message, delivery_tag)


class Channel(kombu_redis.Channel):
    QoS = QoS

    #: Longest wait on one queue when several are consumed and all were empty (seconds).
    empty_wait = 0.1

    _in_poll: Any = False
    _pop_next = True
    _pending = "pop"
    _recorded_tag: str | None = None

    #: False once this Redis refused the script or BLMOVE: stock BRPOP from then on.
    _atomic_take = True

    def _brpop_start(self, timeout: float | None = None) -> None:
        if not self._atomic_take:
            self._pending = "stock"
            super()._brpop_start(timeout)
            return
        if timeout is None:
            timeout = self.brpop_timeout
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        keys = [self._q_for_pri(queue, pri) for pri in self.priority_steps for queue in queues]
        if self._pop_next:
            self._pending = "pop"
            args: list[Any] = [
                "EVAL",
                POP_AND_RECORD,
                len(keys) + 2,
                *keys,
                self.unacked_key,
                self.unacked_index_key,
                time(),
            ]
        else:
            self._pending = "wait"
            wait = timeout or 1
            if len(keys) > 1:
                wait = min(wait, self.empty_wait)
            args = ["BLMOVE", keys[0], keys[0], "RIGHT", "RIGHT", wait]
            self._queue_cycle.rotate(queues[0])
        if self.global_keyprefix:
            raise NotImplementedError("convlife's transport does not support global_keyprefix")
        self._in_poll = self.client.connection
        self._brpop_sent_at: Any = monotonic()
        self.client.connection.send_command(*args)

    def _brpop_read(self, **options: Any) -> bool:
        pending = self._pending
        if pending == "stock":
            return bool(super()._brpop_read(**options))
        try:
            try:
                reply = self.client.parse_response(
                    self.client.connection, "EVAL" if pending == "pop" else "BLMOVE", **options
                )
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            except ResponseError as error:
                if not _refused(error):
                    raise
                log.warning(
                    "this Redis refuses %s (%s): taking messages with BRPOP, as stock kombu "
                    "does; a worker killed between the take and its record of it loses that "
                    "message (docs/operations.md)",
                    "EVAL" if pending == "pop" else "BLMOVE",
                    error,
                )
                self._atomic_take = False
                raise virtual.Empty() from error
            if pending == "wait":
                # Something arrived, or the wait timed out: pop (from every queue) next.
                self._pop_next = True
                raise virtual.Empty()
            if not reply:
                self._pop_next = False
                raise virtual.Empty()
            dest = bytes_to_str(reply[0]).rsplit(self.sep, 1)[0]
            self._recorded_tag = bytes_to_str(reply[2]) if len(reply) > 2 else None
            self._queue_cycle.rotate(dest)
            self.connection._deliver(loads(bytes_to_str(reply[1])), dest)
            return True
        finally:
            self._in_poll = None
            self._recorded_tag = None
            self._flush_brpop_reauth()


class Transport(kombu_redis.Transport):
    Channel = Channel


def _refused(error: ResponseError) -> bool:
    """The command is denied by the ACL, unknown (an old Redis) or renamed away."""
    text = str(error).lower()
    return isinstance(error, NoPermissionError) or "unknown command" in text or "noperm" in text
