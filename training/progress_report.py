"""What a worker's log says while a run works: ``run 7 (dpo): step 12/52 after 4 min 10 s, about
13 min 50 s left``, at most every ``every_s`` seconds (the UI has the live figures; this is for the
person watching ``./dev run`` or ``docker compose logs``). Pure: no Django."""

import time


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


class ProgressReport:
    def __init__(self, label: str, *, every_s: float = 30.0, clock=time.monotonic):
        self.label, self.every_s, self.clock = label, every_s, clock
        self.started = clock()
        self.first: tuple[float, int] | None = None  # (when, step) of the first progress: loading is not a step
        self.last_said = float("-inf")

    def line(self, step: int, total: int | None) -> str | None:
        """The sentence to log for this progress event, or None when one was said recently (the
        last step is always said)."""
        now = self.clock()
        if self.first is None:
            self.first = (now, step)
        done = total is not None and step >= total
        if not done and now - self.last_said < self.every_s:
            return None
        self.last_said = now
        elapsed = now - self.started
        if total is None:
            return f"{self.label}: step {step} after {duration(elapsed)}"
        text = f"{self.label}: step {step}/{total} after {duration(elapsed)}"
        since, first_step = self.first
        if not done and step > first_step:
            left = (now - since) / (step - first_step) * (total - step)
            text += f", about {duration(left)} left"
        return text
