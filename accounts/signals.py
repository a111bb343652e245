"""Signals the apps above accounts listen to, so accounts never imports them (the layers in pyproject.toml)."""

from django.dispatch import Signal

# Sent inside the transaction that created a developer account: kwargs `user`. Onboarding starts the
# developer's progress row (the dashboard's funnel) from it.
developer_signed_up = Signal()

# "Download my data": each receiver returns {section: JSON-able data} for kwargs `user` (never a key).
account_data_requested = Signal()
# Before an account is deleted: each receiver returns a reason the account cannot be deleted now, or None.
account_deletion_blockers = Signal()
# Inside the transaction that deletes an account (kwargs `user`): receivers destroy or detach what is theirs.
account_deleting = Signal()
