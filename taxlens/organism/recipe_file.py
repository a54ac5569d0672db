"""A recipe from a file, for `taxlens organism train --recipe FILE`: an object of `Recipe` fields, or the
`organism.json` card a trained folder holds.

>>> load_recipe("runs/wide/base/organism.json").d_model          # doctest: +SKIP
320
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

from taxlens.organism.recipe import Recipe


def load_recipe(path: str | Path) -> Recipe:
    """A recipe from a JSON file: an object of `Recipe` fields (the fields it leaves out keep the shipped recipe's),
    or the `organism.json` card of a folder `train_organism` wrote, or that folder (its recipe, to train again). An
    unknown field or a value of the wrong type is an error naming the file and the field."""
    path = Path(path)
    if path.is_dir():  # a folder `train_organism` wrote: its card
        path = path / "organism.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a JSON recipe ({e})") from None
    if isinstance(data, dict) and "role" in data and isinstance(data.get("recipe"), dict):
        data = data["recipe"]  # an organism.json card
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a recipe is a JSON object of Recipe fields, e.g. {{\"d_model\": 320}}")
    hints = typing.get_type_hints(Recipe)
    for key, value in data.items():
        if key not in hints:
            raise ValueError(f"{path}: unknown recipe field {key!r} (Recipe's fields: {', '.join(hints)})")
        if not _fits(hints[key], value):
            raise ValueError(f"{path}: recipe field {key!r} should be {_type_name(hints[key])}, got {value!r}")
    try:
        return Recipe(**{key: float(v) if hints[key] is float else v for key, v in data.items()})
    except ValueError as e:  # a value of the right type the recipe still refuses (an optimiser it does not know)
        raise ValueError(f"{path}: {e}") from None


def _fits(hint, value) -> bool:
    """Whether a JSON value fits a `Recipe` field's type (an int fits a float field; a bool fits no number's)."""
    for t in typing.get_args(hint) or (hint,):
        if t is type(None):
            fits = value is None
        elif t is bool or isinstance(value, bool):
            fits = t is bool and isinstance(value, bool)
        else:
            fits = isinstance(value, (int, float) if t is float else t)
        if fits:
            return True
    return False


def _type_name(hint) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in typing.get_args(hint) or (hint,))
