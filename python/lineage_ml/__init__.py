"""Tell `lineage run` what only the job knows: metrics, params, tags, notes, and the
paths it read and wrote.

    import lineage_ml as lineage

    lineage.param("model", "resnet18")
    for step in range(1000):
        ...
        lineage.metric("loss", loss, step=step)
    torch.save(model, "out/model.pt")
    lineage.output("out/model.pt")

Inside `lineage run` each call reaches the run being recorded over a Unix socket lineage
passes in ``LINEAGE_API`` (from any thread, and from worker processes, forked or spawned).
A call never waits: when lineage has not caught up, the message is dropped and counted,
and the latest value of each metric is kept and sent as soon as it can be (at the latest
when the process exits). Outside `lineage run` every call does nothing, and the first one
warns once. Standard library only; see docs/python.md.
"""

from __future__ import annotations

import atexit
import collections
import json
import math
import operator
import os
import socket
import sys
import threading
import time
import warnings
from typing import Any, Deque, Dict, Optional, Tuple, Union

__all__ = [
    "run_id",
    "active",
    "input",
    "output",
    "metric",
    "param",
    "tag",
    "note",
]

try:  # the distribution's version, when installed
    from importlib.metadata import version as _version

    __version__ = _version("lineage-ml")
except Exception:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

PathLike = Union[str, "os.PathLike[str]"]

#: The environment variable that names lineage's socket.
ENV = "LINEAGE_API"
#: The largest datagram lineage takes, in bytes (one message or several, a line each).
MAX_MESSAGE = 60_000
#: Messages held, not yet taken by lineage, past which each metric keeps only its latest
#: point (the others are dropped and counted), and other messages past twice this are dropped.
MAX_PENDING = 10_000
#: Messages are sent in batches: when this many bytes are waiting, or this long after the
#: last send (checked at each call, and by a background thread for a job gone quiet).
BATCH_BYTES = 16_384
BATCH_SECONDS = 0.02
#: How long a process that exits waits for lineage to take what it still holds, at most.
EXIT_WAIT_SECONDS = 2.0


