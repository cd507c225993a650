"""The files stagewise ships: the plan data, the example config, the sample prices and the
systemd files, read from the installed package (`stagewise.data`), never from a checkout.

In the source tree they live in config/ and systemd/ (pyproject.toml maps them into the
package), so the checkout and an installed wheel read the same files.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

STAGES = "stages.toml"
INDICES = "indices.toml"
EXAMPLE = "example.toml"
SAMPLE_PRICES = "sample-prices.csv"
DATASETTE = "datasette.yml"  # `stagewise view`'s metadata and canned queries
EXAMPLES = "examples"  # the guide's worked examples, one investor config each (jake.toml ...)
UNIT = "systemd/stagewise.service"
ENV_EXAMPLE = "systemd/stagewise.env.example"


def path(name: str) -> Path:
    """The shipped file `name` (e.g. STAGES) as a path on disk. A wheel installs its package
    data as plain files, so this is the installed file itself, not a temporary copy."""
    with as_file(files("stagewise.data").joinpath(name)) as found:
        return Path(found)


def text(name: str) -> str:
    """The shipped file `name`, as text."""
    return files("stagewise.data").joinpath(name).read_text(encoding="utf-8")


def examples() -> list[str]:
    """The names of the guide's worked examples shipped as configs (jake, maria, ...)."""
    found = files("stagewise.data").joinpath(EXAMPLES).iterdir()
    return sorted(f.name.removesuffix(".toml") for f in found if f.name.endswith(".toml"))


def example(name: str) -> str:
    """The shipped example config of `name` (one of `examples()`), as a file name."""
    return f"{EXAMPLES}/{name}.toml"
