"""When to restart a crashed child, and when to give up. Pure: ``now`` is passed in.

A child that crashes is restarted after 1 s, 2 s, 4 s … (capped); a child that crashes
``max_crashes`` times within ``window_s`` is given up on, and the supervisor exits non-zero.
A child that stayed up for ``window_s`` starts again from the shortest delay.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RestartPolicy:
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_crashes: int = 5
    window_s: float = 60.0


@dataclass
class CrashHistory:
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    crashes: list[float] = field(default_factory=list)

    def record(self, now: float) -> float | None:
        """Record a crash at ``now``; the delay before restarting, or None to give up."""
        self.crashes = [t for t in self.crashes if now - t < self.policy.window_s] + [now]
        if len(self.crashes) >= self.policy.max_crashes:
            return None
        delay = self.policy.first_delay_s * 2 ** (len(self.crashes) - 1)
        return float(min(delay, self.policy.max_delay_s))
