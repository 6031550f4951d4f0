"""What a waiting caller hears, as ARI media URIs from Asterisk's stock queue prompts."""

from __future__ import annotations

from ari_app.acd.core.commands import Announce


def announcement_media(a: Announce) -> list[str]:
    if a.kind == "position":
        if a.position <= 1:
            return ["sound:queue-youarenext"]
        return ["sound:queue-thereare", f"number:{a.position - 1}", "sound:queue-callswaiting"]
    if a.kind == "ewt":
        if a.ewt_seconds is None:
            return []
        minutes = max(1, round(a.ewt_seconds / 60))
        if minutes <= 1:
            return ["sound:queue-holdtime", "sound:queue-less-than", "number:2", "sound:queue-minutes"]
        return ["sound:queue-holdtime", f"number:{minutes}", "sound:queue-minutes"]
    if a.kind == "periodic":
        return [_media(a.prompt or "queue-periodic-announce")]
    if a.kind == "callback-offer":
        return [_media(a.prompt or "queue-callback-offer")]
    return []


def _media(prompt: str) -> str:
    return prompt if ":" in prompt else f"sound:{prompt}"
