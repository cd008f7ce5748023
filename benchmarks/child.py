"""Runs benchmark code in child processes: one-shot commands and long-lived workers.

Keras reads `KERAS_BACKEND` once per process, TensorFlow's devices are fixed at
start-up, and a peak RSS is only meaningful in a fresh process, so the
benchmarks start children. Two ways:

- `run_json(command, ...)`: runs a command to the end (with a timeout) and
  returns the JSON object it printed on a line starting with `marker`, or an
  error dict `{"error": ..., "stderr_tail": ...}`. It never raises for a
  failing child, so one failure leaves the other rows of a table standing.
- `Worker(command, ...)`: a child that stays alive and answers requests, one
  JSON line each way (`request` sends one and waits for the answer, with a
  timeout). `benchmarks.peers` keeps one worker per library and backend and
  lets them train one epoch at a time in turns, so that the load from other
  jobs hits them alike although they live in different processes (and, for
  Pythae, in a different virtualenv). A worker waiting for its next request
  blocks on a read and uses no CPU.

In the child, `reply(obj)` prints an answer line and `requests()` yields the
requests.
"""

import json
import os
import pathlib
import queue
import subprocess
import sys
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
MARKER = "@@bench "
STDERR_TAIL_LINES = 15


def backend_env(backend=None, **extra):
    """`os.environ` with `KERAS_BACKEND` (if given), quiet TensorFlow, and `extra`."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    env.update({key: str(value) for key, value in extra.items()})
    return env


def _tail(text, lines=STDERR_TAIL_LINES):
    return "\n".join((text or "").strip().splitlines()[-lines:])


def _parse(stdout, marker):
    """The JSON of the last line starting with `marker` (or, with no marker, the last line)."""
    lines = (stdout or "").strip().splitlines()
    if marker:
        lines = [line[len(marker) :] for line in lines if line.startswith(marker)]
    return json.loads(lines[-1]) if lines else None


def run_json(command, env=None, timeout=900, marker=MARKER, cwd=REPO, what=None):
    """Runs `command` (a list) to the end; returns its JSON answer or an error dict.

    Args:
        command: The command, e.g. `[sys.executable, "-m", "benchmarks.memprobe", ...]`.
        env: The environment (default: this process').
        timeout: Seconds before the child is killed.
        marker: Prefix of the answer line on stdout; `None` takes the last line.
        cwd: Working directory (the repository root).
        what: A short name for the error message (default: the command).

    Returns:
        The parsed JSON object, or `{"error": "...", "stderr_tail": "..."}` if the
        child failed, timed out or printed no answer.
    """
    what = what or " ".join(str(c) for c in command[-4:])
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [str(c) for c in command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as error:
        stderr = error.stderr.decode() if isinstance(error.stderr, bytes) else error.stderr
        return {"error": f"{what}: timed out after {timeout} s", "stderr_tail": _tail(stderr)}
    except OSError as error:
        return {"error": f"{what}: could not start: {error}", "stderr_tail": ""}
    wall = time.perf_counter() - start
    if done.returncode != 0:
        return {
            "error": f"{what}: exit {done.returncode} after {wall:.0f} s",
            "stderr_tail": _tail(done.stderr or done.stdout),
        }
    try:
        answer = _parse(done.stdout, marker)
    except json.JSONDecodeError as error:
        answer, problem = None, f"unreadable answer ({error})"
    else:
        problem = "no answer line"
    if not isinstance(answer, dict):
        return {"error": f"{what}: {problem}", "stderr_tail": _tail(done.stderr)}
    return answer


def reply(obj, stream=None):
    """In a child: prints one answer line (the marker, then JSON) and flushes."""
    stream = stream or sys.stdout
    stream.write(MARKER + json.dumps(obj) + "\n")
    stream.flush()


class WorkerError(RuntimeError):
    """A worker died, timed out or answered with an error."""


class Worker:
    """A long-lived child that answers JSON requests, one line each way.

    Its stderr goes to a temporary file, so a chatty child (progress bars)
    never blocks on a full pipe, and the file's tail explains a failure.

    Args:
        command: The command that starts the child (a list).
        name: Its name in error messages.
        env: The environment; cwd is the repository root.
    """

    def __init__(self, command, name, env=None, cwd=REPO):
        self.name = name
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._process = subprocess.Popen(
            [str(c) for c in command],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        # A thread reads the answers into a queue: `select` on the pipe would miss a
        # line already sitting in the reader's buffer when two arrive together.
        self._lines = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self._process.stdout:
            if line.startswith(MARKER):
                self._lines.put(line)
        self._lines.put(None)  # end of output

    def stderr_tail(self, lines=STDERR_TAIL_LINES):
        if self._stderr.closed:
            return ""
        self._stderr.seek(0)
        return _tail(self._stderr.read(), lines)

    def send(self, request):
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise WorkerError(f"{self.name}: cannot send ({error})\n{self.stderr_tail()}") from None

    def receive(self, timeout):
        """Waits up to `timeout` s for the next answer line; raises `WorkerError`."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.close(kill=True)
            raise WorkerError(
                f"{self.name}: no answer in {timeout} s\n{self.stderr_tail()}"
            ) from None
        if line is None:
            self._lines.put(None)
            code = self._process.wait()
            raise WorkerError(f"{self.name}: exited ({code})\n{self.stderr_tail()}")
        answer = json.loads(line[len(MARKER) :])
        if isinstance(answer, dict) and "error" in answer:
            raise WorkerError(f"{self.name}: {answer['error']}\n{self.stderr_tail()}")
        return answer

    def request(self, request, timeout=600):
        self.send(request)
        return self.receive(timeout)

    def close(self, kill=False):
        if self._process.poll() is None:
            if not kill:
                try:
                    self.send({"cmd": "quit"})
                    self._process.wait(timeout=30)
                except (WorkerError, subprocess.TimeoutExpired):
                    pass
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
        self._stderr.close()


def requests(stream=None):
    """In a worker: yields each JSON request read from stdin until EOF or `quit`."""
    stream = stream or sys.stdin
    for line in stream:
        line = line.strip()
        if not line:
            continue
        request = json.loads(line)
        if request.get("cmd") == "quit":
            return
        yield request


def _major_faults():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_majflt


class EpochGate:
    """In a worker: the parent starts each epoch of a running training loop.

    `begin()` (call it where an epoch begins, e.g. from a callback) answers
    `{"ready": true}`, waits for the request `{"cmd": "epoch"}` and starts the
    clocks; `end()` answers `{"epoch_s": ..., "cpu_s": ...}` (wall time, and the
    CPU time of all the process' threads). The training loop itself (Keras'
    `fit`, Pythae's trainer) runs all its epochs in one call, as a user runs it.
    """

    def __init__(self, stream=None):
        self.stream = stream or sys.stdin
        self.times = []
        self._start = None

    def begin(self):
        reply({"ready": True})
        line = self.stream.readline()
        request = json.loads(line) if line.strip() else {}
        if request.get("cmd") != "epoch":
            raise RuntimeError(f"expected an 'epoch' request; received {line!r}")
        self._start = time.perf_counter()
        self._cpu_start = time.process_time()
        self._faults_start = _major_faults()

    def end(self, **info):
        seconds = time.perf_counter() - self._start
        self.times.append(seconds)
        # CPU time of all the process' threads: less sensitive to other jobs than wall time
        reply(
            {
                "epoch_s": seconds,
                "cpu_s": time.process_time() - self._cpu_start,
                # pages read back from disk: an idle worker's code pages may have been evicted
                "major_faults": _major_faults() - self._faults_start,
                **info,
            }
        )


def serve(handlers, stream=None):
    """In a worker: answers each request with `handlers[request["cmd"]](request)`.

    An exception becomes an error answer (with its type and message) and ends
    the worker, whose stderr keeps the traceback.
    """
    import traceback

    for request in requests(stream):
        try:
            answer = handlers[request["cmd"]](request)
        except Exception as error:
            traceback.print_exc()
            reply({"error": f"{request.get('cmd')}: {type(error).__name__}: {error}"})
            raise SystemExit(1) from None
        if answer is not None:
            reply(answer)
