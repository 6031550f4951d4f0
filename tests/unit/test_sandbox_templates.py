"""One source of truth for the Asterisk configuration: dialplan/etc/*.conf are templates that
both the sandbox (Python string.Template) and the docker image (envsubst) render, with the same
list of placeholders, to the same text."""

from __future__ import annotations

import re
import shutil
import subprocess

from ari_app import PROJECT_ROOT
from ari_app.sandbox.asterisk import TEMPLATE_VARS, render_templates

ETC = PROJECT_ROOT / "dialplan" / "etc"
ENTRYPOINT = PROJECT_ROOT / "docker" / "asterisk" / "entrypoint.sh"
VALUES = {name: f"value-of-{name.lower()}" for name in TEMPLATE_VARS}


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z_]+)\}", text))


def test_templates_use_only_declared_placeholders() -> None:
    used: set[str] = set()
    for path in ETC.glob("*.conf"):
        text = path.read_text()
        assert "$" not in re.sub(r"\$\{[A-Z_]+\}", "", text), f"{path.name}: a stray $"
        used |= placeholders(text)
    assert used == set(TEMPLATE_VARS)


def test_docker_entrypoint_substitutes_the_same_list() -> None:
    m = re.search(r"^TEMPLATE_VARS='([^']*)'", ENTRYPOINT.read_text(), re.M)
    assert m, "TEMPLATE_VARS line in the entrypoint"
    assert placeholders(m.group(1)) == set(TEMPLATE_VARS)
    exported = set(re.findall(r"^(?:export )?([A-Z_]+)=", ENTRYPOINT.read_text(), re.M))
    assert set(TEMPLATE_VARS) - {"ARI_PASSWORD"} <= exported


def test_rendering_fills_every_placeholder() -> None:
    rendered = render_templates(ETC, VALUES)
    assert {"asterisk.conf", "modules.conf", "http.conf", "ari.conf", "globals.conf"} <= set(rendered)
    for name, text in rendered.items():
        assert "${" not in text, name
    assert "bindport = value-of-ari_port" in rendered["http.conf"]
    assert "[value-of-ari_user]" in rendered["ari.conf"]


def test_envsubst_renders_the_same_text() -> None:
    assert shutil.which("envsubst"), "envsubst (apt package gettext-base; ./run setup installs it)"
    ours = render_templates(ETC, VALUES)
    shell_format = " ".join(f"${{{n}}}" for n in TEMPLATE_VARS)
    for path in sorted(ETC.glob("*.conf")):
        out = subprocess.run(["envsubst", shell_format], input=path.read_text(), env=VALUES,
                             capture_output=True, text=True, check=True).stdout
        assert out == ours[path.name], path.name


def test_dialplan_files_are_not_templates() -> None:
    # They use Asterisk's own ${VAR}: deployment values reach them as globals (globals.conf).
    names = {p.name for p in (PROJECT_ROOT / "dialplan").glob("*.conf")}
    assert "extensions.conf" in names
    assert not names & {p.name for p in ETC.glob("*.conf")}
    assert '#include "globals.conf"' in (PROJECT_ROOT / "dialplan" / "extensions.conf").read_text()
