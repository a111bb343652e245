"""A Celery app for the embedded-broker stress test: its one task appends its number to a file.

Configured from the environment (BROKER_DIR, RECEIPTS) so producers and the worker, separate
processes, share one queue folder; it uses the portal's filesystem transport unless STOCK_KOMBU=1."""

import os

from celery import Celery

BROKER_DIR = os.environ["BROKER_DIR"]
app = Celery("broker_stress")
app.conf.update(
    broker_url="filesystem://",
    broker_transport=None if os.getenv("STOCK_KOMBU") == "1" else "hokusai_portal.broker:Transport",
    broker_transport_options={
        "data_folder_in": f"{BROKER_DIR}/in",
        "data_folder_out": f"{BROKER_DIR}/in",
        "processed_folder": f"{BROKER_DIR}/processed",
        "control_folder": f"{BROKER_DIR}/control",
        "store_processed": False,
        "polling_interval": 0.01,
    },
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
)


@app.task(name="stress.receipt")
def receipt(number: int, padding: str = "") -> None:
    # O_APPEND writes of a short line land whole, whichever thread writes.
    with open(os.environ["RECEIPTS"], "a") as file:
        file.write(f"{number}\n")
