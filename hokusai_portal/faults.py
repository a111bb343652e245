"""Storage faults (a read-only or full database or disk) told apart from bugs, for the web and the worker."""

import errno

from django.db import InternalError, OperationalError

STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT}


def is_storage_fault(exc: BaseException | None) -> bool:
    """True when `exc`, or anything it was raised from, says the storage refused a write or cannot be reached.

    OperationalError covers SQLite's "readonly database" and "disk is full" and PostgreSQL's disk_full and
    lost connections; InternalError covers PostgreSQL's read_only_sql_transaction."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (OperationalError, InternalError)):
            return True
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            return True
        exc = exc.__cause__ or exc.__context__
    return False
