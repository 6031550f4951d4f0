"""The sandbox: a stock Asterisk 22 (cached Debian sid root, one dir per instance) and a
throwaway PostgreSQL cluster, for development, the demo and the integration tests.

CLI: ``python -m ari_app.sandbox up|down|status|build|cli`` (see ``__main__.py``).
"""

from ari_app.sandbox._proc import SandboxError
from ari_app.sandbox.sandbox import Sandbox, SandboxInfo

__all__ = ["Sandbox", "SandboxError", "SandboxInfo"]
