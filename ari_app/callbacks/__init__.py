"""Callbacks: virtual hold (keep my place in line and call me back) and scheduled callbacks.

`core/` decides (policy, due times, retries, the number dialog), `capability.py` runs it on the
ACD, `hold.py` talks to the caller who pressed the key, `store.py` keeps every callback in
PostgreSQL, `api.py` is `/api/v1/callbacks`. Kept import-free so `ari_app.settings` can import
`ari_app.callbacks.config`.
"""
