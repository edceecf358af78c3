"""Process limits a worker that holds many chat sockets needs.

Every open WebSocket (the chat bubble keeps one per shopper's tab for as long as the page is open) is a file
descriptor, and so is every REST request in flight, the SQLite file and each Redis connection. Linux starts
processes with a soft `RLIMIT_NOFILE` of 1024 on most distributions (systemd, Docker), while the hard limit is
usually far higher (524288, 1048576). At the soft limit `accept()` fails with EMFILE: asyncio logs it and stops
accepting for a second at a time, so new shoppers and REST calls hang while the idle sockets live on. Raising
the soft limit to the hard one needs no privilege and costs nothing until descriptors are used.
"""

from __future__ import annotations

import logging
import resource
from pathlib import Path

log = logging.getLogger(__name__)


def raise_open_files_limit() -> int:
    """Lift this process's soft limit on open files to its hard limit; returns the soft limit now in force.

    A process started from here inherits it. Never lowers a limit and never fails: where the limit cannot be
    changed, the current one is kept (and returned).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else _kernel_max()  # Linux refuses an infinite soft limit
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("could not raise the open-files limit from %d to %d: %s", soft, target, exc)
        return soft
    return target


def _kernel_max() -> int:
    """The most descriptors the kernel lets one process have (fs.nr_open), for an unlimited hard limit."""
    try:
        return int(Path("/proc/sys/fs/nr_open").read_text())
    except (OSError, ValueError):
        return 1024 * 1024
