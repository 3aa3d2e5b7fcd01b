"""``make compile``: pki's hot modules (the arguments) compiled by mypyc in
place, as ``mypyc`` would, except that the code they share goes in
``pki/_compiled__mypyc.*.so``: mypyc's default puts it at the top level
(``<hash>__mypyc``), where only a process started in the repository finds
it, and the ``bridgeca`` command runs from anywhere."""
from __future__ import annotations

import sys

from mypyc.build import mypycify
from setuptools import setup


def main(modules: list[str]) -> None:
    setup(
        name="bridgeca-pki-compiled",
        ext_modules=mypycify(modules, opt_level="3", group_name="pki._compiled"),
        script_args=["build_ext", "--inplace"],
    )


if __name__ == "__main__":
    main(sys.argv[1:])
