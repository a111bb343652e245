"""`python -m hokusai_portal.lifeline COMMAND...`: run COMMAND so that it dies with its parent.

The supervisor starts every process through this. Linux sends the process SIGTERM when its parent
(the supervisor) dies, even by SIGKILL, so nothing is left holding a port; the process still shuts
down its own way (gunicorn stops its workers, the registry stops its process group)."""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Ask the kernel for `signum` when the parent exits; if it already has, exit now."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m hokusai_portal.lifeline COMMAND [ARG...]")
    die_with_parent()
    os.execvp(argv[0], argv)  # the setting survives exec


if __name__ == "__main__":
    main(sys.argv[1:])