def _callers_level() -> int:
    """The stack level of the first frame outside this module, for warnings.warn called
    from the frame that calls this."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
        level += 1
    return level


class _Channel:
    """This process's connection to lineage, and what it has not sent yet."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._fresh(keep_socket=False)

    def _fresh(self, keep_socket: bool) -> None:
        self.pid = os.getpid()
        if not keep_socket:
            self.sock: Optional[socket.socket] = None
            self.state = "new"  # new | open | off
        # Messages not sent yet, in order: (metric name or None, line).
        self.items: Deque[Tuple[Optional[str], bytes]] = collections.deque()
        self.size = 0
        self.last_send = time.monotonic()
        # After lineage did not take a datagram, the next try waits for this moment.
        self.retry_at = 0.0
        self.dropped = 0
        self.reported = 0
        self.warned: set = set()
        self.finalizer = False
        self.ticker = False
        # Whether each message is sent at once, not batched (None: not decided yet).
        self.eager: Optional[bool] = None

    # -- opening -------------------------------------------------------------------------

    def _open(self) -> None:
        path = os.environ.get(ENV)
        if not path:
            if os.environ.get("LINEAGE_RUN_ID"):
                self._off("lineage did not offer its API to this job (see the run's notes)")
            else:
                self._off("not running under `lineage run`: lineage_ml calls do nothing")
            return
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            sock.settimeout(1.0)
            sock.connect(path)
            sock.setblocking(False)
        except OSError as e:
            self._off(f"cannot reach lineage at {path} ({e}): lineage_ml calls do nothing")
            return
        self.sock = sock
        self.state = "open"

    def _off(self, why: str) -> None:
        self.state = "off"
        self.items.clear()
        self.size = 0
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        # Said once per job: worker processes started later inherit the variable.
        if os.environ.get("LINEAGE_ML_WARNED") != "1":
            self.warn_once("off", why)
            os.environ["LINEAGE_ML_WARNED"] = "1"

    def warn_once(self, key: str, why: str) -> None:
        if key in self.warned:
            return
        self.warned.add(key)
        warnings.warn(f"lineage_ml: {why}", RuntimeWarning, stacklevel=_callers_level())

    # -- sending -------------------------------------------------------------------------

    def send(self, message: Dict[str, Any]) -> None:
        if self.state == "off" and self.pid == os.getpid():
            return
        try:
            data = _ENCODER.encode(message)
        except (TypeError, ValueError) as e:
            with self.lock:
                self.warn_once("json:" + message["op"], f"{message['op']} not sent: {e}")
            return
        self.send_line(data, message["op"], None)

    def send_line(self, data: str, op: str, metric: Optional[str]) -> None:
        """Send one message, already a line of JSON (`metric`: the metric's name)."""
        with self.lock:
            if self.pid != os.getpid():
                self._fresh(keep_socket=True)
            if self.state == "new":
                self._open()
                _at_exit_once()
            if self.state != "open":
                return
            if not self.finalizer:
                self._finalizer()
            raw = data.encode("utf-8", "surrogatepass")
            if len(raw) > MAX_MESSAGE - 1:
                self.warn_once("long:" + op, f"{op} not sent: over {MAX_MESSAGE} bytes")
                return
            self.items.append((metric, raw))
            self.size += len(raw) + 1
            if self.eager is None:
                self.eager = _worker()
            now = time.monotonic()
            if now >= self.retry_at and (
                self.eager or self.size >= BATCH_BYTES or now - self.last_send >= BATCH_SECONDS
            ):
                if not self._flush():
                    self.retry_at = now + BATCH_SECONDS / 4
            if len(self.items) > MAX_PENDING:
                self._bound()
            elif not self.ticker:
                self._start_ticker()

    def _send(self, raw: bytes) -> bool:
        """Send one datagram; False when lineage has not caught up."""
        sock = self.sock
        if sock is None:
            return True
        try:
            sock.send(raw)
            return True
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as e:
            self._off(f"lineage stopped listening ({e}): later calls do nothing")
            return True

    def _flush(self) -> bool:
        """Send what is held, in order, in datagrams of up to MAX_MESSAGE bytes; True when
        nothing is left."""
        self.last_send = time.monotonic()
        while self.items:
            batch = []
            size = 0
            for _, raw in self.items:
                if batch and size + len(raw) + 1 > MAX_MESSAGE:
                    break
                batch.append(raw)
                size += len(raw) + 1
            if not self._send(b"\n".join(batch)):
                return False
            if self.state != "open":
                return True
            for _ in batch:
                self.items.popleft()
            self.size -= size
        if self.dropped > self.reported and self.state == "open":
            count = self.dropped - self.reported
            if not self._send(json.dumps({"op": "dropped", "count": count}).encode()):
                return False
            self.reported += count
        return True

    def _bound(self) -> None:
        """Lineage has not caught up: past MAX_PENDING messages held, each metric keeps only
        its latest point; past twice that, the oldest other messages go too. Counted."""
        if len(self.items) <= MAX_PENDING:
            return
        latest: Dict[str, int] = {}
        for i, (name, _) in enumerate(self.items):
            if name is not None:
                latest[name] = i
        kept: Deque[Tuple[Optional[str], bytes]] = collections.deque()
        for i, item in enumerate(self.items):
            if item[0] is None or latest[item[0]] == i:
                kept.append(item)
        while len(kept) > 2 * MAX_PENDING:
            kept.popleft()
        self.dropped += len(self.items) - len(kept)
        self.items = kept
        self.size = sum(len(raw) + 1 for _, raw in kept)

    def _start_ticker(self) -> None:
        """A background thread that sends what a job that went quiet still holds."""
        self.ticker = True
        pid = self.pid

        def tick() -> None:
            while True:
                time.sleep(BATCH_SECONDS * 5)
                with self.lock:
                    if self.pid != pid or self.state != "open":
                        return
                    if self.items and not self._flush():
                        self._bound()
                        self.retry_at = time.monotonic() + BATCH_SECONDS / 4

        try:
            threading.Thread(target=tick, name="lineage_ml", daemon=True).start()
        except RuntimeError:  # interpreter shutting down
            pass

    def finish(self) -> None:
        """At exit: give lineage a moment to take what is held."""
        with self.lock:
            if self.pid != os.getpid() or self.state != "open":
                return
            deadline = time.monotonic() + EXIT_WAIT_SECONDS
            while not self._flush() and time.monotonic() < deadline:
                self._bound()
                time.sleep(0.001)

    def _finalizer(self) -> None:
        """A worker of `multiprocessing` leaves through os._exit, not atexit: its own
        finalizers are the last word."""
        self.finalizer = True
        mp = sys.modules.get("multiprocessing.util")
        if mp is not None:
            try:
                mp.Finalize(None, _finish, exitpriority=0)
            except Exception:
                pass


