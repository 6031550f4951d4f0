"""ari_app: a contact-center engine for Asterisk 22, driven over ARI."""

from pathlib import Path

__version__ = "0.1.0"

#: The source tree (dialplan/, sql/ live beside the package; the project is installed editable).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
