"""Audio for the simulated customers, made on the host with espeak-ng + sox.

Written into ROOT/usr/share/asterisk/sounds/en/ari-app/ (shared by every instance of the root)
as 8 kHz mono 16-bit wav, which Asterisk plays as `ari-app/<name>`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ari_app.sandbox._proc import ensure_apt_packages, run

log = logging.getLogger("ari_app.sandbox")

SOUNDS_DIR = "/usr/share/asterisk/sounds/en/ari-app"  # as seen inside the root


@dataclass(frozen=True)
class Sound:
    name: str
    text: str
    trailing_silence: float  # seconds of silence after the speech
    beep: bool = False

    def signature(self) -> str:
        """Changes whenever the recipe does, so an edited sound is made again."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


SOUNDS = (
    # A person picking up: one short word, then silence -> AMD: HUMAN.
    Sound("human-hello", "Hello?", trailing_silence=3.0),
    # A voicemail greeting: several seconds of speech and a beep -> AMD: MACHINE.
    Sound(
        "machine-greeting",
        "Hi, you have reached Alex Martin. I can not take your call right now. "
        "Please leave a message after the tone.",
        trailing_silence=0.3,
        beep=True,
    ),
)


def _host_path(root: Path, inside: str) -> Path:
    """Resolve a path of the root on the host, following the root's absolute symlinks inside it."""
    current = root
    for part in Path(inside).relative_to("/").parts:
        candidate = current / part
        for _ in range(20):
            if not candidate.is_symlink():
                break
            target = os.readlink(candidate)
            candidate = root / target.lstrip("/") if target.startswith("/") else candidate.parent / target
        current = candidate
    return current


def sounds_dir(root: Path) -> Path:
    return _host_path(root, SOUNDS_DIR)


def ensure_sounds(root: Path) -> None:
    """Generate the sounds that are missing (installs espeak-ng and sox on the host if needed)."""
    write_sounds(sounds_dir(root))


def write_sounds(target_dir: Path) -> None:
    """Write the sounds that are missing or out of date into target_dir (also used by docker/)."""
    missing = [s for s in SOUNDS if not _is_current(target_dir, s)]
    if not missing:
        return
    ensure_apt_packages(["espeak-ng", "sox"], commands=["espeak-ng", "sox"])
    target_dir.mkdir(parents=True, exist_ok=True)
    for sound in missing:
        log.info("generating sound %s/%s.wav", target_dir, sound.name)
        with tempfile.TemporaryDirectory(prefix="ari-app-sound-") as tmp:
            t = Path(tmp)
            run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", t / "speech.wav", sound.text], timeout=60)
            parts = [t / "speech8k.wav"]
            run(
                ["sox", t / "speech.wav", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
                 parts[0], "pad", "0.1", str(sound.trailing_silence)],
                timeout=60,
            )
            if sound.beep:
                beep = t / "beep.wav"
                run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", beep,
                     "synth", "0.6", "sine", "1000", "vol", "0.5"], timeout=60)
                parts.append(beep)
            final = t / "final.wav"
            run(["sox", *parts, final], timeout=60)
            # Same file system as the target: write beside it, then rename (never a half file).
            fd, staging = tempfile.mkstemp(dir=target_dir, prefix=f".{sound.name}.")
            os.close(fd)
            Path(staging).write_bytes(final.read_bytes())
            os.chmod(staging, 0o644)
            os.replace(staging, target_dir / f"{sound.name}.wav")
            (target_dir / f".{sound.name}.signature").write_text(sound.signature())


def _is_current(target_dir: Path, sound: Sound) -> bool:
    try:
        signature = (target_dir / f".{sound.name}.signature").read_text().strip()
    except OSError:
        return False
    return (target_dir / f"{sound.name}.wav").is_file() and signature == sound.signature()

