"""The one place that owns threads: the inbox, the shared dispatcher, the actor base class, clocks and timers."""
