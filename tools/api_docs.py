"""docs/python-api.md made from the Python API's docstrings and signatures:

    python -m tools.api_docs          # writes the page
    python -m tools.api_docs --check  # exit 1 if the page is not what the docstrings make

tests/test_docs.py checks that the committed page is current."""

from __future__ import annotations

import functools
import inspect
import sys

from tools.runs import REPO

PAGE = REPO / "docs" / "python-api.md"
INTRO = """# The Python API

The method on objects you hold: a network in memory (any `torch.nn.Module`, never saved if you like)
and images as a folder, a tensor, a torch `Dataset` or a `DataLoader`. Each call runs the stage
functions the workflow's jobs run and writes the workflow's files into a run folder (a temporary one
unless `out=` names it), so `verify`, the viewer and the report read a call's output as a run's, and
a call with a config's settings writes the bytes the workflow writes for that config
(`tests/test_api.py` checks it on `config/ci.yaml`). Settings not given are the config's, else the
schema's defaults ([configuration](configuration.md)); each is checked as a config file's is, and a bad
one is a one-line `RunError`. `import activation_atlas` loads neither torch nor UMAP; they load with
the first call. As the workflow's jobs do, a call turns on torch's deterministic algorithms, sets its
threads (the config's `threads`, 2 unless `config={"threads": 8}` says otherwise) and seeds its
generator; the network handed over is copied, never changed. Runs whose `out=` is not given are
left under the system's temporary folder.

```python
import activation_atlas as aa
acts = aa.extract(net, "layer3", "photos/", attribution=True)   # net: your torch.nn.Module
atlas = aa.atlas(net, "layer3", acts, grid=20)                   # displays itself in Jupyter
atlas.metrics; aa.class_atlas(net, "layer3", acts, "cat"); aa.comparison(net, "layer3", acts, "cat", "dog")
acts.viewer(); atlas.save("results/mine")
```

A notebook that does all of this on the published CIFAR-10 ResNet-32 and on a torchvision network is
`examples/atlas.ipynb`. A config's own network is `aa.Model.from_config(path)`: with
`aa.extract(model, config=path)` and `aa.atlas(model, layer, acts)` for each of its layers, the files
are those `snakemake --configfile path` writes.

Below, every public name, from its docstring (`python -m tools.api_docs` writes this page).
"""


# Module paths left out of the types a signature names.
QUALIFIERS = ("activation_atlas.api.results.", "activation_atlas.api.network.", "pathlib.")


def signature_of(name: str, obj, method: bool = False) -> str:
    """name(parameters) -> return, with annotations as types rather than strings; a method's without
    self or cls."""
    signature = inspect.signature(obj, eval_str=True)
    if method:
        signature = signature.replace(parameters=list(signature.parameters.values())[1:])
    text = f"{name}{signature}".replace("'", '"')
    for qualifier in QUALIFIERS:
        text = text.replace(qualifier, "")
    return text


def section(title: str, obj, level: str = "##") -> str:
    return f"{level} `{title}`\n\n{inspect.getdoc(obj) or ''}\n"


def members(cls) -> list[str]:
    """A class's public methods and properties, its own in the order they are defined, then those it
    inherits from the package's classes."""
    parts, seen = [], set()
    for owner in cls.__mro__:
        if not owner.__module__.startswith("activation_atlas"):
            continue
        for name, member in vars(owner).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if isinstance(member, (property, functools.cached_property)):
                getter = member.fget if isinstance(member, property) else member.func
                parts.append(section(f"{cls.__name__}.{name}", getter, "###"))
            elif inspect.isfunction(member) or isinstance(member, classmethod):
                function = member.__func__ if isinstance(member, classmethod) else member
                title = signature_of(f"{cls.__name__}.{name}", function, method=True)
                parts.append(section(title, function, "###"))
    return parts


def page() -> str:
    import activation_atlas as aa

    parts = [INTRO]
    for name in aa.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(aa, name)
        if inspect.isclass(obj) and issubclass(obj, Exception):
            parts.append(section(name, obj))
        elif inspect.isclass(obj):
            parts.append(section(signature_of(f"aa.{name}", obj), obj))
            parts += members(obj)
        else:
            parts.append(section(signature_of(f"aa.{name}", obj), obj))
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    if "--check" in argv:
        return 0 if PAGE.read_text() == page() else 1
    PAGE.write_text(page())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
