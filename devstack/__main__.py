"""`python -m devstack serve|seed` — the local registry for `make run`."""

import argparse
import signal
import sys
import time

from .server import Devstack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    parser.add_argument("command", choices=["serve", "seed"])
    parser.add_argument("--data", default="var/devstack", help="data folder (default var/devstack)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--registry-lock", action="store_true", help="only admin keys may use the registry")
    parser.add_argument("--workers", type=int, default=1, help="MLflow server worker processes (default 1)")
    args = parser.parse_args(argv)
    devstack = Devstack(
        args.data, port=args.port, host=args.host, registry_lock=args.registry_lock, workers=args.workers
    )

    if args.command == "seed":
        # Seeds against a running server when there is one, else starts one for the seed.
        try:
            devstack.wait_ready(timeout=0.5)
            devstack.seed()
        except Exception:
            with devstack:
                devstack.seed()
        print(f"devstack seeded in {devstack.data_dir}")
        return 0

    stopping = False

    def _stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    devstack.start(wait=False)  # a stop request during MLflow's start-up is answered at once
    announced = False
    try:
        while not stopping and devstack.process.poll() is None:
            if not announced and devstack.is_ready():
                lock = "on" if args.registry_lock else "off"
                print(f"devstack registry on {devstack.url} (registry lock {lock})", flush=True)
                announced = True
            time.sleep(0.2)
    finally:
        devstack.stop()
    return 0 if stopping else (devstack.process.returncode or 1)


if __name__ == "__main__":
    sys.exit(main())
