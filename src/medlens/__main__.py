"""``python -m medlens``: the command line (also ``torchrun -m medlens train ...``)."""

from medlens.cli import app

if __name__ == "__main__":
    app(prog_name="medlens")
