"""`python -m hokusai_portal.supervise`: run the Procfile (registry, worker, web) under honcho.

Honcho sends SIGTERM on Ctrl-C and SIGKILL 5 s later; a Celery worker's warm shutdown waits for
the running check, which can take longer, so the grace period here is 30 s."""

import sys

import honcho.manager
from honcho.command import main

GRACE_SECONDS = 30

if __name__ == "__main__":
    honcho.manager.KILL_WAIT = GRACE_SECONDS
    sys.exit(main(["-f", "Procfile", "start", *sys.argv[1:]]))