def _worker() -> bool:
    """Whether this process is a `multiprocessing` worker: a pool ends its workers with
    SIGTERM, before anything held could be sent, so a worker sends each message at once."""
    mp = sys.modules.get("multiprocessing")
    try:
        return mp is not None and mp.parent_process() is not None
    except Exception:
        return False


_channel = _Channel()
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=str)
# The start of each metric's message, by name (a name is encoded once).
_PREFIXES: Dict[str, str] = {}
_registered = False


def _finish() -> None:
    _channel.finish()


def _at_exit_once() -> None:
    global _registered
    if not _registered:
        _registered = True
        atexit.register(_finish)


def _after_fork_in_child() -> None:
    # The lock may have been held by a thread that does not exist here.
    _channel.lock = threading.Lock()
    if _channel.pid != os.getpid():
        _channel._fresh(keep_socket=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- the API -------------------------------------------------------------------------------


def run_id() -> Optional[str]:
    """The id of the run being recorded (`lineage show RUN`), or None outside `lineage run`."""
    return os.environ.get("LINEAGE_RUN_ID") or None


def active() -> bool:
    """Whether calls reach a run being recorded (connecting if need be)."""
    with _channel.lock:
        if _channel.state == "new":
            _channel._open()
            _at_exit_once()
        return _channel.state == "open"


def _path(path: PathLike) -> str:
    return os.path.abspath(os.fsdecode(os.fspath(path)))


def input(path: PathLike) -> None:  # noqa: A001 - the API's word
    """Declare a file or directory the job read: lineage hashes it, like `-i`, and records
    it as this run's input, declared by the job. Call it once the bytes are final."""
    _channel.send({"op": "input", "path": _path(path)})


def output(path: PathLike) -> None:
    """Declare a file or directory the job wrote (a checkpoint, a model): lineage hashes it
    once the job has ended, like `-o`, and records it as this run's output."""
    _channel.send({"op": "output", "path": _path(path)})


def metric(name: str, value: float, step: Optional[int] = None) -> None:
    """Log a metric. Logged more than once or with a step, it keeps its series: `lineage
    show` gives its value at the highest step (without steps, the last one logged),
    `lineage show RUN --json` every point."""
    if _channel.state == "off" and _channel.pid == os.getpid():
        return
    try:
        number = float(value)
    except (TypeError, ValueError):
        _channel.warn_once("metric:" + str(name), f"metric {name!r}: {value!r} is not a number, not recorded")
        return
    if not math.isfinite(number):
        _channel.warn_once("finite:" + str(name), f"metric {name!r}: {number} is not finite, not recorded")
        return
    name = str(name)
    prefix = _PREFIXES.get(name)
    if prefix is None:
        prefix = '{"op":"metric","name":' + _ENCODER.encode(name) + ',"value":'
        if len(_PREFIXES) < 10_000:
            _PREFIXES[name] = prefix
    if step is None:
        line = prefix + repr(number) + "}"
    else:
        try:
            at = operator.index(step)
        except TypeError:
            if isinstance(step, float) and step.is_integer():
                at = int(step)
            else:
                _channel.warn_once("step:" + name, f"metric {name!r}: step {step!r} is not an integer, not recorded")
                return
        if not -(2**63) <= at < 2**63:
            _channel.warn_once("step:" + name, f"metric {name!r}: step {step!r} is out of range, not recorded")
            return
        line = prefix + repr(number) + ',"step":' + str(at) + "}"
    _channel.send_line(line, "metric", name)


def param(name: str, value: Any) -> None:
    """Record a param the job chose (a JSON value; anything else is recorded as its str).
    A key the run already has from its configs or command line keeps that value."""
    _channel.send({"op": "param", "name": str(name), "value": value})


def tag(name: str) -> None:
    """Tag this run (`lineage show NAME`), as `lineage tag RUN NAME` would once it is
    recorded. A tag another run holds stays there."""
    _channel.send({"op": "tag", "name": str(name)})


def note(text: str) -> None:
    """Add a note to this run (secrets redacted), as `lineage note RUN TEXT` would."""
    _channel.send({"op": "note", "text": str(text)})
