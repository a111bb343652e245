"""`python -m hokusai_portal.lifeline COMMAND...`: run COMMAND so that it dies with its parent.

The supervisor starts every process through this. Linux sends the process SIGTERM when its parent
(the supervisor) dies, even by SIGKILL, so nothing is left holding a port; the process still shuts
down its own way (gunicorn stops its workers, the registry stops its process group).

`--prefix NAME` (`make run`): every line the process writes reaches the supervisor's output as
`NAME     | line`, so five processes on one terminal can be told apart. A small relay process reads the
command's output through a pipe and writes it prefixed; the command itself keeps the pid the supervisor
started (its signals and exit status are the command's own). The relay ignores the stop signals and ends
when the command's output ends, so the last lines of a shutdown are not lost."""

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


PREFIX_WIDTH = 8


def relay(name: str) -> None:
    """Copy standard input to standard output, each line prefixed with `name`, until end of input."""
    prefix = f"{name:<{PREFIX_WIDTH}} | ".encode()
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        out.write(prefix + line)
        out.flush()


def _start_relay(name: str) -> None:
    """Point this process's stdout and stderr at a relay that prefixes them. The relay is a grandchild (its
    parent exits at once), so no zombie is left for the command, which does not know of it."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        if os.fork() == 0:
            os.close(write_end)
            os.dup2(read_end, 0)
            os.close(read_end)
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)  # kept across exec: it ends at end of input
            os.execv(sys.executable, [sys.executable, "-m", "hokusai_portal.lifeline", "--relay", name])
        os._exit(0)
    os.waitpid(child, 0)
    os.close(read_end)
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--relay"] and len(argv) == 2:
        relay(argv[1])
        return
    if argv[:1] == ["--prefix"] and len(argv) > 2:
        _start_relay(argv[1])
        argv = argv[2:]
    if not argv:
        sys.exit("usage: python -m hokusai_portal.lifeline [--prefix NAME] COMMAND [ARG...]")
    die_with_parent()
    os.execvp(argv[0], argv)  # the setting survives exec


if __name__ == "__main__":
    main(sys.argv[1:])
