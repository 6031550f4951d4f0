"""Callback settings: the `callbacks` field of the one Settings object (env `ARI_APP_CALLBACKS`
as JSON, or a `[callbacks]` table in the TOML file). Imports nothing from the app, so
`ari_app.settings` can import it.

Per-queue behaviour (offer conditions, agent-/customer-first, retries) is not here: it is the
queue's callback policy, set over the API (`PUT /api/v1/queues/{name}/callback`) and stored in
PostgreSQL like the queue itself.
"""

from __future__ import annotations

from pydantic import Field

from ari_app.numbers import DialOutSettings


class CallbacksSettings(DialOutSettings):
    """Numbers and dial strings (`DialOutSettings`: dial template, overrides, number rules, the
    caller id the customer sees), and how often the callbacks table is looked at."""

    #: Seconds between looks at the callbacks table (due scheduled callbacks, retries, expiry).
    poll_interval: float = Field(1.0, gt=0, le=60)


