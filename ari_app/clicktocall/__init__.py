"""Click-to-call: a web visitor types their number, presses a button, and is bridged with an agent.

Pure decisions (abuse limits, request statuses, signed tokens) live in `core/`; `capability.py`
runs the call flows on the ACD and ARI, `api.py` is the public and authenticated HTTP side, and
`static/` the dependency-free widget and its demo page. Nothing heavy is imported here: the
settings module imports `clicktocall.config`.
"""
