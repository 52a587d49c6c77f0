"""The ``medlens`` command line: a thin layer over the Python API.

Each command lives in its own module and imports heavy libraries inside its body,
so that ``medlens --help`` stays fast.
"""

from __future__ import annotations

import typer

from medlens.cli._common import version_callback

app = typer.Typer(
    name="medlens",
    help="Deep learning on medical images: read, prepare, train, evaluate, explain, export, serve.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=version_callback, is_eager=True, help="Show the version."
    ),
) -> None:
    """medlens command line."""


# --- command registration: one line per command module --------------------------------
# (keep in pipeline order: io, data, train, evaluate, explain, export, serve, privacy)
from medlens.cli import convert as _convert  # noqa: E402
from medlens.cli import info as _info  # noqa: E402

app.command("info")(_info.info)
app.command("convert")(_convert.convert)
from medlens.cli import audit as _audit  # noqa: E402
from medlens.cli import serve as _serve  # noqa: E402

app.command("serve")(_serve.serve)
app.command("audit")(_audit.audit)
from medlens.cli import deid as _deid  # noqa: E402

app.command("deid")(_deid.deid)
from medlens.cli import data as _data  # noqa: E402

app.command("data")(_data.data)
from medlens.cli import demo as _demo  # noqa: E402
from medlens.cli import evaluate as _evaluate  # noqa: E402
from medlens.cli import models as _models  # noqa: E402
from medlens.cli import predict as _predict  # noqa: E402
from medlens.cli import train as _train  # noqa: E402

app.command("models")(_models.models)
app.command("train")(_train.train)
app.command("evaluate")(_evaluate.evaluate)
app.command("predict")(_predict.predict)
from medlens.cli import batch as _batch  # noqa: E402

app.command("batch")(_batch.batch)
app.command("demo")(_demo.demo)
from medlens.cli import export as _export  # noqa: E402

app.command("export")(_export.export)
from medlens.cli import distill as _distill  # noqa: E402
from medlens.cli import prune as _prune  # noqa: E402

app.command("prune")(_prune.prune)
app.command("distill")(_distill.distill)
from medlens.cli import explain as _explain  # noqa: E402

app.command("explain")(_explain.explain)
from medlens.cli import embed as _embed  # noqa: E402

app.command("embed")(_embed.embed)
from medlens.cli import curve as _curve  # noqa: E402

app.command("curve")(_curve.curve)
from medlens.cli import similar as _similar  # noqa: E402

app.command("similar")(_similar.similar)
from medlens.cli import generate as _generate  # noqa: E402

app.command("generate")(_generate.generate)
from medlens.cli import generation_eval as _generation_eval  # noqa: E402

app.command("evaluate-generation")(_generation_eval.evaluate_generation)
from medlens.cli import register as _register  # noqa: E402

app.command("register")(_register.register)
