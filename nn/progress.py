"""The one-line progress report of ``fit`` (Keras's ``verbose=1`` bar and ``verbose=2``
line), written so that a log file gets one line per epoch.

On a terminal the bar redraws in place with carriage returns (at most every 0.1 s);
anywhere else (a file, a pipe, a notebook's captured output) nothing is written until the
epoch ends, and then one line.
"""
import sys
import time

__all__ = ["EpochProgress"]

_WIDTH = 30


def _is_tty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _format_logs(logs):
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


def _duration(seconds):
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.2f}s"


class EpochProgress:
    """``start()``, ``update(done, logs)`` after each batch, ``end(logs)``: the bar (or
    line) of one epoch on ``stream`` (default ``sys.stdout``, looked up when made)."""

    def __init__(self, epoch, epochs, steps, verbose=1, stream=None):
        self.epoch, self.epochs, self.steps, self.verbose = epoch, epochs, steps, verbose
        self.stream = sys.stdout if stream is None else stream
        self.tty = _is_tty(self.stream)
        self._last_width = 0
        self._last_draw = 0.0

    def start(self):
        self.t0 = time.perf_counter()

    def _bar(self, done):
        n = max(self.steps, 1)
        filled = int(_WIDTH * min(done, n) / n)
        arrow = ">" if done < n and filled < _WIDTH else ""
        return "[" + "=" * filled + arrow + "." * (_WIDTH - filled - len(arrow)) + "]"

    def _write(self, text, final):
        if self.tty:
            pad = " " * max(self._last_width - len(text), 0)
            self.stream.write("\r" + text + pad + ("\n" if final else ""))
            self._last_width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def update(self, done, logs):
        if self.verbose != 1 or not self.tty:
            return
        now = time.perf_counter()
        if done < self.steps and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        elapsed = now - self.t0
        eta = elapsed / max(done, 1) * (self.steps - done)
        text = (f"Epoch {self.epoch + 1}/{self.epochs} {done}/{self.steps} {self._bar(done)}"
                f" - ETA: {_duration(eta)}")
        if logs:
            text += " - " + _format_logs(logs)
        self._write(text, final=False)

    def end(self, done, logs):
        elapsed = time.perf_counter() - self.t0
        if self.verbose == 2:
            text = f"Epoch {self.epoch + 1}/{self.epochs} - {_format_logs(logs)} - {elapsed:.2f}s"
        else:
            per_step = elapsed / max(done, 1)
            step = f"{per_step * 1e3:.0f}ms/step" if per_step >= 1e-3 else \
                f"{per_step * 1e6:.0f}us/step"
            text = (f"Epoch {self.epoch + 1}/{self.epochs} {done}/{self.steps} "
                    f"{self._bar(done)} - {_duration(elapsed)} {step}")
            if logs:
                text += " - " + _format_logs(logs)
        self._write(text, final=True)
