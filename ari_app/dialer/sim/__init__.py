"""Seeded discrete-event simulator for the outbound dialer (pure Python, simulated time only)."""

from .engine import simulate
from .model import (
    AgentProfile,
    AmdProfile,
    LeadPool,
    LeadProfile,
    SimParams,
    SimResult,
    lognormal_params,
)

__all__ = [
    "AgentProfile",
    "AmdProfile",
    "LeadPool",
    "LeadProfile",
    "SimParams",
    "SimResult",
    "lognormal_params",
    "simulate",
]
